"""Reservations: click & reserve and cart holds that run out by themselves.

A reservation holds stock through `reserve_stock` (a bundle holds its components) and keeps
one `reservation_items` row per held (sku, location). Holds past `expires_at` stop counting
against availability at once (the availability query leaves them out); the worker job
`expire_reservations` then releases them for good, and any reservation or checkout needing
the same stock releases them first. Ending a reservation flips its status with a conditional
UPDATE … RETURNING, so two workers (or a worker and a DELETE) never release it twice.
`commit` turns an active hold into goods that leave (orders call it; status `committed`).

Who sees a hold is decided here from plain values (the router derives them from the key):
`channel` — only holds placed in that channel (storefront and marketplace keys); `store_id` —
only holds at that store or placed from it (POS keys: a till may hold at another store for the
customer in front of it, and both stores' tills see and may release that hold). Anything else
answers 404, as for a hold that does not exist.
"""
from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.service import canonical, canonical_sku, lookup_skus
from app.core import clock
from app.core.errors import ApiError
from app.core.ids import new_id
from app.core.pagination import PageParams, apply_page, page_result
from app.inventory import service
from app.inventory.models import Reservation, ReservationItem
from app.locations.models import Location

R = Reservation.__table__
RI = ReservationItem.__table__
LOC = Location.__table__

STATUSES = ("active", "released", "expired", "committed")


def render(r: Any, codes: dict[str, str]) -> dict:
    """A reservation row; `codes` maps its location ids (held at, placed from) to codes."""
    status = r.status
    if status == "active" and r.expires_at <= clock.now():
        status = "expired"  # run out; the worker has not released it yet
    return {"id": r.id, "object": "reservation", "sku": r.sku, "location": codes[r.location_id], "quantity": r.quantity,
            "status": status, "expires_at": r.expires_at, "reference": r.reference, "channel": r.channel,
            "placed_by": {"api_key": r.placed_by_key_id,
                          "location": codes.get(r.placed_from_location_id) if r.placed_from_location_id else None},
            "created_at": r.created_at, "updated_at": r.updated_at}


def visible(r: Any, *, channel: str | None = None, store_id: str | None = None) -> bool:
    """May a key scoped to `channel` / `store_id` (see the module docstring) see this row?"""
    if channel is not None and r.channel != channel:
        return False
    return store_id is None or store_id in (r.location_id, r.placed_from_location_id)


def _status_clause(status: str, now):
    """The stored status as `render` shows it: an active hold past its time is `expired`."""
    if status == "active":
        return and_(R.c.status == "active", R.c.expires_at > now)
    if status == "expired":
        return or_(R.c.status == "expired", and_(R.c.status == "active", R.c.expires_at <= now))
    return R.c.status == status


