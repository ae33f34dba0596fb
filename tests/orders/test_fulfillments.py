"""Fulfillments through the HTTP API, each step by the role that really does it: the shop's
storefront key places, the store's POS readies and hands over, the partner ships, the back
office cancels; a store declines and the lines go elsewhere at once."""
import asyncio

import httpx
import pytest
from sqlalchemy import select

from app.core.db import sessionmaker
from app.orders.models import Fulfillment, FulfillmentEvent
from tests.helpers import assert_problem
from tests.inventory.builders import ledger_matches
from tests.orders.fulfillment_world import NEAR_BERLIN, NEAR_HAMBURG, World, at, events


ACTIONS = {"ship": "shipped", "ready": "ready", "collect": "collected", "decline": "declined", "cancel": "cancelled"}
BODIES = {"ship": {"carrier": "DHL", "tracking_number": "1"}, "decline": {"reason": "x"}, "cancel": {}}


@pytest.fixture
async def w(client, admin):
    return await World().setup(client, admin)


async def post(client, path, headers, body=None, if_match=None):
    h = dict(headers)
    if if_match is not None:
        h["If-Match"] = f'"{if_match}"'
    return await client.post(path, headers=h, json=body)


async def test_click_and_collect(client, w):
    await w.stock(client, w.hh, **{w.a: 3})
    order = await w.place(client, {w.a: 2}, method="pickup", location=w.hh)
    f = at(order, w.hh)
    assert (f["method"], f["kind"], f["status"]) == ("pickup", "pickup", "open")
    assert (await w.level(client, w.a, w.hh))["reserved"] == 2

    # the store sees it in its queue, readies it
    r = await client.get("/v1/fulfillments", params={"status": "open"}, headers=w.pos_hh)
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()["data"]] == [f["id"]]
    r = await post(client, f"/v1/fulfillments/{f['id']}/ready", w.pos_hh)
    assert r.status_code == 200, r.text
    ready = r.json()
    assert ready["status"] == "ready" and r.headers["ETag"] == '"2"'
    code = ready["pickup_code"]
    assert len(code) == 8 and code.isalnum() and not set(code) & set("01OIL")
    assert ready["expires_at"] is not None
    assert (await events("fulfillment.ready", id=f["id"]))[0].get("pickup_code") is None  # never in events
    # the shop shows the code to its customer
    r = await client.get(f"/v1/orders/{order['id']}", headers=w.shop)
    assert at(r.json(), w.hh)["pickup_code"] == code

    # a wrong code is refused, and the try is counted although the request failed
    r = await post(client, f"/v1/fulfillments/{f['id']}/collect", w.pos_hh, {"pickup_code": "WRONG234"})
    body = assert_problem(r, 422, "invalid_pickup_code")
    assert body["attempts_left"] == 4
    async with sessionmaker()() as s:
        assert (await s.get(Fulfillment, f["id"])).pickup_attempts == 1

    # the right code (as a customer reads it out) hands it over: the goods leave the store
    spoken = code.lower()[:4] + "-" + code.lower()[4:]
    r = await post(client, f"/v1/fulfillments/{f['id']}/collect", w.pos_hh, {"pickup_code": spoken})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "collected" and r.json()["pickup_code"] is None
    lv = await w.level(client, w.a, w.hh)
    assert (lv["on_hand"], lv["reserved"]) == (1, 0)
    assert await ledger_matches([w.a]) == []
    o = await w.order(client, order["id"])
    assert o["status"] == "fulfilled" and o["lines"][0]["quantity_fulfilled"] == 2
    assert await events("fulfillment.collected", id=f["id"])
    r = await client.get("/v1/inventory/movements", params={"reference": f["id"]}, headers=w.admin)
    assert [(m["reason"], m["quantity"]) for m in r.json()["data"]] == [("sale", -2)]
    async with sessionmaker()() as s:
        hist = (await s.execute(select(FulfillmentEvent.from_status, FulfillmentEvent.to_status)
                                .where(FulfillmentEvent.fulfillment_id == f["id"])
                                .order_by(FulfillmentEvent.created_at, FulfillmentEvent.id))).all()
    assert [tuple(h) for h in hist] == [("open", "ready"), ("ready", "collected")]

    # once collected, nothing else
    r = await post(client, f"/v1/fulfillments/{f['id']}/collect", w.pos_hh, {"pickup_code": code})
    assert assert_problem(r, 409, "invalid_transition")["current_status"] == "collected"


async def _ready(client, w, fid, headers=None) -> str:
    r = await post(client, f"/v1/fulfillments/{fid}/ready", headers or w.pos_hh)
    assert r.status_code == 200, r.text
    return r.json()["pickup_code"]


