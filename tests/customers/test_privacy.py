"""GDPR: the export holds everything on a customer and nothing of anyone else; an erasure leaves
no personal data in any table and every order's figures as they were."""
import orjson
import pytest
from sqlalchemy import func, inspect, select, text

from app.core.db import get_engine, sessionmaker
from app.orders.models import Order
from tests.conftest import uid
from tests.customers.world import Store, audit_rows, customer_events, person, register
from tests.helpers import assert_problem
from tests.returns.world import post_return, ret_line


@pytest.fixture(scope="module")
async def w(client, admin):
    return await Store.stocked(client, admin)


def needles(p: dict) -> list[str]:
    """What a scan looks for: every personal value of a `person()` body."""
    a = p["addresses"][0]
    return [p["email"], p["name"], p["phone"], p["loyalty_card"], a["line1"]]


async def a_customer_with_history(client, admin, w, p: dict, *, headers=None) -> dict:
    """A customer (registered in the web shop) who bought online and at a till, returned something
    for store credit, has an open cart and changed a consent: ids of what was made."""
    c = await register(client, headers or w.shop, **p, consents={"marketing": True})
    r = await client.patch(f"/v1/customers/{c['id']}", headers=w.pos_hh, json={"consents": {"personalization": True}})
    assert r.status_code == 200
    web = await w.web_order(client, c["email"], {w.a: 2}, address=p["addresses"][0])
    sale = await w.pos_sale(client, c["loyalty_card"], {w.b: 3})
    ret = await post_return(client, w.pos_hh, await w.order(client, sale["id"]),
                            [ret_line(sale, w.b, 1, reason=f"{p['name']} changed their mind")], method="store_credit")
    r = await client.post("/v1/carts", headers=w.shop, json={"customer": c["id"], "lines": [{"sku": w.a, "quantity": 1}],
                                                              "fulfillment": {"method": "ship", "address": p["addresses"][0]}})
    assert r.status_code == 201, r.text
    return {"customer": c, "web": web, "sale": sale, "return": ret, "cart": r.json()}


async def test_export_holds_everything_and_nothing_of_another(client, admin, w):
    me, them = person(), person()
    mine = await a_customer_with_history(client, admin, w, me)
    theirs = await a_customer_with_history(client, admin, w, them)
    c = mine["customer"]
    alias = await register(client, admin, email=person()["email"])
    assert (await client.post(f"/v1/customers/{c['id']}/merge", headers=admin, json={"other": alias["id"]})).status_code == 200

    r = await client.get(f"/v1/customers/{c['email']}/export", headers=admin)
    assert r.status_code == 200, r.text
    x = r.json()
    assert x["object"] == "customer_export" and x["generated_at"].endswith("Z")
    profile = (await client.get(f"/v1/customers/{c['id']}", headers=admin)).json()
    assert x["customer"] == profile and x["addresses"] == me["addresses"]
    assert x["merged_from"] == [alias["id"]]
    assert x["consents"]["current"] == {"marketing": True, "personalization": True}
    assert [(h["purpose"], h["granted"]) for h in x["consents"]["history"]] == [("marketing", True),
                                                                                 ("personalization", True)]
    assert [o["id"] for o in x["orders"]] == [mine["web"]["id"], mine["sale"]["id"]]
    web = x["orders"][0]
    assert web["lines"][0]["quantity"] == 2 and web["fulfillment"]["address"]["line1"] == me["addresses"][0]["line1"]
    assert web["fulfillments"] and x["orders"][1]["returns"][0]["id"] == mine["return"]["id"]
    assert [rt["id"] for rt in x["returns"]] == [mine["return"]["id"]]
    assert x["returns"][0]["lines"][0]["reason"].startswith(me["name"])
    assert [ct["id"] for ct in x["carts"]] == [mine["web"]["cart"], mine["cart"]["id"]]  # checked out, open
    assert [ct["status"] for ct in x["carts"]] == ["completed", "open"]
    credit = mine["return"]["refund_total"]["amount"]
    assert x["store_credit"]["balances"] == [{"amount": credit, "currency": "EUR"}]
    assert [e["amount"]["amount"] for e in x["store_credit"]["entries"]] == [credit]
    actions = [a["action"] for a in x["audit"]]
    assert {"create", "update", "merge", "export"} <= set(actions) and actions[-1] == "export"
    assert {a["customer"] for a in x["audit"]} == {c["id"], alias["id"]}
    # nothing of anyone else
    doc = r.text.lower()
    for value in [*needles(them), theirs["customer"]["id"], theirs["web"]["id"], theirs["sale"]["id"],
                  theirs["return"]["id"], theirs["cart"]["id"]]:
        assert value.lower() not in doc, value
    for value in needles(me):
        assert value.lower() in doc, value

    # self-service through the customer's shop; not another shop's, not the till's
    assert (await client.get(f"/v1/customers/{c['id']}/export", headers=w.shop)).status_code == 200
    assert_problem(await client.get(f"/v1/customers/{c['id']}/export", headers=w.app), 404, "not_found")
    assert_problem(await client.get(f"/v1/customers/{c['id']}/export", headers=w.pos_hh), 403, "forbidden")
    assert_problem(await client.get("/v1/customers/cus_nobody/export", headers=admin), 404, "not_found")


