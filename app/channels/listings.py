"""The marketplace listing feed: GET /v1/channels/{code}/listings.

One entry per variant the channel sells (its product active and visible in the channel):
`{sku, gtin, title, product_id, product_title, price, compare_at_price, available_to_sell,
updated_at}`.

* `price` / `compare_at_price`: the quote engine's price of ONE unit in the channel, exactly
  what product pages show (app/pricing/shelf.py `unit_prices`: a one-unit quote without coupon
  or customer group); `null` when no list prices the SKU there.
* `available_to_sell`: inventory's own figure (`inventory.availability`: on_hand − reserved −
  safety stock per level, never below 0, expired holds not counted, bundles derived from their
  components per location) summed over the locations the channel sells from: its
  `fulfillment_locations` (inactive ones count 0), or, when it names none, every active
  location that ships — the same sum GET /v1/availability answers. `null` for a variant that
  does not track stock (no limit).
* `updated_at`: the latest of
  - the product's and the variant's `updated_at` (every variant change bumps the product too;
    so do visibility changes);
  - the `updated_at` of the SKU's prices in the price lists taking part in the channel;
  - the `updated_at` of the SKU's stock levels at those locations (a bundle: its components'),
    which every change of on hand, reserved or safety stock moves (reservations, checkouts,
    shipments, counts, partner feeds). A hold that runs out counts again in available_to_sell at
    once but moves `updated_at` only when the worker releases it (a level write);
  - the channel-wide moment: the channel row, the locations it sells from, any promotion or tax
    rate, a price list's own definition changing, prices removed from a list (both read from
    the outbox's `price_list.updated` events: the prices table keeps no trace of a removed
    row, and a list's `updated_at` moves with every price upsert), or a list or promotion
    starting or ending. Such a change re-sends the whole channel (rare; a correct superset).
    So does an `updated_since` older than the event retention (EVENTS_RETENTION_DAYS): the
    events that told of such changes then may be gone.

Paging is by SKU (keyset) inside one *walk*: the first request fixes `as_of` (the moment the
walk began less a margin, WATERMARK_LAG, for writes still committing then) and the cursor
carries the last SKU, `as_of` and `updated_since`. Every listing that matches through the
whole walk is returned exactly once, whatever changes meanwhile; one that changes during the
walk may come in its old or its new state, and then again in the next pull, because the next
pull asks `updated_since=as_of` and the change is later than `as_of`.

A page is a fixed number of statements whatever its size (3 when the caches are warm, 10 when
every cache is cold; tests/channels/test_listings.py holds it): the page itself (a keyset over
the channel's variants, their `updated_at` parts as correlated index lookups folded into one
`greatest`, the bundles' components; with `updated_since` the page is taken from the UNION of
what changed — indexed ranges on products and variants, one pass over the channel's prices and
levels — rather than from every variant), the SKUs' catalog facts (cached per SKU), their stock
(`inventory.availability`: its locations resolved, then one read of the levels), their prices
(cached per SKU); the channel, its locations, the reference data and the channel-wide moment
come from caches dropped when their tables change.
"""
import base64
from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel, Field
from sqlalchemy import Integer, bindparam, exists, func, literal_column, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.service import BC, P, PC, V, lookup_skus
from app.channels.service import channel_row
from app.core import clock
from app.core.cache import Cache
from app.core.db import is_postgres
from app.core.errors import not_found, validation_error
from app.core.responses import rfc3339
from app.core.schemas import Money
from app.core.settings import get_settings
from app.core.sql import in_param
from app.events.models import Event
from app.inventory import service as inventory
from app.locations.models import Location
from app.pricing import resolution, shelf
from app.pricing.models import PriceEntry, Promotion, TaxRate
from app.pricing.reference import reference_data

