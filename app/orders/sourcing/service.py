"""Sourcing against the database: load a stock snapshot, let the pure engine plan, persist the plan.

    facts = await sku_facts(session, skus)                       catalog facts, bundles' components too
    lines = engine_lines([(key, sku, qty)], facts)               engine.Line per order line (bundles
                                                                 carry their components)
    plan, locs = await plan(session, channel=ch, method="ship", lines=lines, destination=(lat, lon),
                            chosen_location=None, facts=facts)   the engine's Plan + {code: Loc} of
                                                                 every candidate
    rows = await allocate(session, order_id, plan, lines_by_key, locs, method="ship", facts=facts)
                                                                 fulfillments + fulfillment_lines
                                                                 written, stock reserved per fulfillment

Candidates (`candidate_locations`): pickup / reserve only the chosen store; ship the channel's
`fulfillment_locations` (all of them, inactive or not ship-capable ones too, so the plan can say
why they were passed over), or every active ship-capable location when the channel names none.
The stock snapshot is `inventory.service.availability` (what may be sold: on_hand - reserved -
safety stock, expired holds not counted): the same figures the cart shows (`basket_availability`)
and the same arithmetic `reserve_expanded` checks under its row locks, so what the cart says is
what checkout does. SKUs that are not stock-tracked never limit a plan (they count as plentiful
everywhere) and reserve nothing. Distances are great-circle km from the destination (a shipping
address's lat/lon, or the chosen store for alternatives); a location without coordinates is
"unknown" and ranks last on distance.

`allocate` is the one writer of fulfillments: checkout uses it for a new order, and declining
a fulfillment uses it to re-source the declined lines (`replaces` = the declined fulfillment,
`exclude` its location when planning). For each assignment of the plan, in location-code order
(so concurrent allocations take their level locks in one global order), it reserves the stock
(`reserve_expanded`, reference = the fulfillment id; bundles as their components) and then
writes all fulfillments and their lines in two statements. It raises
`inventory.service.InsufficientStock` when the snapshot was overtaken by a concurrent order:
the caller re-plans (checkout does, inside a savepoint) or answers 409.

Statements: `plan` two (candidate locations, one availability read) plus the facts when not
given (one, two with bundles); `allocate` four per fulfillment (expired holds, lock, write,
level events) plus two inserts.
"""
from __future__ import annotations

import dataclasses

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.service import SkuInfo, lookup_skus
from app.core import clock
from app.core.errors import ApiError
from app.core.ids import new_id
from app.core.sql import where_in
from app.inventory import service as inventory
from app.inventory.availability import distance_km
from app.inventory.service import Loc
from app.locations.models import Location
from app.orders import states
from app.orders.models import Fulfillment, FulfillmentLine
from app.orders.sourcing import engine
from app.orders.sourcing.strategies import UnknownStrategy, get_strategy

LOC = Location.__table__
F = Fulfillment.__table__
FL = FulfillmentLine.__table__

PLENTY = 10**12  # the stock of a SKU that is not tracked: it never limits a plan


# --------------------------------------------------------------------------- inputs

async def sku_facts(session: AsyncSession, skus: Iterable[str], *, channel: str | None = None) -> dict[str, SkuInfo]:
    """Catalog facts of `skus` (stored spellings) and of their bundles' components: one
    statement, two when a bundle's components are not among `skus`."""
    facts = await lookup_skus(session, skus, channel=channel)
    comps = {c for info in facts.values() for c, _ in info.components} - set(facts)
    if comps:
        facts.update(await lookup_skus(session, comps))
    return facts


def engine_lines(items: Iterable[tuple[str, str, int]], facts: Mapping[str, SkuInfo]) -> list[engine.Line]:
    """[(line key, stored sku, quantity)] -> engine lines; a bundle carries its components."""
    out = []
    for key, sku, qty in items:
        info = facts.get(sku)
        comps = tuple(info.components) if info is not None and info.is_bundle else ()
        out.append(engine.Line(key, sku, qty, comps))
    return out


def _tracked(sku: str, facts: Mapping[str, SkuInfo]) -> bool:
    info = facts.get(sku)
    return info is None or info.track_inventory


def _loc(r: Any) -> Loc:
    return Loc(r.id, r.code, r.type, r.active, r.can_ship, r.can_pickup, r.can_return, r.priority, r.lat, r.lon)


