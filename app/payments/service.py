"""Payments of orders: start at checkout, settle after every change, refund returns.

    start(session, payment, …)        checkout: the provider begins the payment (Stripe: a
                                      PaymentIntent with manual capture) before any stock is locked
    settle(session, order_id)         after every fulfillment change (fulfillments.rederive): the
                                      operations now due (settlement.plan), written as rows
    run_pending() / run_operation()   after the commit (and by the worker): each operation carried
                                      out with its provider, then its result recorded
    refund(session, order, amount, …) a return's refund, at once (the POS waits for it)

An operation's life: `pending` (written with the change that made it due) → `running` (claimed
with a lease, in a short transaction of its own) → the provider call, outside any transaction →
`succeeded` (the order's figures, payment_status and the event `payment.captured`,
`payment.voided` or `refund.created` in one short transaction) or back to `pending` with a
backoff when the provider was unreachable, or `failed` (declined, rejected, too many tries:
event `payment.operation_failed`). A crash anywhere leaves a pending or running operation that
the worker takes up again; its idempotency key makes the repeat the same call at the provider.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import clock
from app.core.db import on_commit, unit_of_work
from app.core.errors import ApiError
from app.core.ids import new_id
from app.core.responses import rfc3339
from app.core.settings import get_settings
from app.customers import groups as customer_groups
from app.events.service import emit
from app.orders.models import Order, OrderLine
from app.payments import settlement, store_credit
from app.payments.models import PaymentOperation
from app.payments.providers import PaymentDeclined, ProviderError, ProviderRejected, ProviderUnavailable, provider

log = logging.getLogger("app.payments")
O = Order.__table__
OL = OrderLine.__table__
OP = PaymentOperation.__table__

LEASE = timedelta(minutes=2)  # a claimed operation not finished by then is taken up again
MAX_ATTEMPTS = 12
REFUND_METHODS = ("original", "cash", "store_credit")
SETTLED_BY_OPERATIONS = ("stripe", "store_credit")  # others are settled where they were paid (settlement.py)
OP_EVENTS = {"capture": "payment.captured", "void": "payment.voided", "refund": "refund.created"}


def money(amount: int, currency: str) -> dict:
    return {"amount": amount, "currency": currency}


# --------------------------------------------------------------------------- checkout

async def start(session: AsyncSession, provider_name: str, reference: str | None, *, order_id: str, amount: int,
                channel: Any, customer_id: str | None, who: Principal | None,
                method: str | None = None) -> tuple[dict, str | None]:
    """Begin the payment of a new order. Returns the order's payment columns and, for Stripe, the
    PaymentIntent's client_secret. Called before any stock is locked: a provider call may take
    a while. Raises the provider's problem (503 payment_provider_unavailable, 402, 502).
    `method` invoice (provider external, B2B customers only, else 422 naming payment.method):
    the order is confirmed but stays `unpaid` (reference: the invoice number, when given)."""
    currency = channel.currency
    if method is not None:
        if provider_name != "external":
            raise ApiError(422, "validation_error", "payment.method is for provider external (an invoice is paid "
                                                    "outside the shop).",
                           errors=[{"field": "payment.method", "message": "Only with provider external."}])
        await customer_groups.check_invoice(session, customer_id)
        return {"payment_status": "unpaid", "payment_reference": reference}, None
    if provider_name == "none":
        return {"payment_status": "unpaid", "payment_reference": reference}, None
    if provider_name == "store_credit":
        if customer_id is None:
            raise ApiError(422, "validation_error", "Store credit belongs to a customer: give the cart a customer.",
                           errors=[{"field": "payment.provider", "message": "Needs a customer."}])
        if amount > 0:
            await store_credit.add(session, customer_id, currency, -amount, order_id=order_id, note="checkout",
                                   api_key_id=who.key_id if who else None)
        return {"payment_status": "paid", "payment_reference": reference, "amount_authorized": amount,
                "amount_captured": amount}, None
    p = provider(provider_name)
    if p.confirms_later and amount <= 0:
        raise ApiError(422, "validation_error", "Nothing to pay: the order total is zero. Use payment provider 'none'.",
                       errors=[{"field": "payment.provider", "message": "Nothing to pay."}])
    try:
        started = await p.start(amount, currency, key=order_id, reference=reference,
                                metadata={"order_id": order_id, "channel": channel.code},
                                multicapture=get_settings().stripe_multicapture)
    except ProviderError as exc:
        raise exc.problem(provider_name) from None
    columns: dict[str, Any] = {"payment_status": started.payment_status, "payment_reference": started.reference}
    if p.confirms_later:
        columns["payment_expires_at"] = clock.now() + timedelta(minutes=channel.payment_timeout_minutes)
    else:
        columns.update(amount_authorized=amount, amount_captured=amount)
    return columns, started.client_secret


async def abandon(provider_name: str, reference: str | None) -> None:
    """A payment begun for an order that was not placed after all (no stock, …): release it, best
    effort (a Stripe PaymentIntent never confirmed holds nothing and lapses by itself)."""
    if reference is None or provider_name != "stripe":
        return
    try:
        await provider(provider_name).void(reference, key=f"abandon-{reference}")
    except ProviderError as exc:
        log.warning("could not cancel the PaymentIntent %s of an order not placed: %s", reference, exc)


async def client_secret(order: Any) -> str:
    """POST /v1/orders/{id}/payment-session: the PaymentIntent's client_secret again (a checkout
    answer replayed by its Idempotency-Key never shows it), while the order waits for payment."""
    if order.payment_provider != "stripe" or order.status != "pending_payment" or not order.payment_reference:
        raise ApiError(409, "invalid_transition", f"Order {order.number} is not waiting for a Stripe payment "
                                                  f"(status {order.status}).", current_status=order.status)
    try:
        intent = await provider("stripe").retrieve(order.payment_reference)
    except ProviderError as exc:
        raise exc.problem("stripe") from None
    return intent.client_secret or ""


# --------------------------------------------------------------------------- settling

async def _ledger(session: AsyncSession, order_id: str) -> tuple[Any, list[settlement.Line], settlement.Ledger, int]:
    order = (await session.execute(select(O).where(O.c.id == order_id))).one()
    lines = [settlement.Line(r.total, r.quantity, r.quantity_fulfilled, r.quantity_cancelled) for r in (
        await session.execute(select(OL.c.total, OL.c.quantity, OL.c.quantity_fulfilled, OL.c.quantity_cancelled)
                              .where(OL.c.order_id == order_id))).all()]
    ops = (await session.execute(select(OP.c.kind, OP.c.amount, OP.c.final, OP.c.reason, OP.c.status)
                                 .where(OP.c.order_id == order_id))).all()
    live = [o for o in ops if o.status != "failed"]
    ledger = settlement.Ledger(
        provider=order.payment_provider or "none", total=order.total, authorized=order.amount_authorized,
        captured=sum(o.amount for o in live if o.kind == "capture"),
        final_captured=any(o.kind == "capture" and o.final for o in live),
        refunded_cancelled=sum(o.amount for o in live if o.kind == "refund" and o.reason != "return"),
        voided=any(o.kind == "void" for o in live), multicapture=order.multicapture)
    return order, lines, ledger, len(ops)


async def settle(session: AsyncSession, order_id: str) -> list[dict]:
    """Write the payment operations now due for an order (see settlement.plan); store credit is
    credited back at once, provider operations run after the commit. Returns what was written."""
    order, lines, ledger, n = await _ledger(session, order_id)
    written = []
    for i, op in enumerate(settlement.plan(lines, ledger), start=n + 1):
        row = {"id": new_id("pop"), "order_id": order_id, "provider": ledger.provider, "kind": op.kind,
               "amount": op.amount, "currency": order.currency, "final": op.final, "reason": op.reason,
               "status": "pending", "idempotency_key": f"{order_id}:{op.kind}:{i}", "attempts": 0,
               "next_attempt_at": None, "created_at": clock.now(), "updated_at": clock.now()}
        if ledger.provider == "store_credit":
            row["status"] = "succeeded"
            await session.execute(insert(OP).values(**row))
            await _credit(session, order, op.amount, row["id"], note=op.reason)
            await _record(session, order, row, None)
        else:
            await session.execute(insert(OP).values(**row))
            await on_commit(session, kick)
        written.append(row)
    return written


async def _credit(session: AsyncSession, order: Any, amount: int, op_id: str, *, note: str,
                  return_id: str | None = None, who: Principal | None = None) -> None:
    if order.customer_id is None:
        raise ApiError(422, "refund_method_not_allowed", "Store credit belongs to a customer: the order has none.",
                       errors=[{"field": "refund_method", "message": "The order has no customer to credit."}])
    await store_credit.add(session, order.customer_id, order.currency, amount, order_id=order.id, return_id=return_id,
                           note=note, api_key_id=who.key_id if who else None)


async def _record(session: AsyncSession, order: Any, op: dict, intent: Any) -> dict:
    """A succeeded operation on the order: its figures, payment_status, version and event."""
    authorized, captured, refunded = order.amount_authorized, order.amount_captured, order.amount_refunded
    if op["kind"] == "capture":
        captured = max(captured + op["amount"], intent.amount_received if intent is not None else 0)
    elif op["kind"] == "refund":
        refunded += op["amount"]
    status = settlement.payment_status(order.payment_status, authorized=authorized, captured=captured,
                                       refunded=refunded)
    version = (await session.execute(update(O).where(O.c.id == order.id).values(
        amount_captured=captured, amount_refunded=refunded, payment_status=status, version=O.c.version + 1,
        updated_at=clock.now()).returning(O.c.version))).scalar_one()
    data = {**render_operation(op), "order": order.id, "order_number": order.number, "payment_status": status,
            "order_version": version}
    await emit(session, OP_EVENTS[op["kind"]], data, channel=order.channel)
    return data


def render_operation(op: Any) -> dict:
    g = op.get if isinstance(op, dict) else (lambda k, d=None: getattr(op, k, d))
    return {"id": g("id"), "object": "payment_operation", "kind": g("kind"), "provider": g("provider"),
            "amount": money(g("amount"), g("currency")), "final": g("final"), "reason": g("reason"),
            "status": g("status"), "reference": g("reference"), "return": g("return_id"),
            "location": g("location"), "error": g("error"), "attempts": g("attempts"),
            "created_at": rfc3339(g("created_at"))}


# --------------------------------------------------------------------------- refunds of returns

async def refund(session: AsyncSession, order: Any, amount: int, *, method: str, key: str,
                 return_id: str | None = None, location: str | None = None,
                 who: Principal | None = None) -> dict | None:
    """Refund `amount` of `order` (its row, locked by the caller) for a return, at once:
    `original` the way it was paid (Stripe refund, store credit back, or recorded for a payment
    taken at a till: the till pays it out), `cash` paid out at the till (orders paid at a till
    only), `store_credit` credited to the order's customer. Nothing paid, nothing to refund: None.
    Call before any stock is locked (a Stripe call may take a while). Raises 422
    refund_method_not_allowed, 409 refund_exceeds_payment, or the provider's problem."""
    if amount <= 0:
        return None
    paid_by = order.payment_provider or "none"
    if method not in REFUND_METHODS:
        raise _method_error(f"Unknown refund method {method!r}: {', '.join(REFUND_METHODS)}.")
    if order.amount_captured <= 0:
        return None  # nothing was paid (pay at pickup never taken, an invoice): nothing to give back
    left = order.amount_captured - order.amount_refunded
    if amount > left:
        raise ApiError(409, "refund_exceeds_payment",
                       f"Order {order.number} has {left} {order.currency} (minor units) left to refund, not {amount}.",
                       refundable=money(left, order.currency))
    if method == "cash" and paid_by != "external":
        raise _method_error(f"Order {order.number} was paid by {paid_by}: a cash refund goes only to payments "
                            f"taken at a till. Refund 'original' or 'store_credit'.")
    via = {"original": paid_by, "cash": "cash", "store_credit": "store_credit"}[method]
    if via == "none":
        raise _method_error(f"Order {order.number} was not paid through a provider: refund 'cash' or 'store_credit'.")
    op = {"id": new_id("pop"), "order_id": order.id, "provider": via, "kind": "refund", "amount": amount,
          "currency": order.currency, "final": False, "reason": "return", "status": "succeeded",
          "idempotency_key": key, "reference": None, "return_id": return_id, "location": location, "attempts": 1,
          "next_attempt_at": None, "api_key_id": who.key_id if who else None, "created_at": clock.now(),
          "updated_at": clock.now(), "error": None}
    if via == "store_credit":
        await _credit(session, order, amount, op["id"], note="return", return_id=return_id, who=who)
    elif via == "stripe":
        try:
            op["reference"] = await provider("stripe").refund(order.payment_reference, amount, key=key,
                                                             metadata={"order_id": order.id, "refund_key": key})
        except ProviderError as exc:
            raise exc.problem("stripe") from None
    elif via == "external":
        op["reference"] = order.payment_reference  # paid back where it was taken (till, terminal, marketplace)
    await session.execute(insert(OP).values(**op))
    await _record(session, order, op, None)
    return render_operation(op)