async def create(session: AsyncSession, *, sku: str, location: str, quantity: int, ttl_seconds: int,
                 reference: str | None, channel: str | None, visible_in: str | None = None,
                 figures: bool = True, placed_by_key_id: str | None = None,
                 placed_from_location_id: str | None = None) -> dict:
    """Hold `quantity` of `sku` (any spelling; the reservation keeps the stored one) at `location`.
    `visible_in`: only SKUs of active products visible in that channel (others answer as
    unknown, 422 unknown_sku on `sku`). `figures=False`: a shortage answers 409 without stock
    figures. `placed_by_key_id` / `placed_from_location_id`: who placed it (the API key; a POS
    key's store), kept on the hold."""
    facts = await lookup_skus(session, [sku], channel=visible_in) if visible_in is not None else None
    need, locs, facts = await service._resolve(session, [(sku, location, quantity)], field="", facts=facts)
    sku = canonical([sku], facts)[sku]
    loc = locs[location]
    if not loc.active:
        raise ApiError(422, "validation_error", f"Location {location!r} is not active.",
                       errors=[{"field": "location", "message": "Not active."}])
    now = clock.now()
    expires = now + timedelta(seconds=ttl_seconds)
    rid = new_id("res")
    try:
        await service.reserve_expanded(session, need, reference=reference or rid, reason="reservation", locs=locs)
    except service.InsufficientStock as exc:
        if not figures:
            raise exc.without_figures(sku, loc.code, quantity) from None
        if facts[sku].is_bundle:  # say how many bundles are possible, not only the components
            avail = (await service.availability(session, [sku], [loc.id], facts=facts)).get(sku, {}).get(loc.code, 0)
            raise service.InsufficientStock([{"sku": sku, "location": loc.code, "requested": quantity,
                                              "available": avail, "components": exc.shortages}]) from None
        raise
    await session.execute(R.insert().values(
        id=rid, sku=sku, location_id=loc.id, quantity=quantity, status="active", expires_at=expires,
        reference=reference, channel=channel, placed_by_key_id=placed_by_key_id,
        placed_from_location_id=placed_from_location_id, created_at=now, updated_at=now))
    if need:
        await session.execute(RI.insert(), [
            {"reservation_id": rid, "sku": s, "location_id": lid, "quantity": q, "expires_at": expires, "active": True}
            for (s, lid), q in sorted(need.items())])
    await session.flush()
    return await get(session, rid)


async def units_held_by(session: AsyncSession, key_id: str | None) -> int:
    """Units in the active, unexpired holds one API key placed (its cap: app/core/settings.py)."""
    if key_id is None:
        return 0
    stmt = (select(func.coalesce(func.sum(R.c.quantity), 0))
            .where(R.c.placed_by_key_id == key_id, R.c.status == "active", R.c.expires_at > clock.now()))
    return int((await session.execute(stmt)).scalar())


async def _row(session: AsyncSession, rid: str, *, channel: str | None = None, store_id: str | None = None) -> Any:
    row = (await session.execute(select(R).where(R.c.id == rid))).first()
    if row is None or not visible(row, channel=channel, store_id=store_id):
        raise ApiError(404, "not_found", f"Reservation {rid!r} was not found.")
    return row


async def _render_row(session: AsyncSession, row: Any) -> dict:
    ids = {row.location_id} | ({row.placed_from_location_id} if row.placed_from_location_id else set())
    return render(row, await service._codes(session, ids, None))


async def get(session: AsyncSession, rid: str, *, channel: str | None = None, store_id: str | None = None) -> dict:
    """One reservation; 404 when it does not exist or the scope (module docstring) hides it."""
    return await _render_row(session, await _row(session, rid, channel=channel, store_id=store_id))


async def list_reservations(session: AsyncSession, page: PageParams, *, location: str | None = None,
                            sku: str | None = None, status: str | None = None, reference: str | None = None,
                            channel: str | None = None, store_id: str | None = None) -> dict:
    """GET /v1/reservations: by id (creation order), filtered by holding location (code or id),
    SKU (any spelling), status as answered (an active hold past its time is `expired`) and
    reference, within the caller's scope (module docstring). An unknown location or SKU
    filters everything out (an empty page), as the other list filters do. One statement
    (plus the SKU's and location's lookups)."""
    placed = LOC.alias("placed")
    stmt = (select(R, LOC.c.code.label("location_code"), placed.c.code.label("placed_code"))
            .join(LOC, LOC.c.id == R.c.location_id)
            .outerjoin(placed, placed.c.id == R.c.placed_from_location_id))
    if channel is not None:
        stmt = stmt.where(R.c.channel == channel)
    if store_id is not None:
        stmt = stmt.where(or_(R.c.location_id == store_id, R.c.placed_from_location_id == store_id))
    if location is not None:
        loc = (await service.locations_by_code(session, [location])).get(location)
        if loc is None:
            return {"data": [], "next_cursor": None}
        stmt = stmt.where(R.c.location_id == loc.id)
    if sku is not None:
        stmt = stmt.where(R.c.sku == await canonical_sku(session, sku))
    if status is not None:
        stmt = stmt.where(_status_clause(status, clock.now()))
    if reference is not None:
        stmt = stmt.where(R.c.reference == reference)
    rows = (await session.execute(apply_page(stmt, R.c.id, page))).all()

    def one(r: Any) -> dict:
        codes = {r.location_id: r.location_code}
        if r.placed_from_location_id and r.placed_code:
            codes[r.placed_from_location_id] = r.placed_code
        return render(r, codes)

    return page_result(list(rows), page, one)


