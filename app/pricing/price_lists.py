"""Price lists and their prices.

Admin keys manage them. Storefront and POS keys read the lists that take part in their
channel, and nothing else (404), read-only: the lists in the channel's currency that name the
channel in their `channels` or that the channel names in its `price_lists`, active ones only.

A list that names a channel takes part in its resolution without the channel naming it (see
`resolution.rank_lists`); when the channel names other lists that still rank ahead of it there
(their priority is not below its own), creating or changing it answers with a `warnings`
entry saying so and how to let it win.

Ending and deleting: `POST /v1/price-lists/{code}/end` sets `valid_to` to now (the list stops
pricing at once and stays for the record; PATCH `valid_to` schedules an end). `DELETE` removes
the list and its prices; a list that channels name in their `price_lists` is `409
price_list_in_use` naming them (the channel's order is the shop's to change: PATCH the channel
first, or end the list). Orders keep their prices, so a list no order depends on is never in use
by history. Both emit `price_list.updated` (`change`: `ended` / `deleted`).
"""
from typing import Any

from fastapi import Request
from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.service import canonical_sku, sku_key
from app.core import clock
from app.core.concurrency import apply_changes, check_version
from app.core.db import flush_unique
from app.core.errors import ApiError
from app.core.ids import new_id
from app.core.pagination import PageParams, apply_page, page_result
from app.core.responses import rfc3339
from app.core.sql import chunks, where_in
from app.events.service import emit
from app.auth.principal import Principal
from app.channels.service import channel_row
from app.pricing import resolution
from app.pricing.common import (
    CH, PE, PL, by_ref, check_channels, check_skus, check_window, ended_now, list_to_engine, refuse_nulls, utc,
)
from app.pricing.reference import load_channel
from app.pricing.models import PriceList
from app.pricing.schemas import PriceIn, PriceListCreate, PriceListUpdate

MAX_PRICES_PER_PUT = 50_000


def render_price_list(pl: Any) -> dict:
    return {
        "id": pl.id, "object": "price_list", "code": pl.code, "name": pl.name, "currency": pl.currency,
        "channels": list(pl.channels or []), "customer_group": pl.customer_group,
        "valid_from": rfc3339(pl.valid_from), "valid_to": rfc3339(pl.valid_to), "priority": pl.priority,
        "active": pl.active, "version": pl.version, "created_at": rfc3339(pl.created_at),
        "updated_at": rfc3339(pl.updated_at),
    }


async def get_price_list(session: AsyncSession, ref: str, *, for_update: bool = False) -> PriceList:
    return await by_ref(session, PriceList, "Price list", ref, for_update)


async def visible_price_list(session: AsyncSession, who: Principal, ref: str) -> PriceList:
    """A price list by code or id, for admin; for a bound key only one that takes part in its
    channel (else 404, as for anything outside a key's binding)."""
    pl = await get_price_list(session, ref)
    if not who.is_admin:
        channel = await channel_row(session, who.channel) if who.channel else None
        if channel is None or not _takes_part(pl, channel, active_only=True):
            raise ApiError(404, "not_found", f"Price list {ref!r} was not found.")
    return pl


def _takes_part(pl: Any, channel: Any, *, active_only: bool) -> bool:
    return (pl.active or not active_only) and resolution.takes_part(list_to_engine(pl), channel.code, channel.currency,
                                                                    tuple(channel.price_lists or ()))


async def warnings(session: AsyncSession, pl: PriceList) -> list[dict]:
    """For each channel the list names whose own `price_lists` rank other lists ahead of it
    (same currency and customer group, priority not below its own): a warning saying so."""
    if not pl.channels:
        return []
    channels = (await session.execute(select(CH.c.code, CH.c.currency, CH.c.price_lists)
                                      .where(where_in(session, CH.c.code, list(pl.channels))))).all()
    named = sorted({c for ch in channels if pl.code not in (ch.price_lists or []) for c in ch.price_lists or []})
    if not named:
        return []
    rows = (await session.execute(select(PriceList).where(where_in(session, PriceList.code, named)))).scalars().all()
    others = {r.code: list_to_engine(r) for r in rows
              if r.active and r.currency == pl.currency and r.customer_group == pl.customer_group}
    me = list_to_engine(pl)
    out = []
    for ch in sorted(channels, key=lambda c: c.code):
        order = tuple(ch.price_lists or ())
        if pl.code in order:
            continue
        ranked = resolution.rank_lists([me, *(others[c] for c in order if c in others)], order)
        ahead = [x.code for x in ranked[:ranked.index(me)]]
        if ahead:
            names = ", ".join(repr(c) for c in ahead)
            out.append({
                "code": "outranked_in_channel", "channel": ch.code, "price_lists": ahead,
                "message": (f"Channel {ch.code!r} names {names} in its price_lists, and with a priority not below "
                            f"{pl.priority} they rank ahead of {pl.code!r} there: {pl.code!r} prices only the SKUs they "
                            f"do not. To let it win, give it a higher priority than theirs, or name it in the "
                            f"channel's price_lists ahead of them."),
            })
    return out