def _method_error(detail: str) -> ApiError:
    return ApiError(422, "refund_method_not_allowed", detail, errors=[{"field": "refund_method", "message": detail}])


# --------------------------------------------------------------------------- carrying operations out

_tasks: set[asyncio.Task] = set()


def kick() -> None:
    """After a commit that wrote operations: carry them out now, in this process."""
    try:
        task = asyncio.get_running_loop().create_task(run_pending())
    except RuntimeError:  # no loop (a sync caller): the worker takes them up
        return
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def drain() -> None:
    """Wait for the operations started by `kick` (tests, shutdown)."""
    while _tasks:
        await asyncio.gather(*list(_tasks), return_exceptions=True)


def _due(now):
    return or_(and_(OP.c.status == "pending", or_(OP.c.next_attempt_at.is_(None), OP.c.next_attempt_at <= now)),
               and_(OP.c.status == "running", OP.c.next_attempt_at <= now))


async def run_pending(limit: int = 100) -> int:
    """Carry out the operations due (pending, or running past their lease): returns how many
    were taken. Each one is claimed in a short transaction so that two workers never run one at once."""
    async with unit_of_work() as session:
        ids = list((await session.execute(select(OP.c.id).where(_due(clock.now())).order_by(OP.c.created_at)
                                          .limit(limit))).scalars())
    for op_id in ids:
        try:
            await run_operation(op_id)
        except Exception:  # noqa: BLE001 - one bad operation never holds up the others
            log.exception("payment operation %s failed unexpectedly", op_id)
    return len(ids)


