"""seed-demo shows each order flow: a click & collect waiting at a store, a ship-from-store order,
a dropship order and a POS sale, each as the role that works on it sees it; seeding twice adds nothing."""
from sqlalchemy import update

from app.core.db import unit_of_work
from app.orders.models import Order
from app.orders.seed import AMAZON_ORDER_ID, demo_orders
from app.orders.seed import seed_demo as seed_orders
from app.seed import _domain_seeders, seed_locations_and_channels
from tests.conftest import auth, make_key
from tests.inventory.builders import ledger_matches


async def _seed_what_orders_build_on() -> None:
    """Locations, channels and every domain seed before the orders' (each in its own unit of work)."""
    async with unit_of_work() as s:
        await seed_locations_and_channels(s)
    seeders = _domain_seeders()
    assert seeders[-1] is seed_orders  # registered, last
    for seeder in seeders[:-1]:
        async with unit_of_work() as s:
            await seeder(s)


async def _forget_earlier_demo_orders() -> None:
    """The database is shared by the whole run: an earlier seed-demo (tests/e2e) placed the demo
    orders already and other tests may have moved the clock past their holds since. Unmark them
    (and free the marketplace order id), so this test places and checks orders of its own."""
    async with unit_of_work() as s:
        await s.execute(update(Order).where(Order.source.like("seed-demo:%")).values(source=None, external_id=None))


async def test_seed_demo_orders_show_each_flow(client, admin):
    await _seed_what_orders_build_on()  # nothing new when an earlier test of this run seeded
    await _forget_earlier_demo_orders()
    async with unit_of_work() as s:
        made = await seed_orders(s)
    assert len(made) == 4 and all(m.startswith("order ") for m in made), made
    async with unit_of_work() as s:
        ids = await demo_orders(s)
    assert set(ids) == {"click-and-collect", "ship-from-store", "dropship", "pos-sale"}

    hamburg = auth(await make_key("pos", channel="pos-de", location="st-hamburg"))
    berlin = auth(await make_key("pos", channel="pos-de", location="st-berlin"))
    partner = auth(await make_key("dropshipper", location="pt-weinhaus"))
    web = auth(await make_key("storefront", channel="web-de"))
    amazon = auth(await make_key("marketplace", channel="amazon-de"))

    # (a) click & collect: waiting at st-hamburg with a pickup code; the shop shows it to the customer
    r = await client.get(f"/v1/orders/{ids['click-and-collect']}", headers=web)
    assert r.status_code == 200, r.text
    cc = r.json()
    assert cc["channel"] == "web-de" and cc["status"] == "confirmed" and cc["payment_status"] == "unpaid"
    assert cc["customer"] is not None and cc["cart"] is not None
    [f] = cc["fulfillments"]
    assert (f["location"], f["method"], f["kind"], f["status"]) == ("st-hamburg", "pickup", "pickup", "ready")
    assert f["sourcing"]["rule"] == "chosen_store" and f["expires_at"] is not None
    assert f["pickup_code"] and 6 <= len(f["pickup_code"]) <= 8
    r = await client.get("/v1/fulfillments", params={"status": "ready", "method": "pickup"}, headers=hamburg)
    queue = {x["id"]: x for x in r.json()["data"]}
    assert queue[f["id"]]["pickup_code"] == f["pickup_code"] and queue[f["id"]]["order_number"] == cc["number"]

    # (b) ship-from-store: the warehouse has no jeans; Berlin is nearer to the customer than Hamburg
    r = await client.get(f"/v1/orders/{ids['ship-from-store']}", headers=admin)
    sfs = r.json()
    assert sfs["channel"] == "web-de" and sfs["status"] == "confirmed" and sfs["payment_status"] == "paid"
    [f] = sfs["fulfillments"]
    assert (f["location"], f["method"], f["kind"], f["status"]) == ("st-berlin", "ship", "ship", "open")
    assert f["sourcing"]["rule"] == "single_location"
    rejected = {x["location"]: x["reason"] for x in f["sourcing"]["rejected"]}
    assert rejected["wh-central"] == "no_stock" and rejected["st-hamburg"] == "further_away"
    r = await client.get("/v1/fulfillments", params={"status": "open", "method": "ship"}, headers=berlin)
    assert f["id"] in {x["id"] for x in r.json()["data"]}
    assert (await client.get(f"/v1/orders/{sfs['number']}", headers=berlin)).json()["id"] == sfs["id"]

    # (c) dropship: a marketplace import with its own price, in the wine partner's queue
    r = await client.get(f"/v1/orders/{ids['dropship']}", headers=amazon)
    ds = r.json()
    assert ds["channel"] == "amazon-de" and ds["external_id"] == AMAZON_ORDER_ID and ds["price_source"] == "external"
    assert ds["lines"][0]["unit_price"] == 1149 and ds["status"] == "confirmed"
    [f] = ds["fulfillments"]
    assert (f["location"], f["kind"], f["status"]) == ("pt-weinhaus", "dropship", "open")
    assert {x["location"]: x["reason"] for x in f["sourcing"]["rejected"]} == {"wh-central": "lower_priority"}
    r = await client.get("/v1/fulfillments", headers=partner)
    mine = {x["id"]: x for x in r.json()["data"]}
    assert mine[f["id"]]["order_number"] == ds["number"] and mine[f["id"]]["shipping_address"]["city"]
    r = await client.post("/v1/orders", json={"external_id": AMAZON_ORDER_ID,
                                              "lines": [{"sku": "WINE-RIES-075", "quantity": 1}],
                                              "fulfillment": {"address": {"line1": "x", "postal_code": "1",
                                                                          "city": "x", "country": "DE"}}},
                          headers=amazon)
    assert r.status_code == 409 and r.json()["code"] == "duplicate_external_id"

    # (d) POS sale at st-hamburg: completed at once, "3 für 2" applied, the goods left on_hand
    r = await client.get(f"/v1/orders/{ids['pos-sale']}", headers=hamburg)
    pos = r.json()
    assert pos["channel"] == "pos-de" and pos["status"] == "fulfilled" and pos["totals"]["discount_total"] > 0
    [f] = pos["fulfillments"]
    assert (f["location"], f["status"]) == ("st-hamburg", "collected")
    assert all(ln["quantity_fulfilled"] == ln["quantity"] for ln in pos["lines"])
    r = await client.get("/v1/customers/LC-100001/orders", headers=admin)
    assert {cc["id"], pos["id"]} <= {o["id"] for o in r.json()["data"]}
    assert await ledger_matches(["CHOC-DARK-100", "CHEESE-GOUDA", "TS-BLK-M", "JEANS-BLU-32", "WINE-RIES-075"]) == []

    # a second run creates nothing
    async with unit_of_work() as s:
        assert await seed_orders(s) == []
    async with unit_of_work() as s:
        assert await demo_orders(s) == ids