async def _price_list_event(session: AsyncSession, pl: PriceList, **extra: Any) -> None:
    await emit(session, "price_list.updated", {"id": pl.id, "code": pl.code, "currency": pl.currency,
                                               "channels": list(pl.channels or []), "version": pl.version, **extra})


async def create_price_list(session: AsyncSession, data: PriceListCreate) -> dict:
    valid_from, valid_to = utc(data.valid_from), utc(data.valid_to)
    check_window(valid_from, valid_to)
    await check_channels(session, data.channels, currency=data.currency)
    pl = PriceList(id=new_id("pl"), code=data.code, name=data.name, currency=data.currency, channels=data.channels,
                   customer_group=data.customer_group, valid_from=valid_from, valid_to=valid_to,
                   priority=data.priority, active=data.active)
    session.add(pl)
    await flush_unique(session, "price list", data.code)
    await _price_list_event(session, pl, change="created")
    return {**render_price_list(pl), "warnings": await warnings(session, pl)}


async def update_price_list(session: AsyncSession, request: Request, ref: str, data: PriceListUpdate) -> dict:
    pl = await get_price_list(session, ref, for_update=True)
    check_version(request, pl.version, data.version)
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    refuse_nulls(changes, ("channels", "priority", "active"))
    for f in ("valid_from", "valid_to"):
        if f in changes:
            changes[f] = utc(changes[f])
    check_window(changes.get("valid_from", pl.valid_from), changes.get("valid_to", pl.valid_to))
    if "channels" in changes:
        await check_channels(session, changes["channels"], currency=pl.currency)
    changes = apply_changes(pl, changes)
    if changes:
        await _price_list_event(session, pl, change="updated", fields=sorted(changes))
    await session.flush()
    return {**render_price_list(pl), "warnings": await warnings(session, pl)}


async def end_price_list(session: AsyncSession, request: Request, ref: str) -> dict:
    """Valid until now: quotes and pages stop using it at once (every cache drops with the change).
    An ended list answers unchanged (same version)."""
    pl = await get_price_list(session, ref, for_update=True)
    check_version(request, pl.version)
    changes = ended_now(pl.valid_from, pl.valid_to, clock.now())
    if changes and apply_changes(pl, changes):
        await _price_list_event(session, pl, change="ended", fields=sorted(changes))
        await session.flush()
    return render_price_list(pl)


async def channels_naming(session: AsyncSession, code: str) -> list[str]:
    """The channels whose `price_lists` name the list (few channels: filtered here)."""
    rows = (await session.execute(select(CH.c.code, CH.c.price_lists))).all()
    return sorted(r.code for r in rows if code in (r.price_lists or ()))


async def delete_price_list(session: AsyncSession, request: Request, ref: str) -> None:
    """The list and its prices; 409 price_list_in_use while a channel names it."""
    pl = await get_price_list(session, ref, for_update=True)
    check_version(request, pl.version)
    naming = await channels_naming(session, pl.code)
    if naming:
        names = ", ".join(repr(c) for c in naming)
        raise ApiError(
            409, "price_list_in_use",
            f"Price list {pl.code!r} is named in the price_lists of channel(s) {names}. Remove it there first "
            f"(PATCH /v1/channels/{naming[0]} with its price_lists without {pl.code!r}), or end it instead "
            f"(POST /v1/price-lists/{pl.code}/end: it stops pricing now and stays for the record).",
            errors=[{"field": "code", "message": f"Named by channel {c!r} in its price_lists.", "value": c}
                    for c in naming],
            channels=naming,
        )
    await _price_list_event(session, pl, change="deleted")
    await session.execute(delete(PE).where(PE.c.price_list_id == pl.id))
    await session.execute(delete(PL).where(PL.c.id == pl.id))
    session.expunge(pl)


async def list_price_lists(session: AsyncSession, who: Principal, page: PageParams, channel: str | None = None) -> dict:
    """Admin without `channel`: every list, a page at a time. With `channel` (a bound key: always
    its own; another is not found): the lists that take part in that channel, all of them, in the
    order resolution tries them (customer-group lists first, by group; `resolution.rank_lists`). A
    bound key sees active lists only; for admin, an inactive list or one outside its validity
    window keeps its place and is skipped by quotes while so."""
    if not who.is_admin:
        who.channel_or_404(channel or who.channel, "Channel")
        channel = who.channel
    if not channel:
        rows = (await session.execute(apply_page(select(PriceList), PriceList.id, page))).scalars().all()
        return page_result(list(rows), page, render_price_list)
    ch = await load_channel(session, channel) if who.is_admin else await channel_row(session, channel)
    if ch is None:
        return {"data": [], "next_cursor": None}
    rows = [r for r in (await session.execute(select(PriceList))).scalars().all()  # few lists: filtered here
            if _takes_part(r, ch, active_only=not who.is_admin)]
    by_code = {r.code: r for r in rows}
    ranked = resolution.rank_lists([list_to_engine(r) for r in rows], tuple(ch.price_lists or ()))
    return {"data": [render_price_list(by_code[x.code]) for x in ranked], "next_cursor": None}


