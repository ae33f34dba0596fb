"""Placing orders: a cart's checkout, a POS sale, a marketplace import. One transaction each.

Checkout of a cart, as steps (all in the request's transaction; any failure rolls all back):
  1. claim the cart: `UPDATE carts SET status = 'completed' … WHERE status = 'open' RETURNING`:
     a concurrent second checkout of the same cart waits on that row and then finds it
     completed (409 cart_completed naming the order); a rollback gives the cart back.
  2. re-price through `pricing.service.quote_basket` (the cart's numbers may have changed).
  3. payment (app/payments, `payments.start`), before any stock is locked: `stripe` creates a
     PaymentIntent for the total with manual capture (the order is `pending_payment`, its stock
     allocated below, confirmed by the webhook; the answer carries `payment.client_secret`, never
     stored for a replay); `external` is paid elsewhere (payment_status `paid`, the reference
     kept); `store_credit` spends the customer's balance; `none` collects nothing yet (`unpaid`,
     e.g. pay at pickup). When a later step fails, a PaymentIntent just created is cancelled.
  4. write the order (its number computed by the INSERT on PostgreSQL) and its lines, keeping
     every quote figure per line (unit price, discounts, total, tax, bundle shares).
  5. source and allocate (`sourcing.service.plan` + `allocate`) inside a savepoint: when the
     snapshot was overtaken by a concurrent order (the reserve finds the stock gone under its
     row lock) or PostgreSQL reports a deadlock / serialization failure, the savepoint is rolled
     back and the plan made again (three tries), so neither reaches the client as an error.
     Whatever cannot be sourced: 409 insufficient_stock naming every short SKU (pickup /
     reserve: with `alternatives`, the nearest stores that have the whole basket).
  6. outbox events: order.created, order.confirmed (unless it waits for its payment),
     fulfillment.created (per fulfillment).
The answer is rendered from what was written (no read-back). About 15 statements whatever the
basket size (tests/orders/test_checkout.py counts them).

POST /v1/orders takes the same body as a cart plus `external_id`:
- a POS key (or admin in a `pos` channel): a sale at the store, completed at once: stock is
  reserved and committed at the store (it leaves on_hand, ledger reason `sale`), one fulfillment
  `collected`, the order `fulfilled`, payment `external` by default;
- a marketplace key (or admin in any other channel): an import, sourced like a cart's checkout;
  `external_id` is unique per channel (409 duplicate_external_id naming the existing order);
  `lines[].unit_price` (all lines or none) keeps the marketplace's prices: no promotions, tax
  from the channel's rates, `price_source: external`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.catalog.service import SkuInfo, canonical
from app.core import clock
from app.core.errors import ApiError
from app.core.transaction import RETRYABLE_SQLSTATES, sqlstate
from app.core.ids import new_id
from app.events.service import emit_many
from app.inventory import service as inventory
from app.orders import numbers, reporting, states
from app.orders.carts import cart_completed, check_fulfillment, resolve_customer
from app.orders.dependencies import CART, bound_channel, cart_not_found, cart_scope
from app.orders.models import FulfillmentEvent, Order, OrderLine
from app.orders.schemas import CheckoutIn, FulfillmentIn, OrderCreate, PaymentIn
from app.orders.sourcing import engine
from app.orders.sourcing import service as sourcing
from app.orders.views import render_order
from app.payments import service as payments
from app.pricing import engine as pricing_engine
from app.pricing.service import load_channel, quote_basket, reference_data

O = Order.__table__
OL = OrderLine.__table__
FE = FulfillmentEvent.__table__

INT64_MAX = 2**63 - 1
ATTEMPTS = 3



@dataclass(slots=True)
class Spec:
    """What an order is made of, whichever way it arrives."""

    channel: Any  # channels row
    lines: list[tuple[str, int, int | None]]  # (sku, quantity, external unit price)
    method: str
    location: str | None
    address: dict | None
    payment: PaymentIn
    coupons: list[str] = field(default_factory=list)
    customer_id: str | None = None
    customer_group: str | None = None
    email: str | None = None
    external_id: str | None = None
    cart_id: str | None = None
    sale: bool = False  # a POS sale: completed at the store at once
    store: Any = None  # the sale's store (inventory Loc)
    source: str | None = None  # attribution (app/reports/attribution.py)
    campaign: str | None = None
    line_field: str = "lines[{i}]"


# --------------------------------------------------------------------------- pricing

async def _external_quote(session: AsyncSession, spec: Spec, facts: dict[str, SkuInfo]) -> pricing_engine.QuoteResult:
    """The marketplace's own unit prices, taxed at the channel's rates; no promotions."""
    ch = spec.channel
    if spec.coupons:
        raise ApiError(422, "validation_error", "Coupons do not apply to orders with their own prices.",
                       errors=[{"field": "coupon_codes", "message": "Not with lines[].unit_price."}])
    tax = (await reference_data(session)).tax.get(ch.country, {})
    errors = [{"field": spec.line_field.format(i=i) + ".sku",
               "message": f"No tax rate for tax class {facts[s].tax_class!r} of {s!r} in {ch.country}."}
              for i, (s, _, _) in enumerate(spec.lines)
              if facts[s].tax_class not in tax and facts[s].tax_class != "zero"]
    if errors:
        raise ApiError(422, "no_tax_rate", errors[0]["message"], errors=errors)
    ctx = pricing_engine.Context(channel=ch.code, currency=ch.currency, prices_include_tax=ch.prices_include_tax,
                                 now=clock.now())
    items = [pricing_engine.Item(sku=s, quantity=q, unit_price=p or 0, tax_rate_bp=tax.get(facts[s].tax_class, 0),
                                 category=facts[s].category, components=tuple((c, n, 0) for c, n in facts[s].components))
             for s, q, p in spec.lines]
    return pricing_engine.price_items(items, [], ctx)


def _check_amounts(quote: pricing_engine.QuoteResult) -> None:
    figures = [quote.subtotal, quote.total, quote.tax_total, quote.discount_total]
    figures += [v for ln in quote.lines for v in (ln.subtotal, ln.total, ln.tax_amount)]
    if any(abs(v) > INT64_MAX for v in figures):
        raise ApiError(422, "validation_error", "The order's amounts are too large to record.",
                       errors=[{"field": "lines", "message": "Amounts exceed the largest recordable value."}])


def _unknown_skus(spec: Spec, stored: dict[str, str]) -> None:
    errors = [{"field": spec.line_field.format(i=i) + ".sku",
               "message": f"Unknown SKU {s!r} (or not sold in channel {spec.channel.code!r})."}
              for i, (s, _, _) in enumerate(spec.lines) if s not in stored]
    if errors:
        raise ApiError(422, "unknown_sku", errors[0]["message"], errors=errors)


# --------------------------------------------------------------------------- shortages

class _Unsourced(Exception):
    def __init__(self, plan: engine.Plan, locs: dict, stock: dict | None):
        self.plan, self.locs, self.stock = plan, locs, stock


async def _shortage_error(session: AsyncSession, spec: Spec, lines: list[engine.Line], plan: engine.Plan | None,
                          facts: dict[str, SkuInfo], locs: dict, skus: list[str] | None = None,
                          stock: dict | None = None) -> ApiError:
    """409 insufficient_stock naming every short line (SKU and quantity asked, never stock
    figures); for pickup / reserve the nearest other stores that have the whole basket."""
    index = {ln.key: i for i, ln in enumerate(lines)}
    if plan is not None:
        short = sourcing.shortages(plan, lines, stock)
    else:  # the stock went while we allocated, three times over: name what the inventory named
        wanted = set(skus or [])
        short = [{"line": ln.key, "sku": ln.sku, "requested": ln.quantity, "unsourced": ln.quantity}
                 for ln in lines if ln.sku in wanted or any(c in wanted for c, _ in ln.components)] or \
                [{"line": ln.key, "sku": ln.sku, "requested": ln.quantity, "unsourced": ln.quantity} for ln in lines]
    where = spec.location if spec.method != "ship" else None
    shortages = [{"sku": s["sku"], "requested": s["requested"], "unsourced": s["unsourced"],
                  **({"location": where} if where else {})} for s in short]
    errors = [{"field": spec.line_field.format(i=index[s["line"]]) + ".quantity",
               "message": f"{s['sku']!r}: not enough stock" + (f" at {where!r}" if where else "")
                          + f" for {s['requested']}."} for s in short]
    extra: dict[str, Any] = {"shortages": shortages}
    if spec.method != "ship":
        chosen = locs.get(spec.location) if spec.location else None
        extra["alternatives"] = await sourcing.alternatives(session, lines, facts, chosen,
                                                            exclude=[spec.location] if spec.location else [],
                                                            channel=None if spec.sale else spec.channel)
    names = ", ".join(repr(s["sku"]) for s in short)
    detail = f"Not enough stock of {names}" + (f" at {where!r}" if where else "") + "."
    return ApiError(409, "insufficient_stock", detail, errors=errors, **extra)


# --------------------------------------------------------------------------- the one path

async def place(session: AsyncSession, who: Principal | None, spec: Spec, order_id: str | None = None) -> dict:
    """Price, write, source and allocate one order; returns it rendered for `who`."""
    ch = spec.channel
    if spec.method == "ship" and not spec.sale and not spec.address:
        raise ApiError(422, "validation_error", "A shipment needs the shipping address: give fulfillment.address.",
                       errors=[{"field": "fulfillment.address", "message": "Required for ship."}])
    if not spec.lines:
        raise ApiError(422, "validation_error", "The order has no lines.",
                       errors=[{"field": "lines", "message": "At least one line."}])
    external = [p is not None for _, _, p in spec.lines]
    if any(external) and not all(external):
        bad = [i for i, e in enumerate(external) if not e]
        raise ApiError(422, "validation_error", "Give unit_price on every line or on none.",
                       errors=[{"field": spec.line_field.format(i=i) + ".unit_price", "message": "Required: other "
                                "lines carry their own price."} for i in bad])
    bound = who is not None and who.role in ("storefront", "marketplace")
    if all(external):
        facts = await sourcing.sku_facts(session, {s for s, _, _ in spec.lines}, channel=ch.code if bound else None)
        stored = canonical({s for s, _, _ in spec.lines}, facts)
        _unknown_skus(spec, stored)
        spec.lines = [(stored[s], q, p) for s, q, p in spec.lines]
        quote = await _external_quote(session, spec, facts)
    else:
        quote = await quote_basket(session, ch, [(s, q) for s, q, _ in spec.lines],
                                   customer_group=spec.customer_group, coupon_codes=spec.coupons)
        facts = await sourcing.sku_facts(session, {ln.sku for ln in quote.lines})
    _check_amounts(quote)
    order_id = order_id or new_id("ord")
    provider = spec.payment.provider.value
    paid, client_secret = await payments.start(session, provider, spec.payment.reference, order_id=order_id,
                                               amount=quote.total, channel=ch, customer_id=spec.customer_id, who=who,
                                               method=spec.payment.method)
    try:
        return await _write(session, who, spec, quote, facts, order_id, paid, client_secret)
    except BaseException:
        await payments.abandon(provider, paid.get("payment_reference") if client_secret else None)
        raise


async def _write(session: AsyncSession, who: Principal | None, spec: Spec, quote: pricing_engine.QuoteResult,
                 facts: dict[str, SkuInfo], order_id: str, paid: dict, client_secret: str | None) -> dict:
    """Steps 4 to 6: the order and its lines, sourcing and allocation, events."""
    ch = spec.channel
    external = [p is not None for _, _, p in spec.lines]
    now = clock.now()
    line_ids = [new_id("ol") for _ in quote.lines]
    sold = spec.sale
    on_lines = reporting.on_lines(created_at=now, channel=ch.code, currency=quote.currency, location=spec.location,
                                  coupon_codes=spec.coupons)
    lines = [{
        "id": lid, "order_id": order_id, "position": i, "sku": q.sku, "title": facts[q.sku].title if q.sku in facts else None,
        "quantity": q.quantity, "unit_price": q.unit_price, "subtotal": q.subtotal, "discounts": q.discounts,
        "discount_total": q.discount_total, "total": q.total, "tax_rate_bp": q.tax_rate_bp, "tax_amount": q.tax_amount,
        "components": q.components, "quantity_fulfilled": q.quantity if sold else 0, "quantity_cancelled": 0,
        "quantity_returned": 0, **on_lines,
    } for i, (lid, q) in enumerate(zip(line_ids, quote.lines))]
    pending = paid["payment_status"] == "unpaid" and client_secret is not None
    status = (states.OrderStatus.fulfilled if sold else
              states.OrderStatus.pending_payment if pending else states.OrderStatus.confirmed)
    order = {
        "id": order_id, "channel": ch.code, "external_id": spec.external_id, "cart_id": spec.cart_id,
        "customer_id": spec.customer_id, "email": spec.email, "status": str(status),
        "payment_provider": spec.payment.provider.value, "amount_authorized": 0, "amount_captured": 0,
        "amount_refunded": 0, "multicapture": False, "capture_before": None, "payment_expires_at": None, **paid,
        "price_source": "external" if all(external) else "quote", "currency": quote.currency,
        "prices_include_tax": quote.prices_include_tax, "subtotal": quote.subtotal,
        "discount_total": quote.discount_total, "tax_total": quote.tax_total, "total": quote.total,
        "coupon_codes": list(spec.coupons), "promotions": quote.promotions, "fulfillment_method": spec.method,
        "shipping_address": spec.address, "location": spec.location, "source": spec.source,
        "campaign": spec.campaign, **reporting.of_lines(lines),
        "api_key_id": who.key_id if who is not None else None, "version": 1, "created_at": now, "updated_at": now,
    }
    number = await numbers.number_value(session, ch.type)
    stmt = insert(O).values(**order, number=number).returning(O.c.number)
    if spec.external_id is not None:
        try:
            async with session.begin_nested():
                order["number"] = (await session.execute(stmt)).scalar_one()
        except IntegrityError:
            await _duplicate_external_id(session, ch.code, spec.external_id)
            raise
    else:
        order["number"] = (await session.execute(stmt)).scalar_one()
    await session.execute(insert(OL), lines)

    # ---- sourcing and allocation
    eng_lines = sourcing.engine_lines(((lid, q.sku, q.quantity) for lid, q in zip(line_ids, quote.lines)), facts)
    by_key = {ln.key: ln for ln in eng_lines}
    if sold:
        rows = await _sell(session, order, eng_lines, by_key, facts, spec)
    else:
        rows = await _source(session, order, eng_lines, by_key, facts, spec)

    # ---- events and the answer
    rendered = render_order(order, lines, [(r, r["lines"]) for r in rows], who)
    if client_secret is not None:  # for Stripe.js; never stored for a replay (the router marks it secret)
        rendered["payment"]["client_secret"] = client_secret
    event_order = render_order(order, lines, [(r, r["lines"]) for r in rows], None)
    # an order's events name its store (pickup, reserve, POS) or its first fulfillment's location
    where = order["location"] or (rows[0]["location"] if rows else None)
    events = [{"type": "order.created", "data": event_order, "channel": ch.code, "location": where}]
    if status == states.OrderStatus.confirmed:
        events.append({"type": "order.confirmed", "data": event_order, "channel": ch.code, "location": where})
    for f in event_order["fulfillments"]:
        events.append({"type": "fulfillment.created", "data": f, "channel": ch.code, "location": f["location"]})
        if f["status"] == states.S.collected:
            events.append({"type": "fulfillment.collected", "data": f, "channel": ch.code, "location": f["location"]})
    await emit_many(session, events)
    return rendered


async def _duplicate_external_id(session: AsyncSession, channel: str, external_id: str) -> None:
    row = (await session.execute(select(O.c.id, O.c.number).where(O.c.channel == channel,
                                                                  O.c.external_id == external_id))).first()
    if row is not None:
        raise ApiError(409, "duplicate_external_id",
                       f"Order {row.number} of channel {channel!r} already has external_id {external_id!r}.",
                       errors=[{"field": "external_id", "message": f"Already used by order {row.number} ({row.id})."}],
                       order=row.id, order_number=row.number)


async def _source(session: AsyncSession, order: dict, lines: list[engine.Line], by_key: dict, facts: dict,
                  spec: Spec) -> list[dict]:
    """Plan and allocate, re-planning when concurrent orders overtook the snapshot (see the module doc)."""
    ch = spec.channel
    address = spec.address or {}
    destination = (address["lat"], address["lon"]) if address.get("lat") is not None and address.get("lon") is not None else None
    strategy, max_splits = sourcing.strategy_of(ch)
    expires = clock.now() + timedelta(days=ch.pickup_hold_days) if spec.method == "reserve" else None
    last: inventory.InsufficientStock | None = None
    for attempt in range(ATTEMPTS):
        try:
            async with session.begin_nested():
                snapshot: dict = {}
                plan, locs = await sourcing.plan(session, channel=ch, method=spec.method, lines=lines,
                                                 destination=destination, chosen_location=spec.location,
                                                 strategy=strategy, max_splits=max_splits, facts=facts,
                                                 snapshot=snapshot)
                if spec.method != "ship":
                    sourcing.check_method_location(spec.method, locs.get(spec.location) if spec.location else None,
                                                   spec.location, channel=None if spec.sale else ch)
                if not plan.ok:
                    raise _Unsourced(plan, locs, snapshot.get(spec.location) if spec.location else None)
                return await sourcing.allocate(session, order["id"], plan, by_key, locs, method=spec.method,
                                               facts=facts, expires_at=expires)
        except _Unsourced as exc:
            raise await _shortage_error(session, spec, lines, exc.plan, facts, exc.locs, stock=exc.stock) from None
        except inventory.InsufficientStock as exc:
            last = exc
        except DBAPIError as exc:
            if sqlstate(exc) not in RETRYABLE_SQLSTATES or attempt == ATTEMPTS - 1:
                raise
    assert last is not None
    raise await _shortage_error(session, spec, lines, None, facts, {}, [s["sku"] for s in last.shortages])


async def _sell(session: AsyncSession, order: dict, lines: list[engine.Line], by_key: dict, facts: dict,
                spec: Spec) -> list[dict]:
    """A POS sale: everything from the till's store, reserved and committed at once."""
    loc = spec.store
    found = {loc.code: loc, loc.id: loc}
    everything = tuple(engine.LinePart(ln.key, ln.sku, ln.quantity) for ln in lines)
    plan = engine.Plan("pos_sale", "pickup", (engine.Assignment(loc.code, loc.id, everything, "pos_sale"),), (), ())
    rows = await sourcing.allocate(session, order["id"], plan, by_key, {loc.code: loc}, method="pickup", facts=facts,
                                   status=states.S.collected)
    for r in rows:
        need = inventory.expand(((p["sku"], loc.id, p["quantity"]) for p in r["lines"]), facts)
        await inventory.commit_expanded(session, dict(need), reference=r["id"], reason="sale", locs=found)
    now = clock.now()
    await session.execute(insert(FE), [{"id": new_id("fev"), "fulfillment_id": r["id"], "from_status": None,
                                         "to_status": str(states.S.collected), "api_key_id": order["api_key_id"],
                                         "note": "POS sale", "created_at": now} for r in rows])
    return rows


