"""Stripe's wire format for the fake Stripe server (fake_stripe.py): ids, errors, form parsing,
parameter checks, and the JSON objects (PaymentIntent, Charge, Refund, Event) with their webhook
signature. Only what the app uses is modelled; shapes follow the API version of the installed
`stripe` library."""
from __future__ import annotations

import copy
import hashlib
import hmac
import re
import secrets
import string
import time
from typing import Any

import stripe
from stripe._request_options import RequestOptions
from stripe.params import (
    ChargeRetrieveParams,
    PaymentIntentCancelParams,
    PaymentIntentCaptureParams,
    PaymentIntentConfirmParams,
    PaymentIntentCreateParams,
    PaymentIntentRetrieveParams,
    PaymentIntentUpdateParams,
    RefundCreateParams,
    RefundRetrieveParams,
)

API_VERSION: str = stripe.api_version
DAY = 24 * 3600
_ALNUM = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    return f"{prefix}_" + "".join(secrets.choice(_ALNUM) for _ in range(length))


class StripeError(Exception):
    """An error answer: HTTP status and Stripe's error object. `stored=False` marks answers Stripe
    gives before the endpoint runs (parameter validation): they are not saved under the
    request's idempotency key, so a corrected retry with the same key goes through."""

    def __init__(self, status: int, type: str, message: str, *, code: str | None = None,
                 param: str | None = None, decline_code: str | None = None, stored: bool = True,
                 **extra: Any):
        super().__init__(message)
        self.status, self.stored = status, stored
        self.error: dict[str, Any] = {"type": type, "message": message}
        if code:
            self.error["code"] = code
            self.error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param:
            self.error["param"] = param
        if decline_code:
            self.error["decline_code"] = decline_code
        self.error.update(extra)

    def body(self) -> dict:
        return {"error": copy.deepcopy(self.error)}


def invalid(message: str, *, code: str | None = None, param: str | None = None, stored: bool = True,
            status: int = 400, **extra: Any) -> StripeError:
    return StripeError(status, "invalid_request_error", message, code=code, param=param, stored=stored,
                       **extra)


def missing(kind: str, obj_id: str, param: str = "id") -> StripeError:
    return invalid(f"No such {kind}: '{obj_id}'", code="resource_missing", param=param, status=404)


def unexpected_state(message: str, pi: dict, param: str | None = None) -> StripeError:
    return invalid(message, code="payment_intent_unexpected_state", param=param,
                   payment_intent=copy.deepcopy(pi))


# --- application/x-www-form-urlencoded with Stripe's nested keys ---------------------------------

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """`metadata[a]=1&items[0][x]=2&expand[]=y` -> {"metadata": {"a": "1"}, "items": [{"x": "2"}],
    "expand": ["y"]}. Leaves stay strings, as Stripe receives them."""
    root: dict[str, Any] = {}
    for raw, value in pairs:
        m = _KEY.match(raw)
        parts = [m.group(1), *re.findall(r"\[([^\[\]]*)\]", m.group(2))] if m else [raw]
        node = root
        for i, part in enumerate(parts):
            if part == "":  # `a[]`: the next list element
                part = str(len(node))
            if i == len(parts) - 1:
                node[part] = value
            else:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
    return {k: v if k == "metadata" else _listify(v) for k, v in root.items()}


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _listify(v) for k, v in node.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


# --- parameter checks (all before anything changes: `stored=False`) ------------------------------

def _fields(cls: type, *legacy: str) -> frozenset[str]:
    return frozenset(cls.__annotations__) - frozenset(RequestOptions.__annotations__) | {
        "expand", *legacy}


# This library's API version lists `allowed_payment_method_types`; the older
# `payment_method_types` parameter is accepted too (and means the same here).


ALLOWED = {
    "create_payment_intent": _fields(PaymentIntentCreateParams, "payment_method_types"),
    "retrieve_payment_intent": _fields(PaymentIntentRetrieveParams),
    "update_payment_intent": _fields(PaymentIntentUpdateParams, "payment_method_types"),
    "confirm_payment_intent": _fields(PaymentIntentConfirmParams),
    "capture_payment_intent": _fields(PaymentIntentCaptureParams),
    "cancel_payment_intent": _fields(PaymentIntentCancelParams),
    "create_refund": _fields(RefundCreateParams),
    "retrieve_refund": _fields(RefundRetrieveParams),
    "retrieve_charge": _fields(ChargeRetrieveParams),
}


def check_known(params: dict, allowed: frozenset[str]) -> None:
    for name in params:
        if name not in allowed:
            raise invalid(f"Received unknown parameter: {name}", code="parameter_unknown", param=name,
                          stored=False)


