"""Stock: levels, the movements ledger, reservations' holds, availability.

Every change of stock goes through the functions here, in the caller's transaction, together
with its ledger movement(s) and `inventory.level_changed` event(s); the caller commits. The
functions that orders and the other domains call:

    reserve_stock(session, [(sku, location, qty)], reference=...)   reserved += qty (all or nothing)
    release_stock(session, [(sku, location, qty)], reference=...)   reserved -= qty
    commit_stock(session, [(sku, location, qty)], reference=..., reason="sale")
                                                                    goods leave: on_hand and reserved -= qty
    receive_stock(session, [(sku, location, qty)], reason=..., reference=...)  on_hand += qty
    availability(session, skus, locations=None) -> {sku: {location: available}}

Bundle SKUs are expanded into their components everywhere; SKUs with track_inventory
false are never short and write nothing.

Concurrency: the affected level rows are locked in one statement, in a fixed order (sku,
location) so two baskets can never deadlock (`SELECT … ORDER BY … FOR UPDATE` on PostgreSQL;
SQLite serializes writers with BEGIN IMMEDIATE). Shortages are decided on the locked values
and the new values are written with one executemany UPDATE: the last unit is sold once.

This departs on purpose from DESIGN.md's "one conditional UPDATE per (sku, location)": under
the row locks the check is the same, but the lock-then-write form takes a constant number of
statements whatever the basket size (lock, write, ledger, events) and can name every short
SKU in one 409 instead of stopping at the first. The write is not conditional itself; it relies
on the lock, and tests/concurrency fails when the `FOR UPDATE` is removed.
"""
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.service import SkuInfo, canonical, lookup_skus
from app.core.sql import chunks, insert_ignore, where_in
from app.core import clock
from app.core.db import is_postgres
from app.core.errors import ApiError
from app.core.schemas import INT32_MAX
from app.core.ids import new_id
from app.events.service import emit_many
from app.inventory.models import ReservationItem, StockLevel, StockMovement
from app.locations.models import Location

SL = StockLevel.__table__
SM = StockMovement.__table__
RI = ReservationItem.__table__
LOC = Location.__table__

REASONS = ("receipt", "count", "damage", "shrinkage", "correction")
# reasons written by the system besides the adjustment reasons
SYSTEM_REASONS = ("sale", "return", "transfer_out", "transfer_in", "cancel")

Line = tuple[str, str, int]  # (sku, location code, quantity)


class InsufficientStock(ApiError):
    """409 insufficient_stock listing every short (sku, location)."""

    def __init__(self, shortages: list[dict]):
        first = shortages[0]
        super().__init__(
            409, "insufficient_stock",
            f"Not enough stock of {first['sku']!r} at {first['location']!r}: {first['requested']} requested, "
            f"{first['available']} available." + (f" ({len(shortages) - 1} more short)" if len(shortages) > 1 else ""),
            errors=[{"field": s.get("field", "sku"), "message": f"{s['sku']!r} at {s['location']!r}: requested "
                     f"{s['requested']}, available {s['available']}."} for s in shortages],
            shortages=[{k: v for k, v in s.items() if k != "field"} for s in shortages],
        )
        self.shortages = shortages

    def without_figures(self, sku: str, location: str, requested: int) -> ApiError:
        """The same 409 for keys that may not learn stock figures (storefront, marketplace):
        it names what was asked for and where, never how much is available (nor, for a
        bundle, which component is short)."""
        return ApiError(
            409, "insufficient_stock", f"Not enough stock of {sku!r} at {location!r} for {requested}.",
            errors=[{"field": "quantity", "message": f"{sku!r} at {location!r}: not enough stock."}],
            shortages=[{"sku": sku, "location": location, "requested": requested}],
        )


def available_of(on_hand: int, reserved: int, safety_stock: int) -> int:
    return max(0, on_hand - reserved - safety_stock)


def render_level(sku: str, location: str, on_hand: int, reserved: int, safety_stock: int,
                 updated_at: datetime | None = None) -> dict:
    out = {"sku": sku, "location": location, "on_hand": on_hand, "reserved": reserved, "safety_stock": safety_stock,
           "available": available_of(on_hand, reserved, safety_stock)}
    if updated_at is not None:
        out["updated_at"] = updated_at
    return out


