from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal, require
from app.core.errors import ApiError
from app.core.settings import get_settings
from app.core.db import get_session
from app.core.pagination import PageParams, page_params
from app.core.responses import created, json_response
from app.inventory import availability, reservations, stock, transfers
from app.inventory import service as stock_service
from app.inventory.schemas import (
    AdjustmentIn, AdjustmentOut, AvailabilityOut, LevelsPut, LevelUpdateOut, ReceiveIn, ReservationIn, ReservationOut,
    ReservationPage, ReservationStatus, TransferIn, TransferOut,
)

router = APIRouter(tags=["inventory"])
Session = Annotated[AsyncSession, Depends(get_session)]


# --------------------------------------------------------------------------- stock

STOCK_READER = require("pos", "dropshipper")
STOCK_WRITER = require("pos", "dropshipper")


def _own_location(who: Principal, location: str | None) -> str | None:
    """POS and dropshipper keys write only at their own location (another one: 404)."""
    if who.role in ("pos", "dropshipper"):
        who.location_or_404(location)
    return location


@router.get("/v1/inventory", summary="Stock levels by sku and/or location (dropshippers: their own location)")
async def list_levels(
    session: Session,
    page: PageParams = Depends(page_params),
    sku: Annotated[str | None, Query(max_length=100)] = None,
    location: Annotated[str | None, Query(max_length=100)] = None,
    below_safety: Annotated[bool | None, Query(description="Only levels at or below their safety stock")] = None,
    who: Principal = Depends(STOCK_READER),
):
    if who.role == "dropshipper":
        if location is None:
            location = who.location
        who.location_or_404(location)
    return json_response(await stock.list_levels(session, page, sku=sku, location=location, below_safety=below_safety))


@router.post("/v1/inventory/adjustments", status_code=201, response_model=AdjustmentOut, summary="Adjust one level by a delta or to a counted value")
async def adjust(body: AdjustmentIn, session: Session, who: Principal = Depends(STOCK_WRITER)):
    _own_location(who, body.location)
    return created(await stock.adjust(session, body))


@router.put("/v1/inventory/levels", response_model=LevelUpdateOut, summary="Set many levels of one location at once (POS count, partner feed)")
async def put_levels(body: LevelsPut, session: Session, who: Principal = Depends(STOCK_WRITER)):
    _own_location(who, body.location)
    return json_response(await stock.put_levels(session, body))


@router.get("/v1/inventory/movements", summary="The immutable ledger of on-hand changes, newest last")
async def list_movements(
    session: Session,
    page: PageParams = Depends(page_params),
    sku: Annotated[str | None, Query(max_length=100)] = None,
    location: Annotated[str | None, Query(max_length=100)] = None,
    reason: Annotated[str | None, Query(max_length=40)] = None,
    reference: Annotated[str | None, Query(max_length=200)] = None,
    who: Principal = Depends(STOCK_READER),
):
    if who.role in ("pos", "dropshipper"):
        if location is None:
            location = who.location
        who.location_or_404(location)
    return json_response(await stock.list_movements(session, page, sku=sku, location=location, reason=reason,
                                                    reference=reference))


# --------------------------------------------------------------------------- transfers

TRANSFER_ROLE = require("pos")


def _transfer_scope(who: Principal, t: dict, *, side: str | None = None) -> None:
    """POS keys see and work the transfers of their own store (404 otherwise)."""
    if who.role == "pos":
        mine = {who.location}
        if side is not None:
            if t[side] not in mine:
                raise ApiError(404, "not_found", f"Transfer {t['id']!r} was not found.")
        elif not mine & {t["from"], t["to"]}:
            raise ApiError(404, "not_found", f"Transfer {t['id']!r} was not found.")


@router.post("/v1/inventory/transfers", status_code=201, response_model=TransferOut, summary="Request a transfer between two locations")
async def create_transfer(body: TransferIn, session: Session, who: Principal = Depends(TRANSFER_ROLE)):
    if who.role == "pos" and who.location not in (body.from_, body.to) and who.location_id not in (body.from_, body.to):
        raise ApiError(404, "not_found", "POS keys create transfers from or to their own store.")
    t = await transfers.create(session, from_=body.from_, to=body.to, lines=[(ln.sku, ln.quantity) for ln in body.lines],
                               reference=body.reference, note=body.note)
    return created(t, version=t["version"])


