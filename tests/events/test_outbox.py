"""The transactional outbox: every business change of API.md section 11 writes its event with
the change (the resource as it was after it), and a change that is not committed leaves none
(a 409 checkout, a 4xx whose idempotent answer is stored, a process killed before its commit)."""
import httpx
import pytest
from sqlalchemy import func, select

from app.core.db import sessionmaker
from app.events.models import Event
from tests.catalog.builders import create_product, sku
from tests.conftest import Server, auth, uid
from tests.events.helpers import count_events, read_from, tail
from tests.orders.fulfillment_world import NEAR_HAMBURG, World, at
from tests.returns.world import post_return, ret_line
from tests.helpers import assert_problem

SECTION_11 = {"product.created", "product.updated", "price_list.updated", "inventory.level_changed",
              "order.created", "order.confirmed", "order.cancelled", "fulfillment.created", "fulfillment.ready",
              "fulfillment.shipped", "fulfillment.collected", "fulfillment.declined", "return.created",
              "refund.created"}


def test_every_type_the_code_emits_is_known():
    """Subscriptions and the `type` filter accept only registered types: a domain that emits a new
    one adds it to app/events/types.py (else nobody could subscribe to it by name)."""
    import re
    from pathlib import Path

    from app.events.types import EVENT_TYPES
    from app.orders.states import S
    from app.payments.service import OP_EVENTS
    from tests.conftest import ROOT

    found = set()
    for path in (ROOT / "app").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r'emit(?:_many)?\(\s*session,\s*"([a-z_]+\.[a-z_]+)"', text))
        found |= set(re.findall(r'"type":\s*"([a-z_]+\.[a-z_]+)"', text)) - {"http.request"}  # ASGI messages
    found |= {f"fulfillment.{s}" for s in S if s != S.open} | set(OP_EVENTS.values())
    assert len(found) > 15
    assert found - set(EVENT_TYPES) == set(), "emitted but not in app/events/types.py"
    assert SECTION_11 <= set(EVENT_TYPES)


@pytest.fixture
async def w(client, admin):
    return await World().setup(client, admin)


async def test_every_section_11_change_writes_its_event(client, admin, w):
    cursor = await tail(client, admin)
    # catalog and prices
    product = await create_product(client, admin, channels=[w.web], variants=[{"sku": sku("EV")}])
    r = await client.patch(f"/v1/products/{product['id']}", headers=admin, json={"title": "Renamed"})
    assert r.status_code == 200, r.text
    r = await client.put(f"/v1/price-lists/{w.prices}/prices", headers=admin, json=[{"sku": w.a, "amount": 1100}])
    assert r.status_code == 200, r.text
    # stock, a pickup handed over, a shipment, a decline, a cancellation, a sale returned with a refund
    await w.stock(client, w.hh, **{w.a: 5, w.p: 3})
    await w.stock(client, w.wh, **{w.b: 5})
    pickup = await w.place(client, {w.a: 1}, method="pickup", location=w.hh)
    f = at(pickup, w.hh)
    r = await client.post(f"/v1/fulfillments/{f['id']}/ready", headers=w.pos_hh)
    assert r.status_code == 200, r.text
    r = await client.post(f"/v1/fulfillments/{f['id']}/collect", headers=w.pos_hh,
                          json={"pickup_code": r.json()["pickup_code"]})
    assert r.status_code == 200, r.text
    shipped = await w.place(client, {w.b: 1})
    r = await client.post(f"/v1/fulfillments/{at(shipped, w.wh)['id']}/ship", headers=admin,
                          json={"carrier": "DHL", "tracking_number": "TRACK-1"})
    assert r.status_code == 200, r.text
    declined = await w.place(client, {w.a: 1}, method="ship", address=NEAR_HAMBURG, shop=w.app, channel=w.sfs)
    r = await client.post(f"/v1/fulfillments/{at(declined, w.hh)['id']}/decline", headers=w.pos_hh,
                          json={"reason": "broken shelf"})
    assert r.status_code == 200, r.text
    cancelled = await w.place(client, {w.b: 1})
    r = await client.post(f"/v1/orders/{cancelled['id']}/cancel", headers=admin, json={})
    assert r.status_code == 200, r.text
    r = await client.post("/v1/orders", headers=w.pos_hh, json={"lines": [{"sku": w.p, "quantity": 1}]})
    assert r.status_code == 201, r.text
    sale = await w.order(client, r.json()["id"])
    ret = await post_return(client, w.pos_hh, sale, [ret_line(sale, w.p, 1)])

    events, _ = await read_from(client, admin, cursor, until=lambda evs: SECTION_11 <= {e["type"] for e in evs})
    assert SECTION_11 <= {e["type"] for e in events}, SECTION_11 - {e["type"] for e in events}
    for e in events:
        assert set(e) == {"id", "type", "created_at", "data"} and e["id"].startswith("evt_")

    def of(type_, **match):
        return [e["data"] for e in events if e["type"] == type_ and all(e["data"].get(k) == v for k, v in match.items())]

    # each payload is the resource as it was after the change
    assert of("product.created", id=product["id"])[0]["title"] == product["title"]
    assert of("product.updated", id=product["id"])[-1]["title"] == "Renamed"
    assert of("price_list.updated", code=w.prices)
    assert {(d["sku"], d["on_hand"]) for d in of("inventory.level_changed", location=w.hh)} >= {(w.a, 5), (w.p, 3)}
    assert of("order.created", id=pickup["id"])[0]["number"] == pickup["number"]
    assert of("fulfillment.ready", id=f["id"])[0]["status"] == "ready"
    assert of("fulfillment.collected", id=f["id"])[0]["status"] == "collected"
    ship = of("fulfillment.shipped", order=shipped["id"])[0]
    assert ship["status"] == "shipped" and ship["tracking_number"] == "TRACK-1"
    assert of("fulfillment.declined", order=declined["id"])[0]["reason"] == "broken shelf"
    assert of("order.cancelled", id=cancelled["id"])[0]["status"] == "cancelled"
    assert of("return.created", id=ret["id"])[0]["refund_total"] == ret["refund_total"]
    assert of("refund.created", order=sale["id"])[0]["amount"] == ret["refund_total"]
    # nothing twice: one order.created per order
    assert len(of("order.created", id=pickup["id"])) == 1