# The route's description (OpenAPI): what a connector programs against.
CONTRACT = """The variants the channel sells (active products visible in it), each with the quote engine's
price of one unit (`price`, and `compare_at_price` when a promotion takes something off),
`available_to_sell` summed over the channel's fulfillment locations (every active shipping location
when it names none; safety stock and holds excluded, bundles derived from their components; `null`
when the variant does not track stock) and `updated_at`, the last change of the product, the
variant, its prices in the channel's price lists, its stock at those locations, or of something
channel-wide (the channel, its locations, a promotion, a tax rate, a price list's own settings,
prices removed from a list, a list or promotion starting or ending: then every listing changes).

**Sync contract.** Full sync: page with `cursor` until `next_cursor` is null (SKU order; `limit`
up to 1000) and keep the `as_of` of the pages. Incremental sync: the same walk with
`updated_since=<that as_of>`: exactly the listings whose `updated_at` is at or after it, and a new
`as_of` to keep for the next one. Within a walk every listing that matches throughout is returned
exactly once whatever changes meanwhile; a listing changed during the walk may come in its old
state, and then comes again in the next pull (`as_of` lies before the walk began, by a margin for
writes still committing), so a listing may repeat: upsert by `sku` and skip an unchanged
`updated_at`. A listing that stops being sold (archived, draft, hidden from the channel, variant
deleted) is simply no longer in the feed: a full sync (or the `product.updated` event) tells.

Marketplace keys read their own channel's feed and storefront keys their own (the same numbers
their catalog and availability reads give); admin any channel; another channel: 404."""

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000  # a bulk feed: above the API's list maximum of 500 (API.md section 1), on purpose

PE = PriceEntry.__table__
SL = inventory.SL
LOC = Location.__table__
PR = Promotion.__table__
TR = TaxRate.__table__
E = Event.__table__


def watermark_lag() -> timedelta:
    """How far `as_of` stays behind the start of a walk: longer than any write transaction
    takes from stamping `updated_at` (the app's clock) to its COMMIT, so that a change still
    committing when the walk began is later than `as_of` and comes in the next pull. Setting
    LISTINGS_WATERMARK_LAG_SECONDS (default 60)."""
    return timedelta(seconds=get_settings().listings_watermark_lag_seconds)


# --------------------------------------------------------------------------- the cursor

class Walk:
    """What a cursor carries: the last SKU returned, the walk's `as_of` and `updated_since`."""

    __slots__ = ("after", "as_of", "since")

    def __init__(self, after: str | None, as_of: datetime, since: datetime | None):
        self.after, self.as_of, self.since = after, as_of, since


