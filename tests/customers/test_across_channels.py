"""One buyer across channels: web orders and POS sales (identified by loyalty card or email) of one
customer; customer groups priced by the quote engine; B2B customers paying by invoice."""
import pytest

from tests.conftest import auth, make_key, uid
from tests.customers.world import Store, card, email, register
from tests.helpers import assert_problem


@pytest.fixture(scope="module")
async def w(client, admin):
    return await Store.stocked(client, admin, "wh", "hh", "be", units=500)


async def test_web_order_and_pos_sales_belong_to_one_customer(client, admin, w):
    anna = await register(client, w.shop, email=email("Anna"), loyalty_card=card(), name="Anna")
    web = await w.web_order(client, anna["email"].upper(), {w.a: 1})
    by_card = await w.pos_sale(client, anna["loyalty_card"].lower(), {w.b: 2})  # the card scanned at the till
    by_mail = await w.pos_sale(client, anna["email"], {w.a: 1}, pos=w.pos_be)
    assert {o["customer"] for o in (web, by_card, by_mail)} == {anna["id"]}
    assert by_card["email"] == anna["email"]  # the order keeps the contact it was placed with
    someone_else = await w.pos_sale(client, None, {w.a: 1})
    assert someone_else["customer"] is None

    expected = [web["id"], by_card["id"], by_mail["id"]]
    for headers in (admin, w.pos_hh, w.shop):
        r = await client.get(f"/v1/customers/{anna['id']}/orders", headers=headers)
        assert r.status_code == 200, r.text
        assert [o["id"] for o in r.json()["data"]] == expected
        assert {o["channel"] for o in r.json()["data"]} == {w.web, w.pos_channel}
    # the POS channel's sales show in the shop's account page; the shop of another channel sees nothing
    assert_problem(await client.get(f"/v1/customers/{anna['id']}/orders", headers=w.app), 404, "not_found")
    # an unknown card or email at the till is a 422 naming `customer` (no customer is made up)
    r = await client.post("/v1/orders", headers=w.pos_hh, json={"lines": [{"sku": w.a, "quantity": 1}],
                                                                 "customer": "NO-SUCH-CARD"})
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "customer"


async def test_a_storefront_sees_the_customers_who_bought_in_its_channel(client, admin, w):
    """A customer registered at the till becomes visible to the web shop once it has an order there."""
    walk_in = await register(client, w.pos_hh, email=email("Walk"), loyalty_card=card())
    assert walk_in["channel"] == w.pos_channel
    assert_problem(await client.get(f"/v1/customers/{walk_in['id']}", headers=w.shop), 404, "not_found")
    r = await client.post("/v1/carts", headers=w.shop, json={"lines": [{"sku": w.a, "quantity": 1}],
                                                              "customer": walk_in["email"]})
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "customer"
    # the back office places a web order for the customer (a phone order): now the shop knows them
    r = await client.post("/v1/carts", headers=admin, json={"channel": w.web, "lines": [{"sku": w.a, "quantity": 1}],
                                                             "customer": walk_in["id"], "fulfillment": {
                                                                 "method": "ship", "address": {
                                                                     "line1": "Weg 1", "postal_code": "20095",
                                                                     "city": "Hamburg", "country": "DE"}}})
    assert r.status_code == 201, r.text
    r = await client.post(f"/v1/carts/{r.json()['id']}/checkout", headers=admin, json={"payment": {"provider": "none"}})
    assert r.status_code == 201, r.text
    assert (await client.get(f"/v1/customers/{walk_in['email']}", headers=w.shop)).json()["id"] == walk_in["id"]
    r = await client.get("/v1/customers", params={"loyalty_card": walk_in["loyalty_card"]}, headers=w.shop)
    assert [c["id"] for c in r.json()["data"]] == [walk_in["id"]]
    assert_problem(await client.get(f"/v1/customers/{walk_in['id']}", headers=w.app), 404, "not_found")