# --------------------------------------------------------------------------- the use cases

async def checkout_cart(session: AsyncSession, who: Principal, cart_id: str, body: CheckoutIn,
                        expected_version: int | None) -> dict:
    """POST /v1/carts/{id}/checkout (see the module doc)."""
    order_id = new_id("ord")
    now = clock.now()
    claimed = (await session.execute(
        update(CART).where(CART.c.id == cart_id, CART.c.status == "open", *cart_scope(who))
        .values(status="completed", order_id=order_id, version=CART.c.version + 1, updated_at=now)
        .returning(*CART.c))).first()
    if claimed is None:
        row = (await session.execute(select(CART).where(CART.c.id == cart_id, *cart_scope(who)))).first()
        if row is None:
            raise cart_not_found(cart_id)
        raise cart_completed(row)
    if expected_version is not None and expected_version != claimed.version - 1:
        raise ApiError(412, "version_conflict", f"The cart is at version {claimed.version - 1}, the request expected "
                                                f"version {expected_version}.", current_version=claimed.version - 1)
    if not claimed.lines:
        raise ApiError(422, "validation_error", "The cart is empty.",
                       errors=[{"field": "lines", "message": "Add at least one line before checkout."}])
    channel = await load_channel(session, claimed.channel)
    f = claimed.fulfillment or {}
    customer_id = group = email = None
    if claimed.customer_id is not None:
        try:
            customer_id, group, email = await resolve_customer(session, claimed.customer_id, None)
        except ApiError as exc:  # erased since: the order goes without a customer
            if exc.status != 422:
                raise
    spec = Spec(channel=channel, lines=[(ln["sku"], ln["quantity"], None) for ln in claimed.lines],
                method=f.get("method", "ship"), location=f.get("location"), address=f.get("address"),
                payment=body.payment, coupons=list(claimed.coupon_codes or []), customer_id=customer_id,
                customer_group=group, email=email, cart_id=claimed.id, source=claimed.source,
                campaign=claimed.campaign)
    return await place(session, who, spec, order_id)


