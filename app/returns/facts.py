"""What returns read of an order: the order row (locked for a change), its lines, the units its
fulfillments shipped or handed over and when, and what earlier returns took of them. Five
statements whatever the order's size (the lock, lines, shipments, returns so far, their count)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core.errors import ApiError
from app.orders.models import Fulfillment, FulfillmentEvent, FulfillmentLine, Order, OrderLine
from app.orders.states import FULFILLED
from app.returns import rules
from app.returns.models import Return, ReturnLine
from app.returns.states import ReturnStatus

O = Order.__table__
OL = OrderLine.__table__
F = Fulfillment.__table__
FL = FulfillmentLine.__table__
FE = FulfillmentEvent.__table__
R = Return.__table__
RL = ReturnLine.__table__

DONE = sorted(str(s) for s in FULFILLED)  # shipped, collected
CHANNEL_BOUND = ("storefront", "marketplace")


def order_not_found(ref: str, field: str = "order") -> ApiError:
    return ApiError(404, "not_found", f"Order {ref!r} was not found.",
                    errors=[{"field": field, "message": f"No order {ref!r}."}])


def order_scope(who: Principal | None) -> list:
    """The orders a key may return or authorize: admin and POS keys every order (return in any
    store, whatever channel the order came from), channel-bound keys their channel's."""
    if who is not None and who.role in CHANNEL_BOUND:
        return [O.c.channel == who.channel]
    return []


async def lock_order(session: AsyncSession, ref: str, who: Principal | None, *, field: str = "order") -> Any:
    """The orders row by id or number, locked (PostgreSQL `FOR UPDATE`; SQLite serializes writers):
    every return of an order reads its quantities under this lock. 404 outside the key's scope."""
    row = (await session.execute(select(O).where(or_(O.c.id == ref, O.c.number == ref), *order_scope(who))
                                 .with_for_update())).first()
    if row is None:
        raise order_not_found(ref, field)
    return row


async def find_order(session: AsyncSession, ref: str, who: Principal | None) -> Any:
    """The same lookup without a lock, for reads."""
    row = (await session.execute(select(O).where(or_(O.c.id == ref, O.c.number == ref), *order_scope(who)))).first()
    if row is None:
        raise order_not_found(ref)
    return row


@dataclass(slots=True)
class OrderFacts:
    lines: dict[str, rules.Line]
    titles: dict[str, str | None]
    last_seq: int  # returns of the order so far (authorizations included)


def _live(now: datetime):
    """Returns whose units count: completed ones, and authorizations not cancelled or run out."""
    return or_(R.c.status == ReturnStatus.completed.value,
               and_(R.c.status == ReturnStatus.authorized.value, R.c.expires_at > now))


async def load(session: AsyncSession, order_id: str, now: datetime) -> OrderFacts:
    lines: dict[str, rules.Line] = {}
    titles: dict[str, str | None] = {}
    for r in (await session.execute(
            select(OL.c.id, OL.c.sku, OL.c.title, OL.c.quantity, OL.c.total, OL.c.tax_amount, OL.c.quantity_fulfilled,
                   OL.c.quantity_returned).where(OL.c.order_id == order_id).order_by(OL.c.position))).all():
        lines[r.id] = rules.Line(r.id, r.sku, r.quantity, r.total, r.tax_amount, r.quantity_fulfilled,
                                 r.quantity_returned)
        titles[r.id] = r.title
    # when each fulfillment's units were fulfilled: its first shipped/collected status change
    fulfilled_at = func.min(FE.c.created_at).label("fulfilled_at")
    shipped = (await session.execute(
        select(F.c.id, F.c.location, F.c.kind, F.c.updated_at, FL.c.order_line_id, FL.c.quantity, fulfilled_at)
        .select_from(F.join(FL, FL.c.fulfillment_id == F.c.id)
                     .outerjoin(FE, and_(FE.c.fulfillment_id == F.c.id, FE.c.to_status.in_(DONE))))
        .where(F.c.order_id == order_id, F.c.status.in_(DONE))
        .group_by(F.c.id, F.c.location, F.c.kind, F.c.updated_at, FL.c.order_line_id, FL.c.quantity))).all()
    for r in shipped:
        ln = lines.get(r.order_line_id)
        if ln is not None and r.quantity > 0:
            ln.shipments.append(rules.Shipment(r.id, r.location, r.kind, r.quantity, r.fulfilled_at or r.updated_at))
    taken = (await session.execute(
        select(RL.c.order_line_id, RL.c.quantity, RL.c.sources, R.c.status)
        .select_from(RL.join(R, R.c.id == RL.c.return_id)).where(R.c.order_id == order_id, _live(now)))).all()
    for r in taken:
        ln = lines.get(r.order_line_id)
        if ln is None:
            continue
        for fid, q in rules.taken_by([r.sources or []]).items():
            ln.taken[fid] = ln.taken.get(fid, 0) + q
        if r.status == ReturnStatus.authorized.value:
            ln.authorized += r.quantity
    last_seq = (await session.execute(select(func.coalesce(func.max(R.c.seq), 0))
                                      .where(R.c.order_id == order_id))).scalar_one()
    return OrderFacts(lines, titles, last_seq)
