from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import ADMIN, ANY_ROLE, Principal, require
from app.channels import listings, service
from app.channels.models import Channel
from app.channels.schemas import ChannelCreate, ChannelOut, ChannelUpdate
from app.core import cache
from app.core.db import get_session
from app.core.errors import not_found
from app.core.pagination import PageParams, apply_page, page_params, page_result
from app.core.responses import created, json_response
from app.core.schemas import parse_timestamp

# Channel answers depend only on the channels table and the caller's binding.
cache.cache_responses("/v1/channels", "channels")

router = APIRouter(prefix="/v1/channels", tags=["channels"])
Session = Annotated[AsyncSession, Depends(get_session)]


@router.post("", status_code=201, response_model=ChannelOut, summary="Create a channel")
async def create_channel(body: ChannelCreate, session: Session, _: Principal = Depends(ADMIN)):
    ch = await service.create_channel(session, body)
    return created(service.render(ch), version=ch.version)


@router.get("", response_model=dict, summary="List channels (bound keys see their own)")
async def list_channels(session: Session, page: PageParams = Depends(page_params), who: Principal = Depends(ANY_ROLE)):
    stmt = select(Channel)
    if not who.is_admin:
        stmt = stmt.where(Channel.id == who.channel_id)
    rows = (await session.execute(apply_page(stmt, Channel.id, page))).scalars().all()
    return json_response(page_result(list(rows), page, service.render))


@router.get("/{ref}", response_model=ChannelOut, summary="Get a channel by id or code")
async def get_channel(ref: str, session: Session, who: Principal = Depends(ANY_ROLE)):
    who.channel_or_404(ref)
    ch = await service.channel_row(session, ref)
    if ch is None:
        raise not_found("Channel", ref)
    return json_response(service.render(ch), version=ch.version)


@router.patch("/{ref}", response_model=ChannelOut, summary="Update a channel (If-Match supported)")
async def update_channel(ref: str, body: ChannelUpdate, request: Request, session: Session, _: Principal = Depends(ADMIN)):
    ch = await service.update_channel(session, request, ref, body)
    return json_response(service.render(ch), version=ch.version)


LISTING_READERS = require("marketplace", "storefront")  # + admin


@router.get("/{ref}/listings", response_model=listings.ListingPage,
            summary="Listing feed: the channel's sellable variants, priced and stocked, incremental",
            description=listings.CONTRACT)
async def list_listings(
    ref: str,
    session: Session,
    updated_since: Annotated[str | None, Query(max_length=40, description=(
        "RFC 3339: only listings changed at or after it (use the `as_of` of your last complete walk)"))] = None,
    cursor: Annotated[str | None, Query(max_length=400, pattern=r"^[A-Za-z0-9_-]+$", description=(
        "`next_cursor` of the previous page (it carries the walk's updated_since and as_of)"))] = None,
    limit: Annotated[int, Query(ge=1, le=listings.MAX_LIMIT, description=(
        f"Page size (default {listings.DEFAULT_LIMIT}, max {listings.MAX_LIMIT}: a bulk feed)"))] = listings.DEFAULT_LIMIT,
    who: Principal = Depends(LISTING_READERS),
):
    who.channel_or_404(ref)
    since = parse_timestamp("updated_since", updated_since)
    channel = await listings.channel_for(session, ref)
    return json_response(await listings.listings(session, channel, updated_since=since, cursor=cursor, limit=limit))
