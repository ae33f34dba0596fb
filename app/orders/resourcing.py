"""Where declined lines go: the part a store kept, and the rest sourced again, at once.

A decline (fulfillments.decline) names the lines a location cannot serve, or all of them.
In the decline's transaction:

- `split_lines`: the fulfillment's lines into the declined part and the part kept (422 naming
  `lines[i]` for a SKU not held there or more units than held).
- `keep`: on a partial decline the lines not declined stay at that location in a new open
  fulfillment (sourcing rule "kept", `replaces` the declined one) that takes their held stock
  over as it is: nothing is released and reserved again, so it cannot fail on stock.
- `resource`: the declined lines' stock is released and the lines are planned again by the
  sourcing service with the order's method and destination, excluding every location that
  declined part of this order (the one declining now included), and allocated there (new
  fulfillments with `replaces` = the declined one; their sourcing record says which rule chose
  them, lists the declining location as rejected "excluded" and keeps the decline as `reason`).
  A pickup or reservation stays at the store the customer chose, so declining one leaves its
  lines unfulfillable. What no location can serve is unfulfillable: views.order_status_update
  counts the units of a declined fulfillment that nothing took over as cancelled.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.service import sku_key
from app.channels.service import channel_row
from app.core.transaction import RETRYABLE_SQLSTATES, sqlstate
from app.core.errors import ApiError
from app.events.service import emit_many
from app.inventory import service as inventory
from app.orders.models import Fulfillment, Order
from app.orders.sourcing import engine
from app.orders.sourcing import service as sourcing
from app.orders.states import FulfillmentKind, FulfillmentStatus

F = Fulfillment.__table__
O = Order.__table__
RESOURCE_ATTEMPTS = 3
Part = tuple[str, str, int]  # (order line id, sku, quantity)


def split_lines(held: Sequence[Any], wanted: Sequence[tuple[str, int | None]] | None
                ) -> tuple[list[Part], list[Part]]:
    """The fulfillment's lines -> (declined, kept) as [(order line id, sku, quantity)]. `wanted`:
    [(sku in any spelling, quantity or None for all of it here)], None: everything. 422 naming
    `lines[i]` for a SKU not held here or more units than held."""
    if wanted is None:
        return [(ln.order_line_id, ln.sku, ln.quantity) for ln in held], []
    left = {ln.order_line_id: ln.quantity for ln in held}
    by_sku: dict[str, list[Any]] = defaultdict(list)
    for ln in held:
        by_sku[sku_key(ln.sku)].append(ln)
    declined: dict[str, int] = defaultdict(int)
    errors = []
    for i, (sku, qty) in enumerate(wanted):
        mine = by_sku.get(sku_key(sku))
        if not mine:
            errors.append({"field": f"lines[{i}].sku", "message": f"{sku!r} is not in this fulfillment."})
            continue
        want = sum(left[ln.order_line_id] for ln in mine) if qty is None else qty
        if want > sum(left[ln.order_line_id] for ln in mine):
            errors.append({"field": f"lines[{i}].quantity",
                           "message": f"More than the {sum(ln.quantity for ln in mine)} unit(s) of {mine[0].sku!r} "
                                      f"held here (counting the lines before)."})
            continue
        for ln in mine:  # take from the fulfillment's lines of that SKU in order
            take = min(want, left[ln.order_line_id])
            left[ln.order_line_id] -= take
            declined[ln.order_line_id] += take
            want -= take
    if errors:
        raise ApiError(422, "validation_error", errors[0]["message"], errors=errors)
    sku_of = {ln.order_line_id: ln.sku for ln in held}
    return ([(k, sku_of[k], q) for k, q in declined.items() if q > 0],
            [(k, sku_of[k], q) for k, q in left.items() if q > 0])


async def keep(session: AsyncSession, declined: Any, stay: list[Part]) -> list[dict]:
    """The part a partial decline did not decline stays where it was: a new open fulfillment
    there that takes over the held stock as it is (no stock moves)."""
    locs = await inventory.locations_by_code(session, [declined.location_id])
    parts = tuple(engine.LinePart(k, sku, q) for k, sku, q in stay)
    plan = engine.Plan(strategy=(declined.sourcing or {}).get("strategy", "default"), method=declined.method,
                       assignments=(engine.Assignment(declined.location, declined.location_id, parts, "kept"),),
                       rejected=(), unsourced=())
    return await sourcing.allocate(
        session, declined.order_id, plan, {}, {declined.location: locs[declined.location_id]}, method=declined.method,
        replaces=declined.id, reserve=False,
        reason_prefix=f"kept at {declined.location}: the part of {declined.id} it did not decline",
        expires_at=declined.expires_at if declined.kind == FulfillmentKind.reserve else None)


RESOURCE_ATTEMPTS = 3

async def resource(session: AsyncSession, order_id: str, declined: Any, gone: list[Part],
                   reason: str) -> tuple[list[dict], list[dict]]:
    """Release the declined lines' stock at the declining location and source them again, now:
    sourcing.plan with the order's method and destination, excluding every location that
    declined part of this order (the one declining now included), then sourcing.allocate (new
    fulfillments with `replaces` = the declined one, their sourcing saying why, the declining
    store rejected as "excluded"). A pickup or reservation stays at the store the customer
    chose, so a decline there leaves its lines unfulfillable. Returns (new fulfillment rows,
    unfulfillable [{order_line_id, sku, quantity}]).

    The release and the allocation take level locks at two locations in two statements, so a
    concurrent checkout locking the same levels in the other order can deadlock with it: both
    run in a savepoint that is rolled back (its locks with it) and done again when PostgreSQL
    picks this transaction as the victim, or when a concurrent order took the planned stock
    (InsufficientStock), up to RESOURCE_ATTEMPTS times."""
    if not gone:
        return [], []
    order = (await session.execute(select(O.c.id, O.c.channel, O.c.shipping_address).where(O.c.id == order_id))).one()
    channel = await channel_row(session, order.channel)
    declined_here = select(F.c.location).where(F.c.order_id == order_id, F.c.status == FulfillmentStatus.declined)
    exclude = set((await session.execute(declined_here.distinct())).scalars()) | {declined.location}
    amounts: dict[str, tuple[str, int]] = {}
    for key, sku, q in gone:
        amounts[key] = (sku, amounts.get(key, (sku, 0))[1] + q)
    facts = await sourcing.sku_facts(session, {sku for sku, _ in amounts.values()})
    lines = sourcing.engine_lines([(k, sku, q) for k, (sku, q) in sorted(amounts.items())], facts)
    address = order.shipping_address or {}
    destination = ((address["lat"], address["lon"]) if isinstance(address.get("lat"), (int, float))
                   and isinstance(address.get("lon"), (int, float)) else None)
    for attempt in range(RESOURCE_ATTEMPTS):
        try:
            async with session.begin_nested():
                await inventory.release_stock(session, [(sku, declined.location_id, q) for _, sku, q in gone],
                                              reference=declined.id, reason="decline")
                if channel is None:  # the channel is gone: nowhere to source from
                    return [], [{"order_line_id": k, "sku": sku, "quantity": q} for k, sku, q in gone]
                strategy, max_splits = sourcing.strategy_of(channel)
                plan, locs = await sourcing.plan(
                    session, channel=channel, method=declined.method, lines=lines, destination=destination,
                    chosen_location=None if declined.method == "ship" else declined.location,
                    exclude=frozenset(exclude), strategy=strategy, max_splits=max_splits, facts=facts)
                rows = await sourcing.allocate(
                    session, order_id, plan, {ln.key: ln for ln in lines}, locs, method=declined.method, facts=facts,
                    replaces=declined.id, reason_prefix=f"declined by {declined.location}: {reason}")
            break
        except inventory.InsufficientStock:
            if attempt == RESOURCE_ATTEMPTS - 1:
                raise
        except DBAPIError as exc:
            if sqlstate(exc) not in RETRYABLE_SQLSTATES or attempt == RESOURCE_ATTEMPTS - 1:
                raise
    unfulfillable = [{"order_line_id": p.key, "sku": p.sku, "quantity": p.quantity} for p in plan.unsourced]
    return rows, unfulfillable


async def emit_created(session: AsyncSession, order: Any, rows: list[dict]) -> None:
    await emit_many(session, [
        {"type": "fulfillment.created", "channel": order.channel, "location": r["location"],
         "data": {"id": r["id"], "order": order.id, "order_number": order.number, "channel": order.channel,
                  "location": r["location"], "method": r["method"], "kind": r["kind"], "status": r["status"],
                  "lines": r["lines"], "sourcing": r["sourcing"], "replaces": r["replaces"]}}
        for r in rows])