async def end_reservations(session: AsyncSession, ids: list[str], status: str) -> list[str]:
    """Flip active reservations to `status` and release their holds. Only the ones this call
    flipped are released (a concurrent call gets none of them). Does not commit."""
    if not ids:
        return []
    now = clock.now()
    ended = list((await session.execute(
        update(R).where(R.c.id.in_(ids), R.c.status == "active").values(status=status, updated_at=now)
        .returning(R.c.id))).scalars())
    if not ended:
        return []
    items = (await session.execute(
        update(RI).where(RI.c.reservation_id.in_(ended), RI.c.active.is_(True)).values(active=False)
        .returning(RI.c.sku, RI.c.location_id, RI.c.quantity))).all()
    need: dict[tuple[str, str], int] = defaultdict(int)
    for it in items:
        need[(it.sku, it.location_id)] += it.quantity
    await service.release_expanded(session, dict(need), reference=ended[0] if len(ended) == 1 else None,
                                   reason="reservation_" + status)
    return ended


async def commit(session: AsyncSession, rid: str, *, reference: str | None = None, reason: str = "sale") -> dict:
    """The held goods leave (a click & reserve picked up, a cart hold turned into a shipment):
    status `committed`, on_hand and reserved -= what the reservation holds, one `reason`
    movement per held (sku, location). Only an active, unexpired reservation can be committed
    (409 invalid_transition otherwise). Does not commit: the caller's transaction does, so an
    order and its stock change are one."""
    row = await _row(session, rid)
    now = clock.now()
    if row.status == "active" and row.expires_at <= now:
        raise ApiError(409, "invalid_transition", f"Reservation {rid} has expired; reserve again.")
    flipped = (await session.execute(
        update(R).where(R.c.id == rid, R.c.status == "active", R.c.expires_at > now)
        .values(status="committed", updated_at=now).returning(R.c.id))).first()
    if flipped is None:  # ended meanwhile (or before): the status says how
        current = (await _row(session, rid)).status
        raise ApiError(409, "invalid_transition", f"Reservation {rid} is {current}; only an active one can be committed.")
    items = (await session.execute(
        update(RI).where(RI.c.reservation_id == rid, RI.c.active.is_(True)).values(active=False)
        .returning(RI.c.sku, RI.c.location_id, RI.c.quantity))).all()
    need: dict[tuple[str, str], int] = defaultdict(int)
    for it in items:
        need[(it.sku, it.location_id)] += it.quantity
    await service.commit_expanded(session, dict(need), reference=reference or row.reference or rid, reason=reason)
    return await get(session, rid)


async def release(session: AsyncSession, rid: str, *, channel: str | None = None, store_id: str | None = None) -> dict:
    """DELETE: release an active reservation (one already ended is returned as it is); 404 when
    the scope (module docstring) hides it."""
    row = await _row(session, rid, channel=channel, store_id=store_id)
    if row.status == "active":
        status = "expired" if row.expires_at <= clock.now() else "released"
        await end_reservations(session, [rid], status)
        await session.flush()
    return await get(session, rid)


async def expire_due(session: AsyncSession, limit: int = 500) -> int:
    """Release reservations whose time is up (the worker's job). Returns how many."""
    ids = list((await session.execute(
        select(R.c.id).where(R.c.status == "active", R.c.expires_at <= clock.now()).order_by(R.c.expires_at).limit(limit)
    )).scalars())
    ended = await end_reservations(session, ids, "expired")
    await session.flush()
    return len(ended)