# --------------------------------------------------------------------------- locations and SKUs

@dataclass(frozen=True, slots=True)
class Loc:
    id: str
    code: str
    type: str
    active: bool
    can_ship: bool
    can_pickup: bool
    can_return: bool
    priority: int
    lat: float | None
    lon: float | None


def _loc(r: Any) -> Loc:
    return Loc(r.id, r.code, r.type, r.active, r.can_ship, r.can_pickup, r.can_return, r.priority, r.lat, r.lon)


async def locations_by_code(session: AsyncSession, codes: Iterable[str]) -> dict[str, Loc]:
    """Locations by code or id (both keys of the result point at the same Loc)."""
    codes = sorted(set(codes))
    if not codes:
        return {}
    rows = (await session.execute(select(LOC).where(or_(where_in(session, LOC.c.code, codes),
                                                        where_in(session, LOC.c.id, codes))))).all()
    out: dict[str, Loc] = {}
    for r in rows:
        loc = _loc(r)
        out[loc.code] = out[loc.id] = loc
    return out


def invalid_fields(errors: list[dict[str, str]], unknown: list[dict[str, str]]) -> ApiError:
    """422 naming every bad field (`errors`: `sku`, `lines[0].sku`, `levels[2].location`…). Its
    code is `unknown_sku` when some of them (`unknown`, also in `errors`) name a SKU the catalog
    does not know — the one code for an unknown SKU whatever the endpoint (pricing and checkout
    answer it too) — else `validation_error`."""
    if unknown:
        return ApiError(422, "unknown_sku", unknown[0]["message"], errors=errors)
    return ApiError(422, "validation_error", errors[0]["message"], errors=errors)


def unknown_locations(codes: Sequence[str], found: dict[str, Loc], fields: str | Sequence[str]) -> None:
    """422 naming every code not in `found`: `fields` is a path with {i} (a list) or one field
    name per code (codes from named fields of one object)."""
    missing = [(i, c) for i, c in enumerate(codes) if c not in found]
    if missing:
        name = (lambda i: fields.format(i=i)) if isinstance(fields, str) else (lambda i: fields[i])
        raise ApiError(422, "validation_error", f"Unknown location {missing[0][1]!r}.",
                       errors=[{"field": name(i), "message": f"Unknown location {c!r}."} for i, c in missing])


def expand(lines: Iterable[tuple[str, str, int]], facts: dict[str, SkuInfo]) -> dict[tuple[str, str], int]:
    """(sku, location id, qty) -> {(stocked sku, location id): qty}: bundles become their
    components, untracked SKUs drop out, equal keys are summed."""
    need: dict[tuple[str, str], int] = defaultdict(int)
    for sku, loc, qty in lines:
        info = facts.get(sku)
        if info is not None and info.is_bundle:
            for comp, per in info.components:
                need[(comp, loc)] += per * qty
        elif info is None or info.track_inventory:
            need[(sku, loc)] += qty
    untracked = {s for s, i in facts.items() if not i.track_inventory and not i.is_bundle}
    if untracked:
        need = defaultdict(int, {k: v for k, v in need.items() if k[0] not in untracked})
    return need


async def _resolve(session: AsyncSession, lines: Sequence[Line], field: str = "lines[{i}]",
                   facts: dict[str, SkuInfo] | None = None) -> tuple[dict[tuple[str, str], int], dict[str, Loc], dict[str, SkuInfo]]:
    """Validate SKUs and locations of `lines` and expand them. 422 naming what is unknown
    (`unknown_sku` when a SKU is, see invalid_fields);
    `field` is the path of line i ("" when the body is the one line: fields `sku`, `location`).
    SKUs may come in any spelling: the result speaks of the stored ones. `facts` (the caller's
    own lookup_skus answer, say one limited to a channel) replaces the lookup."""
    if facts is None:
        facts = await lookup_skus(session, {s for s, _, _ in lines})
    stored = canonical({s for s, _, _ in lines}, facts)
    locs = await locations_by_code(session, {loc for _, loc, _ in lines})
    errors, unknown = [], []
    for i, (sku, loc, qty) in enumerate(lines):
        prefix = field.format(i=i)
        path = (prefix + ".") if prefix else ""
        if sku not in stored:
            unknown.append({"field": path + "sku", "message": f"Unknown SKU {sku!r}."})
            errors.append(unknown[-1])
        if loc not in locs:
            errors.append({"field": path + "location", "message": f"Unknown location {loc!r}."})
        if qty <= 0:
            errors.append({"field": path + "quantity", "message": "Must be at least 1."})
    if errors:
        raise invalid_fields(errors, unknown)
    # components of bundles need their facts too (track_inventory)
    comps = {c for i in facts.values() for c, _ in i.components} - set(facts)
    if comps:
        facts.update(await lookup_skus(session, comps))
    need = expand(((stored[s], locs[l].id, q) for s, l, q in lines), facts)
    return need, locs, facts