async def create_order(session: AsyncSession, who: Principal, body: OrderCreate) -> dict:
    """POST /v1/orders: a POS sale or a marketplace import (see the module doc)."""
    channel = await load_channel(session, bound_channel(who, body.channel))
    sale = who.role == "pos" or (who.is_admin and channel.type == "pos")
    if who.role == "marketplace" and body.external_id is None:
        raise ApiError(422, "validation_error", "A marketplace import needs its external_id.",
                       errors=[{"field": "external_id", "message": "Required for marketplace keys."}])
    if who.role == "pos" and any(ln.unit_price is not None for ln in body.lines):
        raise ApiError(422, "validation_error", "POS sales are priced by the quote engine.",
                       errors=[{"field": f"lines[{i}].unit_price", "message": "Not for POS sales."}
                               for i, ln in enumerate(body.lines) if ln.unit_price is not None])
    f = body.fulfillment
    store = None
    if sale:
        named = f.location if f is not None else None
        if f is not None and "method" in f.model_fields_set and f.method.value != "pickup":
            raise ApiError(422, "validation_error", "A POS sale is handed over at the store: method pickup.",
                           errors=[{"field": "fulfillment.method", "message": "Omit it, or pickup."}])
        if who.role == "pos":
            if named is not None and named not in (who.location, who.location_id):
                raise ApiError(422, "validation_error", "A POS key sells at its own store.",
                               errors=[{"field": "fulfillment.location", "message": f"Omit it, or {who.location!r}."}])
            named = who.location
        if named is None:
            raise ApiError(422, "validation_error", "A sale needs its store: give fulfillment.location.",
                           errors=[{"field": "fulfillment.location", "message": "Required for a sale."}])
        store = (await inventory.locations_by_code(session, [named])).get(named)
        if store is None or not store.active:
            raise ApiError(422, "validation_error", f"Location {named!r} is unknown or not active.",
                           errors=[{"field": "fulfillment.location", "message": "An active store is required."}])
        choice = {"method": "pickup", "location": store.code, "address": None}
    else:
        choice = await check_fulfillment(session, f or FulfillmentIn(), channel=channel)
    customer_id, group, email = await resolve_customer(session, body.customer, who)
    payment = body.payment or PaymentIn(provider="external")
    if sale and payment.provider != "external":
        raise ApiError(422, "validation_error", "A sale at the till is paid there: payment.provider external "
                                                "(cash or the card terminal, with its reference).",
                       errors=[{"field": "payment.provider", "message": "A POS sale is paid: external."}])
    spec = Spec(channel=channel, lines=[(ln.sku, ln.quantity, ln.unit_price) for ln in body.lines],
                method=choice["method"], location=choice["location"], address=choice["address"], payment=payment,
                coupons=list(dict.fromkeys(c.upper() for c in body.coupon_codes)), customer_id=customer_id,
                customer_group=group, email=email, external_id=body.external_id, sale=sale, store=store,
                source=body.source, campaign=body.campaign)
    return await place(session, who, spec)
