"""Demo orders for `python -m app.cli seed-demo`: one order of each flow, placed through the
order use cases (carts.create_cart + checkout.checkout_cart, checkout.create_order,
fulfillments.ready) as the back office would, on the demo retailer of the other seeds:

    click-and-collect  web-de, Anna Schmidt (loyalty card LC-100001) picks up at st-hamburg:
                       checked out with payment `none` (she pays at the counter), then readied
                       by the store: status `ready`, a pickup code, held for the channel's
                       pickup_hold_days
    ship-from-store    web-de, jeans shipped to Berlin: the warehouse holds no jeans (a store
                       range), Hamburg and Berlin both do, Berlin is nearer: sourcing rule
                       `single_location`, st-hamburg rejected `further_away`, wh-central
                       `no_stock`; left `open` for the store to ship (or decline)
    dropship           amazon-de import (external_id, the marketplace's own unit price) of six
                       bottles of Riesling: the wine partner pt-weinhaus ships it (kind
                       `dropship`; the demo gives it priority 5, before the warehouse's 10);
                       left `open` in the partner's work queue
    pos-sale           pos-de at st-hamburg, Anna's loyalty card at the till: 3 chocolates
                       ("3 für 2") and a Gouda, completed at once (fulfillment `collected`)

Each order carries `source = "seed-demo:<flow>"` (the attribution column), which is how a
second run recognises it: an existing flow is never placed again, so running the seed twice
creates nothing. A flow that cannot be placed on the data it finds (a store sold out in an
older demo database, a product archived) is skipped with a warning in the log, inside its own
savepoint, so the rest of the seed still commits. Nothing here commits: app/seed.py runs
every seeder in one unit of work, after catalog, pricing, inventory and customers.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core.errors import ApiError
from app.orders import carts, checkout, fulfillments
from app.orders.models import Order
from app.orders.schemas import CartCreate, CheckoutIn, OrderCreate

log = logging.getLogger("app.orders.seed")
O = Order.__table__
MARK = "seed-demo:"
# The back office, without an API key of its own (api_key_id stays empty on what it writes).
BACK_OFFICE = Principal(key_id=None, role="admin")  # type: ignore[arg-type]

ANNA = "LC-100001"  # app/customers/seed.py
BERLIN = {"name": "Jonas Weber", "line1": "Kastanienallee 12", "postal_code": "10435", "city": "Berlin",
          "country": "DE", "lat": 52.5386, "lon": 13.4094}
FRANKFURT = {"name": "Lea Hoffmann", "line1": "Berger Straße 88", "postal_code": "60316", "city": "Frankfurt am Main",
             "country": "DE", "lat": 50.1205, "lon": 8.6990}
AMAZON_ORDER_ID = "302-4711815-0042001"


async def _click_and_collect(session: AsyncSession) -> dict:
    cart = await carts.create_cart(session, BACK_OFFICE, CartCreate(
        channel="web-de", customer=ANNA,
        lines=[{"sku": "TS-BLK-M", "quantity": 2}, {"sku": "COFFEE-ESP-1KG", "quantity": 1}],
        fulfillment={"method": "pickup", "location": "st-hamburg"}))
    order = await checkout.checkout_cart(session, BACK_OFFICE, cart["id"],
                                         CheckoutIn(payment={"provider": "none"}), None)
    await fulfillments.ready(session, order["fulfillments"][0]["id"], BACK_OFFICE, expected_version=None)
    return order


async def _ship_from_store(session: AsyncSession) -> dict:
    cart = await carts.create_cart(session, BACK_OFFICE, CartCreate(
        channel="web-de", lines=[{"sku": "JEANS-BLU-32", "quantity": 1}],
        fulfillment={"method": "ship", "address": BERLIN}))
    return await checkout.checkout_cart(session, BACK_OFFICE, cart["id"],
                                        CheckoutIn(payment={"provider": "external", "reference": "paypal-5KX31947"}),
                                        None)


async def _dropship(session: AsyncSession) -> dict:
    return await checkout.create_order(session, BACK_OFFICE, OrderCreate(
        channel="amazon-de", external_id=AMAZON_ORDER_ID,
        lines=[{"sku": "WINE-RIES-075", "quantity": 6, "unit_price": 1149}],
        fulfillment={"method": "ship", "address": FRANKFURT}))


async def _pos_sale(session: AsyncSession) -> dict:
    return await checkout.create_order(session, BACK_OFFICE, OrderCreate(
        channel="pos-de", customer=ANNA,
        lines=[{"sku": "CHOC-DARK-100", "quantity": 3}, {"sku": "CHEESE-GOUDA", "quantity": 1}],
        fulfillment={"location": "st-hamburg"}, payment={"provider": "external", "reference": "till-hh-1/000001"}))


FLOWS: list[tuple[str, str, Callable[[AsyncSession], Awaitable[dict]]]] = [
    ("click-and-collect", "click & collect ready at st-hamburg", _click_and_collect),
    ("ship-from-store", "ship-from-store", _ship_from_store),
    ("dropship", "dropship by pt-weinhaus", _dropship),
    ("pos-sale", "POS sale at st-hamburg", _pos_sale),
]


async def demo_orders(session: AsyncSession) -> dict[str, str]:
    """{flow: order id} of the demo orders that exist."""
    rows = (await session.execute(select(O.c.source, O.c.id).where(O.c.source.like(MARK + "%")))).all()
    return {r.source[len(MARK):]: r.id for r in rows}


async def seed_demo(session: AsyncSession) -> list[str]:
    have = await demo_orders(session)
    made: list[str] = []
    for flow, label, place in FLOWS:
        if flow in have:
            continue
        try:
            async with session.begin_nested():
                order = await place(session)
                await session.execute(update(O).where(O.c.id == order["id"]).values(source=MARK + flow))
        except ApiError as exc:  # the data is not what the demo expects: leave this flow out
            log.warning("seed-demo: demo order %r skipped: %s", flow, exc)
            continue
        made.append(f"order {order['number']} ({label})")
    return made
