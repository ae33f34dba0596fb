"""Refunds of returns through the payments service: back to Stripe (the real library against the
fake Stripe server of tests/payments), as store credit, in cash at a till; a provider that fails
leaves nothing of the return behind."""
import pytest

from tests.helpers import assert_problem
from tests.inventory.builders import ledger_matches
from tests.payments.conftest import fake_stripe, stripe_fake  # noqa: F401  (fixtures: the fake Stripe, reset per test)
from tests.payments.test_payments import authorized_order, settle_now
from tests.returns.world import SHIP, Shop, events, line_id, money, movements, post_return, quantity_returned, ret_line


@pytest.fixture
async def w(client, admin):
    return await Shop().setup(client, admin)


async def captured_order(client, w, fake, lines: dict, **kw) -> dict:
    """Paid with Stripe, shipped from the warehouse, captured."""
    order = await authorized_order(client, w, fake, lines, **kw)
    for f in order["fulfillments"]:
        r = await client.post(f"/v1/fulfillments/{f['id']}/ship", headers=w.admin, json=SHIP)
        assert r.status_code == 200, r.text
    await settle_now()
    order = await w.order(client, order["id"])
    assert order["payment_status"] == "paid", order["payment"]
    return order


async def test_original_goes_back_to_stripe(client, w, stripe_fake):
    await w.stock(client, w.wh, **{w.a: 2})
    order = await captured_order(client, w, stripe_fake, {w.a: 2})
    pi = order["payment"]["reference"]
    # cash goes only to payments taken at a till: refused, and nothing of the return is written
    body = assert_problem(await client.post("/v1/returns", headers=w.pos_hh, json={
        "order": order["number"], "lines": [ret_line(order, w.a, 1)], "refund_method": "cash"}), 422,
        "refund_method_not_allowed")
    assert body["errors"][0]["field"] == "refund_method"
    assert stripe_fake.refunds_for(pi) == [] and (await w.level(client, w.a, w.hh))["on_hand"] == 0

    first = await post_return(client, w.pos_hh, order, [ret_line(order, w.a, 1)], method="original")
    assert first["refund"]["provider"] == "stripe" and first["refund"]["amount"] == money(1000)
    assert [r["amount"] for r in stripe_fake.refunds_for(pi)] == [1000]
    assert (await w.order(client, order["id"]))["payment_status"] == "partially_refunded"
    assert len(await events("refund.created", order=order["id"])) == 1
    last = await post_return(client, w.pos_be, order, [ret_line(order, w.a, 1)], method="original")
    assert [r["amount"] for r in stripe_fake.refunds_for(pi)] == [1000, 1000]
    o = await w.order(client, order["id"])
    assert o["payment_status"] == "refunded" and o["payment"]["refunded"]["amount"] == order["totals"]["total"]
    assert first["refund"]["reference"] != last["refund"]["reference"]


async def test_stripe_down_leaves_nothing_behind(client, w, stripe_fake):
    await w.stock(client, w.wh, **{w.a: 1})
    order = await captured_order(client, w, stripe_fake, {w.a: 1})
    pi, lid = order["payment"]["reference"], line_id(order, w.a)
    body = {"order": order["id"], "lines": [ret_line(order, w.a, 1)], "refund_method": "original"}
    stripe_fake.down()
    assert_problem(await client.post("/v1/returns", headers=w.pos_hh, json=body), 503, "payment_provider_unavailable")
    stripe_fake.up()
    assert await quantity_returned([lid]) == {lid: 0} and (await w.level(client, w.a, w.hh))["on_hand"] == 0
    assert (await client.get("/v1/returns", params={"order": order["id"]}, headers=w.admin)).json()["data"] == []
    assert stripe_fake.refunds_for(pi) == []
    ret = await post_return(client, w.pos_hh, order, body["lines"], method="original")
    assert [x["amount"] for x in stripe_fake.refunds_for(pi)] == [1000]
    assert ret["refund"]["amount"] == money(1000) and await movements(ret["id"]) == [(w.a, "return", 1)]
    assert await quantity_returned([lid]) == {lid: 1} and await ledger_matches([w.a]) == []


async def test_a_refund_whose_answer_was_lost_is_made_once_on_retry(client, w, stripe_fake):
    await w.stock(client, w.wh, **{w.a: 1})
    order = await captured_order(client, w, stripe_fake, {w.a: 1})
    pi, lid = order["payment"]["reference"], line_id(order, w.a)
    body = {"order": order["id"], "lines": [ret_line(order, w.a, 1)], "refund_method": "original"}
    # Stripe refunded but the answer was lost: the return rolled back; the retry sends the same key
    stripe_fake.drop_next("/v1/refunds", execute=True)
    r = await client.post("/v1/returns", headers=w.pos_hh, json=body)
    assert r.status_code in (502, 503), r.text
    assert await quantity_returned([lid]) == {lid: 0}
    ret = await post_return(client, w.pos_hh, order, body["lines"], method="original")
    assert [x["amount"] for x in stripe_fake.refunds_for(pi)] == [1000]
    assert ret["refund"]["amount"] == money(1000) and await movements(ret["id"]) == [(w.a, "return", 1)]
    assert await quantity_returned([lid]) == {lid: 1} and await ledger_matches([w.a]) == []


async def test_store_credit_for_the_customer(client, w, stripe_fake):
    from tests.conftest import uid

    await w.stock(client, w.wh, **{w.b: 1})
    r = await client.post("/v1/customers", headers=w.shop, json={"email": f"{uid('ret')}@example.com"})
    assert r.status_code == 201, r.text
    customer = r.json()["id"]
    order = await captured_order(client, w, stripe_fake, {w.b: 1}, customer=customer)
    ret = await post_return(client, w.pos_be, order, [ret_line(order, w.b, 1)], method="store_credit")
    assert ret["refund"]["provider"] == "store_credit" and ret["refund"]["amount"] == money(2000)
    assert stripe_fake.refunds_for(order["payment"]["reference"]) == []
    r = await client.get(f"/v1/customers/{customer}/store-credit", headers=w.pos_be)
    assert r.json()["balances"] == [money(2000)]
