"""POST /v1/payments/stripe/webhook: Stripe tells us what happened to a PaymentIntent.

1. The signature is checked with the library's own verification (`Stripe-Signature`, the
   configured STRIPE_WEBHOOK_SECRET, five minutes' tolerance): otherwise 400 invalid_signature.
2. Each event id is handled once: the first delivery inserts its `stripe_events` row
   (INSERT … ON CONFLICT DO NOTHING; a concurrent redelivery waits for it on PostgreSQL and then
   finds it), a redelivery answers 200 `duplicate` and does nothing.
3. The event's own copy of the PaymentIntent is not trusted for state: the PaymentIntent is
   re-read from Stripe, so events arriving out of order (a `payment_failed` after the
   `amount_capturable_updated` of a later, successful attempt) converge on Stripe's truth.
4. The order (found by its PaymentIntent, locked) follows: authorized or succeeded → the
   figures and payment_status, and the order confirmed (order.confirmed) — or, when it was
   cancelled meanwhile (it expired unpaid), the authorization is voided / the payment refunded
   by settling; cancelled, or failed with nothing authorized → the order is cancelled and its
   stock released.
Stripe unreachable while re-reading → 503, and Stripe delivers the event again later.
"""
from __future__ import annotations

from typing import Any

import stripe
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.errors import ApiError
from app.core.ids import new_id
from app.core.sql import insert_ignore
from app.orders import bulk_transitions, fulfillments
from app.orders.models import Order
from app.payments import settlement
from app.payments.models import PaymentOperation, StripeEvent
from app.payments.providers import ProviderError, provider
from app.payments.stripe_provider import construct_event

O = Order.__table__
OP = PaymentOperation.__table__
SE = StripeEvent.__table__
HANDLED = ("payment_intent.amount_capturable_updated", "payment_intent.succeeded", "payment_intent.payment_failed",
           "payment_intent.canceled", "payment_intent.processing", "payment_intent.requires_action")


async def receive(session: AsyncSession, payload: bytes, signature: str | None) -> dict:
    try:
        event = construct_event(payload, signature)
    except ProviderError as exc:
        raise exc.problem("stripe") from None
    except (ValueError, stripe.SignatureVerificationError):
        raise ApiError(400, "invalid_signature", "The Stripe-Signature header does not verify this payload "
                                                 "(wrong secret, tampered body, or older than five minutes).") from None
    try:
        event_id, kind, obj = str(event["id"]), str(event["type"]), event["data"]["object"]
        pi_id = str(obj["id"]) if kind in HANDLED and obj["object"] == "payment_intent" else None
    except (KeyError, TypeError, AttributeError):
        raise ApiError(400, "invalid_event", "The event lacks its id, type or data.object.") from None
    if not await _first_delivery(session, event_id, kind, pi_id):
        outcome = (await session.execute(select(SE.c.outcome).where(SE.c.id == event_id))).scalar()
        return {"received": True, "event": event_id, "duplicate": True, "outcome": outcome}
    if pi_id is None:
        outcome, order_id = "ignored", None
    else:
        try:
            intent = await provider("stripe").retrieve(pi_id)
        except ProviderError as exc:
            raise exc.problem("stripe") from None  # rolled back: the redelivery is handled in full
        order = (await session.execute(select(O).where(O.c.payment_reference == pi_id, O.c.payment_provider == "stripe")
                                       .with_for_update())).first()
        order_id = order.id if order is not None else None
        outcome = await apply_intent(session, order, intent, kind) if order is not None else "unknown_payment_intent"
    await session.execute(update(SE).where(SE.c.id == event_id).values(outcome=outcome, order_id=order_id))
    return {"received": True, "event": event_id, "duplicate": False, "outcome": outcome, "order": order_id}


async def _first_delivery(session: AsyncSession, event_id: str, kind: str, pi_id: str | None) -> bool:
    stmt = insert_ignore(session, SE, ["id"]).values(id=event_id, type=kind[:100], payment_intent=pi_id,
                                                    outcome="received", received_at=clock.now())
    return (await session.execute(stmt.returning(SE.c.id))).first() is not None


async def apply_intent(session: AsyncSession, order: Any, intent: Any, kind: str) -> str:
    """The order follows its PaymentIntent as Stripe has it now (see the module doc)."""
    if intent.status in ("requires_capture", "succeeded"):
        authorized = max(order.amount_authorized, intent.amount_capturable + intent.amount_received)
        captured = max(order.amount_captured, intent.amount_received)
        status = settlement.payment_status(order.payment_status, authorized=authorized, captured=captured,
                                           refunded=order.amount_refunded)
        await session.execute(update(O).where(O.c.id == order.id).values(
            amount_authorized=authorized, amount_captured=captured, payment_status=status,
            capture_before=intent.capture_before or order.capture_before,
            multicapture=intent.multicapture, payment_expires_at=None, updated_at=clock.now()))
        await fulfillments.rederive(session, order)  # confirmed (order.confirmed), or settled if cancelled
        return "authorized" if intent.status == "requires_capture" else "captured"
    failed = kind == "payment_intent.payment_failed" and intent.status == "requires_payment_method"
    if intent.status == "canceled" or failed:
        if intent.status == "canceled":  # nothing left to void at Stripe
            await session.execute(insert(OP).values(
                id=new_id("pop"), order_id=order.id, provider="stripe", kind="void", amount=0, currency=order.currency,
                final=False, reason="payment_cancelled", status="succeeded", idempotency_key=f"{order.id}:stripe-canceled",
                attempts=0, created_at=clock.now(), updated_at=clock.now()))
        if order.status == "pending_payment":
            await bulk_transitions.cancel_order(session, order.id, None, expected_version=None,
                                                reason="payment failed" if failed else "payment cancelled")
            return "order_cancelled"
        return "ignored"
    return f"ignored_{intent.status}"