async def run_operation(op_id: str) -> str | None:
    now = clock.now()
    async with unit_of_work() as session:
        op = (await session.execute(
            update(OP).where(OP.c.id == op_id, _due(now))
            .values(status="running", attempts=OP.c.attempts + 1, next_attempt_at=now + LEASE, updated_at=now)
            .returning(*OP.c))).first()
        order = (await session.execute(select(O.c.payment_reference, O.c.multicapture)
                                       .where(O.c.id == op.order_id))).first() if op else None
    if op is None:
        return None  # done meanwhile, or another worker has it
    p = provider(op.provider)
    intent = None
    try:
        if op.kind == "capture":
            intent = await p.capture(order.payment_reference, op.amount, final=op.final,
                                     multicapture=order.multicapture, key=op.idempotency_key)
        elif op.kind == "void":
            intent = await p.void(order.payment_reference, key=op.idempotency_key)
        else:
            intent = await p.refund(order.payment_reference, op.amount, key=op.idempotency_key,
                                    metadata={"order_id": op.order_id, "reason": op.reason})  # the refund's id
    except ProviderUnavailable as exc:
        return await _retry_later(op, str(exc.detail))
    except (PaymentDeclined, ProviderRejected) as exc:
        return await _failed(op, str(exc.detail))
    async with unit_of_work() as session:
        order_row = (await session.execute(select(O).where(O.c.id == op.order_id).with_for_update())).one()
        done = (await session.execute(
            update(OP).where(OP.c.id == op.id, OP.c.status == "running")
            .values(status="succeeded", reference=intent if isinstance(intent, str) else op.reference,
                    error=None, updated_at=clock.now()).returning(*OP.c))).first()
        if done is None:
            return None
        await _record(session, order_row, dict(done._mapping), None if isinstance(intent, str) else intent)
    return "succeeded"