async def candidate_locations(session: AsyncSession, channel: Any, method: str,
                              chosen_location: str | None) -> dict[str, Loc]:
    """{code: Loc} of the locations that may serve (see the module doc). One statement."""
    if method != "ship":
        if chosen_location is None:
            return {}
        stmt = select(LOC).where(or_(LOC.c.code == chosen_location, LOC.c.id == chosen_location))
    elif channel.fulfillment_locations:
        stmt = select(LOC).where(where_in(session, LOC.c.code, list(channel.fulfillment_locations)))
    else:
        stmt = select(LOC).where(LOC.c.active.is_(True), LOC.c.can_ship.is_(True))
    return {r.code: _loc(r) for r in (await session.execute(stmt)).all()}


def _distance(loc: Loc, destination: tuple[float, float] | None) -> float | None:
    if destination is None or loc.lat is None or loc.lon is None:
        return None
    return round(distance_km(destination[0], destination[1], loc.lat, loc.lon), 1)


def _stocked_skus(lines: Sequence[engine.Line]) -> list[str]:
    """Every SKU whose stock the lines take (bundles as their components)."""
    return sorted({sku for ln in lines for sku, _ in ln.parts})


def strategy_of(channel: Any) -> tuple[str, int]:
    """The channel's sourcing strategy and split cap (channel settings `sourcing_strategy`,
    `max_splits`)."""
    return channel.sourcing_strategy, channel.max_splits


# --------------------------------------------------------------------------- the plan

async def plan(session: AsyncSession, *, channel: Any, method: str, lines: list[engine.Line],
               destination: tuple[float, float] | None, chosen_location: str | None,
               exclude: frozenset[str] = frozenset(), strategy: str = "default",
               max_splits: int = engine.DEFAULT_MAX_SPLITS, facts: Mapping[str, SkuInfo] | None = None,
               snapshot: dict | None = None) -> tuple[engine.Plan, dict[str, Loc]]:
    """Where each line comes from, and why. `channel` is the channels row; `lines` engine
    lines keyed by order line (bundles with their components); `destination` (lat, lon) of the
    shipping address or None; `chosen_location` the pickup / reserve store (code or id; the
    caller has checked it exists). `facts` (sku_facts of the lines) saves a lookup; `snapshot`
    receives the stock the plan saw, {location code: {sku: sellable}} (for `shortages`).
    Returns the plan and {code: Loc} of every candidate (for `allocate`)."""
    if facts is None:
        facts = await sku_facts(session, {ln.sku for ln in lines})
    locs = await candidate_locations(session, channel, method, chosen_location)
    stock = await inventory.availability(session, _stocked_skus(lines), None, facts=dict(facts))
    return _plan_on(locs, stock, method=method, lines=lines, destination=destination,
                    chosen_location=chosen_location, exclude=exclude, strategy=strategy, max_splits=max_splits,
                    facts=facts, snapshot=snapshot), locs


def _plan_on(locs: dict[str, Loc], stock: Mapping[str, Mapping[str, int]], *, method: str, lines: list[engine.Line],
             destination: tuple[float, float] | None, chosen_location: str | None, exclude: frozenset[str],
             strategy: str, max_splits: int, facts: Mapping[str, SkuInfo], snapshot: dict | None) -> engine.Plan:
    """The plan over candidates and a stock read already made (see `plan`)."""
    skus = _stocked_skus(lines)
    candidates = []
    for code, loc in locs.items():
        have = {s: (stock.get(s, {}).get(code, 0) if _tracked(s, facts) else PLENTY) for s in skus}
        candidates.append(engine.Candidate(
            location=code, location_id=loc.id, type=loc.type, priority=loc.priority,  # type: ignore[arg-type]
            distance_km=_distance(loc, destination), can_ship=loc.can_ship, can_pickup=loc.can_pickup,
            active=loc.active, stock=have))
        if snapshot is not None:
            snapshot[code] = have
    chosen = None
    if chosen_location is not None:
        chosen = next((c for c, loc in locs.items() if chosen_location in (loc.code, loc.id)), chosen_location)
    try:
        strat = get_strategy(strategy)
    except UnknownStrategy:
        strat = get_strategy("default")
    # Lines that take no tracked stock (services, gift cards) never decide where an order goes:
    # the tracked lines are planned, the others ride along with the first location chosen.
    free = [ln for ln in lines if not any(_tracked(s, facts) for s, _ in ln.parts)]
    tracked = [ln for ln in lines if ln not in free] if free else lines
    result = strat.plan(tracked or lines, candidates, method=method, chosen_location=chosen,  # type: ignore[arg-type]
                        max_splits=max_splits, exclude=exclude)
    if free and tracked and result.assignments:
        first, *rest = result.assignments
        riders = tuple(engine.LinePart(ln.key, ln.sku, ln.quantity) for ln in free)
        result = dataclasses.replace(result, assignments=(dataclasses.replace(first, lines=first.lines + riders),
                                                          *rest))
    return result