async def all_rows_text() -> dict[str, str]:
    """Every row of every table of the database, as lower-case text, per table."""
    engine = get_engine()
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        out = {}
        for name in names:
            rows = (await conn.execute(text(f'SELECT * FROM "{name}"'))).all()
            parts = [bytes(v).decode("utf-8", "replace") if isinstance(v, (bytes, memoryview)) else str(v)
                     for row in rows for v in row]
            out[name] = "\n".join(parts).lower()
    return out


async def order_figures(order_ids: list[str]) -> list[tuple]:
    async with sessionmaker()() as s:
        rows = (await s.execute(select(Order.id, Order.customer_id, Order.subtotal, Order.discount_total,
                                       Order.tax_total, Order.total, Order.amount_captured, Order.amount_refunded,
                                       Order.payment_status, Order.status).where(Order.id.in_(order_ids))
                                .order_by(Order.id))).all()
    return [tuple(r) for r in rows]


async def all_totals() -> tuple:
    async with sessionmaker()() as s:
        return tuple((await s.execute(select(func.count(), func.sum(Order.total), func.sum(Order.tax_total))
                                      .select_from(Order))).one())


async def test_erasure_leaves_no_personal_data_in_any_table(client, admin, w):
    me, bystander, old = person(), person(), person()
    key = uid("reg")
    # registered with an Idempotency-Key: its stored answer holds the personal data too
    r = await client.post("/v1/customers", headers={**admin, "Idempotency-Key": key},
                          json={**me, "channel": w.web})
    assert r.status_code == 201
    c = r.json()
    # a second record of the same person, with orders, merged into the first
    earlier = await register(client, w.shop, **old)
    earlier_order = await w.web_order(client, earlier["id"], {w.a: 1}, address=old["addresses"][0])
    assert (await client.post(f"/v1/customers/{c['id']}/merge", headers=admin,
                              json={"other": earlier["id"]})).status_code == 200
    r = await client.patch(f"/v1/customers/{c['id']}", headers=w.shop, json={"consents": {"marketing": True}})
    assert r.status_code == 200
    web = await w.web_order(client, me["email"], {w.a: 2}, address=me["addresses"][0])
    sale = await w.pos_sale(client, me["loyalty_card"], {w.b: 3})
    ret = await post_return(client, w.pos_hh, await w.order(client, sale["id"]),
                            [ret_line(sale, w.b, 1, reason=f"{me['name']} changed their mind")], method="store_credit")
    r = await client.post("/v1/carts", headers=w.shop, json={"customer": c["id"], "lines": [{"sku": w.a, "quantity": 1}],
                                                              "fulfillment": {"method": "ship", "address": me["addresses"][0]}})
    cart = r.json()["id"]
    assert (await client.get(f"/v1/customers/{c['id']}/export", headers=admin)).status_code == 200
    other = await register(client, w.shop, **bystander)
    other_order = await w.web_order(client, other["id"], {w.a: 1}, address=bystander["addresses"][0])

    # an order still to be delivered keeps the customer: 409 naming it, nothing erased
    pending = await w.web_order(client, c["id"], {w.a: 1}, address=me["addresses"][0], ship=False)
    body = assert_problem(await client.delete(f"/v1/customers/{c['id']}", headers=admin), 409, "customer_has_open_orders")
    assert [o["number"] for o in body["orders"]] == [pending["number"]]
    assert (await client.get(f"/v1/customers/{c['id']}", headers=admin)).json()["email"] == me["email"]
    r = await client.post(f"/v1/orders/{pending['id']}/cancel", headers=admin, json={})
    assert r.status_code == 200, r.text

    ids = [earlier_order["id"], web["id"], sale["id"], pending["id"]]
    before, totals_before = await order_figures(ids), await all_totals()
    assert_problem(await client.delete(f"/v1/customers/{c['id']}", headers={**admin, "If-Match": '"1"'}), 412)
    for h in (w.shop, w.pos_hh, w.marketplace, w.drop):
        assert_problem(await client.delete(f"/v1/customers/{c['id']}", headers=h), 403, "forbidden")
    r = await client.delete(f"/v1/customers/{me['loyalty_card'].lower()}", headers=admin)
    assert r.status_code == 204 and r.content == b""

    # no personal value of the person (either record) is left in any row of any table
    tables = await all_rows_text()
    for value in needles(me) + needles(old):
        found = [t for t, rows in tables.items() if value.lower() in rows]
        assert found == [], (value, found)
    # the bystander is untouched
    for value in needles(bystander):
        assert any(value.lower() in rows for rows in tables.values()), value
    kept = await w.order(client, other_order["id"])
    assert kept["email"] == bystander["email"] and kept["fulfillment"]["address"] == bystander["addresses"][0]

    # orders stay, anonymised, with every figure as it was; reports add up as before
    assert await order_figures(ids) == before and await all_totals() == totals_before
    for ref in ids:
        o = await w.order(client, ref)
        assert o["customer"] == c["id"] and o["email"] is None
        assert o["fulfillment"]["address"] in (None, {"country": "DE"})
    assert (await w.order(client, web["id"]))["fulfillment"]["address"] == {"country": "DE"}
    r = await client.get(f"/v1/carts/{cart}", headers=w.shop)
    assert r.json()["fulfillment"]["address"] is None and r.json()["customer"] == c["id"]
    assert (await w.order(client, sale["id"]))["returns"][0]["id"] == ret["id"]

    # the record answers 410 from now on; erasing twice is 410 too; its email and card are free again
    for ref in (c["id"], earlier["id"]):
        assert_problem(await client.get(f"/v1/customers/{ref}", headers=admin), 410, "customer_erased")
        assert_problem(await client.delete(f"/v1/customers/{ref}", headers=admin), 410, "customer_erased")
    assert_problem(await client.get(f"/v1/customers/{c['id']}/export", headers=admin), 410, "customer_erased")
    assert_problem(await client.patch(f"/v1/customers/{c['id']}", headers=admin, json={"name": "x"}), 410)
    assert_problem(await client.get(f"/v1/customers/{me['email']}", headers=admin), 404, "not_found")
    assert (await client.get("/v1/customers", params={"email": me["email"]}, headers=admin)).json()["data"] == []
    assert_problem(await client.get(f"/v1/customers/{c['id']}/orders", headers=admin), 404, "not_found")
    again = await register(client, admin, email=me["email"], loyalty_card=me["loyalty_card"])
    assert again["id"] != c["id"]
    # a replay of the registration answers what is left of it (no personal data), and creates nothing
    r = await client.post("/v1/customers", headers={**admin, "Idempotency-Key": key},
                          json={**me, "channel": w.web})
    assert r.headers.get("idempotent-replayed") == "true"
    replay = orjson.loads(r.content)
    assert replay["id"] == c["id"] and replay["email"] is None and replay["addresses"] == []

    # the event says who, nothing more; the trail of who touched the data survives
    erased = [e for e in await customer_events(c["id"]) if e.type == "customer.erased"]
    assert len(erased) == 1 and set(erased[0].data) == {"id", "merged", "version"}
    assert erased[0].data["merged"] == [earlier["id"]]
    assert [a.action for a in await audit_rows(c["id"])][-1] == "erase"
    r = await client.get(f"/v1/customers/{c['id']}/audit", headers=admin)
    assert r.status_code == 200 and "erase" in [a["action"] for a in r.json()["data"]]
    r = await client.get(f"/v1/customers/{c['id']}/consents", headers=admin)
    assert_problem(r, 410, "customer_erased")


