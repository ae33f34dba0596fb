"""POST /v1/customers/{id}/merge {other}: two records of one person become one."""
import asyncio

import pytest
from sqlalchemy import select

from app.core.db import sessionmaker
from app.customers.models import Customer
from app.orders.models import Order
from tests.customers.world import Store, audit_rows, card, customer_events, email, register
from tests.helpers import assert_problem
from tests.returns.world import post_return, ret_line


@pytest.fixture(scope="module")
async def w(client, admin):
    return await Store.stocked(client, admin)


def addr(line1: str, **kw) -> dict:
    return {"line1": line1, "postal_code": "20095", "city": "Hamburg", "country": "DE", **kw}


async def row(customer_id: str) -> Customer:
    async with sessionmaker()() as s:
        return (await s.execute(select(Customer).where(Customer.id == customer_id))).scalars().one()


async def test_merge_moves_everything_to_the_survivor(client, admin, w):
    keep = await register(client, w.shop, email=email("Keep"), name="Kim Keep", addresses=[addr("Elbchaussee 1")],
                          consents={"marketing": True})
    gone = await register(client, w.pos_hh, email=email("Gone"), phone="+49 40 999", loyalty_card=card(),
                          addresses=[addr("  elbchaussee 1 ", name="K. Keep"), addr("Mönckebergstraße 7")],
                          consents={"marketing": True, "personalization": True})
    r = await client.patch(f"/v1/customers/{gone['id']}", headers=w.pos_hh, json={"consents": {"marketing": False}})
    assert r.status_code == 200
    r = await client.patch(f"/v1/customers/{gone['id']}", headers=admin, json={"group": "b2b"})
    assert r.status_code == 200
    # an older record merged into `gone` before: it follows to the survivor
    older = await register(client, admin, email=email("Older"))
    r = await client.post(f"/v1/customers/{gone['id']}/merge", headers=admin, json={"other": older["email"]})
    assert r.status_code == 200, r.text

    web = await w.web_order(client, keep["id"], {w.a: 1})
    sale = await w.pos_sale(client, gone["loyalty_card"], {w.b: 2})
    gone_web = await w.web_order(client, gone["email"], {w.a: 3}, shop=w.admin)
    ret = await post_return(client, w.pos_hh, await w.order(client, sale["id"]), [ret_line(sale, w.b, 1)],
                            method="store_credit")
    r = await client.post(f"/v1/customers/{keep['id']}/store-credit", headers=admin,
                          json={"amount": 500, "currency": "EUR", "note": "goodwill"})
    assert r.status_code == 201, r.text
    r = await client.post("/v1/carts", headers=w.pos_hh, json={"customer": gone["id"], "lines": [{"sku": w.a, "quantity": 1}]})
    assert r.status_code == 201, r.text
    cart = r.json()
    keep_version = (await client.get(f"/v1/customers/{keep['id']}", headers=admin)).json()["version"]

    r = await client.post(f"/v1/customers/{keep['id']}/merge", headers={**admin, "If-Match": f'"{keep_version}"'},
                          json={"other": gone["loyalty_card"].lower()})
    assert r.status_code == 200, r.text
    merged = r.json()
    assert merged["id"] == keep["id"] and merged["version"] == keep_version + 1
    assert r.headers["etag"] == f'"{keep_version + 1}"'
    # profile: own values kept, the empty ones filled, addresses deduplicated by place
    assert (merged["email"], merged["name"]) == (keep["email"], "Kim Keep")
    assert (merged["phone"], merged["group"], merged["loyalty_card"]) == ("+49 40 999", "b2b", gone["loyalty_card"])
    assert [a["line1"] for a in merged["addresses"]] == ["Elbchaussee 1", "Mönckebergstraße 7"]
    # consents: the latest decision per purpose across both histories
    assert merged["consents"] == {"marketing": False, "personalization": True}
    r = await client.get(f"/v1/customers/{keep['id']}/consents", headers=admin)
    hist = r.json()["data"]
    assert len(hist) == 4 and {h["customer"] for h in hist} == {keep["id"]}
    assert [(h["purpose"], h["granted"]) for h in hist][-1] == ("marketing", False)

    # orders of every channel, returns through them, carts, store credit
    r = await client.get(f"/v1/customers/{keep['id']}/orders", headers=admin)
    assert {o["id"] for o in r.json()["data"]} == {web["id"], sale["id"], gone_web["id"]}
    assert all(o["customer"] == keep["id"] for o in r.json()["data"])
    moved = await w.order(client, sale["id"])
    assert moved["returns"][0]["id"] == ret["id"]
    assert (await client.get(f"/v1/carts/{cart['id']}", headers=w.pos_hh)).json()["customer"] == keep["id"]
    r = await client.get(f"/v1/customers/{keep['id']}/store-credit", headers=w.pos_hh)
    assert r.json()["balances"] == [{"amount": 500 + ret["refund_total"]["amount"], "currency": "EUR"}]

    # the other record: a tombstone whose id, email and card find the survivor
    for ref in (gone["id"], gone["email"].upper(), older["id"], older["email"], gone["loyalty_card"]):
        r = await client.get(f"/v1/customers/{ref}", headers=w.pos_hh)
        assert r.status_code == 200 and r.json()["id"] == keep["id"], ref
    r = await client.get("/v1/customers", params={"email": gone["email"]}, headers=w.pos_hh)
    assert [c["id"] for c in r.json()["data"]] == [keep["id"]]
    later = await w.pos_sale(client, gone["email"], {w.a: 1})  # the old email at the till: the survivor
    assert later["customer"] == keep["id"]
    assert_problem(await client.post("/v1/customers", headers=admin, json={"email": gone["email"]}), 409, "duplicate_email")
    tomb = await row(gone["id"])
    assert (tomb.status, tomb.merged_into, tomb.name, tomb.phone, tomb.addresses, tomb.loyalty_card) == \
           ("merged", keep["id"], None, None, [], None)
    assert (await row(older["id"])).merged_into == keep["id"]  # no chains
    r = await client.get("/v1/customers", params={"q": "Gone", "limit": 500}, headers=admin)
    assert gone["id"] not in [c["id"] for c in r.json()["data"]]  # the list shows active customers
    # the survivor may take the old email back
    r = await client.patch(f"/v1/customers/{keep['id']}", headers=admin, json={"email": gone["email"]})
    assert r.status_code == 200 and r.json()["email"] == gone["email"]

    evs = await customer_events(keep["id"])
    merges = [e for e in evs if e.type == "customer.merged"]
    assert len(merges) == 1 and merges[0].data["merged"] == gone["id"]
    assert gone["email"] not in str(merges[0].data) and "+49 40 999" not in str(merges[0].data)
    assert [a.detail for a in await audit_rows(keep["id"]) if a.action == "merge"] == [{"merged": gone["id"]}]
    assert [a.detail for a in await audit_rows(gone["id"]) if a.action == "merge"] == [
        {"merged": older["id"]}, {"into": keep["id"]}]