async def basket_availability(session: AsyncSession, channel: Any, method: str, location: str | None,
                              items: Sequence[tuple[str, int]], facts: Mapping[str, SkuInfo],
                              destination: tuple[float, float] | None = None
                              ) -> tuple[dict[str, int | None], list[str]]:
    """For a cart: ({sku: units sellable}, [SKUs checkout could not source now]). Units: ship sums
    the channel's candidate locations (active, ship-capable), pickup / reserve is the chosen
    store; None: not stock-tracked (no limit). The SKUs come from the very plan checkout makes
    (the channel's strategy and `max_splits` included) over the same stock, so a basket whose
    units exist only in more places than the channel may split into is not called fulfillable.
    `items`: (stored sku, quantity) of SKUs in `facts`. Two statements (candidates, one
    availability read)."""
    locs = await candidate_locations(session, channel, method, location)
    usable = {c for c, loc in locs.items() if loc.active and (loc.can_ship if method == "ship" else loc.can_pickup)}
    lines = engine_lines([(str(i), sku, q) for i, (sku, q) in enumerate(items)], facts)
    skus = sorted({sku for sku, _ in items})
    stock = await inventory.availability(session, sorted(set(skus) | set(_stocked_skus(lines))), None,
                                         facts=dict(facts))
    out: dict[str, int | None] = {}
    for sku in skus:
        per = stock.get(sku)
        out[sku] = None if per is None else sum(a for c, a in per.items() if c in usable)
    strategy, max_splits = strategy_of(channel)
    result = _plan_on(locs, stock, method=method, lines=lines, destination=destination, chosen_location=location,
                      exclude=frozenset(), strategy=strategy, max_splits=max_splits, facts=facts, snapshot=None)
    keys = {p.key for p in result.unsourced}
    return out, sorted({items[int(k)][0] for k in keys})


async def alternatives(session: AsyncSession, lines: Sequence[engine.Line], facts: Mapping[str, SkuInfo],
                       near: Loc | None, *, exclude: Iterable[str] = (), limit: int = 5,
                       destination: tuple[float, float] | None = None, channel: Any = None) -> list[dict]:
    """Other active pickup-capable locations that hold every line in full, nearest first (to
    `destination`, else to `near`, the store the customer chose): [{location, name?, distance_km}].
    With `channel`, only the stores it hands over at (its fulfillment locations, when it names
    any: the ones check_method_location accepts), so every alternative can be chosen.
    For the 409 of a pickup or reservation the chosen store cannot serve. Two statements."""
    skus = _stocked_skus(lines)
    need = engine.demand(lines)
    stock = await inventory.availability(session, skus, None, facts=dict(facts))
    rows = (await session.execute(select(LOC).where(LOC.c.active.is_(True), LOC.c.can_pickup.is_(True)))).all()
    origin = destination
    if origin is None and near is not None and near.lat is not None and near.lon is not None:
        origin = (near.lat, near.lon)
    skip = set(exclude)
    listed = set((channel.fulfillment_locations or []) if channel is not None else [])
    found = []
    for r in rows:
        if r.code in skip or r.id in skip or (listed and r.code not in listed):
            continue
        if all((stock.get(s, {}).get(r.code, 0) if _tracked(s, facts) else PLENTY) >= q for s, q in need.items()):
            loc = _loc(r)
            found.append({"location": r.code, "name": r.name, "distance_km": _distance(loc, origin)})
    found.sort(key=lambda a: (a["distance_km"] is None, a["distance_km"] or 0, a["location"]))
    return found[:limit]


