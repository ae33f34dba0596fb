"""The stock endpoints' rules: levels, adjustments, bulk counts and the ledger."""
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import ApiError
from app.core.pagination import PageParams, apply_page, page_result
from app.catalog.service import canonical, canonical_sku, lookup_skus, sku_key
from app.inventory import service
from app.inventory.models import StockLevel, StockMovement
from app.locations.models import Location
from app.inventory.schemas import AdjustmentIn, LevelsPut

SL = StockLevel.__table__
SM = StockMovement.__table__
LOC = Location.__table__


async def _location(session: AsyncSession, ref: str, field: str = "location") -> service.Loc:
    found = await service.locations_by_code(session, [ref])
    if ref not in found:
        raise ApiError(422, "validation_error", f"Unknown location {ref!r}.",
                       errors=[{"field": field, "message": f"Unknown location {ref!r}."}])
    return found[ref]


async def _stocked_skus(session: AsyncSession, items: list[tuple[str, str]]) -> dict[str, str]:
    """items: (field path, sku): known, not a bundle, tracked — else 422 naming each (code
    unknown_sku when one is unknown). Returns {given spelling: stored spelling}."""
    facts = await lookup_skus(session, {s for _, s in items})
    stored = canonical({s for _, s in items}, facts)
    errors, unknown = [], []
    for f, s in items:
        info = facts.get(stored.get(s, s))
        if info is None:
            unknown.append({"field": f, "message": f"Unknown SKU {s!r}."})
            errors.append(unknown[-1])
        elif info.is_bundle:
            errors.append({"field": f, "message": f"{s!r} is a bundle: its stock is its components'."})
        elif not info.track_inventory:
            errors.append({"field": f, "message": f"{s!r} is not stocked (track_inventory is false)."})
    if errors:
        raise service.invalid_fields(errors, unknown)
    return stored


async def adjust(session: AsyncSession, body: AdjustmentIn) -> dict:
    if (body.delta is None) == (body.set is None):
        raise ApiError(422, "validation_error", "Give exactly one of delta and set.",
                       errors=[{"field": "delta", "message": "Give exactly one of delta and set."}])
    if body.delta == 0:
        raise ApiError(422, "validation_error", "delta must not be 0.", errors=[{"field": "delta", "message": "Must not be 0."}])
    loc = await _location(session, body.location)
    sku = (await _stocked_skus(session, [("sku", body.sku)]))[body.sku]
    key = (sku, loc.id)
    op = ("delta", body.delta) if body.delta is not None else ("set", body.set)
    safety = {key: body.safety_stock} if body.safety_stock is not None else None
    after: dict = {}
    changes = await service.adjust_expanded(session, {key: op}, reason=body.reason, reference=body.reference,
                                            note=body.note, locs={loc.id: loc}, safety=safety, after=after,
                                            field_of={key: "delta" if body.delta is not None else "set"})
    await session.flush()
    return {"object": "adjustment", **service.render_level(sku, loc.code, *after[key]), "reason": body.reason,
            "change": changes[0].delta_on_hand if changes else 0}


async def put_levels(session: AsyncSession, body: LevelsPut) -> dict:
    loc = await _location(session, body.location)
    seen: dict[str, int] = {}
    errors = []
    for i, lv in enumerate(body.levels):
        key = sku_key(lv.sku)  # one SKU in two spellings is still one SKU
        if key in seen:
            errors.append({"field": f"levels[{i}].sku", "message": f"{lv.sku!r} is also at levels[{seen[key]}]."})
        seen.setdefault(key, i)
    if errors:
        raise ApiError(422, "validation_error", errors[0]["message"], errors=errors)
    stored = await _stocked_skus(session, [(f"levels[{i}].sku", lv.sku) for i, lv in enumerate(body.levels)])
    levels = [(stored[lv.sku], lv) for lv in body.levels]
    ops = {(s, loc.id): ("set", lv.on_hand) for s, lv in levels}
    safety = {(s, loc.id): lv.safety_stock for s, lv in levels if lv.safety_stock is not None}
    after: dict = {}
    changes = await service.adjust_expanded(session, ops, reason=body.reason, reference=None, note=body.note,
                                            locs={loc.id: loc}, safety=safety, after=after)
    await session.flush()
    delta = {c.sku: c.delta_on_hand for c in changes}
    return {"object": "level_update", "location": loc.code, "changed": len(changes),
            "data": [{**service.render_level(s, loc.code, *after[(s, loc.id)]), "change": delta.get(s, 0)}
                     for s, _ in levels]}


async def list_levels(session: AsyncSession, page: PageParams, *, sku: str | None, location: str | None,
                      below_safety: bool | None) -> dict:
    from app.core import clock

    stmt = select(SL.c.id, SL.c.sku, LOC.c.code, SL.c.on_hand,
                  service._effective_reserved_sql(clock.now()).label("reserved"), SL.c.safety_stock,
                  SL.c.updated_at).join(LOC, LOC.c.id == SL.c.location_id)
    if sku:
        stmt = stmt.where(SL.c.sku == await canonical_sku(session, sku))
    if location:
        loc = (await service.locations_by_code(session, [location])).get(location)
        if loc is None:
            return {"data": [], "next_cursor": None}
        stmt = stmt.where(SL.c.location_id == loc.id)
    if below_safety:
        stmt = stmt.where(SL.c.on_hand <= SL.c.safety_stock)
    rows = (await session.execute(apply_page(stmt, SL.c.id, page))).all()
    return page_result(list(rows), page, lambda r: {"id": r.id, "object": "stock_level",
                                                    **service.render_level(r.sku, r.code, r.on_hand, r.reserved,
                                                                           r.safety_stock, r.updated_at)})


def render_movement(r: Any) -> dict:
    return {"id": r.id, "object": "movement", "sku": r.sku, "location": r.code, "quantity": r.quantity,
            "reason": r.reason, "reference": r.reference, "note": r.note, "created_at": r.created_at}


async def list_movements(session: AsyncSession, page: PageParams, *, sku: str | None, location: str | None,
                         reason: str | None, reference: str | None) -> dict:
    stmt = select(SM, LOC.c.code).join(LOC, LOC.c.id == SM.c.location_id)
    if sku:
        stmt = stmt.where(SM.c.sku == await canonical_sku(session, sku))
    if location:
        loc = (await service.locations_by_code(session, [location])).get(location)
        if loc is None:
            return {"data": [], "next_cursor": None}
        stmt = stmt.where(SM.c.location_id == loc.id)
    if reason:
        stmt = stmt.where(SM.c.reason == reason)
    if reference:
        stmt = stmt.where(SM.c.reference == reference)
    rows = (await session.execute(apply_page(stmt, SM.c.id, page))).all()
    return page_result(list(rows), page, render_movement)
