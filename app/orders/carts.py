"""Carts: a basket in one channel with its customer, coupons and fulfillment choice, always
priced by the one quote engine (`pricing.service.quote_basket`: the same numbers as POST
/v1/pricing/quote) and showing per line how many units can be served for the chosen method
(`availability`: ship sums the channel's candidate locations, pickup / reserve is the chosen
store; the figures sourcing plans with).

A cart is created and changed whole (PATCH replaces the fields it names; `lines` replaces every
line) and refuses anything it could not price (422, nothing stored). When a stored cart can no
longer be priced (a price removed, a product archived), reading it answers 200 with the lines
unpriced and `pricing_error` saying why; checkout then answers that 422.

Customers: `customer` is an id, email or loyalty card number, resolved through the customers
domain (storefront and marketplace keys: customers registered in their channel); their group
feeds the quote.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import clock
from app.core.errors import ApiError
from app.core.ids import new_id
from app.core.responses import rfc3339
from app.customers import service as customers  # orders build on customers, not the reverse
from app.inventory import service as inventory
from app.core.pagination import PageParams, apply_page, page_result
from app.orders.dependencies import CART, bound_channel, cart_scope, visible_cart
from app.orders.schemas import CartCreate, CartUpdate, FulfillmentIn
from app.orders.sourcing import service as sourcing
from app.pricing.service import load_channel, quote_basket


# --------------------------------------------------------------------------- customers

async def resolve_customer(session: AsyncSession, ref: str | None, who: Principal | None,
                           field: str = "customer") -> tuple[str | None, str | None, str | None]:
    """(customer id, group, email) of the customer `ref` names; (None, None, None) for no `ref`.
    Unknown (or, for a storefront or marketplace key, registered in another channel) -> 422
    naming `field`. One statement."""
    if ref is None:
        return None, None, None
    channel = who.channel if (who is not None and who.role in ("storefront", "marketplace")) else None
    row = await customers.resolve_customer(session, ref, channel=channel)
    if row is None:
        raise ApiError(422, "validation_error", f"Unknown customer {ref!r}.",
                       errors=[{"field": field, "message": f"Unknown customer {ref!r}."}])
    return row.id, row.group, row.email


async def customer_group(session: AsyncSession, customer_id: str | None) -> str | None:
    """The group of a stored customer id (None when there is none, or the customer was erased)."""
    if customer_id is None:
        return None
    row = await customers.resolve_customer(session, customer_id)
    return row.group if row is not None else None


# --------------------------------------------------------------------------- fulfillment choice

async def check_fulfillment(session: AsyncSession, f: FulfillmentIn, field: str = "fulfillment", *,
                            channel: Any = None) -> dict:
    """The stored form of a fulfillment choice {method, location (code), address}: pickup and
    reserve need an active pickup-capable store (422 naming `fulfillment.location`), ship takes no
    location. The address is checked at checkout (a cart may not know it yet)."""
    method = f.method.value
    if method == "ship":
        if f.location is not None:
            raise ApiError(422, "validation_error", "A shipment is sourced by the shop: location is for pickup and "
                                                    "reserve only.",
                           errors=[{"field": f"{field}.location", "message": "Only for pickup or reserve."}])
        return {"method": method, "location": None,
                "address": f.address.model_dump(exclude_none=True) if f.address else None}
    found = await inventory.locations_by_code(session, [f.location]) if f.location else {}
    loc = sourcing.check_method_location(method, found.get(f.location) if f.location else None, f.location,
                                         f"{field}.location", channel=channel)
    assert loc is not None
    return {"method": method, "location": loc.code,
            "address": f.address.model_dump(exclude_none=True) if f.address else None}


# --------------------------------------------------------------------------- pricing and rendering

async def price(session: AsyncSession, channel: Any, lines: list[dict], coupons: list[str],
                group: str | None) -> Any:
    """The quote of the cart's lines (ApiError 422 when it cannot be priced)."""
    return await quote_basket(session, channel, [(ln["sku"], ln["quantity"]) for ln in lines],
                              customer_group=group, coupon_codes=coupons)


def _empty_totals(channel: Any) -> dict:
    return {"currency": channel.currency, "prices_include_tax": channel.prices_include_tax, "subtotal": 0,
            "discount_total": 0, "tax_total": 0, "total": 0, "promotions": [], "coupons": []}