def integer(params: dict, name: str, *, required: bool = False, minimum: int | None = None,
            default: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None:
        if required:
            raise invalid(f"Missing required param: {name}.", code="parameter_missing", param=name,
                          stored=False)
        return default
    if not isinstance(raw, str) or not re.fullmatch(r"-?\d+", raw):
        raise invalid(f"Invalid integer: {raw}", code="parameter_invalid_integer", param=name,
                      stored=False)
    value = int(raw)
    if minimum is not None and value < minimum:
        raise invalid(f"This value must be greater than or equal to {minimum}.",
                      code="parameter_invalid_integer", param=name, stored=False)
    return value


def boolean(params: dict, name: str, default: bool) -> bool:
    raw = params.get(name)
    if raw is None:
        return default
    if raw not in ("true", "false"):
        raise invalid(f"Invalid boolean: {raw}", param=name, stored=False)
    return raw == "true"


def enum(params: dict, name: str, choices: tuple[str, ...], default: str | None = None) -> str | None:
    raw = params.get(name)
    if raw is None:
        return default
    if raw not in choices:
        raise invalid(f"Invalid {name}: must be one of {', '.join(choices)}", param=name, stored=False)
    return raw


def metadata(raw: Any, current: dict | None = None) -> dict:
    """Stripe's merge: given keys are set, a key set to "" is removed, `metadata=""` clears all."""
    out = dict(current or {})
    if raw is None:
        return out
    if raw == "":
        return {}
    if not isinstance(raw, dict):
        raise invalid("Invalid object", param="metadata", stored=False)
    for key, value in raw.items():
        if not isinstance(value, str):
            raise invalid("Invalid metadata value: must be a string", param=f"metadata[{key}]",
                          stored=False)
        if len(key) > 40:
            raise invalid("Metadata keys can have up to 40 characters.", param=f"metadata[{key}]",
                          stored=False)
        if len(value) > 500:
            raise invalid("Metadata values can have up to 500 characters, but you passed in a value "
                          f"that is {len(value)} characters.", param=f"metadata[{key}]", stored=False)
        if value == "":
            out.pop(key, None)
        else:
            out[key] = value
    if len(out) > 50:
        raise invalid("You can have at most 50 keys in metadata.", param="metadata", stored=False)
    return out


def expand_list(params: dict) -> list[str]:
    raw = params.get("expand") or []
    return [raw] if isinstance(raw, str) else list(raw)


# --- test cards ----------------------------------------------------------------------------------

# Stripe's test PaymentMethod tokens that decline, with the decline code they produce.
DECLINING_TOKENS = {
    "pm_card_chargeDeclined": "generic_decline",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
    "pm_card_chargeDeclinedFraudulent": "fraudulent",
    "pm_card_chargeDeclinedLostCard": "lost_card",
    "pm_card_chargeDeclinedStolenCard": "stolen_card",
    "pm_card_chargeDeclinedExpiredCard": "expired_card",
    "pm_card_chargeDeclinedIncorrectCvc": "incorrect_cvc",
    "pm_card_chargeDeclinedProcessingError": "processing_error",
}
# decline_code -> (error code, message, last4 of Stripe's matching test card)
DECLINES = {
    "generic_decline": ("card_declined", "Your card was declined.", "0002"),
    "insufficient_funds": ("card_declined", "Your card has insufficient funds.", "9995"),
    "fraudulent": ("card_declined", "Your card was declined.", "0019"),
    "lost_card": ("card_declined", "Your card was declined.", "9987"),
    "stolen_card": ("card_declined", "Your card was declined.", "9979"),
    "expired_card": ("expired_card", "Your card has expired.", "0069"),
    "incorrect_cvc": ("incorrect_cvc", "Your card's security code is incorrect.", "0127"),
    "processing_error": ("processing_error",
                         "An error occurred while processing your card. Try again in a little bit.",
                         "0119"),
}
CARDS = {"pm_card_visa": ("visa", "4242"), "pm_card_mastercard": ("mastercard", "4444"),
         "pm_card_amex": ("amex", "8431")}


def payment_method_object(token: str, decline: str | None, now: int) -> dict:
    brand, last4 = CARDS.get(token, ("visa", "4242"))
    if decline:
        last4 = DECLINES[decline][2]
    return {
        "id": new_id("pm"), "object": "payment_method", "type": "card", "created": now,
        "livemode": False, "customer": None, "metadata": {},
        "billing_details": {"address": None, "email": None, "name": None, "phone": None},
        "card": {"brand": brand, "last4": last4, "exp_month": 12,
                 "exp_year": time.gmtime(now).tm_year + 3, "funding": "credit", "country": "US",
                 "fingerprint": new_id("fp", 16)[3:]},
    }


# --- objects -------------------------------------------------------------------------------------

def payment_intent_object(*, amount: int, currency: str, capture_method: str, now: int,
                          payment_method_types: list[str], allowed: list[str] | None,
                          automatic: dict | None,
                          options: dict, meta: dict, params: dict) -> dict:
    pi_id = new_id("pi")
    return {
        "id": pi_id, "object": "payment_intent", "allowed_payment_method_types": allowed,
        "amount": amount, "amount_capturable": 0,
        "amount_details": {"tip": {}}, "amount_received": 0, "application": None,
        "application_fee_amount": None, "automatic_payment_methods": automatic,
        "canceled_at": None, "cancellation_reason": None, "capture_method": capture_method,
        "client_secret": f"{pi_id}_secret_" + new_id("x", 25)[2:], "confirmation_method": "automatic",
        "created": now, "currency": currency, "customer": params.get("customer"),
        "excluded_payment_method_types": None,
        "description": params.get("description"), "last_payment_error": None,
        "latest_charge": None, "livemode": False, "metadata": meta, "next_action": None,
        "on_behalf_of": None, "payment_method": None, "payment_method_options": options,
        "payment_method_types": payment_method_types, "processing": None,
        "receipt_email": params.get("receipt_email"), "review": None, "setup_future_usage": None,
        "shipping": params.get("shipping"), "statement_descriptor": params.get("statement_descriptor"),
        "statement_descriptor_suffix": params.get("statement_descriptor_suffix"),
        "status": "requires_payment_method", "transfer_data": None, "transfer_group": None,
    }


def charge_object(pi: dict, pm: dict, now: int, *, decline: str | None, multicapture: bool) -> dict:
    manual = pi["capture_method"] == "manual"
    card = dict(pm["card"])
    card.update({
        "amount_authorized": None if decline else pi["amount"],
        "capture_before": now + 7 * DAY if manual and not decline else None,
        "checks": {"address_line1_check": None, "address_postal_code_check": None,
                   "cvc_check": "pass"},
        "extended_authorization": {"status": "disabled"},
        "incremental_authorization": {"status": "unavailable"},
        "multicapture": {"status": "available" if multicapture and not decline else "unavailable"},
        "network": card["brand"],
        "overcapture": {"maximum_amount_capturable": pi["amount"], "status": "unavailable"},
    })
    if decline:
        code, message, _ = DECLINES[decline]
        outcome = {"network_status": "declined_by_network", "reason": decline, "risk_level": "normal",
                   "seller_message": "The bank did not return any further details with this decline.",
                   "type": "issuer_declined"}
    else:
        code = message = None
        outcome = {"network_status": "approved_by_network", "reason": None, "risk_level": "normal",
                   "seller_message": "Payment complete.", "type": "authorized"}
    return {
        "id": new_id("ch"), "object": "charge", "amount": pi["amount"], "amount_captured": 0,
        "amount_refunded": 0, "balance_transaction": None, "billing_details": pm["billing_details"],
        "captured": False, "created": now, "currency": pi["currency"], "customer": pi["customer"],
        "description": pi["description"], "disputed": False, "failure_code": code,
        "failure_message": message, "livemode": False, "metadata": dict(pi["metadata"]),
        "outcome": outcome, "paid": decline is None, "payment_intent": pi["id"],
        "payment_method": pm["id"], "payment_method_details": {"type": "card", "card": card},
        "receipt_url": None, "refunded": False, "status": "failed" if decline else "succeeded",
    }


def refund_object(ch: dict, amount: int, reason: str | None, meta: dict, now: int) -> dict:
    return {
        "id": new_id("re"), "object": "refund", "amount": amount,
        "balance_transaction": new_id("txn"), "charge": ch["id"], "created": now,
        "currency": ch["currency"], "destination_details": {"type": "card", "card": {}},
        "metadata": meta, "payment_intent": ch["payment_intent"], "reason": reason,
        "receipt_number": None, "source_transfer_reversal": None, "status": "succeeded",
        "transfer_reversal": None,
    }


def event_object(type: str, obj: dict, now: int, previous_attributes: dict | None = None) -> dict:
    data: dict[str, Any] = {"object": copy.deepcopy(obj)}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {"id": new_id("evt"), "object": "event", "api_version": API_VERSION, "created": now,
            "data": data, "livemode": False, "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None}, "type": type}


def sign(payload: bytes | str, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header Stripe sends: `t=<unix>,v1=<hex HMAC-SHA256(secret, "t.payload")>`
    (the whole secret, `whsec_` prefix included, is the key)."""
    if isinstance(payload, (bytes, bytearray)):
        payload = payload.decode("utf-8")
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode("utf-8"), f"{t}.{payload}".encode("utf-8"), hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"
