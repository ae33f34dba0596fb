"""Transfers between locations: requested -> in_transit (dispatch) -> received; or cancelled.

Dispatch takes the goods off the source's on_hand (movements `transfer_out`; only what is
available there, safety stock and holds untouched); until they are received they count
nowhere: not at the source, not at the target. Receive puts them on hand at the target
(movements `transfer_in`), all of them or, with `lines`, part of them (the rest stays in
transit until a later receive).
"""
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.concurrency import check_version
from app.core.errors import ApiError
from app.core.ids import new_id
from app.core.pagination import PageParams, apply_page, page_result
from app.events.service import emit
from app.catalog.service import canonical, lookup_skus
from app.inventory import service
from app.inventory.models import Transfer


def render(t: Any, codes: dict[str, str]) -> dict:
    return {
        "id": t.id, "object": "transfer", "from": codes[t.from_location_id], "to": codes[t.to_location_id],
        "status": t.status, "lines": t.lines, "reference": t.reference, "note": t.note, "version": t.version,
        "created_at": t.created_at, "updated_at": t.updated_at, "dispatched_at": t.dispatched_at,
        "received_at": t.received_at,
    }


async def _render(session: AsyncSession, t: Transfer) -> dict:
    return render(t, await service._codes(session, {t.from_location_id, t.to_location_id}, None))


async def get_row(session: AsyncSession, tid: str, *, for_update: bool = False) -> Transfer:
    stmt = select(Transfer).where(Transfer.id == tid)
    if for_update:
        stmt = stmt.with_for_update()
    t = (await session.execute(stmt)).scalars().first()
    if t is None:
        raise ApiError(404, "not_found", f"Transfer {tid!r} was not found.")
    return t


async def create(session: AsyncSession, *, from_: str, to: str, lines: list[tuple[str, int]], reference: str | None,
                 note: str | None) -> dict:
    if from_ == to:
        raise ApiError(422, "validation_error", "A transfer needs two different locations.",
                       errors=[{"field": "to", "message": "Same as from."}])
    locs = await service.locations_by_code(session, [from_, to])
    service.unknown_locations([from_, to], locs, ("from", "to"))
    src, dst = locs[from_], locs[to]
    if src.id == dst.id:
        raise ApiError(422, "validation_error", "A transfer needs two different locations.",
                       errors=[{"field": "to", "message": "Same as from."}])
    facts = await lookup_skus(session, {s for s, _ in lines})
    stored = canonical({s for s, _ in lines}, facts)  # any spelling in, the stored one kept
    lines = [(stored.get(s, s), q) for s, q in lines]
    errors, unknown, seen = [], [], set()
    for i, (sku, _) in enumerate(lines):
        info = facts.get(sku)
        if info is None:
            unknown.append({"field": f"lines[{i}].sku", "message": f"Unknown SKU {sku!r}."})
            errors.append(unknown[-1])
        elif info.is_bundle:
            errors.append({"field": f"lines[{i}].sku", "message": f"{sku!r} is a bundle; transfer its components."})
        elif not info.track_inventory:
            errors.append({"field": f"lines[{i}].sku", "message": f"{sku!r} is not stocked (track_inventory is false)."})
        elif sku in seen:
            errors.append({"field": f"lines[{i}].sku", "message": f"{sku!r} is listed twice."})
        seen.add(sku)
    if errors:
        raise service.invalid_fields(errors, unknown)
    t = Transfer(id=new_id("trf"), from_location_id=src.id, to_location_id=dst.id, status="requested",
                 lines=[{"sku": s, "quantity": q, "received": 0} for s, q in lines], reference=reference, note=note)
    session.add(t)
    await session.flush()
    return await _render(session, t)


