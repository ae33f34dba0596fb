"""Shelf prices: what one unit of a variant costs, on product and variant pages.

For a channel-bound key (storefront, pos, marketplace) in its channel, or an admin key with
`?channel=` (and, for admin, POS and storefront keys, an optional `customer_group=`), every
variant carries
* `price`: Money `{amount, currency}`, what ONE unit costs in that channel and customer group:
  exactly what POST /v1/pricing/quote answers for a basket of that one unit without coupons
  (its line's subtotal less its discounts; tax included in a gross channel, net in a net one,
  like the quote's `unit_price`). `null` when the variant has no price there, or is not sold
  there (product not active, or not visible in the channel: a quote would answer
  `unknown_sku`);
* `compare_at_price`: Money, the price before the promotions (the quote's `unit_price`) when a
  promotion already applies to a basket of that one unit; else `null`.
Without a channel (an admin key without `?channel=`) no price fields are added.

A whole page is priced set-based: the channel, price lists and promotions come from caches
(app/pricing/reference.py); each variant's price from a cache of unit prices per (channel,
group, SKU), else the page's prices from the per-SKU price cache, or one statement for the SKUs
not in it, whatever the page size, and none at all when no price list takes part in the channel. The answer stays right until the data changes (every cache is dropped then)
or a list or promotion starts or ends: `price_*` return that moment, for the response cache.
"""
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.catalog.service import lookup_skus
from app.channels.service import channel_row
from app.core import clock
from app.core.cache import Cache
from app.core.errors import ApiError
from app.pricing import engine, offers, resolution
from app.pricing.reference import context, load_channel, price_rows, reference_data

GROUP_ROLES = ("admin", "pos", "storefront")  # may show a customer group's prices on a page


@dataclass(frozen=True, slots=True)
class Shelf:
    """Whose prices a page shows: a channels row and a customer group."""

    channel: Any
    customer_group: str | None = None


async def shelf_for(session: AsyncSession, who: Principal, channel: str | None,
                    customer_group: str | None) -> Shelf | None:
    """The prices a catalog read shows: a bound key's own channel (the caller has checked that a
    `channel` it names is its own), an admin's `channel` (unknown: 422), or None (an admin key
    without `channel`: no price fields). `customer_group` is for admin, POS and storefront keys
    (a page only shows prices; what is charged is the quote's, for the real customer)."""
    if customer_group is not None and who.role not in GROUP_ROLES:
        raise ApiError(403, "forbidden", f"The {who.role} role may not name a customer_group.")
    if who.is_admin:
        if channel is None:
            if customer_group is not None:
                raise ApiError(422, "validation_error", "customer_group prices a channel: give channel too.",
                               errors=[{"field": "channel", "message": "Required with customer_group."}])
            return None
        return Shelf(await load_channel(session, channel), customer_group)
    if who.channel is None:
        return None
    row = await channel_row(session, who.channel)
    return Shelf(row, customer_group) if row is not None else None


async def unit_prices(session: AsyncSession, shelf: Shelf, categories: dict[str, str | None]
                      ) -> tuple[dict[str, offers.UnitPrice], datetime | None]:
    """One unit's price of each SKU of `categories` (sku -> its product's category; only SKUs
    sold in the channel), and the moment a list or promotion starts or ends next."""
    ref = await reference_data(session)
    now = clock.now()
    ctx = context(shelf.channel, now, shelf.customer_group)
    until = ref.next_change(now)
    lists = resolution.applicable_lists(ctx, ref.price_lists.values())
    if not lists or not categories:
        return {}, until
    conn = await session.connection()
    scope = (shelf.channel.code, shelf.customer_group)
    out: dict[str, offers.UnitPrice] = {}
    missing: dict[str, str | None] = {}
    for sku, category in categories.items():
        hit = _unit_prices.get((*scope, sku, category), conn)
        if hit is not None and (hit[1] is None or now < hit[1]):
            if hit[0] is not None:
                out[sku] = hit[0]
        else:
            missing[sku] = category
    if missing:
        generation = _unit_prices.generation
        rows = await price_rows(conn, sorted(missing))
        taking = {pl.code for pl in lists}
        prices = [engine.Price(code, r.sku, r.amount, 1) for r in rows
                  if r.min_quantity == 1 and (code := ref.list_code.get(r.price_list_id)) in taking]
        found = offers.unit_prices(ctx, missing, lists, prices, ref.promotions)
        for sku, category in missing.items():
            _unit_prices.put((*scope, sku, category), (found.get(sku), until), generation, conn)
        out.update(found)
    return out, until


# (channel, customer group, sku, category) -> (UnitPrice | None, valid until): dropped in every worker
# when a channel, price list, promotion or price changes; an entry also ends when a list or
# promotion starts or ends. The category is part of the key, so catalog changes need not drop it.
_unit_prices = Cache("channels", "pricing", "prices", max_entries=200_000)


def _show(variant: dict, price: offers.UnitPrice | None, currency: str) -> None:
    if price is None:
        variant["price"] = variant["compare_at_price"] = None
        return
    variant["price"] = {"amount": price.amount, "currency": currency}
    variant["compare_at_price"] = ({"amount": price.list_amount, "currency": currency}
                                   if price.amount != price.list_amount else None)


async def price_products(session: AsyncSession, shelf: Shelf, products: list[dict]) -> datetime | None:
    """Adds `price` and `compare_at_price` to every variant of rendered products, in place. A
    product is sold in the channel when it is active and visible there."""
    code = shelf.channel.code
    sold = {v["sku"]: p["category"] for p in products if p["status"] == "active" and code in p["channels"]
            for v in p["variants"]}
    prices, until = await unit_prices(session, shelf, sold)
    for p in products:
        for v in p["variants"]:
            _show(v, prices.get(v["sku"]), shelf.channel.currency)
    return until


async def price_variant(session: AsyncSession, shelf: Shelf, who: Principal, variant: dict) -> datetime | None:
    """Adds `price` and `compare_at_price` to a rendered variant (detail), in place. A bound key
    sees only what its channel sells; for an admin the catalog says whether the channel sells it."""
    sku = variant["sku"]
    sold = not who.is_admin or bool(await lookup_skus(session, [sku], channel=shelf.channel.code))
    prices, until = await unit_prices(session, shelf, {sku: variant["category"]} if sold else {})
    _show(variant, prices.get(sku), shelf.channel.currency)
    return until