async def test_a_409_checkout_emits_nothing(client, admin, w):
    await w.stock(client, w.wh, **{w.b: 1})
    r = await client.post("/v1/carts", headers=w.shop, json={
        "channel": w.web, "lines": [{"sku": w.b, "quantity": 5}], "fulfillment": {"method": "ship",
                                                                                 "address": NEAR_HAMBURG}})
    assert r.status_code == 201, r.text
    cart = r.json()
    before = await count_events()
    # the checkout writes (the cart claimed, the order and its lines) before it finds the shortage
    assert_problem(await client.post(f"/v1/carts/{cart['id']}/checkout", headers=w.shop,
                                     json={"payment": {"provider": "none"}}), 409, "insufficient_stock")
    # with an Idempotency-Key the 409 answer is stored and committed; its work is not
    key = uid("idem")
    for _ in range(2):
        assert_problem(await client.post(f"/v1/carts/{cart['id']}/checkout", headers={**w.shop, "Idempotency-Key": key},
                                         json={"payment": {"provider": "none"}}), 409, "insufficient_stock")
    assert await count_events() == before
    r = await client.get(f"/v1/carts/{cart['id']}", headers=w.shop)
    assert r.json()["status"] == "open"  # nothing of the failed checkouts stayed
    # a 422 in the middle of a write: a return at the till is written (its rows) before the refund
    # finds that store credit needs a customer the sale does not have
    await w.stock(client, w.hh, **{w.a: 2})
    r = await client.post("/v1/orders", headers=w.pos_hh, json={"lines": [{"sku": w.a, "quantity": 1}]})
    assert r.status_code == 201, r.text
    sale = await w.order(client, r.json()["id"])
    before = await count_events()
    body = assert_problem(await client.post("/v1/returns", headers=w.pos_hh, json={
        "order": sale["id"], "refund_method": "store_credit", "lines": [ret_line(sale, w.a, 1)]}), 422)
    assert body["code"] == "refund_method_not_allowed"
    assert await count_events() == before
    r = await client.get("/v1/returns", headers=admin, params={"order": sale["id"]})
    assert r.json()["data"] == []


async def test_a_change_killed_before_its_commit_leaves_no_event(client, admin_secret):
    """The handler ran to its end (the product and its product.created event were written in the
    request's transaction); the process died before the commit: neither exists."""
    server = Server(env={"UC_TEST_CRASH_POINTS": "1"}).start()
    handle = uid("crash")
    try:
        with pytest.raises(httpx.TransportError):
            httpx.post(server.base + "/v1/products", headers=auth(admin_secret) | {"X-Test-Crash": "before_commit"},
                       json={"title": "Never", "handle": handle, "variants": [{"sku": sku("CR")}]}, timeout=30)
        server.proc.wait(10)
        assert server.proc.returncode == -9
    finally:
        server.stop()
    async with sessionmaker()() as s:
        n = (await s.execute(select(func.count()).select_from(Event).where(
            Event.type == "product.created", Event.data["handle"].as_string() == handle))).scalar_one()
    assert n == 0
    r = await client.get(f"/v1/products/{handle}", headers=auth(admin_secret))
    assert r.status_code == 404