async def test_bad_merges(client, admin, w):
    a = await register(client, admin, email=email("A"))
    b = await register(client, admin, email=email("B"))

    async def merge(ref, other, headers=admin):
        return await client.post(f"/v1/customers/{ref}/merge", headers=headers, json={"other": other})

    for other in (a["id"], a["email"].upper(), "cus_nobody", "nobody@example.com", "NO-CARD"):
        assert assert_problem(await merge(a["id"], other), 422, "validation_error")["errors"][0]["field"] == "other"
    assert_problem(await merge("cus_nobody", b["id"]), 404, "not_found")
    for body in ({}, {"other": ""}, {"other": 5}, {"other": b["id"], "x": 1}):
        r = await client.post(f"/v1/customers/{a['id']}/merge", headers=admin, json=body)
        assert_problem(r, 422, "validation_error")
    r = await client.post(f"/v1/customers/{a['id']}/merge", headers={**admin, "If-Match": '"9"'}, json={"other": b["id"]})
    assert_problem(r, 412, "version_conflict")
    for h in (w.shop, w.pos_hh, w.marketplace, w.drop):
        assert_problem(await merge(a["id"], b["id"], h), 403, "forbidden")
    # nothing was half-done by any of them
    assert (await row(b["id"])).status == "active" and (await row(a["id"])).version == 1

    assert (await merge(a["id"], b["id"])).status_code == 200
    # b is a now: merging it again (either way round) names a itself
    assert_problem(await merge(a["id"], b["id"]), 422, "validation_error")
    assert_problem(await merge(b["id"], a["id"]), 422, "validation_error")
    # erased records take no part
    c = await register(client, admin, email=email("C"))
    assert (await client.delete(f"/v1/customers/{c['id']}", headers=admin)).status_code == 204
    assert assert_problem(await merge(a["id"], c["id"]), 422, "validation_error")["errors"][0]["field"] == "other"
    assert_problem(await merge(c["id"], a["id"]), 410, "customer_erased")


async def test_opposite_merges_at_once(client, admin, w):
    """a <- b and b <- a at the same time: both lock the pair in id order, one wins, the other finds
    the pair merged (never a deadlock)."""
    for _ in range(4):
        a = await register(client, admin, email=email("X"), loyalty_card=card())
        b = await register(client, admin, email=email("Y"), loyalty_card=card())
        merges = await asyncio.gather(
            client.post(f"/v1/customers/{a['id']}/merge", headers=admin, json={"other": b["id"]}),
            client.post(f"/v1/customers/{b['id']}/merge", headers=admin, json={"other": a["id"]}))
        assert sorted(r.status_code for r in merges) in ([200, 409], [200, 422]), [r.text[:300] for r in merges]
        survivor = next(r.json()["id"] for r in merges if r.status_code == 200)
        gone = b["id"] if survivor == a["id"] else a["id"]
        assert ((await row(gone)).status, (await row(survivor)).status) == ("merged", "active")


async def test_sales_during_a_merge_end_on_the_survivor(client, admin, w):
    """Sales at the till with either record's card while the merge runs: every order ends on the
    survivor (the sale holds the customer row FOR SHARE, the merge waits for it or it for the merge)."""
    for _ in range(3):
        a = await register(client, admin, email=email("X"), loyalty_card=card())
        b = await register(client, admin, email=email("Y"), loyalty_card=card())
        sale = {"lines": [{"sku": w.a, "quantity": 1}]}
        answers = await asyncio.gather(
            client.post("/v1/orders", headers=w.pos_hh, json={**sale, "customer": b["loyalty_card"]}),
            client.post(f"/v1/customers/{a['id']}/merge", headers=admin, json={"other": b["id"]}),
            *(client.post("/v1/orders", headers=w.pos_hh, json={**sale, "customer": c["loyalty_card"]})
              for c in (b, a, b)))
        merge, sales = answers[1], [answers[0], *answers[2:]]
        assert merge.status_code == 200, merge.text
        assert all(r.status_code == 201 for r in sales), [r.text[:300] for r in sales]
        r = await client.get(f"/v1/customers/{a['id']}/orders", headers=admin)
        assert {o["id"] for o in r.json()["data"]} == {s.json()["id"] for s in sales}
        async with sessionmaker()() as s:
            left = (await s.execute(select(Order.id).where(Order.customer_id == b["id"]))).all()
        assert left == []  # no order stayed on the record merged away