async def test_wrong_codes_lock_the_pickup_until_a_new_code(client, w):
    await w.stock(client, w.hh, **{w.a: 1})
    f = at(await w.place(client, {w.a: 1}, method="pickup", location=w.hh), w.hh)
    code = await _ready(client, w, f["id"])
    for left in (4, 3, 2, 1, 0):
        r = await post(client, f"/v1/fulfillments/{f['id']}/collect", w.pos_hh, {"pickup_code": "ZZZZ9999"})
        assert assert_problem(r, 422, "invalid_pickup_code")["attempts_left"] == left
    # locked: even the right code is refused now
    r = await post(client, f"/v1/fulfillments/{f['id']}/collect", w.pos_hh, {"pickup_code": code})
    assert_problem(r, 409, "pickup_locked")
    # the store issues a new code: the old one is dead, the new one works
    new = await _ready(client, w, f["id"])
    assert new != code
    r = await post(client, f"/v1/fulfillments/{f['id']}/collect", w.pos_hh, {"pickup_code": code})
    assert_problem(r, 422, "invalid_pickup_code")
    r = await post(client, f"/v1/fulfillments/{f['id']}/collect", w.pos_hh, {"pickup_code": new})
    assert r.status_code == 200 and r.json()["status"] == "collected"
    assert await ledger_matches([w.a]) == []


async def test_pickup_code_is_required_and_a_reservation_has_none(client, w):
    await w.stock(client, w.hh, **{w.a: 2})
    pick = at(await w.place(client, {w.a: 1}, method="pickup", location=w.hh), w.hh)
    await _ready(client, w, pick["id"])
    r = await post(client, f"/v1/fulfillments/{pick['id']}/collect", w.pos_hh, {})
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "pickup_code"
    res = at(await w.place(client, {w.a: 1}, method="reserve", location=w.hh), w.hh)
    r = await post(client, f"/v1/fulfillments/{res['id']}/collect", w.pos_hh, {"pickup_code": "ABCD2345"})
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "pickup_code"


async def test_click_and_reserve_is_paid_and_taken_at_the_till(client, w):
    await w.stock(client, w.be, **{w.b: 2})
    order = await w.place(client, {w.b: 2}, method="reserve", location=w.be)
    f = at(order, w.be)
    assert (f["kind"], f["status"]) == ("reserve", "open") and f["expires_at"] is not None
    assert order["payment_status"] == "unpaid"
    # a reservation is never "ready"
    r = await post(client, f"/v1/fulfillments/{f['id']}/ready", w.pos_be)
    assert assert_problem(r, 409, "invalid_transition")["current_status"] == "open"
    # unpaid: the till names the payment it took
    r = await post(client, f"/v1/fulfillments/{f['id']}/collect", w.pos_be, {})
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "payment_reference"
    r = await post(client, f"/v1/fulfillments/{f['id']}/collect", w.pos_be, {"payment_reference": "till-7/0042"})
    assert r.status_code == 200, r.text
    o = await w.order(client, order["id"])
    assert (o["status"], o["payment_status"], o["payment"]["provider"], o["payment"]["reference"]) == (
        "fulfilled", "paid", "external", "till-7/0042")
    assert o["payment"]["captured"]["amount"] == o["totals"]["total"]
    lv = await w.level(client, w.b, w.be)
    assert (lv["on_hand"], lv["reserved"]) == (0, 0)
    assert await ledger_matches([w.b]) == []


async def test_warehouse_and_partner_ship_their_parts(client, w):
    await w.stock(client, w.wh, **{w.a: 5})
    await w.stock(client, w.pt, **{w.p: 4})
    order = await w.place(client, {w.a: 1, w.p: 2}, address=NEAR_BERLIN)
    assert {f["location"] for f in order["fulfillments"]} == {w.wh, w.pt}
    drop = at(order, w.pt)
    assert drop["kind"] == "dropship"

    # the partner's queue: its own work, and from the order only what it needs
    r = await client.get("/v1/fulfillments", headers=w.drop)
    assert r.status_code == 200, r.text
    [item] = [x for x in r.json()["data"] if x["order"] == order["id"]]
    assert item["id"] == drop["id"] and item["order_number"] == order["number"]
    assert item["shipping_address"]["city"] == "Berlin"
    assert [(ln["sku"], ln["quantity"]) for ln in item["lines"]] == [(w.p, 2)] and item["lines"][0]["title"]
    assert item["sourcing"] == {"rule": "partner_stock"}
    text = r.text
    for secret in ("email", "phone", "totals", "unit_price", "total"):
        assert f'"{secret}"' not in text
    assert all(x["location"] == w.pt for x in r.json()["data"])
    # the other partner does not see it
    r = await client.get("/v1/fulfillments", headers=w.drop2)
    assert all(x["id"] != drop["id"] for x in r.json()["data"])

    r = await post(client, f"/v1/fulfillments/{drop['id']}/ship", w.drop,
                   {"carrier": "DHL", "tracking_number": "00340434161094042557"}, if_match=1)
    assert r.status_code == 200, r.text
    shipped = r.json()
    assert shipped["status"] == "shipped"
    assert shipped["tracking"] == {"carrier": "DHL", "tracking_number": "00340434161094042557"}
    assert (await w.level(client, w.p, w.pt))["on_hand"] == 2
    o = await w.order(client, order["id"])
    assert o["status"] == "partially_fulfilled"
    [ev] = await events("fulfillment.shipped", id=drop["id"])
    assert ev["tracking_number"] == "00340434161094042557" and ev["order_number"] == order["number"]

    r = await post(client, f"/v1/fulfillments/{at(order, w.wh)['id']}/ship", w.admin,
                   {"carrier": "UPS", "tracking_number": "1Z999"})
    assert r.status_code == 200, r.text
    o = await w.order(client, order["id"])
    assert o["status"] == "fulfilled"
    assert [ln["quantity_fulfilled"] for ln in o["lines"]] == [1, 2]
    assert await ledger_matches([w.a, w.p]) == []


