"""GET /v1/reports/inventory: stock value, and the items at or below their safety stock.

- **Stock value**: the catalog keeps no cost price, so stock is valued at the price it sells
  for: on_hand × the list price of one unit in a channel: for each SKU the price (min_quantity 1)
  of the first of the channel's price lists, in the quote engine's order, that prices it, among
  the lists that take part in the channel now and are not for a customer group: the `unit_price`
  a quote of one unit shows before promotions, tax included as the channel shows prices (gross
  or net). Which channel: `channel=`, else a POS key's own, else a channel that fulfils from the
  location asked about (its `pos` channel first — a store's shelf prices —, then web, app,
  marketplace, social, by code); with neither a channel nor a location: 422 naming `channel`.
  `unpriced` counts the SKUs with stock that have no such price and their units (not in the value).
  All locations when no `location` is given (inactive ones too: their stock still exists).
- **Low stock**: levels whose free stock (on_hand − reserved) is at or below their safety stock,
  i.e. nothing left to sell there (`available` 0), out-of-stock levels included; `shortfall` =
  safety_stock − (on_hand − reserved). `low_stock_count` counts them all; `low_stock.data` pages
  them by (location code, sku), `limit` at most 500, `cursor` from `next_cursor`.
Two statements (the figures; one page of low stock), plus the channel and price lists (cached).
"""
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.channels.models import Channel
from app.channels.service import channel_row
from app.core import clock
from app.inventory import service as inventory
from app.inventory.models import StockLevel
from app.locations.models import Location
from app.pricing import resolution
from app.pricing.common import PE
from app.pricing.reference import context, reference_data
from app.reports.period import bad, decode_cursor, encode_cursor

SL = StockLevel.__table__
LOC = Location.__table__
CH = Channel.__table__
TYPE_ORDER = {"pos": 0, "web": 1, "app": 2, "marketplace": 3, "social": 4}


async def _location(session: AsyncSession, who: Principal, ref: str | None) -> Any:
    if who.role == "pos":
        if ref is not None:
            who.location_or_404(ref)
        ref = who.location
    if ref is None:
        return None
    loc = (await inventory.locations_by_code(session, [ref])).get(ref)
    if loc is None:
        raise bad("location", f"Unknown location {ref!r}.")
    return loc


async def _channel(session: AsyncSession, who: Principal, ref: str | None, loc: Any) -> Any:
    if ref is None and who.role == "pos":
        ref = who.channel
    if ref is not None:
        row = await channel_row(session, ref)
        if row is None:
            raise bad("channel", f"Unknown channel {ref!r}.")
        return row
    if loc is None:
        raise bad("channel", "Say which channel's prices value the stock: give channel (or a location).")
    rows = (await session.execute(select(CH.c.code, CH.c.type, CH.c.fulfillment_locations))).all()
    serving = sorted((r for r in rows if loc.code in (r.fulfillment_locations or [])),
                     key=lambda r: (TYPE_ORDER.get(r.type, 9), r.code))
    if not serving:
        raise bad("channel", f"No channel fulfils from {loc.code!r}: give channel.")
    return await channel_row(session, serving[0].code)


async def _ranked_lists(session: AsyncSession, channel: Any) -> list[tuple[str, str]]:
    """[(price list id, code)] that price the channel for everyone now, best first."""
    ref = await reference_data(session)
    ranked = [pl for pl in resolution.applicable_lists(context(channel, clock.now()), ref.price_lists.values())
              if pl.customer_group is None]
    ids = {code: lid for lid, code in ref.list_code.items()}
    return [(ids[pl.code], pl.code) for pl in ranked if pl.code in ids]


def _unit_prices(lists: list[tuple[str, str]]):
    """Subquery (sku, amount): each SKU's one-unit price from the first list that has one."""
    rank = case({lid: i for i, (lid, _) in enumerate(lists)}, value=PE.c.price_list_id)
    first = func.row_number().over(partition_by=PE.c.sku, order_by=(rank, PE.c.amount))
    ranked = (select(PE.c.sku, PE.c.amount, first.label("n"))
              .where(PE.c.min_quantity == 1, PE.c.price_list_id.in_([lid for lid, _ in lists])).subquery("ranked"))
    return select(ranked.c.sku, ranked.c.amount).where(ranked.c.n == 1).subquery("unit_price")


def _low():
    return SL.c.on_hand - SL.c.reserved <= SL.c.safety_stock


async def report(session: AsyncSession, who: Principal, *, location: str | None, channel: str | None,
                 limit: int, cursor: str | None) -> dict:
    loc = await _location(session, who, location)
    ch = await _channel(session, who, channel, loc)
    lists = await _ranked_lists(session, ch)
    at = [SL.c.location_id == loc.id] if loc is not None else []
    after = decode_cursor(cursor, 2)

    if lists:
        price = _unit_prices(lists)
        levels = SL.outerjoin(price, price.c.sku == SL.c.sku)
        amount = price.c.amount
    else:
        levels, amount = SL, None
    stocked = SL.c.on_hand > 0
    unpriced = and_(stocked, amount.is_(None)) if amount is not None else stocked
    value = func.sum(SL.c.on_hand * amount) if amount is not None else None
    head = (await session.execute(select(
        func.count().label("levels"), func.coalesce(func.sum(SL.c.on_hand), 0).label("on_hand"),
        func.coalesce(func.sum(SL.c.reserved), 0).label("reserved"),
        (func.coalesce(value, 0) if value is not None else literal(0)).label("value"),
        func.count(func.distinct(case((unpriced, SL.c.sku)))).label("unpriced_skus"),
        func.coalesce(func.sum(case((unpriced, SL.c.on_hand), else_=0)), 0).label("unpriced_units"),
        func.count().filter(_low()).label("low"),
    ).select_from(levels).where(*at))).one()

    page = (select(SL.c.sku, LOC.c.code, SL.c.on_hand, SL.c.reserved, SL.c.safety_stock)
            .select_from(SL.join(LOC, LOC.c.id == SL.c.location_id)).where(_low(), *at))
    if after is not None:
        page = page.where(or_(LOC.c.code > after[0], and_(LOC.c.code == after[0], SL.c.sku > after[1])))
    rows = (await session.execute(page.order_by(LOC.c.code, SL.c.sku).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "object": "report.inventory", "location": loc.code if loc is not None else None, "channel": ch.code,
        "valued_at": "list_price", "price_lists": [code for _, code in lists],
        "stock_value": {"amount": int(head.value or 0), "currency": ch.currency},
        "levels": int(head.levels), "units_on_hand": int(head.on_hand), "units_reserved": int(head.reserved),
        "unpriced": {"skus": int(head.unpriced_skus), "units": int(head.unpriced_units)},
        "low_stock_count": int(head.low),
        "low_stock": {
            "data": [{"sku": r.sku, "location": r.code, "on_hand": r.on_hand, "reserved": r.reserved,
                      "safety_stock": r.safety_stock,
                      "available": inventory.available_of(r.on_hand, r.reserved, r.safety_stock),
                      "shortfall": r.safety_stock - (r.on_hand - r.reserved)} for r in rows],
            "next_cursor": encode_cursor([rows[-1].code, rows[-1].sku]) if more and rows else None,
        },
    }