# --------------------------------------------------------------------------- level rows

async def _ensure_levels(session: AsyncSession, keys: Iterable[tuple[str, str]]) -> None:
    """Create missing level rows (0 on hand) for (sku, location id) keys; concurrent-safe."""
    keys = sorted(set(keys))
    if not keys:
        return
    now = clock.now()
    rows = [{"id": new_id("lvl"), "sku": s, "location_id": loc, "on_hand": 0, "reserved": 0, "safety_stock": 0,
             "updated_at": now} for s, loc in keys]
    stmt = insert_ignore(session, SL, ["sku", "location_id"])
    for part in chunks(rows, 2000):
        await session.execute(stmt, part)


async def _lock(session: AsyncSession, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """Lock the level rows of (sku, location id) keys in (sku, location) order; missing keys are
    absent from the result. One statement per 2,000 keys."""
    keys = sorted(set(keys))
    out: dict[tuple[str, str], Any] = {}
    for part in chunks(keys, 2000):
        stmt = (select(SL.c.id, SL.c.sku, SL.c.location_id, SL.c.on_hand, SL.c.reserved, SL.c.safety_stock)
                .where(tuple_(SL.c.sku, SL.c.location_id).in_(part))
                .order_by(SL.c.sku, SL.c.location_id).with_for_update())
        for r in (await session.execute(stmt)).all():
            out[(r.sku, r.location_id)] = r
    return out


async def _release_expired_for(session: AsyncSession, keys: Iterable[tuple[str, str]]) -> None:
    """Release expired reservation holds on these levels before deciding on their stock (the
    worker does it for everyone; this makes a reservation or checkout never fail on a hold
    that has already run out)."""
    keys = sorted(set(keys))
    if not keys:
        return
    now = clock.now()
    skus = sorted({s for s, _ in keys})
    rows = (await session.execute(
        select(RI.c.reservation_id).where(RI.c.active.is_(True), RI.c.expires_at <= now,
                                          where_in(session, RI.c.sku, skus)).distinct())).scalars().all()
    if rows:
        from app.inventory.reservations import end_reservations

        await end_reservations(session, rows, "expired")


@dataclass(slots=True)
class Change:
    """A level after a change, for the ledger and the event."""

    sku: str
    location_id: str
    on_hand: int
    reserved: int
    safety_stock: int
    delta_on_hand: int = 0


async def _write(session: AsyncSession, changes: list[Change], *, reason: str, reference: str | None,
                 note: str | None = None, locs: dict[str, Loc] | None = None, guard: str | None = None) -> None:
    """Write new level values (executemany), one movement per on_hand change, one event per level."""
    if not changes:
        return
    now = clock.now()
    params = [{"k_sku": c.sku, "k_loc": c.location_id, "on_hand": c.on_hand, "reserved": c.reserved,
               "safety_stock": c.safety_stock, "updated_at": now} for c in changes]
    stmt = (update(SL).where(SL.c.sku == bindparam("k_sku"), SL.c.location_id == bindparam("k_loc"))
            .values(on_hand=bindparam("on_hand"), reserved=bindparam("reserved"),
                    safety_stock=bindparam("safety_stock"), updated_at=bindparam("updated_at")))
    await session.execute(stmt, params)
    moves = [{"id": new_id("mov"), "sku": c.sku, "location_id": c.location_id, "quantity": c.delta_on_hand,
              "reason": reason, "reference": reference, "note": note, "created_at": now}
             for c in changes if c.delta_on_hand]
    if moves:
        await session.execute(insert(SM), moves)
    code = await _codes(session, {c.location_id for c in changes}, locs)
    await emit_many(session, [
        {"type": "inventory.level_changed", "location": code[c.location_id],
         "data": {**render_level(c.sku, code[c.location_id], c.on_hand, c.reserved, c.safety_stock),
                  "reason": reason, "reference": reference}}
        for c in changes
    ])


async def _codes(session: AsyncSession, ids: set[str], locs: dict[str, Loc] | None) -> dict[str, str]:
    out = {i: locs[i].code for i in ids if locs and i in locs}
    missing = ids - set(out)
    if missing:
        rows = (await session.execute(select(LOC.c.id, LOC.c.code).where(where_in(session, LOC.c.id, sorted(missing))))).all()
        out.update({r.id: r.code for r in rows})
    return out


def _shortages(need: dict[tuple[str, str], int], levels: dict[tuple[str, str], Any], code: dict[str, str]) -> list[dict]:
    short = []
    for (sku, loc), q in sorted(need.items()):
        r = levels.get((sku, loc))
        have = available_of(r.on_hand, r.reserved, r.safety_stock) if r is not None else 0
        if have < q:
            short.append({"sku": sku, "location": code.get(loc, loc), "requested": q, "available": have})
    return short


# --------------------------------------------------------------------------- the interface

async def reserve_stock(session: AsyncSession, lines: Sequence[Line], *, reference: str | None,
                        reason: str = "reservation") -> dict[tuple[str, str], int]:
    """Hold stock: reserved += qty for every (stocked sku, location), all or nothing. Raises
    InsufficientStock listing every shortage (the caller rolls back). Returns what was held,
    {(stocked sku, location id): qty} (bundles as their components)."""
    need, locs, _ = await _resolve(session, lines)
    return await reserve_expanded(session, need, reference=reference, reason=reason, locs=locs)


async def reserve_expanded(session: AsyncSession, need: dict[tuple[str, str], int], *, reference: str | None,
                           reason: str = "reservation", locs: dict[str, Loc] | None = None) -> dict[tuple[str, str], int]:
    if not need:
        return need
    await _release_expired_for(session, need)
    levels = await _lock(session, need)
    code = await _codes(session, {loc for _, loc in need}, locs)
    short = _shortages(need, levels, code)
    if short:
        raise InsufficientStock(short)
    changes = []
    for key, q in sorted(need.items()):
        r = levels[key]
        changes.append(Change(r.sku, r.location_id, r.on_hand, r.reserved + q, r.safety_stock))
    await _write(session, changes, reason=reason, reference=reference, locs=locs)
    return need


async def release_stock(session: AsyncSession, lines: Sequence[Line], *, reference: str | None,
                        reason: str = "release") -> None:
    """Give held stock back: reserved -= qty (never below zero)."""
    need, locs, _ = await _resolve(session, lines)
    await release_expanded(session, need, reference=reference, reason=reason, locs=locs)


async def release_expanded(session: AsyncSession, need: dict[tuple[str, str], int], *, reference: str | None,
                           reason: str = "release", locs: dict[str, Loc] | None = None) -> None:
    if not need:
        return
    levels = await _lock(session, need)
    changes = [Change(r.sku, r.location_id, r.on_hand, max(0, r.reserved - need[key]), r.safety_stock)
               for key, r in sorted(levels.items())]
    await _write(session, changes, reason=reason, reference=reference, locs=locs)


async def commit_stock(session: AsyncSession, lines: Sequence[Line], *, reference: str | None,
                       reason: str = "sale") -> None:
    """Goods leave a location that had them reserved: on_hand -= qty and reserved -= qty."""
    need, locs, _ = await _resolve(session, lines)
    await commit_expanded(session, need, reference=reference, reason=reason, locs=locs)


async def commit_expanded(session: AsyncSession, need: dict[tuple[str, str], int], *, reference: str | None,
                          reason: str = "sale", locs: dict[str, Loc] | None = None) -> None:
    if not need:
        return
    levels = await _lock(session, need)
    code = await _codes(session, {loc for _, loc in need}, locs)
    short = [{"sku": s, "location": code[loc], "requested": q, "available": levels[(s, loc)].on_hand if (s, loc) in levels else 0}
             for (s, loc), q in sorted(need.items()) if (s, loc) not in levels or levels[(s, loc)].on_hand < q]
    if short:
        raise InsufficientStock(short)
    changes = []
    for key, q in sorted(need.items()):
        r = levels[key]
        changes.append(Change(r.sku, r.location_id, r.on_hand - q, max(0, r.reserved - q), r.safety_stock, -q))
    await _write(session, changes, reason=reason, reference=reference, locs=locs)


async def receive_stock(session: AsyncSession, lines: Sequence[Line], *, reason: str, reference: str | None,
                        note: str | None = None) -> None:
    """Goods arrive (returns, receipts, transfers in): on_hand += qty; levels created as needed."""
    need, locs, _ = await _resolve(session, lines)
    await adjust_expanded(session, {k: ("delta", q) for k, q in need.items()}, reason=reason, reference=reference,
                          note=note, locs=locs)


async def adjust_expanded(session: AsyncSession, ops: dict[tuple[str, str], tuple[str, int]], *, reason: str,
                          reference: str | None, note: str | None = None, locs: dict[str, Loc] | None = None,
                          safety: dict[tuple[str, str], int] | None = None, field_of: dict | None = None,
                          after: dict | None = None) -> list[Change]:
    """on_hand changes: ("delta", n) or ("set", n) per (sku, location id); optional new safety
    stock. on_hand may never go below zero (409 insufficient_stock). Returns the changed levels;
    `after` receives every level's (on_hand, reserved, safety_stock) after the call."""
    keys = set(ops) | set(safety or {})
    await _ensure_levels(session, keys)
    levels = await _lock(session, keys)
    code = await _codes(session, {loc for _, loc in keys}, locs)
    changes, short, too_many = [], [], []
    for key in sorted(keys):
        r = levels[key]
        kind, n = ops.get(key, ("delta", 0))
        new_on_hand = r.on_hand + n if kind == "delta" else n
        if new_on_hand > INT32_MAX:  # on_hand is a 32-bit column: refuse, naming the field, before the database does
            field = field_of[key] if field_of and key in field_of else "quantity"
            too_many.append({"field": field, "message": f"{key[0]!r} at {code[key[1]]!r}: on hand would be "
                                                         f"{new_on_hand}, above the limit of {INT32_MAX}."})
            continue
        if new_on_hand < 0:
            short.append({"sku": key[0], "location": code[key[1]], "requested": -n, "available": r.on_hand,
                          **({"field": field_of[key]} if field_of and key in field_of else {})})
            continue
        new_safety = (safety or {}).get(key, r.safety_stock)
        if after is not None:
            after[key] = (new_on_hand, r.reserved, new_safety)
        if new_on_hand != r.on_hand or new_safety != r.safety_stock:
            changes.append(Change(r.sku, r.location_id, new_on_hand, r.reserved, new_safety, new_on_hand - r.on_hand))
    if too_many:
        raise ApiError(422, "validation_error", too_many[0]["message"], errors=too_many)
    if short:
        raise InsufficientStock(short)
    await _write(session, changes, reason=reason, reference=reference, note=note, locs=locs)
    return changes


def _expired_holds(now: datetime):
    """Holds that have run out but are not released yet, per level (they no longer count)."""
    return (select(RI.c.sku, RI.c.location_id, func.sum(RI.c.quantity).label("quantity"))
            .where(RI.c.active.is_(True), RI.c.expires_at <= now)
            .group_by(RI.c.sku, RI.c.location_id).subquery("expired"))


def _effective_reserved_sql(now: datetime, expired=None):
    """reserved minus expired holds: a column over SL joined (outer) with `expired`."""
    if expired is None:  # a correlated subquery, for one-level reads
        return SL.c.reserved - (select(func.coalesce(func.sum(RI.c.quantity), 0))
                                .where(RI.c.sku == SL.c.sku, RI.c.location_id == SL.c.location_id,
                                       RI.c.active.is_(True), RI.c.expires_at <= now).scalar_subquery())
    return SL.c.reserved - func.coalesce(expired.c.quantity, 0)


def _with_expired(stmt, expired):
    return stmt.outerjoin(expired, (expired.c.sku == SL.c.sku) & (expired.c.location_id == SL.c.location_id))


async def _matrix(session: AsyncSession, skus: Sequence[str], location_ids: Sequence[str] | None
                  ) -> tuple[dict[str, dict[str, int]], dict[str, tuple]]:
    """({sku: {location code: available}}, {location code: (type, lat, lon, can_ship, can_pickup,
    priority)}) for the levels of `skus` at active locations, `available` computed by the
    database. One statement; on PostgreSQL one row per location with the SKUs as arrays (an
    11,000-figure answer travels as 200 rows)."""
    expired = _expired_holds(clock.now())
    raw = SL.c.on_hand - _effective_reserved_sql(clock.now(), expired) - SL.c.safety_stock
    pg = is_postgres(session)
    avail = func.greatest(raw, 0) if pg else func.max(raw, 0)
    loc_cols = (LOC.c.code, LOC.c.type, LOC.c.lat, LOC.c.lon, LOC.c.can_ship, LOC.c.can_pickup, LOC.c.priority)
    levels = _with_expired(select(SL.c.location_id, *((func.array_agg(SL.c.sku).label("skus"),
                                                        func.array_agg(avail).label("avail")) if pg else
                                                       (SL.c.sku.label("skus"), avail.label("avail"))))
                           .select_from(SL), expired)
    levels = levels.where(where_in(session, SL.c.sku, list(skus)))
    if location_ids is not None:
        levels = levels.where(where_in(session, SL.c.location_id, list(location_ids)))
    if pg:  # aggregate the narrow level rows per location first, then meet the locations
        levels = levels.group_by(SL.c.location_id)
    lv = levels.subquery("lv")
    stmt = (select(*loc_cols, lv.c.skus, lv.c.avail).select_from(lv.join(LOC, LOC.c.id == lv.c.location_id))
            .where(LOC.c.active.is_(True)))
    stock: dict[str, dict[str, int]] = defaultdict(dict)
    locs: dict[str, tuple] = {}
    for r in (await session.execute(stmt)).all():
        code = r[0]
        locs[code] = tuple(r[1:7])
        if pg:
            for sku, a in zip(r[7], r[8]):
                stock[sku][code] = a
        else:
            stock[r[7]][code] = r[8]
    return stock, locs


def derive(skus: Sequence[str], facts: dict[str, SkuInfo], stock: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """{sku: {location code: available}}; bundles per location: min over components of
    floor(available / quantity); untracked SKUs are absent (no limit)."""
    out: dict[str, dict[str, int]] = {}
    for sku in skus:
        info = facts.get(sku)
        if info is not None and info.is_bundle:
            comps = [(c, q) for c, q in info.components
                     if facts.get(c) is None or facts[c].track_inventory]
            if not comps:
                continue
            locs = set.intersection(*(set(stock.get(c, {})) for c, _ in comps))
            out[sku] = {loc: min(stock[c][loc] // q for c, q in comps) for loc in locs}
        elif info is None or info.track_inventory:
            out[sku] = stock.get(sku, {})
    return out


async def availability(session: AsyncSession, skus: Sequence[str], locations: Sequence[str] | None = None,
                       facts: dict[str, SkuInfo] | None = None, locations_out: dict | None = None) -> dict[str, dict[str, int]]:
    """{sku: {location code: available}} for many SKUs (bundles derived from components) at
    active locations (only `locations`, codes or ids, when given). Two statements: the SKUs'
    catalog facts and one read of their levels. Untracked SKUs are absent (no limit).
    `locations_out` receives {code: (type, lat, lon, can_ship, can_pickup, priority)}."""
    if facts is None:
        facts = await lookup_skus(session, skus)
    stocked = set(skus) | {c for s in skus if s in facts for c, _ in facts[s].components}
    loc_ids = None
    if locations is not None:
        found = await locations_by_code(session, locations)
        loc_ids = sorted({found[c].id for c in locations if c in found})
    stock, locs = await _matrix(session, sorted(stocked), loc_ids)
    if locations_out is not None:
        locations_out.update(locs)
    return derive(skus, facts, stock)