async def test_decline_resources_to_the_next_store(client, w):
    await w.stock(client, w.hh, **{w.a: 2})
    await w.stock(client, w.be, **{w.a: 2})
    order = await w.place(client, {w.a: 2}, shop=w.app, channel=w.sfs, address=NEAR_HAMBURG)
    first = at(order, w.hh)
    assert first["sourcing"]["rule"] in ("single_location", "distance")

    r = await post(client, f"/v1/fulfillments/{first['id']}/decline", w.pos_hh, {"reason": "shelf empty"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == "declined" and out["reason"] == "shelf empty"
    assert out["unfulfillable"] == [] and out["kept"] == []
    [moved] = out["resourced"]
    assert set(moved) == {"id", "object", "status", "lines"}  # a store learns where its lines went, no more

    o = await w.order(client, order["id"])
    new = at(o, w.be)
    assert new["id"] == moved["id"] and new["replaces"] == first["id"] and new["status"] == "open"
    assert new["sourcing"]["rule"] == "single_location"
    assert {"location": w.hh, "reason": "excluded"} in new["sourcing"]["rejected"]
    assert "declined by " + w.hh in new["sourcing"]["reason"] and "shelf empty" in new["sourcing"]["reason"]
    assert o["status"] == "confirmed"
    assert (await w.level(client, w.a, w.hh))["reserved"] == 0
    assert (await w.level(client, w.a, w.be))["reserved"] == 2
    [ev] = await events("fulfillment.declined", id=first["id"])
    assert ev["resourced_to"] == [new["id"]] and ev["reason"] == "shelf empty"
    assert await events("fulfillment.created", id=new["id"])

    # Berlin declines too: nobody else may serve it (Hamburg declined already): unfulfillable
    r = await post(client, f"/v1/fulfillments/{new['id']}/decline", w.pos_be, {"reason": "damaged"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["resourced"] == []
    assert [(u["sku"], u["quantity"]) for u in out["unfulfillable"]] == [(w.a, 2)]
    o = await w.order(client, order["id"])
    assert o["status"] == "cancelled" and o["lines"][0]["quantity_cancelled"] == 2
    # the order says so: the units nobody can serve (Hamburg's decline was taken over by Berlin)
    assert o["unfulfillable"] == [{"order_line_id": o["lines"][0]["id"], "sku": w.a, "quantity": 2}]
    assert (await w.level(client, w.a, w.be))["reserved"] == 0
    assert await events("order.cancelled", id=order["id"])
    assert await ledger_matches([w.a]) == []


async def test_partner_declines_and_the_warehouse_takes_over(client, w):
    await w.stock(client, w.pt, **{w.p: 3})
    await w.stock(client, w.wh, **{w.p: 1})
    order = await w.place(client, {w.p: 2})
    drop = at(order, w.pt)  # the warehouse has too few: the partner takes it
    assert {"location": w.wh, "reason": "insufficient_stock"} in drop["sourcing"]["rejected"]
    await w.stock(client, w.wh, **{w.p: 5})  # the warehouse is restocked meanwhile
    r = await post(client, f"/v1/fulfillments/{drop['id']}/decline", w.drop, {"reason": "discontinued"}, if_match=1)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "declined" and r.headers["ETag"] == '"2"'
    [moved] = r.json()["resourced"]
    assert set(moved) == {"id", "object", "status", "lines"}
    o = await w.order(client, order["id"])
    new = at(o, w.wh)
    assert (new["id"], new["kind"], new["replaces"]) == (moved["id"], "ship", drop["id"])
    assert new["sourcing"]["rule"] == "single_location"
    assert {"location": w.pt, "reason": "excluded"} in new["sourcing"]["rejected"]
    assert (await w.level(client, w.p, w.pt))["reserved"] == 0
    assert (await w.level(client, w.p, w.wh))["reserved"] == 2
    # the partner no longer sees work for it; admin sees where it went in full
    r = await client.get("/v1/fulfillments", params={"order": order["id"], "status": "open"}, headers=w.drop)
    assert r.json()["data"] == []
    r = await client.get(f"/v1/fulfillments/{new['id']}", headers=w.drop)
    assert_problem(r, 404, "not_found")


async def test_partial_decline_keeps_the_rest(client, w):
    await w.stock(client, w.hh, **{w.a: 2, w.b: 1})
    await w.stock(client, w.be, **{w.a: 1})
    order = await w.place(client, {w.a: 2, w.b: 1}, shop=w.app, channel=w.sfs)
    first = at(order, w.hh)
    r = await post(client, f"/v1/fulfillments/{first['id']}/decline", w.admin,
                   {"reason": "one is scratched", "lines": [{"sku": w.a.lower(), "quantity": 1}]})
    assert r.status_code == 200, r.text
    out = r.json()
    [kept], [moved] = out["kept"], out["resourced"]
    assert kept["location"] == w.hh and kept["status"] == "open" and kept["sourcing"]["rule"] == "kept"
    assert sorted((ln["sku"], ln["quantity"]) for ln in kept["lines"]) == sorted([(w.a, 1), (w.b, 1)])
    assert moved["location"] == w.be and [(ln["sku"], ln["quantity"]) for ln in moved["lines"]] == [(w.a, 1)]
    hh_a, hh_b = await w.level(client, w.a, w.hh), await w.level(client, w.b, w.hh)
    assert (hh_a["reserved"], hh_b["reserved"]) == (1, 1)
    assert (await w.level(client, w.a, w.be))["reserved"] == 1
    # too many, or a SKU not held there
    r = await post(client, f"/v1/fulfillments/{kept['id']}/decline", w.pos_hh,
                   {"reason": "x", "lines": [{"sku": w.a, "quantity": 2}, {"sku": w.p}]})
    body = assert_problem(r, 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["lines[0].quantity", "lines[1].sku"]
    # the order goes on: ship both parts
    for fid, who in ((kept["id"], w.pos_hh), (moved["id"], w.pos_be)):
        r = await post(client, f"/v1/fulfillments/{fid}/ship", who, {"carrier": "DHL", "tracking_number": "1"})
        assert r.status_code == 200, r.text
    o = await w.order(client, order["id"])
    assert o["status"] == "fulfilled" and [ln["quantity_fulfilled"] for ln in o["lines"]] == [2, 1]
    assert await ledger_matches([w.a, w.b]) == []


async def test_a_declined_pickup_cannot_move_to_another_store(client, w):
    await w.stock(client, w.hh, **{w.a: 1})
    await w.stock(client, w.be, **{w.a: 5})
    order = await w.place(client, {w.a: 1}, method="pickup", location=w.hh)
    f = at(order, w.hh)
    r = await post(client, f"/v1/fulfillments/{f['id']}/decline", w.pos_hh, {"reason": "broken"})
    assert r.status_code == 200, r.text
    assert r.json()["resourced"] == [] and r.json()["unfulfillable"][0]["quantity"] == 1
    o = await w.order(client, order["id"])
    assert o["status"] == "cancelled"
    assert (await w.level(client, w.a, w.hh))["reserved"] == 0


async def test_transitions_out_of_order(client, w):
    await w.stock(client, w.hh, **{w.a: 10})
    ship = at(await w.place(client, {w.a: 1}, shop=w.app, channel=w.sfs), w.hh)
    pick = at(await w.place(client, {w.a: 1}, method="pickup", location=w.hh), w.hh)
    fid, pid = ship["id"], pick["id"]
    tracking = {"carrier": "DHL", "tracking_number": "1"}
    # a shipment is never ready nor collected
    for path, body in (("ready", None), ("collect", {"pickup_code": "AAAA2222"})):
        r = await post(client, f"/v1/fulfillments/{fid}/{path}", w.pos_hh, body)
        assert assert_problem(r, 409, "invalid_transition")["current_status"] == "open"
    # a pickup is not shipped, and not collected before it is ready
    r = await post(client, f"/v1/fulfillments/{pid}/ship", w.pos_hh, tracking)
    assert_problem(r, 409, "invalid_transition")
    r = await post(client, f"/v1/fulfillments/{pid}/collect", w.pos_hh, {"pickup_code": "AAAA2222"})
    assert_problem(r, 409, "invalid_transition")
    # shipped is final
    assert (await post(client, f"/v1/fulfillments/{fid}/ship", w.pos_hh, tracking)).status_code == 200
    for path, who, body in (("ship", w.pos_hh, tracking), ("decline", w.pos_hh, {"reason": "x"}),
                            ("cancel", w.admin, None), ("ready", w.pos_hh, None)):
        r = await post(client, f"/v1/fulfillments/{fid}/{path}", who, body)
        body = assert_problem(r, 409, "invalid_transition")
        assert body["current_status"] == "shipped" and "shipped" in body["detail"]
    # cancelled is final too, and nothing moved
    r = await post(client, f"/v1/fulfillments/{pid}/cancel", w.admin, {"reason": "customer called"})
    assert r.status_code == 200
    r = await post(client, f"/v1/fulfillments/{pid}/ready", w.pos_hh)
    assert assert_problem(r, 409, "invalid_transition")["current_status"] == "cancelled"
    lv = await w.level(client, w.a, w.hh)
    assert (lv["on_hand"], lv["reserved"]) == (9, 0)
    assert await ledger_matches([w.a]) == []


async def test_stale_if_match(client, w):
    await w.stock(client, w.hh, **{w.a: 1})
    f = at(await w.place(client, {w.a: 1}, method="pickup", location=w.hh), w.hh)
    r = await client.get(f"/v1/fulfillments/{f['id']}", headers=w.pos_hh)
    assert r.headers["ETag"] == '"1"'
    r = await post(client, f"/v1/fulfillments/{f['id']}/ready", w.pos_hh, if_match=2)
    assert assert_problem(r, 412, "version_conflict")["current_version"] == 1
    r = await post(client, f"/v1/fulfillments/{f['id']}/ready", w.pos_hh, if_match=1)
    assert r.status_code == 200 and r.headers["ETag"] == '"2"'
    r = await post(client, f"/v1/fulfillments/{f['id']}/collect", w.pos_hh, {"pickup_code": "x"}, if_match=1)
    assert_problem(r, 412, "version_conflict")
    r = await post(client, f"/v1/fulfillments/{f['id']}/cancel", w.admin, if_match=1)
    assert_problem(r, 412, "version_conflict")
    async with sessionmaker()() as s:
        assert (await s.get(Fulfillment, f["id"])).pickup_attempts == 0  # a refused request counts no try


async def test_scope_and_roles(client, w):
    await w.stock(client, w.hh, **{w.a: 5})
    await w.stock(client, w.pt, **{w.p: 5})
    pick = at(await w.place(client, {w.a: 1}, method="pickup", location=w.hh), w.hh)
    drop = at(await w.place(client, {w.p: 1}), w.pt)
    actions = (("ship", {"carrier": "DHL", "tracking_number": "1"}), ("ready", None),
               ("collect", {"pickup_code": "AAAA2222"}), ("decline", {"reason": "x"}), ("cancel", None))
    # another store's POS, another partner: 404 as if it did not exist
    for who, f in ((w.pos_be, pick), (w.drop2, drop), (w.drop, pick), (w.pos_hh, drop)):
        assert_problem(await client.get(f"/v1/fulfillments/{f['id']}", headers=who), 404, "not_found")
        for path, body in actions:
            if (who in (w.drop, w.drop2) and path in ("ready", "collect")) or path == "cancel":
                continue  # the role may not do that at all (403 below)
            assert_problem(await post(client, f"/v1/fulfillments/{f['id']}/{path}", who, body), 404, "not_found")
    r = await client.get("/v1/fulfillments", params={"location": w.hh}, headers=w.pos_be)
    assert_problem(r, 404, "not_found")
    # roles that never work fulfillments, or not this step
    for who in (w.shop, w.marketplace):
        assert_problem(await client.get("/v1/fulfillments", headers=who), 403, "forbidden")
        assert_problem(await client.get(f"/v1/fulfillments/{pick['id']}", headers=who), 403, "forbidden")
        for path, body in actions:
            assert_problem(await post(client, f"/v1/fulfillments/{pick['id']}/{path}", who, body), 403, "forbidden")
        assert_problem(await post(client, f"/v1/orders/{pick['order']}/cancel", who), 403, "forbidden")
    for path, body in (("ready", None), ("collect", {"pickup_code": "AAAA2222"}), ("cancel", None)):
        assert_problem(await post(client, f"/v1/fulfillments/{drop['id']}/{path}", w.drop, body), 403, "forbidden")
    assert_problem(await post(client, f"/v1/fulfillments/{pick['id']}/cancel", w.pos_hh), 403, "forbidden")
    assert_problem(await post(client, f"/v1/orders/{pick['order']}/cancel", w.pos_hh), 403, "forbidden")
    assert_problem(await client.get("/v1/fulfillments/ful_nope", headers=w.admin), 404, "not_found")
    assert_problem(await post(client, "/v1/fulfillments/ful_nope/ready", w.pos_hh), 404, "not_found")
    # admin sees everything; its queue filters by location, status and method
    r = await client.get("/v1/fulfillments", params={"location": w.hh, "method": "pickup", "status": "open"},
                         headers=w.admin)
    assert pick["id"] in [x["id"] for x in r.json()["data"]]
    assert all((x["location"], x["method"], x["status"]) == (w.hh, "pickup", "open") for x in r.json()["data"])
    r = await client.get("/v1/fulfillments", params={"order": pick["order"]}, headers=w.admin)
    assert [x["id"] for x in r.json()["data"]] == [pick["id"]]
    r = await client.get("/v1/fulfillments", params={"location": "nowhere"}, headers=w.admin)
    assert r.json() == {"data": [], "next_cursor": None}


async def test_queue_pages(client, w):
    await w.stock(client, w.hh, **{w.a: 10})
    ids = [at(await w.place(client, {w.a: 1}, method="pickup", location=w.hh), w.hh)["id"] for _ in range(3)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/fulfillments", params=params, headers=w.pos_hh)
        assert r.status_code == 200, r.text
        seen += [x["id"] for x in r.json()["data"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(seen) and seen[-3:] == ids


async def test_admin_cancels_orders(client, w):
    await w.stock(client, w.wh, **{w.a: 5})
    await w.stock(client, w.pt, **{w.p: 5})
    # nothing left yet: everything is cancelled, the stock returns
    order = await w.place(client, {w.a: 2, w.p: 1})
    r = await post(client, f"/v1/orders/{order['number']}/cancel", w.admin, {"reason": "fraud check"}, if_match=2)
    assert_problem(r, 412, "version_conflict")
    r = await post(client, f"/v1/orders/{order['number']}/cancel", w.admin, {"reason": "fraud check"}, if_match=1)
    assert r.status_code == 200, r.text
    o = r.json()
    assert o["status"] == "cancelled" and {f["status"] for f in o["fulfillments"]} == {"cancelled"}
    assert [ln["quantity_cancelled"] for ln in o["lines"]] == [2, 1]
    assert (await w.level(client, w.a, w.wh))["reserved"] == 0 and (await w.level(client, w.p, w.pt))["reserved"] == 0
    assert await events("order.cancelled", id=order["id"])
    assert len(await events("fulfillment.cancelled", order=order["id"])) == 2
    r = await post(client, f"/v1/orders/{order['id']}/cancel", w.admin)
    assert assert_problem(r, 409, "invalid_transition")["current_status"] == "cancelled"

    # the partner shipped its part already: the rest is cancelled, the shipped part stays
    order = await w.place(client, {w.a: 1, w.p: 1})
    r = await post(client, f"/v1/fulfillments/{at(order, w.pt)['id']}/ship", w.drop,
                   {"carrier": "GLS", "tracking_number": "77"})
    assert r.status_code == 200
    r = await post(client, f"/v1/orders/{order['id']}/cancel", w.admin)
    assert r.status_code == 200, r.text
    o = r.json()
    assert {f["location"]: f["status"] for f in o["fulfillments"]} == {w.wh: "cancelled", w.pt: "shipped"}
    assert [(ln["quantity_fulfilled"], ln["quantity_cancelled"]) for ln in o["lines"]] == [(0, 1), (1, 0)]
    assert o["status"] == "fulfilled"  # what is left of it went out
    assert_problem(await post(client, "/v1/orders/ord_nope/cancel", w.admin), 404, "not_found")
    assert await ledger_matches([w.a, w.p]) == []


# --------------------------------------------------------------------------- at the same time (live server)

async def test_guessing_in_parallel_never_gets_more_tries(client, w, live_server):
    await w.stock(client, w.hh, **{w.a: 1})
    f = at(await w.place(client, {w.a: 1}, method="pickup", location=w.hh), w.hh)
    await _ready(client, w, f["id"])
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as http:
        rs = await asyncio.gather(*(http.post(f"/v1/fulfillments/{f['id']}/collect", headers=w.pos_hh,
                                              json={"pickup_code": f"ZZZZ{i:04d}".replace("0", "2").replace("1", "3")})
                                    for i in range(12)))
    codes = sorted(r.status_code for r in rs)
    assert codes == [409] * 7 + [422] * 5, [r.text for r in rs]
    async with sessionmaker()() as s:
        assert (await s.get(Fulfillment, f["id"])).pickup_attempts == 5


async def test_ship_cancel_and_decline_race(client, w, live_server):
    """Each fulfillment gets a ship, a cancel and a decline at once: exactly one wins, the
    others answer 409, the stock adds up and no request fails with a 5xx (no deadlock)."""
    await w.stock(client, w.hh, **{w.a: 20, w.b: 20})
    await w.stock(client, w.be, **{w.a: 20, w.b: 20})
    orders = [await w.place(client, {w.a: 1, w.b: 1}, shop=w.app, channel=w.sfs) for _ in range(6)]
    fids = [at(o, w.hh)["id"] for o in orders]

    async def race(http, fid):
        return await asyncio.gather(
            http.post(f"/v1/fulfillments/{fid}/ship", headers=w.pos_hh, json=BODIES["ship"]),
            http.post(f"/v1/fulfillments/{fid}/cancel", headers=w.admin, json={}),
            http.post(f"/v1/fulfillments/{fid}/decline", headers=w.pos_hh, json={"reason": "busy"}),
            http.post(f"/v1/orders/{orders[fids.index(fid)]['id']}/cancel", headers=w.admin))

    async with httpx.AsyncClient(base_url=live_server, timeout=60) as http:
        results = await asyncio.gather(*(race(http, fid) for fid in fids))
    for rs in results:
        statuses = [r.status_code for r in rs]
        assert all(s in (200, 409) for s in statuses), [r.text for r in rs]
        assert 1 <= statuses.count(200) <= 2, statuses  # the order cancel may still cancel a re-sourced one
    hh_a, hh_b = await w.level(client, w.a, w.hh), await w.level(client, w.b, w.hh)
    shipped = sum(1 for rs in results if rs[0].status_code == 200)
    assert (hh_a["on_hand"], hh_b["on_hand"]) == (20 - shipped, 20 - shipped)
    assert hh_a["reserved"] == hh_b["reserved"] == 0
    be_open = 0
    for o in orders:
        o = await w.order(client, o["id"])
        be_open += sum(1 for f in o["fulfillments"] if f["location"] == w.be and f["status"] == "open")
    assert (await w.level(client, w.a, w.be))["reserved"] == be_open
    assert await ledger_matches([w.a, w.b]) == []


async def test_a_wrong_code_is_counted_with_an_idempotency_key_too(client, w):
    """A guesser may send each try with a new Idempotency-Key: the try must stay counted."""
    await w.stock(client, w.hh, **{w.a: 1})
    f = at(await w.place(client, {w.a: 1}, method="pickup", location=w.hh), w.hh)
    await _ready(client, w, f["id"])
    for i in range(2):
        r = await client.post(f"/v1/fulfillments/{f['id']}/collect", json={"pickup_code": "ZZZZ9999"},
                              headers={**w.pos_hh, "Idempotency-Key": f"guess-{f['id']}-{i}"})
        assert_problem(r, 422, "invalid_pickup_code")
    async with sessionmaker()() as s:
        assert (await s.get(Fulfillment, f["id"])).pickup_attempts == 2


async def test_pay_at_pickup_and_no_second_charge(client, w):
    await w.stock(client, w.hh, **{w.a: 2})
    unpaid = await w.place(client, {w.a: 1}, method="pickup", location=w.hh, payment="none")
    paid = await w.place(client, {w.a: 1}, method="pickup", location=w.hh, payment="external")
    f1, f2 = at(unpaid, w.hh), at(paid, w.hh)
    code1, code2 = await _ready(client, w, f1["id"]), await _ready(client, w, f2["id"])
    r = await post(client, f"/v1/fulfillments/{f2['id']}/collect", w.pos_hh,
                   {"pickup_code": code2, "payment_reference": "till-1"})
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "payment_reference"
    r = await post(client, f"/v1/fulfillments/{f1['id']}/collect", w.pos_hh,
                   {"pickup_code": code1, "payment_reference": "till-2"})
    assert r.status_code == 200, r.text
    o = await w.order(client, unpaid["id"])
    assert (o["payment_status"], o["payment"]["reference"], o["status"]) == ("paid", "till-2", "fulfilled")
    async with sessionmaker()() as s:
        assert (await s.get(Fulfillment, f2["id"])).pickup_attempts == 0  # a refused request used no try


# --------------------------------------------------------------------------- every move out of order

PATHS = {  # how each kind reaches each state (by admin), from open
    "ship": {"open": [], "shipped": ["ship"], "declined": ["decline"], "cancelled": ["cancel"]},
    "dropship": {"open": [], "shipped": ["ship"], "declined": ["decline"], "cancelled": ["cancel"]},
    "pickup": {"open": [], "ready": ["ready"], "collected": ["ready", "collect"], "declined": ["decline"],
               "cancelled": ["cancel"], "expired": ["ready", "expire"]},
    "reserve": {"open": [], "collected": ["collect"], "declined": ["decline"], "cancelled": ["cancel"],
                "expired": ["expire"]},
}


async def test_every_move_the_tables_forbid_answers_409(client, w):
    from datetime import timedelta

    from app.core import clock
    from app.orders import states
    from app.orders.jobs import expire_fulfillments

    await w.stock(client, w.hh, **{w.a: 100})
    await w.stock(client, w.pt, **{w.p: 100})

    async def new(kind):
        if kind == "ship":
            return at(await w.place(client, {w.a: 1}, shop=w.app, channel=w.sfs), w.hh)
        if kind == "dropship":
            return at(await w.place(client, {w.p: 1}), w.pt)
        return at(await w.place(client, {w.a: 1}, method=kind, location=w.hh), w.hh)

    cases = []
    for kind, paths in PATHS.items():
        for state, steps in paths.items():
            f = await new(kind)
            assert f["kind"] == kind
            code = None
            for step in steps:
                if step == "expire":
                    continue
                body = BODIES.get(step)
                if step == "collect":
                    body = {"pickup_code": code} if kind == "pickup" else {"payment_reference": "till"}
                r = await post(client, f"/v1/fulfillments/{f['id']}/{step}", w.admin, body)
                assert r.status_code == 200, (kind, state, step, r.text)
                code = r.json().get("pickup_code") or code
            cases.append((kind, state, f, "expire" in steps))
    async def check(kind, state, f) -> int:
        r = await client.get(f"/v1/fulfillments/{f['id']}", headers=w.admin)
        assert r.json()["status"] == state, (kind, state, r.json())
        n = 0
        for action, target in ACTIONS.items():
            if states.allowed(kind, state, target) or (kind, state, action) == ("pickup", "ready", "ready"):
                continue
            body = BODIES.get(action, {"pickup_code": "AAAA2222"} if action == "collect" else None)
            r = await post(client, f"/v1/fulfillments/{f['id']}/{action}", w.admin, body)
            problem = assert_problem(r, 409, "invalid_transition")
            assert problem["current_status"] == state and problem["kind"] == kind, (kind, state, action)
            n += 1
        return n

    checked = 0
    for kind, state, f, expires in cases:
        if not expires:
            checked += await check(kind, state, f)
    try:
        clock.advance(timedelta(days=30))
        await expire_fulfillments()
        for kind, state, f, expires in cases:
            if expires:
                checked += await check(kind, state, f)
    finally:
        clock.reset()
    assert checked >= 30
    assert await ledger_matches([w.a, w.p]) == []


async def test_declines_race_checkouts_for_the_same_stock(client, w, live_server):
    """Stores decline (their lines move to the other store) while customers check out baskets
    that need both stores: no 5xx (a deadlock between the two is retried inside), no unit sold
    twice, the ledger adds up."""
    await w.stock(client, w.hh, **{w.a: 6, w.b: 12})
    await w.stock(client, w.be, **{w.a: 12, w.b: 6})
    orders = [await w.place(client, {w.a: 1, w.b: 1}, shop=w.app, channel=w.sfs) for _ in range(6)]
    fids = [at(o, w.hh)["id"] for o in orders]  # hh covers both nearest Hamburg

    async def checkout(http):
        r = await http.post("/v1/carts", headers=w.app, json={
            "channel": w.sfs, "lines": [{"sku": w.a, "quantity": 1}, {"sku": w.b, "quantity": 1}],
            "fulfillment": {"method": "ship", "address": NEAR_BERLIN}})
        assert r.status_code == 201, r.text
        return await http.post(f"/v1/carts/{r.json()['id']}/checkout", headers=w.app,
                               json={"payment": {"provider": "none"}})

    async with httpx.AsyncClient(base_url=live_server, timeout=60) as http:
        rs = await asyncio.gather(*(http.post(f"/v1/fulfillments/{fid}/decline", headers=w.pos_hh,
                                              json={"reason": "inventory count"}) for fid in fids),
                                  *(checkout(http) for _ in range(8)))
    assert all(r.status_code in (200, 201, 409) for r in rs), [r.text for r in rs if r.status_code >= 500]
    assert all(r.status_code == 200 for r in rs[:6]), [r.text for r in rs[:6]]
    for loc in (w.hh, w.be):
        for s in (w.a, w.b):
            lv = await w.level(client, s, loc)
            assert 0 <= lv["reserved"] <= lv["on_hand"], (s, loc, lv)
    assert await ledger_matches([w.a, w.b]) == []


async def test_transition_is_the_one_path_for_service_callers(client, w):
    """fulfillments.transition inside a unit of work: scope, If-Match, table, stock, history,
    event and order status, as the endpoints do."""
    from app.auth.principal import Principal
    from app.core.db import unit_of_work
    from app.core.errors import ApiError
    from app.orders import fulfillments

    await w.stock(client, w.hh, **{w.a: 3})
    order = await w.place(client, {w.a: 2}, shop=w.app, channel=w.sfs)
    f = at(order, w.hh)
    other_store = Principal("key_x", "pos", location="elsewhere", location_id="loc_elsewhere")
    admin = Principal("key_admin", "admin")
    async with unit_of_work() as session:
        with pytest.raises(ApiError) as exc:
            await fulfillments.transition(session, f["id"], "shipped", who=other_store, expected_version=None)
        assert exc.value.status == 404
        with pytest.raises(ApiError) as exc:
            await fulfillments.transition(session, f["id"], "shipped", who=admin, expected_version=7)
        assert exc.value.status == 412
        with pytest.raises(ValueError):
            await fulfillments.transition(session, f["id"], "declined", who=admin, expected_version=None)
        done = await fulfillments.transition(session, f["id"], "shipped", who=admin, expected_version=1,
                                             note="by hand", carrier="DHL", tracking_number="42")
        assert (done.row.status, done.row.version, done.row.carrier) == ("shipped", 2, "DHL")
    lv = await w.level(client, w.a, w.hh)
    assert (lv["on_hand"], lv["reserved"]) == (1, 0)
    assert (await w.order(client, order["id"]))["status"] == "fulfilled"
    assert await events("fulfillment.shipped", id=f["id"])
    assert await ledger_matches([w.a]) == []


async def test_a_transition_costs_the_same_whatever_its_size(client, w):
    from app.core.db import sql_statements
    from tests.catalog.builders import create_product, sku
    from tests.helpers import warm_keys

    many = [sku("M") for _ in range(8)]
    for s in many:
        await create_product(client, w.admin, channels=[w.sfs], variants=[{"sku": s}])
    r = await client.put(f"/v1/price-lists/{w.prices}/prices", headers=w.admin,
                         json=[{"sku": s, "amount": 500} for s in many])
    assert r.status_code == 200, r.text
    await w.stock(client, w.hh, **{s: 10 for s in many})
    await warm_keys(client, w.pos_hh)
    counts = []
    for n in (1, 8):
        f = at(await w.place(client, {s: 1 for s in many[:n]}, shop=w.app, channel=w.sfs), w.hh)
        with sql_statements() as statements:
            r = await post(client, f"/v1/fulfillments/{f['id']}/ship", w.pos_hh, BODIES["ship"])
        assert r.status_code == 200, r.text
        counts.append(len([s for s in statements if "FROM api_keys" not in s]))  # the key cache may be cold
    assert counts[0] == counts[1] <= 17, counts