async def dispatch(session: AsyncSession, request: Request, tid: str) -> dict:
    t = await get_row(session, tid, for_update=True)
    check_version(request, t.version)
    if t.status != "requested":
        raise ApiError(409, "invalid_transition", f"Transfer {tid} is {t.status}; only a requested transfer can be dispatched.")
    need = {(ln["sku"], t.from_location_id): ln["quantity"] for ln in t.lines}
    levels = await service._lock(session, need)
    codes = await service._codes(session, {t.from_location_id, t.to_location_id}, None)
    short = service._shortages(need, levels, codes)
    if short:
        raise service.InsufficientStock(short)
    await service.adjust_expanded(session, {k: ("delta", -q) for k, q in need.items()}, reason="transfer_out",
                                  reference=t.id)
    now = clock.now()
    t.status, t.dispatched_at, t.updated_at, t.version = "in_transit", now, now, t.version + 1
    await emit(session, "transfer.dispatched", {"id": t.id, "from": codes[t.from_location_id], "to": codes[t.to_location_id],
                                                "lines": t.lines}, location=codes[t.from_location_id])
    await session.flush()
    return render(t, codes)


async def receive(session: AsyncSession, request: Request, tid: str, lines: list[tuple[str, int]] | None) -> dict:
    t = await get_row(session, tid, for_update=True)
    check_version(request, t.version)
    if t.status != "in_transit":
        raise ApiError(409, "invalid_transition", f"Transfer {tid} is {t.status}; only a transfer in transit can be received.")
    open_qty = {ln["sku"]: ln["quantity"] - ln["received"] for ln in t.lines}
    if lines is not None:  # SKUs in any spelling: the transfer's lines hold the stored one
        stored = canonical({s for s, _ in lines}, open_qty)
        lines = [(stored.get(s, s), q) for s, q in lines]
    if lines is None:
        take = {s: q for s, q in open_qty.items() if q > 0}
    else:
        take, errors = {}, []
        for i, (sku, q) in enumerate(lines):
            if sku not in open_qty:
                errors.append({"field": f"lines[{i}].sku", "message": f"{sku!r} is not on this transfer."})
            elif q + take.get(sku, 0) > open_qty[sku]:
                errors.append({"field": f"lines[{i}].quantity",
                               "message": f"Only {open_qty[sku] - take.get(sku, 0)} of {sku!r} are still in transit."})
            else:
                take[sku] = take.get(sku, 0) + q
        if errors:
            raise ApiError(422, "validation_error", errors[0]["message"], errors=errors)
    await service.adjust_expanded(session, {(s, t.to_location_id): ("delta", q) for s, q in take.items()},
                                  reason="transfer_in", reference=t.id)
    t.lines = [{**ln, "received": ln["received"] + take.get(ln["sku"], 0)} for ln in t.lines]
    now = clock.now()
    if all(ln["received"] >= ln["quantity"] for ln in t.lines):
        t.status, t.received_at = "received", now
    t.updated_at, t.version = now, t.version + 1
    codes = await service._codes(session, {t.from_location_id, t.to_location_id}, None)
    await emit(session, "transfer.received", {"id": t.id, "to": codes[t.to_location_id], "received": take,
                                              "status": t.status}, location=codes[t.to_location_id])
    await session.flush()
    return render(t, codes)


async def cancel(session: AsyncSession, request: Request, tid: str) -> dict:
    t = await get_row(session, tid, for_update=True)
    check_version(request, t.version)
    if t.status != "requested":
        raise ApiError(409, "invalid_transition",
                       f"Transfer {tid} is {t.status}; only a requested (not yet dispatched) transfer can be cancelled.")
    now = clock.now()
    t.status, t.updated_at, t.version = "cancelled", now, t.version + 1
    await session.flush()
    return await _render(session, t)


async def list_transfers(session: AsyncSession, page: PageParams, *, status: str | None = None,
                         location_id: str | None = None) -> dict:
    stmt = select(Transfer)
    if status:
        stmt = stmt.where(Transfer.status == status)
    if location_id:
        stmt = stmt.where((Transfer.from_location_id == location_id) | (Transfer.to_location_id == location_id))
    rows = list((await session.execute(apply_page(stmt, Transfer.id, page))).scalars())
    codes = await service._codes(session, {x for t in rows for x in (t.from_location_id, t.to_location_id)}, None)
    return page_result(rows, page, lambda t: render(t, codes))
