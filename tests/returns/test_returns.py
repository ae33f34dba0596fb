"""Returns received in a store or a warehouse, through the HTTP API with each role's real key:
any order, any store; quantities, the window, locations, conditions, who may do what."""
from datetime import timedelta

import pytest

from app.core import clock
from tests.helpers import assert_problem, create_location
from tests.inventory.builders import ledger_matches
from tests.returns.world import (
    Shop, events, line, line_id, money, movements, post_return, quantity_returned, ret_line,
)


@pytest.fixture
async def w(client, admin):
    return await Shop().setup(client, admin)


def _tax(total: int, rate_bp: int = 1900) -> int:
    """Tax inside a gross amount, half up (the quote engine's rule)."""
    return (2 * total * rate_bp + (10000 + rate_bp)) // (2 * (10000 + rate_bp))


async def test_a_web_order_comes_back_in_a_store(client, w):
    await w.stock(client, w.wh, **{w.a: 5, w.b: 5})
    order = await w.shipped(client, {w.a: 2, w.b: 1})
    assert {f["location"] for f in order["fulfillments"]} == {w.wh} and order["channel"] == w.web
    before = await w.level(client, w.a, w.hh)

    ret = await post_return(client, w.pos_hh, order, [ret_line(order, w.a, 1, reason="too small"),
                                                      ret_line(order, w.b, 1, "damaged")])
    # what the customer paid for exactly those units: 1 of 2 A (2000 gross), the one B (2000)
    a_tax, b_tax = _tax(2000), _tax(2000)
    assert line(order, w.a)["tax_amount"] == a_tax
    assert ret["status"] == "completed" and ret["location"] == w.hh  # the POS key's store by default
    assert (ret["order"], ret["order_number"], ret["channel"]) == (order["id"], order["number"], w.web)
    by_sku = {ln["sku"]: ln for ln in ret["lines"]}
    assert by_sku[w.a]["refund"] == money(1000) and by_sku[w.a]["tax"] == money(a_tax // 2)
    assert by_sku[w.a]["reason"] == "too small" and by_sku[w.a]["condition"] == "resellable"
    assert by_sku[w.b]["refund"] == money(2000) and by_sku[w.b]["tax"] == money(b_tax)
    assert by_sku[w.b]["condition"] == "damaged"
    assert ret["refund_total"] == money(3000) and ret["tax_total"] == money(a_tax // 2 + b_tax)
    assert all(ln["chargeback"] is None for ln in ret["lines"])
    assert ret["id"].startswith("ret_") and ret["code"] is None
    assert ret["refund"] is None  # the order was never paid ("none"): nothing to pay back

    # the resellable unit is on hand in the store that took it, and sellable there; the damaged one is not
    after = await w.level(client, w.a, w.hh)
    assert after["on_hand"] == before["on_hand"] + 1 and after["available"] == before["available"] + 1
    assert (await w.level(client, w.b, w.hh))["on_hand"] == 0
    assert await movements(ret["id"]) == [(w.a, "return", 1)]
    r = await client.get("/v1/availability", params={"skus": w.a, "location": w.hh}, headers=w.admin)
    assert r.status_code == 200, r.text
    assert {x["location"]: x["available"] for x in r.json()["data"][0]["locations"]}[w.hh] == after["available"]
    assert await ledger_matches([w.a, w.b]) == []

    # the order shows it, counted per line; its version moved
    o = await w.order(client, order["id"])
    assert line(o, w.a)["quantity_returned"] == 1 and line(o, w.b)["quantity_returned"] == 1
    assert o["returns"] == [{"id": ret["id"], "status": "completed", "location": w.hh, "code": None,
                             "refund_total": money(3000), "created_at": ret["created_at"]}]
    assert o["version"] > order["version"]
    r = await client.get("/v1/orders", params={"channel": w.web, "limit": 500}, headers=w.shop)
    listed = [x for x in r.json()["data"] if x["id"] == order["id"]]
    assert listed and listed[0]["returns"] == o["returns"]
    # one event, the return as answered
    assert [e["id"] for e in await events("return.created", order=order["id"])] == [ret["id"]]
    assert (await events("return.created", id=ret["id"]))[0] == ret

    # who sees it: the store that took it, the shop of the order's channel, admin
    for headers in (w.pos_hh, w.shop, w.admin):
        r = await client.get(f"/v1/returns/{ret['id']}", headers=headers)
        assert r.status_code == 200 and r.json() == ret, r.text
    for headers in (w.pos_be, w.app):  # another store, another channel's shop
        assert_problem(await client.get(f"/v1/returns/{ret['id']}", headers=headers), 404, "not_found")
    assert_problem(await client.get(f"/v1/returns/{ret['id']}", headers=w.drop), 403, "forbidden")
    r = await client.get("/v1/returns", params={"order": order["number"]}, headers=w.admin)
    assert [x["id"] for x in r.json()["data"]] == [ret["id"]]
    r = await client.get("/v1/returns", params={"location": w.hh, "status": "completed", "limit": 500},
                         headers=w.pos_hh)
    assert ret["id"] in [x["id"] for x in r.json()["data"]]
    r = await client.get("/v1/returns", params={"order": order["id"]}, headers=w.pos_be)
    assert r.json() == {"data": [], "next_cursor": None}


async def test_a_sale_at_one_till_comes_back_at_another_and_the_cash_is_paid_out(client, w):
    await w.stock(client, w.hh, **{w.p: 2})
    order = await w.sold_at(client, w.pos_hh, {w.p: 2})
    assert order["status"] == "fulfilled" and order["channel"] == w.pos_channel
    ret = await post_return(client, w.pos_be, order, [ret_line(order, w.p, 1)])
    assert ret["location"] == w.be and ret["refund_total"] == money(3000)
    refund = ret["refund"]
    assert refund is not None and refund["amount"] == money(3000), ret  # paid at a till: paid back at a till
    assert (await w.level(client, w.p, w.be))["on_hand"] == 1
    # both tills see it: the one that took it, and the one that sold the order
    for till in (w.pos_be, w.pos_hh):
        r = await client.get(f"/v1/returns/{ret['id']}", headers=till)
        assert r.status_code == 200, r.text
    o = await w.order(client, order["id"])
    assert o["payment_status"] == "partially_refunded"
    assert await events("refund.created") and await ledger_matches([w.p]) == []


async def test_partial_returns_never_exceed_what_was_fulfilled(client, w):
    await w.stock(client, w.wh, **{w.a: 3})
    order = await w.shipped(client, {w.a: 3})
    lid = line_id(order, w.a)
    first = await post_return(client, w.pos_hh, order, [ret_line(order, w.a, 2)])
    body = assert_problem(await client.post("/v1/returns", headers=w.pos_be, json={
        "order": order["id"], "lines": [ret_line(order, w.a, 2)], "refund_method": "cash"}), 409,
        "return_quantity_exceeded")
    assert body["errors"][0]["field"] == "lines[0].quantity" and lid in body["errors"][0]["message"]
    assert body["returnable"] == [{"order_line_id": lid, "sku": w.a, "quantity_fulfilled": 3,
                                   "quantity_returned": 2, "quantity_authorized": 0, "returnable": 1}]
    last = await post_return(client, w.pos_be, order, [ret_line(order, w.a, 1)])
    # all three units refund the line to the cent, tax too
    ln = line(order, w.a)
    assert first["refund_total"]["amount"] + last["refund_total"]["amount"] == ln["total"]
    assert first["tax_total"]["amount"] + last["tax_total"]["amount"] == ln["tax_amount"]
    assert await quantity_returned([lid]) == {lid: 3}
    assert_problem(await client.post("/v1/returns", headers=w.pos_be, json={
        "order": order["number"], "lines": [ret_line(order, w.a, 1)], "refund_method": "cash"}), 409,
        "return_quantity_exceeded")


async def test_one_line_in_two_conditions_and_duplicates(client, w):
    await w.stock(client, w.wh, **{w.b: 3})
    order = await w.shipped(client, {w.b: 3})
    body = assert_problem(await client.post("/v1/returns", headers=w.pos_hh, json={
        "order": order["number"], "refund_method": "cash",
        "lines": [ret_line(order, w.b, 1), ret_line(order, w.b, 1)]}), 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["lines[1].order_line_id"]
    body = assert_problem(await client.post("/v1/returns", headers=w.pos_hh, json={
        "order": order["number"], "refund_method": "cash",
        "lines": [ret_line(order, w.b, 2), ret_line(order, w.b, 2, "damaged")]}), 409, "return_quantity_exceeded")
    assert [e["field"] for e in body["errors"]] == ["lines[0].quantity", "lines[1].quantity"]
    ret = await post_return(client, w.pos_hh, order, [ret_line(order, w.b, 2), ret_line(order, w.b, 1, "damaged")])
    assert [(ln["quantity"], ln["condition"]) for ln in ret["lines"]] == [(2, "resellable"), (1, "damaged")]
    assert sum(ln["refund"]["amount"] for ln in ret["lines"]) == line(order, w.b)["total"]
    assert (await w.level(client, w.b, w.hh))["on_hand"] == 2
    assert await movements(ret["id"]) == [(w.b, "return", 2)]


async def test_damaged_units_are_recorded_not_sold(client, w):
    await w.stock(client, w.wh, **{w.a: 2})
    order = await w.shipped(client, {w.a: 2})
    before = await w.level(client, w.a, w.hh)
    ret = await post_return(client, w.pos_hh, order, [ret_line(order, w.a, 2, "damaged", reason="broken zip")])
    assert ret["lines"][0]["condition"] == "damaged" and ret["refund_total"] == money(line(order, w.a)["total"])
    assert await w.level(client, w.a, w.hh) == before
    assert await movements(ret["id"]) == []
    assert line(await w.order(client, order["id"]), w.a)["quantity_returned"] == 2


async def test_the_return_window_counts_from_the_shipment(client, w):
    await w.stock(client, w.wh, **{w.a: 2})
    order = await w.shipped(client, {w.a: 2})
    try:
        clock.advance(timedelta(days=29, hours=23))  # the default window is 30 days
        r = await client.get(f"/v1/orders/{order['number']}/returnable", headers=w.pos_be)
        assert r.status_code == 200, r.text
        assert [(x["returnable"], x["expired"]) for x in r.json()["lines"]] == [(2, 0)]
        clock.advance(timedelta(hours=2))
        body = assert_problem(await client.post("/v1/returns", headers=w.pos_hh, json={
            "order": order["number"], "lines": [ret_line(order, w.a, 1)], "refund_method": "cash"}), 422,
            "return_window_expired")
        assert body["errors"][0]["field"] == "lines[0].quantity" and body["return_window_days"] == 30
        r = await client.get(f"/v1/orders/{order['id']}/returnable", headers=w.pos_be)
        assert [(x["returnable"], x["expired"]) for x in r.json()["lines"]] == [(0, 2)]
        # the channel's window is what counts: a longer one lets it back in
        r = await client.patch(f"/v1/channels/{w.web}", headers=w.admin, json={"return_window_days": 60})
        assert r.status_code == 200, r.text
        await post_return(client, w.pos_hh, order, [ret_line(order, w.a, 1)])
    finally:
        clock.reset()
    assert line(await w.order(client, order["id"]), w.a)["quantity_returned"] == 1


async def test_locations_that_cannot_take_it(client, w):
    await w.stock(client, w.wh, **{w.a: 2})
    order = await w.shipped(client, {w.a: 2})
    lines = [ret_line(order, w.a, 1)]

    async def refused(headers, location, status=422):
        body = {"order": order["number"], "lines": lines, "refund_method": "cash"}
        if location is not None:
            body["location"] = location
        return assert_problem(await client.post("/v1/returns", headers=headers, json=body), status)

    # a warehouse does not take returns unless it says so; unknown and inactive locations neither
    for loc in (w.wh, "no-such-store"):
        assert [e["field"] for e in (await refused(w.admin, loc))["errors"]] == ["location"]
    closed = (await create_location(client, w.admin, "store"))["code"]
    r = await client.patch(f"/v1/locations/{closed}", headers=w.admin, json={"active": False})
    assert r.status_code == 200, r.text
    assert "inactive" in (await refused(w.admin, closed))["detail"]
    assert [e["field"] for e in (await refused(w.admin, None))["errors"]] == ["location"]  # admin names one
    # a POS key receives at its own store only: another store is outside its binding
    await refused(w.pos_hh, w.be, 404)
    # a store whose returns capability is switched off
    r = await client.patch(f"/v1/locations/{w.be}", headers=w.admin, json={"capabilities": {"returns": False}})
    assert r.status_code == 200, r.text
    assert "returns capability" in (await refused(w.pos_be, None))["detail"]
    # mail-in at a warehouse that takes returns
    r = await client.patch(f"/v1/locations/{w.wh}", headers=w.admin, json={"capabilities": {"returns": True}})
    assert r.status_code == 200, r.text
    ret = await post_return(client, w.admin, order, lines, location=w.wh)
    assert ret["location"] == w.wh and await movements(ret["id"]) == [(w.a, "return", 1)]
    assert await quantity_returned([line_id(order, w.a)]) == {line_id(order, w.a): 1}


async def test_unknown_orders_and_lines_and_nothing_fulfilled(client, w):
    await w.stock(client, w.wh, **{w.a: 3})
    order = await w.shipped(client, {w.a: 1})
    for ref in ("WEB-NOPE", "ord_nope"):
        body = assert_problem(await client.post("/v1/returns", headers=w.pos_hh, json={
            "order": ref, "lines": [ret_line(order, w.a)], "refund_method": "cash"}), 404, "not_found")
        assert body["errors"][0]["field"] == "order"
    body = assert_problem(await client.post("/v1/returns", headers=w.pos_hh, json={
        "order": order["id"], "refund_method": "cash",
        "lines": [ret_line(order, w.a), {"order_line_id": "ol_nope", "quantity": 1, "condition": "damaged"}]}),
        422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["lines[1].order_line_id"]
    # a line of another order is not a line of this one
    other = await w.shipped(client, {w.a: 1})
    body = assert_problem(await client.post("/v1/returns", headers=w.pos_hh, json={
        "order": order["id"], "lines": [ret_line(other, w.a)], "refund_method": "cash"}), 422, "validation_error")
    assert body["errors"][0]["field"] == "lines[0].order_line_id"
    # nothing shipped yet: nothing to return
    open_order = await w.place(client, {w.a: 1})
    assert_problem(await client.post("/v1/returns", headers=w.pos_hh, json={
        "order": open_order["number"], "lines": [ret_line(open_order, w.a)], "refund_method": "cash"}), 409,
        "order_not_fulfilled")
    # bodies the schema refuses, naming the field
    for bad, field in (({"quantity": 0}, "lines[0].quantity"), ({"quantity": True}, "lines[0].quantity"),
                       ({"condition": "mint"}, "lines[0].condition")):
        body = assert_problem(await client.post("/v1/returns", headers=w.pos_hh, json={
            "order": order["id"], "lines": [{**ret_line(order, w.a), **bad}], "refund_method": "cash"}), 422)
        assert field in [e["field"] for e in body["errors"]]
    body = assert_problem(await client.post("/v1/returns", headers=w.pos_hh, json={
        "order": order["id"], "lines": [ret_line(order, w.a, condition=None)], "refund_method": "cash"}), 422)
    assert [e["field"] for e in body["errors"]] == ["lines[0].condition"]  # required when the goods are here
    assert_problem(await client.post("/v1/returns", headers=w.pos_hh, json={
        "order": order["id"], "lines": [], "refund_method": "cash"}), 422, "validation_error")
    # nothing of it was written
    r = await client.get("/v1/returns", params={"order": order["id"]}, headers=w.admin)
    assert r.json()["data"] == []
    assert line(await w.order(client, order["id"]), w.a)["quantity_returned"] == 0


async def test_roles(client, w):
    await w.stock(client, w.wh, **{w.a: 1})
    order = await w.shipped(client, {w.a: 1})
    body = {"order": order["id"], "lines": [ret_line(order, w.a)], "refund_method": "cash"}
    assert_problem(await client.post("/v1/returns", headers=w.drop, json=body), 403, "forbidden")
    assert_problem(await client.post("/v1/returns", headers=w.marketplace, json=body), 403, "forbidden")
    # a shop opens authorizations, it does not receive goods; a till receives, it does not authorize
    assert_problem(await client.post("/v1/returns", headers=w.shop, json={**body, "status": "completed"}), 403)
    assert_problem(await client.post("/v1/returns", headers=w.pos_hh, json={**body, "status": "authorized"}), 403)
    # another channel's shop does not see the order at all
    assert_problem(await client.post("/v1/returns", headers=w.app, json=body), 404, "not_found")
    r = await client.get(f"/v1/orders/{order['number']}/returnable", headers=w.app)
    assert_problem(r, 404, "not_found")
    assert_problem(await client.get("/v1/returns", headers=w.drop), 403, "forbidden")
    assert_problem(await client.post("/v1/returns", json=body), 401, "unauthenticated")


async def test_a_refund_that_cannot_be_made_leaves_nothing_behind(client, w):
    await w.stock(client, w.hh, **{w.p: 3})
    order = await w.sold_at(client, w.pos_hh, {w.p: 3})  # paid at the till, no customer
    lid = line_id(order, w.p)
    before = await w.level(client, w.p, w.be)
    # store credit needs a customer: the payments service refuses, and the whole return rolls back
    body = assert_problem(await client.post("/v1/returns", headers=w.pos_be, json={
        "order": order["number"], "lines": [ret_line(order, w.p, 1)], "refund_method": "store_credit"}), 422,
        "refund_method_not_allowed")
    assert body["errors"][0]["field"] == "refund_method"
    assert await quantity_returned([lid]) == {lid: 0}
    assert await w.level(client, w.p, w.be) == before
    r = await client.get("/v1/returns", params={"order": order["id"]}, headers=w.admin)
    assert r.json()["data"] == [] and (await w.order(client, order["id"]))["returns"] == []
    # back the way it was paid (the till pays it out again)
    ret = await post_return(client, w.pos_be, order, [ret_line(order, w.p, 1)], method="original")
    assert ret["refund_method"] == "original" and ret["refund"]["amount"] == money(3000)
    assert await quantity_returned([lid]) == {lid: 1}


async def test_a_unit_whose_sku_left_the_catalog_comes_back_as_damaged_only(client, w):
    from tests.catalog.builders import create_product, sku

    gone = sku("GONE")
    product = await create_product(client, w.admin, channels=[w.web], variants=[{"sku": gone}, {"sku": sku("KEEP")}])
    r = await client.put(f"/v1/price-lists/{w.prices}/prices", headers=w.admin, json=[{"sku": gone, "amount": 500}])
    assert r.status_code == 200, r.text
    await w.stock(client, w.wh, **{gone: 1})
    order = await w.shipped(client, {gone: 1})
    # the API refuses to delete a variant that orders, stock or prices refer to (409 variant_in_use:
    # archive the product instead), so the SKU leaves the catalog the way older data may have lost it
    r = await client.delete(f"/v1/variants/{gone}", headers=w.admin)
    assert_problem(r, 409, "variant_in_use")
    from sqlalchemy import delete

    from app.catalog.models import Variant
    from app.core.db import sessionmaker

    async with sessionmaker()() as s, s.begin():
        await s.execute(delete(Variant).where(Variant.sku == gone, Variant.product_id == product["id"]))
    body = assert_problem(await client.post("/v1/returns", headers=w.pos_hh, json={
        "order": order["number"], "lines": [ret_line(order, gone, 1)], "refund_method": "cash"}), 422)
    assert body["errors"][0]["field"] == "lines[0].condition"
    ret = await post_return(client, w.pos_hh, order, [ret_line(order, gone, 1, "damaged")])
    assert ret["refund_total"] == money(500) and await movements(ret["id"]) == []
