"""Many fulfillments at once: cancelling an order, and expiring what was not collected in time.

    cancel_order   POST /v1/orders/{id}/cancel: every fulfillment not shipped or collected yet
                   (open, ready) -> cancelled, its stock released; what already left stays.
    expire_due     the worker (jobs.py): ready pickups and open reservations past `expires_at`
                   -> expired, their stock released.

Both take the one path of fulfillments.py in its set-based form: the orders locked first (in id
order), one conditional UPDATE … RETURNING for all their fulfillments, one stock release, the
history rows and the events in one statement each, then each order's status derived again
(views.order_status_update) with `order.cancelled` when it became cancelled. Statements stay
constant whatever the number of fulfillments (plus four per order for its status).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import clock
from app.core.errors import ApiError
from app.core.sql import where_in
from app.events.service import emit_many
from app.orders import views
from app.orders.fulfillments import (
    F, K, O, ORDER_COLS, S, check_move, event_data, history, lines_of, move_stock, rederive, stock_lines,
    version_conflict,
)

# What may expire, by kind: a pickup waiting at the counter, a reservation not yet taken.
EXPIRES_FROM = {K.pickup: S.ready, K.reserve: S.open}

OPEN_STATUSES = (S.open, S.ready)  # what a cancel can still stop (nothing has left the location)


async def _end_many(session: AsyncSession, rows: Sequence[Any], target: str, condition: Any, *,
                    who: Principal | None, note: str | None, reference: str | None,
                    orders: dict[str, Any], **changes: Any) -> list[Any]:
    """Move many fulfillments (of locked orders) to `target` at once: one conditional UPDATE
    (`condition` says which may still move), their stock moved in one call (STOCK_ON_ENTRY),
    history rows, events. Statements stay constant whatever their number."""
    if not rows:
        return []
    before = {r.id: r for r in rows}
    for r in rows:
        check_move(r, target)
    now = clock.now()
    new_rows = (await session.execute(
        update(F).where(where_in(session, F.c.id, list(before)), condition)
        .values(status=str(target), version=F.c.version + 1, updated_at=now, **changes)
        .returning(*F.c))).all()
    new_rows.sort(key=lambda r: r.id)
    lines = await lines_of(session, [r.id for r in new_rows])
    await move_stock(session, target, [ln for r in new_rows for ln in stock_lines(r, lines[r.id])], reference)
    await history(session, [(before[r.id].status, r) for r in new_rows], who, note)
    await emit_many(session, [
        {"type": f"fulfillment.{target}", "channel": orders[r.order_id].channel, "location": r.location,
         "data": event_data(r, orders[r.order_id], lines[r.id], before[r.id].status)}
        for r in new_rows])
    return new_rows


async def cancel_order(session: AsyncSession, ref: str, who: Principal, *, expected_version: int | None,
                       reason: str | None) -> dict:
    """POST /v1/orders/{id}/cancel: every fulfillment that has not left yet (open, ready) is
    cancelled and its stock released; what was shipped or collected stays (the order then
    reads partially_fulfilled or fulfilled, and returns take it from there). 409
    invalid_transition when nothing is left to cancel. Returns the order."""
    order = await views.order_row(session, ref, who, for_update=True)
    if expected_version is not None and expected_version != order.version:
        raise version_conflict(order.version, expected_version, "order")
    rows = (await session.execute(select(F).where(F.c.order_id == order.id, F.c.status.in_(OPEN_STATUSES))
                                  .order_by(F.c.id))).all()
    if not rows:
        raise ApiError(409, "invalid_transition",
                       f"The order is {order.status}: nothing is left to cancel (every fulfillment has been "
                       f"shipped, collected or has ended).", current_status=order.status)
    await _end_many(session, rows, S.cancelled, F.c.status.in_(OPEN_STATUSES), who=who, note=reason,
                    reference=order.id, orders={order.id: order}, reason=reason)
    await rederive(session, order)
    return await views.load_order(session, order.id, who)


def _due(now) -> Any:
    """Fulfillments whose hold ran out: a ready pickup or an open reservation past expires_at."""
    return and_(F.c.expires_at <= now, or_(*(and_(F.c.kind == kind.value, F.c.status == status.value)
                                              for kind, status in EXPIRES_FROM.items())))


async def due_orders(session: AsyncSession, limit: int) -> list[str]:
    """Ids of (up to `limit`) orders with a fulfillment due to expire, in id order."""
    return list((await session.execute(select(F.c.order_id).where(_due(clock.now())).distinct()
                                       .order_by(F.c.order_id).limit(limit))).scalars())


async def expire_due(session: AsyncSession, limit: int = 200, order_ids: Sequence[str] | None = None
                     ) -> tuple[int, int]:
    """Expire the due fulfillments of up to `limit` orders (or of `order_ids`): their stock is
    released, `fulfillment.expired` emitted, their orders' status derived again. The orders are
    locked first (in id order), as every fulfillment change does. Statements: four plus the
    release (about four) plus four per order. Returns (fulfillments expired, orders looked at)."""
    now = clock.now()
    order_ids = sorted(order_ids) if order_ids is not None else await due_orders(session, limit)
    if not order_ids:
        return 0, 0
    orders = {o.id: o for o in (await session.execute(
        select(*ORDER_COLS).where(where_in(session, O.c.id, order_ids)).order_by(O.c.id).with_for_update())).all()}
    rows = (await session.execute(select(F).where(where_in(session, F.c.order_id, order_ids), _due(now))
                                  .order_by(F.c.id))).all()
    done = await _end_many(session, rows, S.expired, _due(now), who=None, note="not collected in time",
                           reference=rows[0].id if len(rows) == 1 else None, orders=orders)
    for oid in sorted({r.order_id for r in done}):
        await rederive(session, orders[oid])
    return len(done), len(order_ids)