async def test_sales_racing_an_erasure_keep_no_email(client, admin, w):
    """POS sales by the customer's card while the erasure runs: each is placed before it (and then
    anonymised by it) or after it (the card names nobody any more: 422); no order keeps the email."""
    import asyncio

    for _ in range(3):
        p = person()
        c = await register(client, admin, **p)
        sale = {"lines": [{"sku": w.a, "quantity": 1}], "customer": p["loyalty_card"]}
        answers = await asyncio.gather(
            client.post("/v1/orders", headers=w.pos_hh, json=sale),
            client.delete(f"/v1/customers/{c['id']}", headers=admin),
            *(client.post("/v1/orders", headers=w.pos_hh, json=sale) for _ in range(3)))
        erase, sales = answers[1], [answers[0], *answers[2:]]
        assert erase.status_code == 204, erase.text
        assert all(r.status_code in (201, 422) for r in sales), [r.text[:300] for r in sales]
        async with sessionmaker()() as s:
            emails = (await s.execute(select(Order.email).where(Order.customer_id == c["id"]))).scalars().all()
        assert len(emails) == sum(r.status_code == 201 for r in sales) and set(emails) <= {None}


async def test_erasure_touches_only_what_is_about_the_person(client, admin, w):
    """A product named like the customer keeps its name (in the catalog and in its events); the
    customer's own return reason naming them is blanked, in the return and in its event."""
    from tests.catalog.builders import create_product
    from tests.orders.fulfillment_world import events

    p = person()
    c = await register(client, admin, **p)
    product = await create_product(client, admin, title=f"{p['name']} Spätlese", channels=[w.web])
    sale = await w.pos_sale(client, p["loyalty_card"], {w.a: 1})
    ret = await post_return(client, w.pos_hh, await w.order(client, sale["id"]),
                            [ret_line(sale, w.a, 1, reason=f"Gift for {p['name']}, wrong size")], method="cash")
    assert (await client.delete(f"/v1/customers/{c['id']}", headers=admin)).status_code == 204

    assert (await client.get(f"/v1/products/{product['id']}", headers=admin)).json()["title"] == product["title"]
    created = [e for e in await events("product.created") if e.get("id") == product["id"]]
    assert created and created[0]["title"] == product["title"]
    r = await client.get(f"/v1/returns/{ret['id']}", headers=admin)
    assert r.json()["lines"][0]["reason"] is None and r.json()["refund_total"] == ret["refund_total"]
    returned = [e for e in await events("return.created") if e.get("id") == ret["id"]]
    assert returned and returned[0]["lines"][0]["reason"] is None
    assert returned[0]["refund_total"] == ret["refund_total"]