def render_cart(cart: Any, channel: Any, quote: Any | None, availability: dict[str, int | None],
                titles: dict[str, str], error: ApiError | None = None, unsourced: list[str] | None = None) -> dict:
    """`unsourced`: the SKUs checkout could not source now (None: not known, e.g. a pickup cart
    without its store yet)."""
    lines = []
    for i, ln in enumerate(cart.lines or []):
        out: dict[str, Any] = {"sku": ln["sku"], "quantity": ln["quantity"], "title": titles.get(ln["sku"])}
        if quote is not None:
            q = quote.lines[i].as_dict()
            out.update({k: v for k, v in q.items() if k not in ("sku", "quantity")})
            out["sku"] = q["sku"]
        out["availability"] = availability.get(out["sku"])
        lines.append(out)
    totals = _empty_totals(channel)
    if quote is not None:
        totals.update({"currency": quote.currency, "prices_include_tax": quote.prices_include_tax,
                       "subtotal": quote.subtotal, "discount_total": quote.discount_total,
                       "tax_total": quote.tax_total, "total": quote.total, "promotions": quote.promotions,
                       "coupons": quote.coupons})  # each coupon given: applied, or why not
    fulfillment = dict(cart.fulfillment or {"method": "ship"})
    return {
        "id": cart.id, "object": "cart", "channel": cart.channel, "customer": cart.customer_id,
        "coupon_codes": list(cart.coupon_codes or []), "status": cart.status, "order": cart.order_id,
        "source": cart.source, "campaign": cart.campaign,
        "fulfillment": {"method": fulfillment.get("method", "ship"), "location": fulfillment.get("location"),
                        "address": fulfillment.get("address")},
        **totals, "lines": lines,
        "fulfillable": None if unsourced is None else not unsourced, "unsourced": list(unsourced or ()),
        "pricing_error": ({"code": error.code, "detail": error.detail, "errors": error.errors}
                          if error is not None else None),
        "version": cart.version, "created_at": rfc3339(cart.created_at), "updated_at": rfc3339(cart.updated_at),
    }


async def _answer(session: AsyncSession, cart: Any, channel: Any, *, quote: Any | None = None,
                  strict: bool = False) -> dict:
    """Price (unless `quote` is given) and render the cart with its lines' availability.
    `strict`: a pricing failure raises (writes), else it is shown in `pricing_error` (reads)."""
    error = None
    lines = list(cart.lines or [])
    if lines and quote is None:
        try:
            quote = await price(session, channel, lines, list(cart.coupon_codes or []),
                                await customer_group(session, cart.customer_id))
        except ApiError as exc:
            if strict or exc.status != 422:
                raise
            error = exc
    availability: dict[str, int | None] = {}
    titles: dict[str, str] = {}
    unsourced = None
    if lines:
        items = ([(q.sku, q.quantity) for q in quote.lines] if quote is not None
                 else [(ln["sku"], ln["quantity"]) for ln in lines])
        facts = await sourcing.sku_facts(session, sorted({s for s, _ in items}))
        titles = {s: f.title for s, f in facts.items()}
        f = cart.fulfillment or {}
        if f.get("method", "ship") == "ship" or f.get("location"):
            address = f.get("address") or {}
            destination = ((address["lat"], address["lon"])
                           if address.get("lat") is not None and address.get("lon") is not None else None)
            availability, unsourced = await sourcing.basket_availability(
                session, channel, f.get("method", "ship"), f.get("location"),
                [(s, q) for s, q in items if s in facts], facts, destination)
    return render_cart(cart, channel, quote, availability, titles, error, unsourced)


# --------------------------------------------------------------------------- use cases

async def create_cart(session: AsyncSession, who: Principal, body: CartCreate) -> dict:
    channel = await load_channel(session, bound_channel(who, body.channel))
    customer_id, group, _ = await resolve_customer(session, body.customer, who)
    fulfillment = await check_fulfillment(session, body.fulfillment, channel=channel)
    lines = [{"sku": ln.sku, "quantity": ln.quantity} for ln in body.lines]
    coupons = list(dict.fromkeys(c.upper() for c in body.coupon_codes))
    quote = await price(session, channel, lines, coupons, group) if lines else None
    if quote is not None:  # keep the stored spelling of every SKU
        lines = [{"sku": q.sku, "quantity": ln["quantity"]} for q, ln in zip(quote.lines, lines)]
    now = clock.now()
    row = {"id": new_id("cart"), "channel": channel.code, "customer_id": customer_id, "coupon_codes": coupons,
           "lines": lines, "fulfillment": fulfillment, "status": "open", "order_id": None, "api_key_id": who.key_id,
           "source": body.source, "campaign": body.campaign, "version": 1, "created_at": now, "updated_at": now}
    await session.execute(insert(CART).values(**row))
    return await _answer(session, _Row(row), channel, quote=quote, strict=True)