@router.get("/v1/inventory/transfers", summary="List transfers")
async def list_transfers(
    session: Session,
    page: PageParams = Depends(page_params),
    status: Annotated[Literal["requested", "in_transit", "received", "cancelled"] | None, Query()] = None,
    location: Annotated[str | None, Query(max_length=100)] = None,
    who: Principal = Depends(TRANSFER_ROLE),
):
    if who.role == "pos":
        location = location or who.location
        who.location_or_404(location)
    loc_id = None
    if location is not None:
        found = await stock_service.locations_by_code(session, [location])
        if location not in found:
            return json_response({"data": [], "next_cursor": None})
        loc_id = found[location].id
    return json_response(await transfers.list_transfers(session, page, status=status, location_id=loc_id))


@router.get("/v1/inventory/transfers/{tid}", response_model=TransferOut, summary="Get a transfer")
async def get_transfer(tid: str, session: Session, who: Principal = Depends(TRANSFER_ROLE)):
    t = await transfers._render(session, await transfers.get_row(session, tid))
    _transfer_scope(who, t)
    return json_response(t, version=t["version"])


@router.post("/v1/inventory/transfers/{tid}/dispatch", response_model=TransferOut, summary="Dispatch: the goods leave the source")
async def dispatch_transfer(tid: str, request: Request, session: Session, who: Principal = Depends(TRANSFER_ROLE)):
    _transfer_scope(who, await transfers._render(session, await transfers.get_row(session, tid)), side="from")
    t = await transfers.dispatch(session, request, tid)
    return json_response(t, version=t["version"])


@router.post("/v1/inventory/transfers/{tid}/receive", response_model=TransferOut, summary="Receive all (or, with lines, part) at the target")
async def receive_transfer(tid: str, request: Request, session: Session, body: ReceiveIn | None = None,
                           who: Principal = Depends(TRANSFER_ROLE)):
    _transfer_scope(who, await transfers._render(session, await transfers.get_row(session, tid)), side="to")
    lines = [(ln.sku, ln.quantity) for ln in body.lines] if body is not None and body.lines else None
    t = await transfers.receive(session, request, tid, lines)
    return json_response(t, version=t["version"])


@router.post("/v1/inventory/transfers/{tid}/cancel", response_model=TransferOut, summary="Cancel a transfer not dispatched yet")
async def cancel_transfer(tid: str, request: Request, session: Session, who: Principal = Depends(TRANSFER_ROLE)):
    _transfer_scope(who, await transfers._render(session, await transfers.get_row(session, tid)))
    t = await transfers.cancel(session, request, tid)
    return json_response(t, version=t["version"])


# --------------------------------------------------------------------------- availability and reservations

@router.get("/v1/availability", response_model=AvailabilityOut, summary="Available to sell per SKU and per location (near=lat,lon sorts by distance)")
async def get_availability(
    session: Session,
    skus: Annotated[str, Query(max_length=10_000, description="Comma-separated SKUs (at most 100)")],
    channel: Annotated[str | None, Query(max_length=100)] = None,
    near: Annotated[str | None, Query(max_length=60, description="lat,lon")] = None,
    radius_km: Annotated[float | None, Query(gt=0, le=20_000)] = None,
    location: Annotated[str | None, Query(max_length=100)] = None,
    in_stock: Annotated[bool, Query(description="Only locations with something available (the SKU's total stays channel-wide)")] = False,
    limit_locations: Annotated[int | None, Query(ge=1, le=1000, description="At most this many locations per SKU, "
                                                 "the first in the answer's order (nearest with near=, else by priority)")] = None,
    who: Principal = Depends(require("storefront", "pos", "marketplace")),
):
    result = await availability.view(session, who, skus=availability.parse_skus(skus), channel=channel,
                                     near=availability.parse_near(near), radius_km=radius_km, location=location,
                                     in_stock=in_stock, limit_locations=limit_locations)
    return json_response(result)


RESERVER = require("storefront", "pos", "marketplace")
PUBLIC_ROLES = ("storefront", "marketplace")  # keys in clients' hands: capped, no stock figures