def _micros(ts: datetime) -> int:
    delta = ts - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_micros(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def encode_cursor(walk: Walk) -> str:
    raw = orjson.dumps([1, walk.after, _micros(walk.as_of), _micros(walk.since) if walk.since else None])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Walk:
    try:
        version, after, as_of, since = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        ok = (version == 1 and isinstance(after, str) and 0 < len(after) <= 100 and type(as_of) is int
              and (since is None or type(since) is int))
        walk = Walk(after, _from_micros(as_of), _from_micros(since) if since is not None else None) if ok else None
    except (ValueError, TypeError, OverflowError):
        walk = None
    if walk is None:
        raise validation_error("cursor", "Invalid cursor: pass next_cursor of the previous page as it is.")
    return walk


# --------------------------------------------------------------------------- where the channel sells from

_locations = Cache("locations", max_entries=4)
_ALL_LOCATIONS = select(LOC.c.id, LOC.c.code, LOC.c.active, LOC.c.can_ship, LOC.c.updated_at)


async def sell_from(conn, channel: Any) -> tuple[list[str], datetime | None]:
    """(location ids the channel sells from, the last change of anything that decides them):
    its fulfillment_locations, or every active location that ships when it names none."""
    rows = _locations.get("all", conn)
    if rows is None:
        generation = _locations.generation
        rows = (await conn.execute(_ALL_LOCATIONS)).all()
        _locations.put("all", rows, generation, conn)
    named = set(channel.fulfillment_locations or ())
    if named:
        chosen = [r for r in rows if r.code in named]
        considered = chosen
    else:
        chosen = [r for r in rows if r.active and r.can_ship]
        considered = rows  # any location may join or leave the set
    return sorted(r.id for r in chosen), max((r.updated_at for r in considered), default=None)


# --------------------------------------------------------------------------- the channel-wide moment

# Price lists whose definition changed (created, updated) or lost prices: their events.
_LIST_CHANGES = select(func.max(E.c.created_at)).where(
    E.c.type == "price_list.updated",
    or_(E.c.data["change"].as_string() != "prices", E.c.data["prices_removed"].as_integer() > 0),
).scalar_subquery()
_MOMENTS = select(
    select(func.max(PR.c.updated_at)).scalar_subquery().label("promotions"),
    select(func.max(TR.c.updated_at)).scalar_subquery().label("tax_rates"),
    _LIST_CHANGES.label("price_lists"),
)
_moments = Cache("pricing", max_entries=4)


async def _pricing_moment(conn) -> datetime | None:
    """The last change of a promotion, a tax rate, or a price list other than upserted prices:
    one small statement, kept until the pricing tables change."""
    hit = _moments.get("moments", conn)
    if hit is None:
        generation = _moments.generation
        row = (await conn.execute(_MOMENTS)).one()
        hit = (max((t for t in row if t is not None), default=None),)
        _moments.put("moments", hit, generation, conn)
    return hit[0]


def _latest(*moments: datetime | None) -> datetime | None:
    return max((m for m in moments if m is not None), default=None)


# --------------------------------------------------------------------------- the page statement

_STMTS: dict[tuple, Any] = {}


def _page_stmt(pg: bool, incremental: bool, after: bool):
    lists = lambda col: in_param(pg, col, "lists")  # noqa: E731
    locs = lambda col: in_param(pg, col, "locs")  # noqa: E731
    pe, sl, sl2, bc = PE.alias("pe"), SL.alias("sl"), SL.alias("sl2"), BC.alias("bc")
    price_at = select(func.max(pe.c.updated_at)).where(pe.c.sku == V.c.sku, lists(pe.c.price_list_id))
    stock_at = select(func.max(sl.c.updated_at)).where(sl.c.sku == V.c.sku, locs(sl.c.location_id))
    comp_at = (select(func.max(sl2.c.updated_at)).select_from(bc.join(sl2, sl2.c.sku == bc.c.component_sku))
               .where(bc.c.bundle_variant_id == V.c.id, locs(sl2.c.location_id)))
    sep = literal_column("','")  # SKUs never hold a comma (Code)
    components = select(func.string_agg(bc.c.component_sku, sep) if pg else func.group_concat(bc.c.component_sku, sep)
                        ).where(bc.c.bundle_variant_id == V.c.id)
    parts = (V.c.updated_at, P.c.updated_at, price_at.scalar_subquery(), stock_at.scalar_subquery(),
             comp_at.scalar_subquery())
    at_type = V.c.updated_at.type
    if pg:  # greatest() skips NULLs
        changed_at = func.greatest(*parts, type_=at_type)
    else:  # SQLite's max(a, b, …) is NULL when one is
        changed_at = func.max(*(func.coalesce(x, V.c.updated_at) for x in parts), type_=at_type)
    stmt = (
        select(V.c.sku, changed_at.label("changed_at"), components.scalar_subquery().label("components"))
        .select_from(V.join(P, P.c.id == V.c.product_id))
        .where(P.c.status == "active",
               exists().where(PC.c.product_id == P.c.id, PC.c.channel_code == bindparam("channel")))
    )
    if incremental:
        # what changed, as one set of variant ids: each part is an indexed range or one pass over
        # the channel's prices / levels; the page is then taken from that set, not from every variant
        since = bindparam("since", type_=P.c.updated_at.type)
        v2, p2, v3, v4, pe3, sl3, sl4, bc3 = (V.alias("v2"), P.alias("p2"), V.alias("v3"), V.alias("v4"),
                                              PE.alias("pe3"), SL.alias("sl3"), SL.alias("sl4"), BC.alias("bc3"))
        changed = union(
            select(V.c.id.label("id")).where(V.c.updated_at >= since),
            select(v2.c.id).select_from(v2.join(p2, p2.c.id == v2.c.product_id)).where(p2.c.updated_at >= since),
            select(v3.c.id).select_from(v3.join(pe3, pe3.c.sku == v3.c.sku))
            .where(pe3.c.updated_at >= since, lists(pe3.c.price_list_id)),
            select(v4.c.id).select_from(v4.join(sl3, sl3.c.sku == v4.c.sku))
            .where(sl3.c.updated_at >= since, locs(sl3.c.location_id)),
            select(bc3.c.bundle_variant_id).select_from(bc3.join(sl4, sl4.c.sku == bc3.c.component_sku))
            .where(sl4.c.updated_at >= since, locs(sl4.c.location_id)),
        )
        stmt = stmt.where(V.c.id.in_(changed))
    if after:
        stmt = stmt.where(V.c.sku > bindparam("after"))
    return stmt.order_by(V.c.sku).limit(bindparam("lim", type_=Integer))


def page_stmt(pg: bool, incremental: bool, after: bool):
    key = (pg, incremental, after)
    stmt = _STMTS.get(key)
    if stmt is None:
        stmt = _STMTS[key] = _page_stmt(pg, incremental, after)
    return stmt


# --------------------------------------------------------------------------- the feed

async def channel_for(session: AsyncSession, ref: str) -> Any:
    ch = await channel_row(session, ref)
    if ch is None:
        raise not_found("Channel", ref)
    return ch


async def listings(session: AsyncSession, channel: Any, *, updated_since: datetime | None, cursor: str | None,
                   limit: int = DEFAULT_LIMIT) -> dict:
    """One page of the channel's feed (see the module doc). `channel`: a channels row."""
    walk = decode_cursor(cursor) if cursor else None
    if walk is not None and updated_since is not None and updated_since != walk.since:
        raise validation_error("updated_since", "The cursor continues a walk with another updated_since: "
                                                "repeat the same value or leave it out.")
    now = clock.now()
    since = walk.since if walk is not None else updated_since
    as_of = walk.as_of if walk is not None else _latest(now - watermark_lag(), since)
    conn = await session.connection()

    ref = await reference_data(session)
    taking_part = {code for code, pl in ref.price_lists.items()
                   if pl.customer_group is None and resolution.takes_part(pl, channel.code, channel.currency,
                                                                           tuple(channel.price_lists or ()))}
    list_ids = sorted(i for i, code in ref.list_code.items() if code in taking_part)
    loc_ids, locations_at = await sell_from(conn, channel)
    i = bisect_right(ref.changes, now)
    window_at = ref.changes[i - 1] if i else None  # the last list or promotion that started or ended
    channel_at = _latest(channel.updated_at, locations_at, window_at, await _pricing_moment(conn))
    events_kept_since = now - timedelta(days=get_settings().events_retention_days)
    incremental = since is not None and since >= events_kept_since and (channel_at is None or channel_at < since)

    pg = is_postgres(session)
    params: dict[str, Any] = {"channel": channel.code, "lists": list_ids, "locs": loc_ids, "lim": limit + 1}
    if incremental:
        params["since"] = since
    if walk is not None:
        params["after"] = walk.after
    rows = (await conn.execute(page_stmt(pg, incremental, walk is not None), params)).all()
    more = len(rows) > limit
    rows = rows[:limit]

    skus = [r.sku for r in rows]
    # the page's SKUs and their bundles' components (derive needs whether those track stock): one lookup
    components = {c for r in rows if r.components for c in r.components.split(",")}
    facts = await lookup_skus(session, [*skus, *components]) if skus else {}
    sold = [s for s in skus if s in facts]  # a variant deleted since the page's read is left out
    stock = await inventory.availability(session, sold, loc_ids, facts=facts) if sold else {}
    prices, _ = await shelf.unit_prices(session, shelf.Shelf(channel), {s: facts[s].category for s in sold})

    currency = channel.currency
    data = []
    for sku, changed_at, _ in rows:
        info = facts.get(sku)
        if info is None:
            continue
        price = prices.get(sku)
        per = stock.get(sku)
        data.append({
            "sku": sku, "gtin": info.gtin, "title": info.title, "product_id": info.product_id,
            "product_title": info.product_title,
            "price": {"amount": price.amount, "currency": currency} if price else None,
            "compare_at_price": ({"amount": price.list_amount, "currency": currency}
                                 if price and price.amount != price.list_amount else None),
            "available_to_sell": sum(per.values()) if per is not None else None,
            "updated_at": rfc3339(changed_at if channel_at is None or changed_at > channel_at else channel_at),
        })
    return {
        "object": "list", "channel": channel.code, "data": data,
        "next_cursor": encode_cursor(Walk(rows[-1].sku, as_of, since)) if more else None,
        "as_of": rfc3339(as_of),
    }



# --------------------------------------------------------------------------- response shapes (OpenAPI)

class ListingOut(BaseModel):
    sku: str
    gtin: str | None
    title: str = Field(description="The variant's title (as order lines name it)")
    product_id: str
    product_title: str
    price: Money | None = Field(description="One unit, as POST /v1/pricing/quote prices it in the channel "
                                            "(promotions applied, no coupon); null: no price there")
    compare_at_price: Money | None = Field(description="The price list's price when a promotion takes something off")
    available_to_sell: int | None = Field(description="Summed over the channel's fulfillment locations, never "
                                                      "below 0; null: the variant does not track stock")
    updated_at: datetime = Field(description="The last change of anything above (see the sync contract)")


class ListingPage(BaseModel):
    object: str = "list"
    channel: str
    data: list[ListingOut]
    next_cursor: str | None
    as_of: datetime = Field(description="The walk's watermark: pass it as updated_since of the next pull")
