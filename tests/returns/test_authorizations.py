"""Returns a customer opens online (an authorization with a code) and any store completes; and
the charge-back of units a dropship partner shipped."""
from datetime import timedelta

import pytest

from app.core import clock
from app.core.db import unit_of_work
from app.returns import rules, service
from tests.helpers import assert_problem
from tests.inventory.builders import ledger_matches
from tests.returns.world import Shop, events, line, money, movements, post_return, quantity_returned, ret_line


@pytest.fixture
async def w(client, admin):
    return await Shop().setup(client, admin)


async def authorize(client, w, order, lines, *, headers=None, expect=201, **body) -> dict:
    r = await client.post("/v1/returns", headers=headers or w.shop,
                          json={"order": order["number"], "lines": lines, **body})
    assert r.status_code == expect, r.text
    return r.json()


async def test_authorized_online_completed_at_another_store(client, w):
    await w.stock(client, w.wh, **{w.a: 2, w.b: 1})
    order = await w.shipped(client, {w.a: 2, w.b: 1})
    shipped_at = (await client.get(f"/v1/fulfillments/{order['fulfillments'][0]['id']}", headers=w.admin)).json()
    auth = await authorize(client, w, order, [ret_line(order, w.a, 1, condition=None, reason="too big"),
                                              ret_line(order, w.b, 1, condition=None)])
    code = auth["code"]
    assert auth["status"] == "authorized" and auth["location"] is None and auth["refund"] is None
    assert len(code) == rules.CODE_LENGTH and set(code) <= set(rules.CODE_ALPHABET)
    assert auth["refund_total"] == money(1000 + 2000)  # what it will refund, as things stand
    assert auth["expires_at"] is not None and auth["expires_at"] > shipped_at["updated_at"]
    # nothing moved yet: no stock, no refund, nothing counted as returned
    assert await movements(auth["id"]) == []
    assert set((await quantity_returned([ln["order_line_id"] for ln in auth["lines"]])).values()) == {0}
    assert await events("return.created", id=auth["id"])
    # the units are held: not authorized twice, not returned past it either
    body = assert_problem(await client.post("/v1/returns", headers=w.shop, json={
        "order": order["number"], "lines": [ret_line(order, w.b, 1, condition=None)]}), 409, "return_quantity_exceeded")
    assert body["returnable"][0]["quantity_authorized"] == 1
    assert "authorization" in body["errors"][0]["message"]
    assert_problem(await client.post("/v1/returns", headers=w.pos_hh, json={
        "order": order["number"], "lines": [ret_line(order, w.a, 2)], "refund_method": "cash"}), 409,
        "return_quantity_exceeded")

    # any store finds it by its code, however it is typed
    typed = code[:5].lower() + "-" + code[5:].lower()
    r = await client.get("/v1/returns", params={"code": typed}, headers=w.pos_be)
    assert [x["id"] for x in r.json()["data"]] == [auth["id"]]
    r = await client.get(f"/v1/returns/{typed}", headers=w.pos_be)
    assert r.status_code == 200 and r.json()["id"] == auth["id"], r.text
    assert_problem(await client.get(f"/v1/returns/{code}", headers=w.app), 404)  # another channel's shop
    # the shop cannot receive goods, another channel's shop cannot even see it
    assert_problem(await client.post(f"/v1/returns/{code}/complete", headers=w.shop, json={}), 403)

    # Berlin takes it: B turns out damaged
    before = await w.level(client, w.a, w.be)
    r = await client.post(f"/v1/returns/{code}/complete", headers=w.pos_be | {"If-Match": '"1"'},
                          json={"lines": [{"order_line_id": ln["order_line_id"], "condition": "damaged"}
                                          for ln in auth["lines"] if ln["sku"] == w.b], "refund_method": "cash"})
    assert r.status_code == 200, r.text
    done = r.json()
    assert (done["status"], done["location"], done["refund_method"], done["version"]) == ("completed", w.be, "cash", 2)
    assert r.headers["ETag"] == '"2"' and done["code"] == code and done["completed_at"] is not None
    assert [(ln["sku"], ln["condition"]) for ln in done["lines"]] == [(w.a, "resellable"), (w.b, "damaged")]
    assert done["refund_total"] == money(3000)
    assert (await w.level(client, w.a, w.be))["on_hand"] == before["on_hand"] + 1
    assert await movements(done["id"]) == [(w.a, "return", 1)]
    o = await w.order(client, order["id"])
    assert (line(o, w.a)["quantity_returned"], line(o, w.b)["quantity_returned"]) == (1, 1)
    assert [(x["id"], x["status"], x["location"]) for x in o["returns"]] == [(auth["id"], "completed", w.be)]
    assert (await events("return.completed", id=done["id"]))[0] == done
    assert await ledger_matches([w.a]) == []
    # once
    assert_problem(await client.post(f"/v1/returns/{done['id']}/complete", headers=w.pos_hh, json={}), 409,
                   "invalid_transition")
    assert_problem(await client.post(f"/v1/returns/{done['id']}/cancel", headers=w.shop, json={}), 409,
                   "invalid_transition")
    # the last A is still free to come back
    await post_return(client, w.pos_hh, order, [ret_line(order, w.a, 1)])


