"""Stripe, through the official `stripe` library only (its async client over httpx).

Settings: STRIPE_API_KEY, STRIPE_WEBHOOK_SECRET, STRIPE_API_BASE (tests point it at a local
fake), STRIPE_MULTICAPTURE (ask for multicapture on new PaymentIntents), STRIPE_TIMEOUT_SECONDS,
STRIPE_MAX_NETWORK_RETRIES. Unset keys (the defaults) mean "not configured": a Stripe payment
answers 503 payment_provider_unavailable and nothing is written.

Every call that changes something carries an idempotency key chosen by the caller from what it
does (the order id for the PaymentIntent, the payment operation's key for captures, voids and
refunds), so a call repeated after a crash or a timeout is the same call to Stripe.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import stripe

from app.core.settings import get_settings
from app.payments.providers import (Intent, PaymentDeclined, ProviderRejected, ProviderUnavailable, Started)

log = logging.getLogger("app.payments.stripe")
UNSET = ("", "sk_test_unset", "whsec_unset")


def configured() -> bool:
    return get_settings().stripe_api_key not in UNSET


def webhook_secret() -> str | None:
    secret = get_settings().stripe_webhook_secret
    return None if secret in UNSET else secret


_clients: dict[tuple, stripe.StripeClient] = {}


def client() -> stripe.StripeClient:
    s = get_settings()
    if not configured():
        raise ProviderUnavailable("Stripe is not configured on this server (STRIPE_API_KEY): pay with another "
                                  "provider, or try again once it is.")
    key = (s.stripe_api_key, s.stripe_api_base, s.stripe_timeout_seconds, s.stripe_max_network_retries)
    c = _clients.get(key)
    if c is None:
        c = stripe.StripeClient(
            s.stripe_api_key, base_addresses={"api": s.stripe_api_base} if s.stripe_api_base else None,
            http_client=stripe.HTTPXClient(timeout=s.stripe_timeout_seconds),
            max_network_retries=s.stripe_max_network_retries)
        _clients.clear()
        _clients[key] = c
    return c


def _get(obj: Any, *path: str) -> Any:
    for name in path:
        if obj is None:
            return None
        try:
            obj = obj[name]
        except (KeyError, TypeError, AttributeError):
            return None
    return obj


def intent_of(pi: Any) -> Intent:
    charge = _get(pi, "latest_charge")
    card = _get(charge, "payment_method_details", "card") if not isinstance(charge, str) else None
    before = _get(card, "capture_before")
    return Intent(
        reference=pi["id"], status=pi["status"], amount=int(pi["amount"] or 0),
        amount_capturable=int(_get(pi, "amount_capturable") or 0), amount_received=int(_get(pi, "amount_received") or 0),
        currency=str(pi["currency"]).upper(),
        capture_before=datetime.fromtimestamp(int(before), tz=timezone.utc) if before else None,
        multicapture=_get(card, "multicapture", "status") == "available",
        client_secret=_get(pi, "client_secret"))


async def _call(what: str, coro):
    """Run a library call; map its errors to the provider errors (nothing else escapes)."""
    try:
        return await coro
    except stripe.CardError as exc:
        code = getattr(getattr(exc, "error", None), "decline_code", None) or exc.code or "card_declined"
        raise PaymentDeclined(f"The card was declined: {exc.user_message or code}.", decline_code=code) from None
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        log.warning("stripe %s: %s", what, exc)
        raise ProviderUnavailable("Stripe cannot be reached right now; retry shortly.") from None
    except (stripe.AuthenticationError, stripe.PermissionError) as exc:
        log.error("stripe %s refused our credentials: %s", what, exc)
        raise ProviderUnavailable("Stripe refused this server's credentials; the operator must fix "
                                  "STRIPE_API_KEY.") from None
    except stripe.APIError as exc:
        log.warning("stripe %s: %s", what, exc)
        raise ProviderUnavailable("Stripe answered with an error on its side; retry shortly.") from None
    except stripe.StripeError as exc:  # invalid request, idempotency conflict, …
        log.warning("stripe %s rejected: %s", what, exc)
        raise ProviderRejected(f"Stripe rejected the {what}: {exc.user_message or str(exc)}") from None


class StripeProvider:
    name = "stripe"
    confirms_later = True

    async def start(self, amount, currency, *, key, metadata, multicapture, reference):
        params: dict[str, Any] = {"amount": amount, "currency": currency.lower(), "capture_method": "manual",
                                  "metadata": metadata,
                                  "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"}}
        if multicapture:
            params["payment_method_options"] = {"card": {"request_multicapture": "if_available"}}
        pi = await _call("payment", client().v1.payment_intents.create_async(
            params=params, options={"idempotency_key": f"pi-{key}"}))
        return Started("unpaid", pi["id"], pi["client_secret"])

    async def retrieve(self, reference):
        pi = await _call("lookup", client().v1.payment_intents.retrieve_async(
            reference, params={"expand": ["latest_charge"]}))
        return intent_of(pi)

    async def capture(self, reference, amount, *, final, multicapture, key):
        params: dict[str, Any] = {"amount_to_capture": amount, "expand": ["latest_charge"]}
        if multicapture:
            params["final_capture"] = final
        pi = await _call("capture", client().v1.payment_intents.capture_async(
            reference, params=params, options={"idempotency_key": key}))
        return intent_of(pi)

    async def void(self, reference, *, key):
        pi = await _call("cancellation", client().v1.payment_intents.cancel_async(
            reference, params={"cancellation_reason": "abandoned"}, options={"idempotency_key": key}))
        return intent_of(pi)

    async def refund(self, reference, amount, *, key, metadata):
        re = await _call("refund", client().v1.refunds.create_async(
            params={"payment_intent": reference, "amount": amount, "metadata": metadata},
            options={"idempotency_key": key}))
        return re["id"]


def construct_event(payload: bytes, signature: str | None) -> Any:
    """The event, verified with the library's own check of `Stripe-Signature` (ValueError or
    stripe.SignatureVerificationError when it does not hold)."""
    secret = webhook_secret()
    if secret is None:
        raise ProviderUnavailable("Stripe webhooks are not configured on this server (STRIPE_WEBHOOK_SECRET).")
    return stripe.Webhook.construct_event(payload, signature or "", secret)


__all__ = ["StripeProvider", "configured", "construct_event", "intent_of", "ProviderRejected"]