def shortages(plan: engine.Plan, lines: Sequence[engine.Line], stock: Mapping[str, int] | None = None) -> list[dict]:
    """What the plan could not source, per line: [{line, sku, requested, unsourced}] (the 409
    names the SKUs, never stock figures). A pickup or reservation is all or nothing at its store:
    given that store's `stock` (plan's snapshot), only the lines it cannot cover are named
    (in order, SKUs shared by lines consumed once)."""
    by_key = {ln.key: ln for ln in lines}
    out = [{"line": p.key, "sku": p.sku, "requested": by_key[p.key].quantity, "unsourced": p.quantity}
           for p in plan.unsourced]
    if stock is None or plan.method == "ship":
        return out
    left = dict(stock)
    short = []
    for ln in lines:
        units = min((left.get(s, 0) // q for s, q in ln.parts), default=ln.quantity)
        units = max(0, min(units, ln.quantity))
        for s, q in ln.parts:
            left[s] = left.get(s, 0) - q * units
        if units < ln.quantity:
            short.append({"line": ln.key, "sku": ln.sku, "requested": ln.quantity, "unsourced": ln.quantity - units})
    return short or out


# --------------------------------------------------------------------------- persisting a plan

def _by_id(locs: Mapping[str, Loc]) -> dict[str, Loc]:
    out: dict[str, Loc] = {}
    for loc in locs.values():
        out[loc.id] = out[loc.code] = loc
    return out


async def allocate(session: AsyncSession, order_id: str, plan: engine.Plan, lines_by_key: Mapping[str, engine.Line],
                   locs: Mapping[str, Loc], *, method: str, facts: Mapping[str, SkuInfo] | None = None,
                   replaces: str | None = None, reason_prefix: str | None = None,
                   expires_at: datetime | None = None, status: str = states.INITIAL,
                   reserve: bool = True) -> list[dict]:
    """Write one fulfillment per assignment of `plan` (with its lines) and reserve its stock at
    its location (reference: the fulfillment id). `lines_by_key` maps the plan's line keys
    (order line ids) to engine lines; `locs` is `plan`'s second result. `replaces`: the declined
    fulfillment these re-source (recorded with the sourcing as `replaces`); `reason_prefix` is
    stored in each fulfillment's sourcing as `reason` (e.g. "declined by st-hamburg: …").
    `reserve=False` writes the rows only (a POS sale commits the stock itself).
    Raises InsufficientStock when the stock is gone meanwhile (nothing is written then).
    Returns the fulfillment rows as dicts (the columns of `fulfillments`, plus `lines`:
    [{order_line_id, sku, quantity}])."""
    if not plan.assignments:
        return []
    if facts is None and reserve:
        facts = await sku_facts(session, {ln.sku for ln in lines_by_key.values()})
    facts = facts or {}
    by_id = _by_id(locs)
    now = clock.now()
    rows: list[dict] = []
    line_rows: list[dict] = []
    for a in sorted(plan.assignments, key=lambda a: a.location):
        loc = by_id[a.location]
        fid = new_id("ful")
        sourcing = plan.explain(a.location)
        if replaces is not None:
            sourcing["replaces"] = replaces
        if reason_prefix:
            sourcing["reason"] = reason_prefix
        flines = [{"order_line_id": p.key, "sku": p.sku, "quantity": p.quantity} for p in a.lines]
        if reserve:
            need = inventory.expand(((p.sku, loc.id, p.quantity) for p in a.lines), dict(facts))
            await inventory.reserve_expanded(session, dict(need), reference=fid, reason="order", locs=by_id)
        rows.append({
            "id": fid, "order_id": order_id, "location_id": loc.id, "location": loc.code, "method": method,
            "kind": states.kind_for(method, loc.type).value, "status": str(status), "sourcing": sourcing,
            "replaces": replaces, "pickup_code": None, "pickup_attempts": 0, "expires_at": expires_at,
            "carrier": None, "tracking_number": None, "reason": None, "version": 1, "created_at": now,
            "updated_at": now,
        })
        line_rows += [{"fulfillment_id": fid, **fl} for fl in flines]
    await session.execute(insert(F), rows)
    await session.execute(insert(FL), line_rows)
    for r in rows:
        r["lines"] = [{k: fl[k] for k in ("order_line_id", "sku", "quantity")}
                      for fl in line_rows if fl["fulfillment_id"] == r["id"]]
    return rows


def check_method_location(method: str, loc: Loc | None, ref: str | None, field: str = "fulfillment.location",
                          channel: Any = None) -> Loc | None:
    """pickup / reserve need an active pickup-capable location, one of `channel`'s fulfillment
    locations when it names any: 422 naming `field` otherwise. Ship ignores it (returns None)."""
    if method == "ship":
        return None
    if ref is None:
        raise ApiError(422, "validation_error", f"A {method} needs the store: give {field}.",
                       errors=[{"field": field, "message": f"Required for {method}."}])
    if loc is None:
        raise ApiError(422, "validation_error", f"Unknown location {ref!r}.",
                       errors=[{"field": field, "message": f"Unknown location {ref!r}."}])
    if not loc.active:
        raise ApiError(422, "validation_error", f"Location {loc.code!r} is not active.",
                       errors=[{"field": field, "message": f"Location {loc.code!r} is not active."}])
    if not loc.can_pickup:
        raise ApiError(422, "validation_error", f"Location {loc.code!r} does not offer pickup.",
                       errors=[{"field": field, "message": f"Location {loc.code!r} does not offer pickup."}])
    listed = (channel.fulfillment_locations or []) if channel is not None else []
    if listed and loc.code not in listed:
        raise ApiError(422, "validation_error", f"Channel {channel.code!r} does not hand over at {loc.code!r}.",
                       errors=[{"field": field, "message": f"Not one of channel {channel.code!r}'s fulfillment locations."}])
    return loc
