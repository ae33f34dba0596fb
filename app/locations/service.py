"""Locations: warehouses, stores and dropship partners: one stock pool.

Defaults by type (override with `capabilities` / `priority`):
| type      | ship | pickup | returns | priority |
| warehouse | yes  | no     | no      | 10       |
| store     | yes  | yes    | yes     | 50       |
| partner   | yes  | no     | no      | 90       |
Lower priority numbers are preferred by sourcing ("warehouses before stores").

A location created or changed writes `location.created` / `location.updated` (the location after
the change) in the caller's transaction; admin, the POS keys of that store and the keys of the
channels that fulfil from it read them (app/events/scope.py).
"""
from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.concurrency import check_version
from app.core.db import flush_unique
from app.core.errors import ApiError, not_found
from app.core.ids import new_id
from app.core.responses import rfc3339
from app.events.service import emit
from app.locations.models import Location
from app.locations.schemas import LocationCreate, LocationUpdate

DEFAULTS = {
    "warehouse": {"ship": True, "pickup": False, "returns": False, "priority": 10},
    "store": {"ship": True, "pickup": True, "returns": True, "priority": 50},
    "partner": {"ship": True, "pickup": False, "returns": False, "priority": 90},
}


def render_location(loc: Location) -> dict:
    return {
        "id": loc.id, "object": "location", "code": loc.code, "name": loc.name, "type": loc.type,
        "address": loc.address, "lat": loc.lat, "lon": loc.lon,
        "capabilities": {"ship": loc.can_ship, "pickup": loc.can_pickup, "returns": loc.can_return},
        "priority": loc.priority, "active": loc.active, "version": loc.version,
        "created_at": loc.created_at, "updated_at": loc.updated_at,
    }


async def _event(session: AsyncSession, type_: str, loc: Location) -> None:
    data = render_location(loc)
    data.update(created_at=rfc3339(loc.created_at), updated_at=rfc3339(loc.updated_at))
    await emit(session, type_, data, location=loc.code)


async def get_location(session: AsyncSession, ref: str, *, for_update: bool = False) -> Location:
    stmt = select(Location).where((Location.code == ref) | (Location.id == ref))
    if for_update:
        stmt = stmt.with_for_update()
    loc = (await session.execute(stmt)).scalars().first()
    if loc is None:
        raise not_found("Location", ref)
    return loc


def _coords(data: dict) -> None:
    """Top-level lat/lon win; else take them from the address."""
    addr = data.get("address")
    if addr:
        if data.get("lat") is None and addr.get("lat") is not None:
            data["lat"] = addr["lat"]
        if data.get("lon") is None and addr.get("lon") is not None:
            data["lon"] = addr["lon"]
    if (data.get("lat") is None) != (data.get("lon") is None):
        raise ApiError(422, "validation_error", "Give both lat and lon, or neither.",
                       errors=[{"field": "lat" if data.get("lat") is None else "lon", "message": "Give both lat and lon."}])


async def create_location(session: AsyncSession, body: LocationCreate) -> Location:
    data = body.model_dump(exclude_none=True)
    defaults = DEFAULTS[body.type]
    caps = data.pop("capabilities", {}) or {}
    _coords(data)
    loc = Location(
        id=new_id("loc"), code=body.code, name=body.name, type=body.type, address=data.get("address"),
        lat=data.get("lat"), lon=data.get("lon"),
        can_ship=caps.get("ship", defaults["ship"]), can_pickup=caps.get("pickup", defaults["pickup"]),
        can_return=caps.get("returns", defaults["returns"]),
        priority=data.get("priority", defaults["priority"]), active=body.active,
    )
    session.add(loc)
    await flush_unique(session, "location", body.code)
    await _event(session, "location.created", loc)
    return loc


async def update_location(session: AsyncSession, request: Request, ref: str, body: LocationUpdate) -> Location:
    loc = await get_location(session, ref, for_update=True)
    check_version(request, loc.version, body.version)
    changes = body.model_dump(exclude_unset=True, exclude={"version"})
    for f in ("name", "priority", "active"):
        if f in changes and changes[f] is None:
            raise ApiError(422, "validation_error", f"{f} may not be null.", errors=[{"field": f, "message": "May not be null."}])
    caps = changes.pop("capabilities", None) or {}
    if "address" in changes or "lat" in changes or "lon" in changes:
        merged = {"address": changes.get("address", loc.address), "lat": changes.get("lat", loc.lat), "lon": changes.get("lon", loc.lon)}
        if "address" in changes and "lat" not in changes and "lon" not in changes and changes["address"] and changes["address"].get("lat") is not None:
            merged["lat"] = merged["lon"] = None
        _coords(merged)
        changes.update(merged)
    for k, v in changes.items():
        setattr(loc, k, v)
    for key, attr in (("ship", "can_ship"), ("pickup", "can_pickup"), ("returns", "can_return")):
        if caps.get(key) is not None:
            setattr(loc, attr, caps[key])
    loc.version += 1
    loc.updated_at = clock.now()
    await session.flush()
    await _event(session, "location.updated", loc)
    return loc
