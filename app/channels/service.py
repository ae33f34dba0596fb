"""Channels: where and how the retailer sells (web shop, app, POS, marketplace, social).

A channel created or changed writes `channel.created` / `channel.updated` (the channel after the
change, only when something changed) in the caller's transaction; the channel's own keys read
them (app/events/scope.py)."""
from typing import Any

from fastapi import Request
from sqlalchemy import bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.channels.models import Channel
from app.channels.schemas import ChannelCreate, ChannelUpdate
from app.core.cache import Cache
from app.core.concurrency import apply_changes, check_version
from app.core.db import flush_unique
from app.core.errors import ApiError, not_found
from app.core.ids import new_id
from app.core.responses import rfc3339
from app.events.service import emit
from app.locations.models import Location


CH = Channel.__table__
_BY_REF = select(CH).where(or_(CH.c.code == bindparam("ref"), CH.c.id == bindparam("ref")))
_channels = Cache("channels")  # code or id -> channels row (dropped in every worker when a channel changes)


def render(ch: Any) -> dict:
    return {
        "id": ch.id, "object": "channel", "code": ch.code, "name": ch.name, "type": ch.type,
        "currency": ch.currency, "country": ch.country, "prices_include_tax": ch.prices_include_tax,
        "price_lists": list(ch.price_lists or []), "fulfillment_locations": list(ch.fulfillment_locations or []),
        "return_window_days": ch.return_window_days, "pickup_hold_days": ch.pickup_hold_days,
        "sourcing_strategy": ch.sourcing_strategy, "max_splits": ch.max_splits,
        "payment_timeout_minutes": ch.payment_timeout_minutes,
        "version": ch.version, "created_at": rfc3339(ch.created_at), "updated_at": rfc3339(ch.updated_at),
    }


async def channel_row(session: AsyncSession, ref: str) -> Any:
    """The channels row by code or id, or None: for reads, served from the process's cache."""
    conn = await session.connection()
    row = _channels.get(ref, conn)
    if row is None:
        generation = _channels.generation
        row = (await conn.execute(_BY_REF, {"ref": ref})).first()
        if row is not None:
            _channels.put(ref, row, generation, conn)
    return row


async def get_channel(session: AsyncSession, ref: str, *, for_update: bool = False) -> Channel:
    """By id or code."""
    stmt = select(Channel).where((Channel.code == ref) | (Channel.id == ref))
    if for_update:
        stmt = stmt.with_for_update()
    ch = (await session.execute(stmt)).scalars().first()
    if ch is None:
        raise not_found("Channel", ref)
    return ch


async def _check_locations(session: AsyncSession, codes: list[str]) -> None:
    dupes = sorted({c for c in codes if codes.count(c) > 1})
    if dupes:
        raise ApiError(422, "validation_error", f"Duplicate location {dupes[0]!r}.",
                       errors=[{"field": "fulfillment_locations", "message": f"Duplicate location {d!r}."} for d in dupes])
    if not codes:
        return
    found = set((await session.execute(select(Location.code).where(Location.code.in_(codes)))).scalars())
    missing = [c for c in codes if c not in found]
    if missing:
        raise ApiError(
            422, "validation_error", f"Unknown location {missing[0]!r}.",
            errors=[{"field": f"fulfillment_locations[{codes.index(c)}]", "message": f"Unknown location {c!r}."} for c in missing],
        )


async def _check_price_list_codes(session: AsyncSession, codes: list[str], currency: str) -> None:
    """Named price lists must exist and be in the channel's currency (a list in another currency
    would silently never apply)."""
    dupes = sorted({c for c in codes if codes.count(c) > 1})
    if dupes:
        raise ApiError(422, "validation_error", f"Duplicate price list {dupes[0]!r}.",
                       errors=[{"field": "price_lists", "message": f"Duplicate price list {d!r}."} for d in dupes])
    if not codes:
        return
    from app.pricing.service import existing_price_list_codes  # pricing builds on channels, not the reverse

    found = await existing_price_list_codes(session, codes)
    errors = [{"field": f"price_lists[{i}]", "message": f"Unknown price list {c!r}."} for i, c in enumerate(codes) if c not in found]
    errors += [{"field": f"price_lists[{i}]", "message": f"Price list {c!r} is in {found[c]}, the channel sells in {currency}."}
               for i, c in enumerate(codes) if c in found and found[c] != currency]
    if errors:
        raise ApiError(422, "validation_error", errors[0]["message"], errors=errors)


async def create_channel(session: AsyncSession, data: ChannelCreate) -> Channel:
    await _check_locations(session, data.fulfillment_locations)
    await _check_price_list_codes(session, data.price_lists, data.currency)
    ch = Channel(id=new_id("ch"), **data.model_dump())
    session.add(ch)
    await flush_unique(session, "channel", data.code)
    await emit(session, "channel.created", render(ch), channel=ch.code)
    return ch


async def update_channel(session: AsyncSession, request: Request, ref: str, data: ChannelUpdate) -> Channel:
    ch = await get_channel(session, ref, for_update=True)
    check_version(request, ch.version, data.version)
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    for field in ("name", "currency", "country", "prices_include_tax", "price_lists",
                  "fulfillment_locations", "return_window_days", "pickup_hold_days", "sourcing_strategy", "max_splits",
                  "payment_timeout_minutes"):
        if field in changes and changes[field] is None:
            raise ApiError(422, "validation_error", f"{field} may not be null.",
                           errors=[{"field": field, "message": "May not be null."}])
    if "fulfillment_locations" in changes:
        await _check_locations(session, changes["fulfillment_locations"])
    if "price_lists" in changes or "currency" in changes:
        await _check_price_list_codes(session, changes.get("price_lists", ch.price_lists or []),
                                      changes.get("currency", ch.currency))
    changed = apply_changes(ch, changes)
    await session.flush()
    if changed:
        await emit(session, "channel.updated", render(ch), channel=ch.code)
    return ch