async def _retry_later(op: Any, error: str) -> str:
    if op.attempts >= MAX_ATTEMPTS:
        return await _failed(op, f"gave up after {op.attempts} attempts: {error}")
    delay = timedelta(seconds=min(3600, 5 * 2 ** (op.attempts - 1)))
    async with unit_of_work() as session:
        await session.execute(update(OP).where(OP.c.id == op.id, OP.c.status == "running").values(
            status="pending", next_attempt_at=clock.now() + delay, error=error[:500], updated_at=clock.now()))
    return "pending"


async def _failed(op: Any, error: str) -> str:
    async with unit_of_work() as session:
        row = (await session.execute(update(OP).where(OP.c.id == op.id, OP.c.status == "running").values(
            status="failed", error=error[:500], updated_at=clock.now()).returning(*OP.c))).first()
        if row is not None:
            order = (await session.execute(select(O.c.number, O.c.channel).where(O.c.id == op.order_id))).one()
            await emit(session, "payment.operation_failed",
                       {**render_operation(row), "order": op.order_id, "order_number": order.number},
                       channel=order.channel)
    log.warning("payment operation %s (%s %s of order %s) failed: %s", op.id, op.kind, op.amount, op.order_id, error)
    return "failed"


async def operations(session: AsyncSession, order_id: str) -> list[dict]:
    rows = (await session.execute(select(OP).where(OP.c.order_id == order_id).order_by(OP.c.created_at, OP.c.id))).all()
    return [render_operation(r) for r in rows]


async def count_pending(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(OP)
                                      .where(OP.c.status.in_(("pending", "running"))))).scalar_one())
