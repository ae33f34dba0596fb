"""What the fake Stripe server remembers and how its objects move: PaymentIntents (create, update,
confirm, capture incl. multicapture, cancel, authorization expiry), Charges and Refunds.
Not thread-safe by itself: FakeStripe calls it under its lock."""
from __future__ import annotations

import copy
import re
from typing import Callable

from tests.payments.fake_stripe_objects import (
    DECLINES,
    DECLINING_TOKENS,
    StripeError,
    boolean,
    charge_object,
    enum,
    expand_list,
    integer,
    invalid,
    metadata,
    missing,
    new_id,
    payment_intent_object,
    payment_method_object,
    refund_object,
    unexpected_state,
)

BEFORE_CONFIRMATION = ("requires_payment_method", "requires_confirmation", "requires_action")
CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation",
              "requires_action", "processing")
MAX_AMOUNT = 99_999_999
MAX_CAPTURES = 50  # Stripe's multicapture limit per PaymentIntent


class Ledger:
    def __init__(self, clock: Callable[[], int]):
        self.clock = clock
        self.payment_intents: dict[str, dict] = {}
        self.charges: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.captures: dict[str, list[dict]] = {}  # PaymentIntent id -> its captures, in order

    # --- lookups ---------------------------------------------------------------------------------

    def pi(self, pi_id: str, param: str = "intent") -> dict:
        pi = self.payment_intents.get(pi_id)
        if pi is None:
            raise missing("payment_intent", pi_id, param)
        self._expire_if_due(pi)
        return pi

    def lookup(self, obj_id: str) -> dict | None:
        for prefix, table in (("pi_", self.payment_intents), ("ch_", self.charges),
                              ("re_", self.refunds)):
            if obj_id.startswith(prefix):
                return table.get(obj_id)
        return None

    def expand(self, obj: dict, params: dict) -> dict:
        """A copy of `obj` with the `expand[]` paths (`latest_charge`, `charge.payment_intent`, …)
        replaced by the objects they name."""
        out = copy.deepcopy(obj)
        for path in expand_list(params):
            node = out
            for field in path.split("."):
                if not isinstance(node, dict) or field not in node:
                    raise invalid(f"This property cannot be expanded ({path}).", param="expand",
                                  stored=False)
                if isinstance(node[field], str) and self.lookup(node[field]) is not None:
                    node[field] = copy.deepcopy(self.lookup(node[field]))
                node = node[field]
        return out

    # --- PaymentIntents --------------------------------------------------------------------------

    def create_payment_intent(self, p: dict) -> dict:
        amount = integer(p, "amount", required=True, minimum=1)
        if amount > MAX_AMOUNT:
            raise invalid("Amount must be no more than 999,999.99", code="amount_too_large",
                          param="amount", stored=False)
        currency = self._currency(p, required=True)
        capture_method = enum(p, "capture_method", ("automatic", "automatic_async", "manual"),
                              "automatic_async")
        if "automatic_payment_methods" in p and self._types(p) is not None:
            raise invalid("You may only specify one of these parameters: automatic_payment_methods, "
                          "payment_method_types.", param="automatic_payment_methods", stored=False)
        automatic = None
        types = allowed = self._types(p)
        if types is None:
            apm = p.get("automatic_payment_methods") or {}
            automatic = {"allow_redirects": apm.get("allow_redirects", "always"),
                         "enabled": boolean(apm, "enabled", True)}
            types = ["card"]
        pi = payment_intent_object(
            amount=amount, currency=currency, capture_method=capture_method, now=self.clock(),
            payment_method_types=types, allowed=allowed, automatic=automatic, options=self._options(p, {}),
            meta=metadata(p.get("metadata")), params=p)
        self.payment_intents[pi["id"]] = pi
        self.captures[pi["id"]] = []
        if boolean(p, "confirm", False):
            return self.confirm_payment_intent(p, pi["id"])
        return pi

    def retrieve_payment_intent(self, p: dict, pi_id: str) -> dict:
        return self.pi(pi_id)

    def update_payment_intent(self, p: dict, pi_id: str) -> dict:
        pi = self.pi(pi_id)
        for field in ("amount", "currency", "capture_method", "payment_method_types",
                      "allowed_payment_method_types", "payment_method_options"):
            if field in p and pi["status"] not in BEFORE_CONFIRMATION:
                raise unexpected_state(
                    f"This PaymentIntent's {field} could not be updated because it has a status of "
                    f"{pi['status']}. You may only update the {field} of a PaymentIntent with one of "
                    f"the following statuses: {', '.join(BEFORE_CONFIRMATION)}.", pi, param=field)
        changes = {"metadata": metadata(p.get("metadata"), pi["metadata"])}
        if "amount" in p:
            changes["amount"] = integer(p, "amount", minimum=1)
        if "currency" in p:
            changes["currency"] = self._currency(p)
        if "capture_method" in p:
            changes["capture_method"] = enum(p, "capture_method",
                                             ("automatic", "automatic_async", "manual"))
        if self._types(p) is not None:
            changes["payment_method_types"] = changes["allowed_payment_method_types"] = self._types(p)
            changes["automatic_payment_methods"] = None
        if "payment_method_options" in p:
            changes["payment_method_options"] = self._options(p, pi["payment_method_options"])
        for field in ("description", "receipt_email", "shipping", "statement_descriptor",
                      "statement_descriptor_suffix", "customer"):
            if field in p:
                changes[field] = p[field] or None
        pi.update(changes)
        return pi

    def confirm_payment_intent(self, p: dict, pi_id: str, *, decline: str | None = None) -> dict:
        """Confirms with `payment_method` (a test token: pm_card_visa succeeds, pm_card_chargeDeclined…
        declines). `decline` (a decline code) forces a decline whatever the card."""
        pi = self.pi(pi_id)
        if pi["status"] not in CONFIRMABLE:
            raise unexpected_state(
                f"You cannot confirm this PaymentIntent because it has a status of {pi['status']}. "
                "Only a PaymentIntent with one of the following statuses may be confirmed: "
                f"{', '.join(CONFIRMABLE)}.", pi)
        token = p.get("payment_method") or pi["payment_method"]
        if not token:
            raise unexpected_state("You cannot confirm this PaymentIntent because it's missing a "
                                   "payment method. Update the PaymentIntent with a payment method "
                                   "and then confirm it again.", pi)
        if not isinstance(token, str) or not token.startswith("pm_"):
            raise missing("PaymentMethod", str(token), "payment_method")
        if "capture_method" in p:
            pi["capture_method"] = enum(p, "capture_method", ("automatic", "automatic_async", "manual"))
        decline = decline or DECLINING_TOKENS.get(token)
        now = self.clock()
        pm = payment_method_object(token, decline, now)
        wants = pi["payment_method_options"].get("card", {}).get("request_multicapture")
        ch = charge_object(pi, pm, now, decline=decline,
                           multicapture=pi["capture_method"] == "manual" and wants == "if_available")
        self.charges[ch["id"]] = ch
        pi["latest_charge"] = ch["id"]
        if decline:
            code, message, _ = DECLINES[decline]
            pi.update(status="requires_payment_method", payment_method=None, last_payment_error={
                "type": "card_error", "code": code, "decline_code": decline, "message": message,
                "charge": ch["id"], "payment_method": pm,
                "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"})
            raise StripeError(402, "card_error", message, code=code, decline_code=decline,
                              charge=ch["id"], payment_intent=copy.deepcopy(pi), payment_method=pm)
        pi.update(payment_method=pm["id"], last_payment_error=None)
        if pi["capture_method"] == "manual":
            pi.update(status="requires_capture", amount_capturable=pi["amount"])
        else:
            pi.update(status="succeeded", amount_received=pi["amount"])
            ch.update(captured=True, amount_captured=pi["amount"], balance_transaction=new_id("txn"))
            self.captures[pi["id"]].append({"amount": pi["amount"], "final_capture": True,
                                            "created": now})
        return pi

    def capture_payment_intent(self, p: dict, pi_id: str) -> dict:
        amount = integer(p, "amount_to_capture", minimum=1)
        final = boolean(p, "final_capture", True)
        pi = self.pi(pi_id)
        meta = metadata(p.get("metadata"), pi["metadata"])
        if pi["status"] != "requires_capture":
            raise unexpected_state(
                "This PaymentIntent could not be captured because it has a status of "
                f"{pi['status']}. Only a PaymentIntent with one of the following statuses may be "
                "captured: requires_capture.", pi)
        amount = pi["amount_capturable"] if amount is None else amount
        ch = self.charges[pi["latest_charge"]]
        multicapture = ch["payment_method_details"]["card"]["multicapture"]["status"] == "available"
        if amount > pi["amount_capturable"]:
            raise invalid(f"The amount_to_capture ({amount}) is greater than the amount_capturable "
                          f"({pi['amount_capturable']}) of this PaymentIntent.",
                          code="amount_too_large", param="amount_to_capture")
        if not final and not multicapture:
            raise invalid("final_capture=false can only be used when multicapture is available on "
                          "the PaymentIntent's charge (payment_method_details.card.multicapture).",
                          param="final_capture")
        if len(self.captures[pi["id"]]) >= MAX_CAPTURES:
            raise invalid(f"A PaymentIntent can be captured at most {MAX_CAPTURES} times.",
                          param="amount_to_capture")
        remaining = pi["amount_capturable"] - amount
        done = final or remaining == 0
        pi.update(metadata=meta, amount_received=pi["amount_received"] + amount,
                  amount_capturable=0 if done else remaining,
                  status="succeeded" if done else "requires_capture")
        ch.update(captured=True, amount_captured=ch["amount_captured"] + amount,
                  balance_transaction=new_id("txn"))
        self.captures[pi["id"]].append({"amount": amount, "final_capture": done,
                                        "created": self.clock()})
        return pi

    def cancel_payment_intent(self, p: dict, pi_id: str) -> dict:
        reason = enum(p, "cancellation_reason",
                      ("duplicate", "fraudulent", "requested_by_customer", "abandoned"))
        pi = self.pi(pi_id)
        if pi["status"] not in CANCELABLE:
            raise unexpected_state(
                f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}. "
                "Only a PaymentIntent with one of the following statuses may be canceled: "
                f"{', '.join(CANCELABLE)}.", pi)
        self._release(pi, reason)
        return pi

    def _release(self, pi: dict, reason: str | None) -> None:
        """Ends the authorization: nothing captured -> canceled; partly captured (multicapture) ->
        succeeded with what was captured, the rest released."""
        if pi["amount_received"] > 0:
            pi.update(status="succeeded", amount_capturable=0)
        else:
            pi.update(status="canceled", amount_capturable=0, canceled_at=self.clock(),
                      cancellation_reason=reason)

    def _expire_if_due(self, pi: dict) -> None:
        if pi["status"] != "requires_capture":
            return
        card = self.charges[pi["latest_charge"]]["payment_method_details"]["card"]
        if card["capture_before"] is not None and self.clock() > card["capture_before"]:
            self._release(pi, "expired")

    # --- charges and refunds ---------------------------------------------------------------------

    def retrieve_charge(self, p: dict, ch_id: str) -> dict:
        if ch_id not in self.charges:
            raise missing("charge", ch_id, "charge")
        return self.charges[ch_id]

    def create_refund(self, p: dict) -> dict:
        amount = integer(p, "amount", minimum=1)
        reason = enum(p, "reason", ("duplicate", "fraudulent", "requested_by_customer"))
        meta = metadata(p.get("metadata"))
        pi_id, ch_id = p.get("payment_intent"), p.get("charge")
        if not pi_id and not ch_id:
            raise invalid("One of the following params should be provided for this request: "
                          "payment_intent or charge.", code="parameter_missing", stored=False)
        if ch_id:
            ch = self.charges.get(ch_id) or self._raise(missing("charge", ch_id, "charge"))
            if pi_id and ch["payment_intent"] != pi_id:
                raise invalid(f"Charge {ch_id} does not belong to PaymentIntent {pi_id}.",
                              param="charge")
            pi = self.pi(ch["payment_intent"])
        else:
            pi = self.pi(pi_id, "payment_intent")
            ch = self.charges.get(pi["latest_charge"] or "")
            if ch is None or ch["status"] != "succeeded":
                raise unexpected_state(f"This PaymentIntent ({pi_id}) does not have a successful "
                                       "charge to refund.", pi)
        if ch["amount_captured"] == 0:
            raise unexpected_state(f"Charge {ch['id']} has not been captured: cancel the "
                                   "PaymentIntent to release the authorization instead.", pi)
        refundable = ch["amount_captured"] - ch["amount_refunded"]
        if refundable == 0:
            raise invalid(f"Charge {ch['id']} has already been refunded.",
                          code="charge_already_refunded", charge=ch["id"])
        amount = refundable if amount is None else amount
        if amount > refundable:
            raise invalid(f"Refund amount ({amount} {ch['currency']}) is greater than unrefunded "
                          f"amount on charge ({refundable} {ch['currency']})",
                          code="amount_too_large", param="amount")
        refund = refund_object(ch, amount, reason, meta, self.clock())
        self.refunds[refund["id"]] = refund
        ch["amount_refunded"] += amount
        ch["refunded"] = ch["amount_refunded"] >= ch["amount_captured"]
        return refund

    def retrieve_refund(self, p: dict, re_id: str) -> dict:
        if re_id not in self.refunds:
            raise missing("refund", re_id, "refund")
        return self.refunds[re_id]

    # --- parameter helpers -----------------------------------------------------------------------

    @staticmethod
    def _raise(error: StripeError):
        raise error

    @staticmethod
    def _currency(p: dict, required: bool = False) -> str:
        raw = p.get("currency")
        if raw is None and required:
            raise invalid("Missing required param: currency.", code="parameter_missing",
                          param="currency", stored=False)
        if not isinstance(raw, str) or not re.fullmatch(r"[a-z]{3}", raw.lower()):
            raise invalid(f"Invalid currency: {raw}.", param="currency", stored=False)
        return raw.lower()

    @staticmethod
    def _types(p: dict) -> list[str] | None:
        """`allowed_payment_method_types` (this API version) or `payment_method_types` (older)."""
        name = "allowed_payment_method_types" if "allowed_payment_method_types" in p else \
            "payment_method_types"
        raw = p.get(name)
        if raw is None:
            return None
        if not isinstance(raw, list) or not raw or not all(isinstance(t, str) for t in raw):
            raise invalid("Invalid array", param=name, stored=False)
        return raw

    @staticmethod
    def _options(p: dict, current: dict) -> dict:
        raw = p.get("payment_method_options", {})
        if not isinstance(raw, dict):
            raise invalid("Invalid object", param="payment_method_options", stored=False)
        options = copy.deepcopy(current)
        for method, values in raw.items():
            if not isinstance(values, dict):
                raise invalid("Invalid object", param=f"payment_method_options[{method}]", stored=False)
            options.setdefault(method, {}).update(values)
        card = options.setdefault("card", {})
        for key, default in (("installments", None), ("mandate_options", None), ("network", None),
                             ("request_three_d_secure", "automatic")):
            card.setdefault(key, default)
        if card.get("request_multicapture") not in (None, "if_available", "never"):
            raise invalid("Invalid payment_method_options[card][request_multicapture]: must be one "
                          "of if_available, never",
                          param="payment_method_options[card][request_multicapture]", stored=False)
        return options