def _summary(c: Any) -> dict:
    return {"id": c.id, "object": "cart", "channel": c.channel, "customer": c.customer_id, "status": c.status,
            "order": c.order_id, "coupon_codes": list(c.coupon_codes or []), "lines": list(c.lines or []),
            "source": c.source, "campaign": c.campaign,
            "fulfillment": c.fulfillment, "version": c.version, "created_at": rfc3339(c.created_at),
            "updated_at": rfc3339(c.updated_at)}


async def list_carts(session: AsyncSession, who: Principal, page: PageParams, *, status: str | None = None) -> dict:
    """A page of the carts `who` may see (bound keys: the ones they created), unpriced."""
    stmt = select(CART).where(*cart_scope(who))
    if status is not None:
        stmt = stmt.where(CART.c.status == status)
    rows = (await session.execute(apply_page(stmt, CART.c.id, page))).all()
    return page_result(list(rows), page, _summary)


async def get_cart(session: AsyncSession, who: Principal, ref: str) -> dict:
    cart = await visible_cart(session, ref, who)
    channel = await load_channel(session, cart.channel)
    return await _answer(session, cart, channel)


def cart_completed(cart: Any) -> ApiError:
    return ApiError(409, "cart_completed", f"Cart {cart.id!r} was checked out already: order {cart.order_id!r}.",
                    errors=[{"field": "cart", "message": f"Completed: order {cart.order_id}."}], order=cart.order_id)


async def update_cart(session: AsyncSession, who: Principal, ref: str, body: CartUpdate,
                      expected_version: int | None) -> dict:
    """PATCH: the fields named replace the cart's; If-Match (or `version`) must name the current version."""
    cart = await visible_cart(session, ref, who, for_update=True)
    for v in (expected_version, body.version):
        if v is not None and v != cart.version:
            raise ApiError(412, "version_conflict", f"The cart is at version {cart.version}, the request expected "
                                                    f"version {v}.", current_version=cart.version)
    if cart.status != "open":
        raise cart_completed(cart)
    channel = await load_channel(session, cart.channel)
    given = body.model_fields_set
    values: dict[str, Any] = {}
    group = None
    if "customer" in given:
        values["customer_id"], group, _ = await resolve_customer(session, body.customer, who)
    else:
        group = await customer_group(session, cart.customer_id)
    if "coupon_codes" in given:
        values["coupon_codes"] = list(dict.fromkeys(c.upper() for c in (body.coupon_codes or [])))
    if "lines" in given:
        values["lines"] = [{"sku": ln.sku, "quantity": ln.quantity} for ln in (body.lines or [])]
    if "fulfillment" in given:
        values["fulfillment"] = await check_fulfillment(session, body.fulfillment or FulfillmentIn(), channel=channel)
    for name in ("source", "campaign"):  # attribution (app/reports/attribution.py)
        if name in given:
            values[name] = getattr(body, name)
    merged = {**cart._asdict(), **values}
    quote = None
    if merged["lines"]:
        quote = await price(session, channel, merged["lines"], merged["coupon_codes"], group)
        stored = [{"sku": q.sku, "quantity": ln["quantity"]} for q, ln in zip(quote.lines, merged["lines"])]
        if stored != merged["lines"]:
            values["lines"] = merged["lines"] = stored
    changed = {k: v for k, v in values.items() if getattr(cart, k) != v}
    if changed:
        merged["version"] = cart.version + 1
        merged["updated_at"] = clock.now()
        await session.execute(update(CART).where(CART.c.id == cart.id)
                              .values(**changed, version=merged["version"], updated_at=merged["updated_at"]))
    return await _answer(session, _Row(merged), channel, quote=quote, strict=True)


class _Row:
    """A dict read like a row (attribute access), for rendering what was just written."""

    __slots__ = ("_d",)

    def __init__(self, d: dict):
        self._d = d

    def __getattr__(self, name: str) -> Any:
        try:
            return self._d[name]
        except KeyError:
            raise AttributeError(name) from None