async def _reservation_scope(session: AsyncSession, who: Principal, body: ReservationIn) -> None:
    """POS keys hold at their own store, or at any other active store offering pickup (staff
    check other stores and reserve there for the customer at the till; 404 for any other
    location, as for an unknown one). Storefront and marketplace keys: at most
    RESERVATION_MAX_QUANTITY_PUBLIC units for RESERVATION_MAX_TTL_SECONDS_PUBLIC (422 naming the
    field), only at their channel's fulfillment locations — a channel naming none: every active
    location that ships or offers pickup — (404 otherwise, as for an unknown location)."""
    if who.role == "pos":
        if body.location in (who.location, who.location_id):
            return
        loc = (await stock_service.locations_by_code(session, [body.location])).get(body.location)
        if loc is None or not (loc.active and loc.type == "store" and loc.can_pickup):
            message = "Not a store this key can hold at (its own, or an active store offering pickup)."
            raise ApiError(404, "not_found", f"Location {body.location!r} was not found among the stores that take holds.",
                           errors=[{"field": "location", "message": message}])
        return
    if who.role not in PUBLIC_ROLES:
        return
    settings = get_settings()
    errors = []
    if body.quantity > settings.reservation_max_quantity_public:
        errors.append({"field": "quantity", "message": f"At most {settings.reservation_max_quantity_public} for this API key."})
    if body.ttl_seconds > settings.reservation_max_ttl_seconds_public:
        errors.append({"field": "ttl_seconds", "message": f"At most {settings.reservation_max_ttl_seconds_public} for this API key."})
    if errors:
        raise ApiError(422, "validation_error", f"{errors[0]['field']}: {errors[0]['message']}", errors=errors)
    held = await reservations.units_held_by(session, who.key_id)
    if held + body.quantity > settings.reservation_max_units_held_public:
        raise ApiError(409, "reservation_limit",
                       f"This API key holds {held} units in active reservations; at most "
                       f"{settings.reservation_max_units_held_public} at a time. Release or commit some first.",
                       errors=[{"field": "quantity", "message": "Over the units this key may hold at once."}])
    from app.channels.service import get_channel

    ch = await get_channel(session, who.channel)
    loc = (await stock_service.locations_by_code(session, [body.location])).get(body.location)
    if ch.fulfillment_locations:
        allowed = loc is not None and loc.code in ch.fulfillment_locations
    else:
        allowed = loc is not None and loc.active and (loc.can_ship or loc.can_pickup)
    if not allowed:
        raise ApiError(404, "not_found", f"Location {body.location!r} was not found.")


def _seen_by(who: Principal) -> dict[str, str | None]:
    """Which holds a key sees and may release: storefront and marketplace keys their channel's,
    POS keys those at their store and those their store placed elsewhere, admin all."""
    if who.role in PUBLIC_ROLES:
        return {"channel": who.channel}
    if who.role == "pos":
        return {"store_id": who.location_id}
    return {}


@router.post("/v1/reservations", status_code=201, response_model=ReservationOut, summary="Hold stock for a while (click & reserve, cart holds)")
async def create_reservation(body: ReservationIn, session: Session, who: Principal = Depends(RESERVER)):
    await _reservation_scope(session, who, body)
    public = who.role in PUBLIC_ROLES
    r = await reservations.create(session, sku=body.sku, location=body.location, quantity=body.quantity,
                                  ttl_seconds=body.ttl_seconds, reference=body.reference, channel=who.channel,
                                  visible_in=who.channel if public else None, figures=not public,
                                  placed_by_key_id=who.key_id,
                                  placed_from_location_id=who.location_id if who.role == "pos" else None)
    return created(r)


@router.get("/v1/reservations", response_model=ReservationPage,
            summary="List reservations by location, SKU, status and reference (in creation order)",
            description="Storefront and marketplace keys see their channel's holds; POS keys the holds at their store "
                        "and those placed from it at other stores; admin all. `status` is the status as answered: an "
                        "active hold whose `expires_at` has passed lists as `expired`. An unknown `location` or `sku` "
                        "gives an empty list.")
async def list_reservations(
    session: Session,
    page: PageParams = Depends(page_params),
    location: Annotated[str | None, Query(max_length=100, description="Where the stock is held (code or id)")] = None,
    sku: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[ReservationStatus | None, Query()] = None,
    reference: Annotated[str | None, Query(max_length=200)] = None,
    who: Principal = Depends(RESERVER),
):
    return json_response(await reservations.list_reservations(session, page, location=location, sku=sku, status=status,
                                                               reference=reference, **_seen_by(who)))


@router.get("/v1/reservations/{rid}", response_model=ReservationOut, summary="Get a reservation")
async def get_reservation(rid: str, session: Session, who: Principal = Depends(RESERVER)):
    return json_response(await reservations.get(session, rid, **_seen_by(who)))


@router.delete("/v1/reservations/{rid}", response_model=ReservationOut,
               summary="Release a reservation (200 with the reservation)",
               description="POS keys release the holds at their store and those their store placed elsewhere.")
async def release_reservation(rid: str, session: Session, who: Principal = Depends(RESERVER)):
    return json_response(await reservations.release(session, rid, **_seen_by(who)))