async def test_complete_checks(client, w):
    await w.stock(client, w.wh, **{w.a: 1})
    order = await w.shipped(client, {w.a: 1})
    auth = await authorize(client, w, order, [ret_line(order, w.a, 1, condition="damaged")], refund_method="cash")
    url = f"/v1/returns/{auth['id']}/complete"
    assert_problem(await client.post(url, headers=w.pos_hh | {"If-Match": '"7"'}, json={}), 412, "version_conflict")
    body = assert_problem(await client.post(url, headers=w.pos_hh, json={
        "lines": [{"order_line_id": "ol_other", "condition": "resellable"}]}), 422, "validation_error")
    assert body["errors"][0]["field"] == "lines[0].order_line_id"
    assert_problem(await client.post(url, headers=w.pos_hh, json={"location": w.be}), 404)  # not its store
    # admin names the location (a mail-in at a warehouse that takes returns is one)
    assert [e["field"] for e in assert_problem(await client.post(url, headers=w.admin, json={}), 422)["errors"]] == [
        "location"]
    r = await client.post(url, headers=w.admin, json={"location": w.hh})
    assert r.status_code == 200, r.text
    assert r.json()["lines"][0]["condition"] == "damaged"  # as the customer said, nobody changed it
    assert await movements(auth["id"]) == []


async def test_cancelled_authorizations_free_their_units(client, w):
    await w.stock(client, w.wh, **{w.a: 1})
    order = await w.shipped(client, {w.a: 1})
    auth = await authorize(client, w, order, [ret_line(order, w.a, 1, condition=None)])
    assert_problem(await client.post(f"/v1/returns/{auth['id']}/cancel", headers=w.app, json={}), 404)
    r = await client.post(f"/v1/returns/{auth['code']}/cancel", headers=w.shop, json={"reason": "kept it"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["cancelled_at"] is not None
    assert await events("return.cancelled", id=auth["id"])
    assert_problem(await client.post(f"/v1/returns/{auth['id']}/complete", headers=w.pos_hh, json={}), 409,
                   "invalid_transition")
    again = await authorize(client, w, order, [ret_line(order, w.a, 1, condition=None)])
    assert again["code"] != auth["code"]
    r = await client.get("/v1/returns", params={"order": order["id"], "status": "cancelled"}, headers=w.shop)
    assert [x["id"] for x in r.json()["data"]] == [auth["id"]]


async def test_authorizations_run_out_with_the_window(client, w):
    await w.stock(client, w.wh, **{w.a: 1})
    order = await w.shipped(client, {w.a: 1})
    auth = await authorize(client, w, order, [ret_line(order, w.a, 1, condition=None)])
    try:
        clock.advance(timedelta(days=31))
        r = await client.get(f"/v1/returns/{auth['id']}", headers=w.shop)
        assert r.json()["status"] == "expired"  # at once, before any worker
        r = await client.get("/v1/returns", params={"order": order["id"], "status": "expired"}, headers=w.admin)
        assert [x["id"] for x in r.json()["data"]] == [auth["id"]]
        r = await client.get("/v1/returns", params={"order": order["id"], "status": "authorized"}, headers=w.admin)
        assert r.json()["data"] == []
        assert_problem(await client.post(f"/v1/returns/{auth['code']}/complete", headers=w.pos_hh, json={}), 422,
                       "return_window_expired")
        assert_problem(await client.post(f"/v1/returns/{auth['id']}/cancel", headers=w.shop, json={}), 409,
                       "invalid_transition")
        async with unit_of_work() as session:
            assert await service.expire_due(session) >= 1
        assert (await events("return.expired", id=auth["id"]))[0]["status"] == "expired"
        r = await client.get(f"/v1/returns/{auth['id']}", headers=w.admin)
        assert (r.json()["status"], r.json()["version"]) == ("expired", 2)
    finally:
        clock.reset()
    assert line(await w.order(client, order["id"]), w.a)["quantity_returned"] == 0


async def test_a_dropshipped_unit_returned_in_a_store_is_charged_back(client, w):
    await w.stock(client, w.pt, **{w.p: 3})
    order = await w.shipped(client, {w.p: 2}, ship_with=w.drop)  # only the partner has it
    assert [(f["location"], f["kind"], f["status"]) for f in order["fulfillments"]] == [(w.pt, "dropship", "shipped")]
    ret = await post_return(client, w.pos_hh, order, [ret_line(order, w.p, 1)])
    ln = ret["lines"][0]
    assert ln["chargeback"] == {"location": w.pt, "quantity": 1, "amount": money(3000)}
    assert ln["chargebacks"] == [ln["chargeback"]]
    assert ln["sources"][0]["kind"] == "dropship" and ln["sources"][0]["location"] == w.pt
    assert (await w.level(client, w.p, w.hh))["on_hand"] == 1  # the store keeps the unit
    assert (await w.level(client, w.p, w.pt))["on_hand"] == 1
    # a unit the retailer shipped itself carries no charge-back
    await w.stock(client, w.wh, **{w.a: 1})
    own = await w.shipped(client, {w.a: 1})
    assert (await post_return(client, w.pos_hh, own, [ret_line(own, w.a, 1)]))["lines"][0]["chargeback"] is None


async def test_returnable_tells_a_till_what_may_come_back(client, w):
    await w.stock(client, w.wh, **{w.a: 3})
    order = await w.shipped(client, {w.a: 3})
    await authorize(client, w, order, [ret_line(order, w.a, 1, condition=None)])
    await post_return(client, w.pos_hh, order, [ret_line(order, w.a, 1)])
    r = await client.get(f"/v1/orders/{order['number']}/returnable", headers=w.pos_be)  # not its order: still may ask
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["order"], body["return_window_days"]) == (order["id"], 30)
    (ln,) = body["lines"]
    assert (ln["quantity_fulfilled"], ln["quantity_returned"], ln["quantity_authorized"]) == (3, 1, 1)
    assert ln["returnable"] == 1
    assert ln["refund"] == money(1000) and ln["window_closes_at"] is not None
