"""GET /v1/products/{id}/recommendations: what is bought together with a product (the wine → cheese
case), from the orders of every channel, computed when asked by set-based SQL.

- **Co-purchases**: among the latest SAMPLE orders (any channel, not cancelled) that contain one
  of the product's variants, how many also contain each other product (`orders_together`). The
  newest orders weigh in, and the read is bounded however popular the product is: an index range
  over (sku, order_id) for the sample, its lines for the rest. Ranked by `score` (below), then
  orders_together, then product id.
- **Only what the shopper can buy there**: products active and visible in the channel, with at
  least one variant available in the channel's fulfillment locations (or, with `location=`, at
  that store): available > 0 as GET /v1/availability counts it (bundles from their components;
  a variant that does not track stock is always available). The viewed product itself never.
- **Personal only with consent**: with `customer=` (id, email or loyalty card) whose consent to
  `personalization` is given *at the moment of the request* (read with it, never cached), the
  products the customer already bought in any channel are left out and `score` doubles for
  products of a category the customer has bought from. Without that consent (or without a
  customer) the answer is exactly the anonymous one, byte for byte; `personalized` says which.
  Storefront keys name customers registered in their channel, POS and admin keys any customer;
  marketplace keys may not name one (403).
Two statements for the ranking (customer, candidates) plus the availability read of the
candidates' variants (two statements).
"""
from typing import Any

from sqlalchemy import case, distinct, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.catalog import reads as catalog
from app.catalog.models import Product, ProductChannel, Variant
from app.core.errors import ApiError
from app.customers import service as customers
from app.inventory import service as inventory
from app.orders.models import Order, OrderLine
from app.pricing.reference import load_channel
from app.reports.period import bad

O = Order.__table__
OL = OrderLine.__table__
P = Product.__table__
PC = ProductChannel.__table__
V = Variant.__table__
SAMPLE = 1000  # the latest orders with the product that the co-purchases are counted in
CANDIDATES_PER_ANSWER = 4  # ranked candidates read per answer wanted, before the availability filter
MAX_LIMIT = 50


async def _channel(session: AsyncSession, who: Principal, ref: str | None) -> Any:
    if not who.is_admin:
        if ref is not None:
            who.channel_or_404(ref)
        ref = who.channel
    if ref is None:
        raise bad("channel", "Say which channel the shopper is in: channel is required for admin keys.")
    return await load_channel(session, ref)


async def _location(session: AsyncSession, ref: str | None) -> Any:
    if ref is None:
        return None
    loc = (await inventory.locations_by_code(session, [ref])).get(ref)
    if loc is None or not loc.active:
        raise bad("location", f"Location {ref!r} is unknown or not active.")
    return loc


async def consenting_customer(session: AsyncSession, who: Principal, ref: str | None) -> str | None:
    """The id of the customer `ref` names when they consent to personalization now, else None.
    Unknown (for a storefront key: not registered in its channel) -> 422 naming `customer`."""
    if ref is None:
        return None
    if who.role not in ("admin", "storefront", "pos"):
        raise ApiError(403, "forbidden", f"The {who.role} role may not name a customer.")
    row = await customers.resolve_customer(session, ref, channel=who.channel if who.role == "storefront" else None)
    if row is None:
        raise bad("customer", f"Unknown customer {ref!r}.")
    return row.id if bool((row.consents or {}).get("personalization")) else None


def _bought(customer_id: str):
    """The customer's purchases (any channel, not cancelled) as (product id, category) rows."""
    return (select(V.c.product_id, P.c.category)
            .select_from(O.join(OL, OL.c.order_id == O.c.id).join(V, V.c.sku == OL.c.sku)
                         .join(P, P.c.id == V.c.product_id))
            .where(O.c.customer_id == customer_id, O.c.status != "cancelled"))


def _ranking(product_id: str, channel: str, customer_id: str | None, n: int):
    recent = (select(OL.c.order_id).select_from(OL.join(O, O.c.id == OL.c.order_id))
              .where(OL.c.sku.in_(select(V.c.sku).where(V.c.product_id == product_id)), O.c.status != "cancelled")
              .group_by(OL.c.order_id).order_by(OL.c.order_id.desc()).limit(SAMPLE).subquery("recent"))
    other = OL.alias("other")
    co = (select(V.c.product_id, func.count(distinct(other.c.order_id)).label("together"))
          .select_from(recent.join(other, other.c.order_id == recent.c.order_id).join(V, V.c.sku == other.c.sku))
          .where(V.c.product_id != product_id).group_by(V.c.product_id).subquery("co"))
    score = co.c.together
    stmt = (select(P.c.id, P.c.handle, P.c.title, P.c.category, co.c.together)
            .select_from(co.join(P, P.c.id == co.c.product_id))
            .where(P.c.status == "active", exists().where(PC.c.product_id == P.c.id, PC.c.channel_code == channel)))
    if customer_id is not None:
        bought = _bought(customer_id).subquery("bought")
        stmt = stmt.where(P.c.id.not_in(select(bought.c.product_id)))
        score = case((P.c.category.in_(select(bought.c.category).where(bought.c.category.is_not(None))),
                      co.c.together * 2), else_=co.c.together)
    return stmt.add_columns(score.label("score")).order_by(score.desc(), co.c.together.desc(), P.c.id).limit(n)


async def _available(session: AsyncSession, channel: Any, loc: Any, product_ids: list[str]) -> set[str]:
    """The products with a variant available in the channel's locations (or at `loc`)."""
    if not product_ids:
        return set()
    variants = (await session.execute(select(V.c.product_id, V.c.sku).where(V.c.product_id.in_(product_ids)))).all()
    where = [loc.code] if loc is not None else (list(channel.fulfillment_locations or []) or None)
    seen: dict = {}
    stock = await inventory.availability(session, sorted({v.sku for v in variants}), locations=where, locations_out=seen)
    if where is None:  # a channel that names no locations ships from every active ship-capable one
        shipping = {code for code, facts in seen.items() if facts[3]}
        stock = {sku: {c: a for c, a in per.items() if c in shipping} for sku, per in stock.items()}
    return {v.product_id for v in variants if v.sku not in stock or sum(stock[v.sku].values()) > 0}


async def recommend(session: AsyncSession, who: Principal, ref: str, *, channel: str | None, location: str | None,
                    customer: str | None, limit: int) -> dict:
    ch = await _channel(session, who, channel)
    product = await catalog.product_row(session, ref, who)  # 404 outside the key's catalog
    loc = await _location(session, location)
    customer_id = await consenting_customer(session, who, customer)
    ranked = (await session.execute(_ranking(product.id, ch.code, customer_id, limit * CANDIDATES_PER_ANSWER))).all()
    available = await _available(session, ch, loc, [r.id for r in ranked])
    return {
        "object": "list", "product": product.id, "channel": ch.code, "location": loc.code if loc else None,
        "personalized": customer_id is not None,
        "data": [{"product": r.id, "handle": r.handle, "title": r.title, "category": r.category,
                  "orders_together": int(r.together), "score": int(r.score)}
                 for r in ranked if r.id in available][:limit],
    }
