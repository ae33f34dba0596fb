from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import ADMIN, ANY_ROLE, Principal
from app.core import cache
from app.core.db import get_session
from app.core.pagination import PageParams, apply_page, page_params, page_result
from app.core.responses import created, json_response
from app.locations import service as locations
from app.locations.models import Location
from app.locations.schemas import LocationCreate, LocationOut, LocationType, LocationUpdate

# Location answers depend only on the locations table and the caller's binding.
cache.cache_responses("/v1/locations", "locations")

router = APIRouter(tags=["locations"])
Session = Annotated[AsyncSession, Depends(get_session)]


@router.post("/v1/locations", status_code=201, response_model=LocationOut, summary="Create a location")
async def create_location(body: LocationCreate, session: Session, _: Principal = Depends(ADMIN)):
    loc = await locations.create_location(session, body)
    return created(locations.render_location(loc), version=loc.version)


@router.get("/v1/locations", response_model=dict, summary="List locations (dropshippers see their own)")
async def list_locations(
    session: Session,
    page: PageParams = Depends(page_params),
    type: Annotated[LocationType | None, Query()] = None,
    active: Annotated[bool | None, Query()] = None,
    who: Principal = Depends(ANY_ROLE),
):
    stmt = select(Location)
    if who.role == "dropshipper":
        stmt = stmt.where(Location.id == who.location_id)
    if type is not None:
        stmt = stmt.where(Location.type == type)
    if active is not None:
        stmt = stmt.where(Location.active == active)
    rows = (await session.execute(apply_page(stmt, Location.id, page))).scalars().all()
    return json_response(page_result(list(rows), page, locations.render_location))


@router.get("/v1/locations/{ref}", response_model=LocationOut, summary="Get a location by id or code")
async def get_location(ref: str, session: Session, who: Principal = Depends(ANY_ROLE)):
    if who.role == "dropshipper":
        who.location_or_404(ref)
    loc = await locations.get_location(session, ref)
    return json_response(locations.render_location(loc), version=loc.version)


@router.patch("/v1/locations/{ref}", response_model=LocationOut, summary="Update a location (If-Match supported)")
async def update_location(ref: str, body: LocationUpdate, request: Request, session: Session, _: Principal = Depends(ADMIN)):
    loc = await locations.update_location(session, request, ref, body)
    return json_response(locations.render_location(loc), version=loc.version)