async def put_prices(session: AsyncSession, request: Request, ref: str, items: list[PriceIn], replace: bool) -> dict:
    """Upsert prices by (sku, min_quantity); `amount: null` removes one; `replace` drops every
    price not in the body. One transaction, set-based; the list's version goes up once."""
    if len(items) > MAX_PRICES_PER_PUT:
        raise ApiError(413, "payload_too_large", f"At most {MAX_PRICES_PER_PUT} prices per request.")
    pl = await get_price_list(session, ref, for_update=True)
    check_version(request, pl.version)
    seen: dict[tuple[str, int], int] = {}
    errors = []
    for i, p in enumerate(items):
        key = (sku_key(p.sku), p.min_quantity)  # one SKU in two spellings is still one SKU
        if key in seen:
            errors.append({"field": f"[{i}].sku", "message": f"{p.sku!r} with min_quantity {p.min_quantity} is also at [{seen[key]}]."})
        seen.setdefault(key, i)
    if errors:
        raise ApiError(422, "validation_error", errors[0]["message"], errors=errors)
    stored = await check_skus(session, [(f"[{i}].sku", p.sku) for i, p in enumerate(items) if p.amount is not None],
                               also=[p.sku for p in items if p.amount is None])
    items = [p.model_copy(update={"sku": stored[p.sku]}) if stored.get(p.sku, p.sku) != p.sku else p for p in items]
    now = clock.now()
    upserts = [{"price_list_id": pl.id, "sku": p.sku, "min_quantity": p.min_quantity, "amount": p.amount, "updated_at": now}
               for p in items if p.amount is not None]
    removals = [p for p in items if p.amount is None]
    removed = 0
    if replace:
        removed = (await session.execute(delete(PE).where(PE.c.price_list_id == pl.id))).rowcount or 0
    else:
        for p in removals:
            removed += (await session.execute(delete(PE).where(
                PE.c.price_list_id == pl.id, PE.c.sku == p.sku, PE.c.min_quantity == p.min_quantity))).rowcount or 0
        if upserts:
            keys = {(u["sku"], u["min_quantity"]) for u in upserts}
            for part in chunks(sorted({s for s, _ in keys})):
                await session.execute(delete(PE).where(PE.c.price_list_id == pl.id, where_in(session, PE.c.sku, part),
                                                       PE.c.min_quantity.in_(sorted({q for _, q in keys}))))
    for part in chunks(upserts, 5000):
        await session.execute(insert(PE), part)
    pl.version += 1
    pl.updated_at = now
    await _price_list_event(session, pl, change="prices", prices_set=len(upserts), prices_removed=removed,
                            skus=sorted({p.sku for p in items})[:100])
    await session.flush()
    return {"price_list": pl.code, "version": pl.version, "set": len(upserts), "removed": removed}


async def list_prices(session: AsyncSession, who: Principal, ref: str, page: PageParams, sku: str | None = None) -> dict:
    pl = await visible_price_list(session, who, ref)
    stmt = select(PE.c.sku, PE.c.min_quantity, PE.c.amount, PE.c.updated_at).where(PE.c.price_list_id == pl.id)
    if sku:
        stmt = stmt.where(PE.c.sku == await canonical_sku(session, sku))
    # keyset on (sku, min_quantity), encoded as one cursor string
    if page.after:
        s, _, q = page.after.rpartition("\x1f")
        if q.isdigit():
            stmt = stmt.where(or_(PE.c.sku > s, and_(PE.c.sku == s, PE.c.min_quantity > int(q))))
    rows = (await session.execute(stmt.order_by(PE.c.sku, PE.c.min_quantity).limit(page.limit + 1))).all()
    return page_result(
        list(rows), page,
        lambda r: {"sku": r.sku, "min_quantity": r.min_quantity, "amount": r.amount, "currency": pl.currency,
                   "updated_at": rfc3339(r.updated_at)},
        id_of=lambda r: f"{r.sku}\x1f{r.min_quantity}",
    )


async def existing_price_list_codes(session: AsyncSession, codes: list[str]) -> dict[str, str]:
    """{code: currency} of the price lists that exist (the channels domain validates with it)."""
    if not codes:
        return {}
    return {r.code: r.currency for r in (await session.execute(
        select(PL.c.code, PL.c.currency).where(where_in(session, PL.c.code, codes)))).all()}