async def test_groups_price_and_b2b_pays_by_invoice(client, admin, w):
    group = "b2b-" + uid("gastro").split("-")[1]
    prices = uid("b2b")
    r = await client.post("/v1/price-lists", headers=admin, json={
        "code": prices, "currency": "EUR", "channels": [w.web, w.pos_channel], "customer_group": group, "priority": 10})
    assert r.status_code == 201, r.text
    r = await client.put(f"/v1/price-lists/{prices}/prices", headers=admin, json=[{"sku": w.a, "amount": 800}])
    assert r.status_code == 200, r.text
    firm = await register(client, admin, email=email("Einkauf"), group=group, loyalty_card=card(), channel=w.web)
    shopper = await register(client, w.shop, email=email("Retail"))

    # the quote engine prices the B2B customer by its group (800, not the retail 1000)
    r = await client.post("/v1/pricing/quote", headers=w.shop, json={"channel": w.web, "customer": firm["email"],
                                                                     "lines": [{"sku": w.a, "quantity": 2}]})
    assert r.json()["lines"][0]["unit_price"] == 800 and r.json()["customer_group"] == group

    invoice = {"provider": "external", "method": "invoice", "reference": "RE-2024-0042"}
    order = await w.web_order(client, firm["id"], {w.a: 2}, payment=invoice, ship=False)
    assert order["lines"][0]["unit_price"] == 800 and order["totals"]["total"] == 1600
    assert (order["status"], order["payment_status"]) == ("confirmed", "unpaid")  # goods go out, money later
    assert order["payment"]["provider"] == "external" and order["payment"]["reference"] == "RE-2024-0042"
    assert order["payment"]["captured"]["amount"] == 0
    # at the till too
    sale = await w.pos_sale(client, firm["loyalty_card"], {w.a: 1}, payment={"provider": "external", "method": "invoice"})
    assert (sale["status"], sale["payment_status"], sale["lines"][0]["unit_price"]) == ("fulfilled", "unpaid", 800)

    # nobody else buys on account: a retail customer, no customer, another provider
    for customer in (shopper["id"], None):
        body = {"lines": [{"sku": w.a, "quantity": 1}], "payment": invoice}
        if customer:
            body["customer"] = customer
        r = await client.post("/v1/orders", headers=w.pos_hh, json=body)
        assert assert_problem(r, 422, "invoice_not_allowed")["errors"][0]["field"] == "payment.method"
    r = await client.post("/v1/carts", headers=w.shop, json={"lines": [{"sku": w.a, "quantity": 1}], "customer": firm["id"],
                                                              "fulfillment": {"method": "ship", "address": {
                                                                  "line1": "Weg 1", "postal_code": "20095",
                                                                  "city": "Hamburg", "country": "DE"}}})
    cart = r.json()["id"]
    r = await client.post(f"/v1/carts/{cart}/checkout", headers=w.shop,
                          json={"payment": {"provider": "stripe", "method": "invoice"}})
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "payment.method"
    r = await client.post(f"/v1/carts/{cart}/checkout", headers=w.shop,
                          json={"payment": {"provider": "external", "method": "cheque"}})
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "payment.method"
    # nothing was half-written: the cart can still be checked out (by invoice, the firm is B2B)
    r = await client.post(f"/v1/carts/{cart}/checkout", headers=w.shop, json={"payment": invoice})
    assert r.status_code == 201 and r.json()["payment_status"] == "unpaid"

    # a group change takes effect at once, for prices and for invoices
    r = await client.patch(f"/v1/customers/{firm['id']}", headers=admin, json={"group": "retail"})
    assert r.status_code == 200
    r = await client.post("/v1/orders", headers=w.pos_hh, json={"lines": [{"sku": w.a, "quantity": 1}],
                                                                 "customer": firm["id"], "payment": invoice})
    assert_problem(r, 422, "invoice_not_allowed")
    # only admin keys set a group (it decides prices and invoices)
    for headers in (w.shop, w.pos_hh):
        r = await client.patch(f"/v1/customers/{shopper['id']}", headers=headers, json={"group": group})
        assert assert_problem(r, 403, "forbidden")["errors"][0]["field"] == "group"


async def test_a_pos_key_looks_customers_up_by_card(client, admin, w):
    c = await register(client, w.shop, email=email("Karte"), loyalty_card=card())
    r = await client.get("/v1/customers", params={"loyalty_card": c["loyalty_card"].lower()}, headers=w.pos_be)
    assert [x["id"] for x in r.json()["data"]] == [c["id"]]
    assert (await client.get(f"/v1/customers/{c['loyalty_card']}", headers=w.pos_be)).json()["id"] == c["id"]
    other_pos = auth(await make_key("pos", channel=w.pos_channel, location=w.be))
    assert (await client.get(f"/v1/customers/{c['email']}", headers=other_pos)).status_code == 200
