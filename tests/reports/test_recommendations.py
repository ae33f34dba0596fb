"""GET /v1/products/{id}/recommendations: bought together with wine, across channels.

Orders with wine W (web, the Hamburg and Berlin tills, the marketplace):
    W + C (cheese)   3 ×  (web, till, marketplace)
    W + G (grapes)   4 ×  marketplace — G is not sold on the web
    W + B (bread)    2 ×  (web, till); a third, cancelled, does not count
    W + E (brioche)  2 ×  web — E is in the same category as B (bakery)
    W + O (olives)   2 ×  web — the last two olives: nothing left to sell
    W + K (crackers) 1 ×  Berlin till — K is stocked in Berlin only
So the web shop's anonymous answer is C, B, E (B before E: same counts, older id).
"""
import pytest

from tests.catalog.builders import create_product, sku
from tests.helpers import assert_problem
from tests.reports.world import Retailer, ok


def url(product_id: str) -> str:
    return f"/v1/products/{product_id}/recommendations"


@pytest.fixture(scope="module")
async def r(client, admin):
    r = await Retailer().setup(client, admin)
    everywhere = [r.web, r.pos, r.market]
    r.products = {}
    for name, category, channels in (("G", "fruit", [r.pos, r.market]), ("E", "bakery", everywhere),
                                     ("O", "deli", [r.web, r.market]), ("K", "snacks", [r.web, r.pos])):
        s = sku(name)
        r.products[name] = (await create_product(client, admin, channels=channels, category=category,
                                                 variants=[{"sku": s}]))
        setattr(r, name.lower() + "_sku", s)
    r.wine = await product_of(client, r, r.w)
    r.cheese, r.bread = await product_of(client, r, r.c), await product_of(client, r, r.b)
    await ok(await client.put(f"/v1/price-lists/{r.eur}/prices", headers=admin, json=[
        {"sku": s, "amount": 400} for s in (r.g_sku, r.e_sku, r.o_sku, r.k_sku)]))
    await ok(await client.put("/v1/inventory/levels", headers=admin, json={"location": r.wh, "levels": [
        {"sku": s, "on_hand": n} for s, n in ((r.w, 50), (r.c, 50), (r.b, 50), (r.e_sku, 50), (r.o_sku, 2),
                                               (r.g_sku, 50))]}))
    await ok(await client.put("/v1/inventory/levels", headers=admin, json={"location": r.hh, "levels": [
        {"sku": s, "on_hand": 50} for s in (r.w, r.c, r.b)]}))
    await ok(await client.put("/v1/inventory/levels", headers=admin, json={"location": r.be, "levels": [
        {"sku": r.w, "on_hand": 50}, {"sku": r.k_sku, "on_hand": 50}, {"sku": r.c, "on_hand": 5}]}))
    ship = {"method": "ship", "address": {"line1": "x 1", "postal_code": "1", "city": "Hamburg", "country": "DE"}}

    async def imported(*skus):
        await r.sale(client, r.marketplace, {s: 1 for s in skus}, external_id=sku("AMZ"), fulfillment=ship)

    await r.web_order(client, {r.w: 1, r.c: 1})
    await r.sale(client, r.pos_hh, {r.w: 1, r.c: 1})
    await imported(r.w, r.c)
    for _ in range(4):
        await imported(r.w, r.g_sku)
    await r.web_order(client, {r.w: 1, r.b: 1})
    await r.sale(client, r.pos_hh, {r.w: 1, r.b: 1})
    cancelled = await r.web_order(client, {r.w: 1, r.b: 1})
    await ok(await client.post(f"/v1/orders/{cancelled['id']}/cancel", headers=admin, json={}))
    for _ in range(2):
        await r.web_order(client, {r.w: 1, r.e_sku: 1})
        await r.web_order(client, {r.w: 1, r.o_sku: 1})
    await r.sale(client, r.pos_be, {r.w: 1, r.k_sku: 1})
    # dora consents to personalization and bought bread at the till; eve bought bread and does not consent
    r.dora = await r.customer(client, "dora", consents={"personalization": True})
    r.eve = await r.customer(client, "eve")
    await r.sale(client, r.pos_hh, {r.b: 1}, customer=r.dora["id"])
    await r.sale(client, r.pos_hh, {r.b: 1}, customer=r.eve["email"])
    return r


async def product_of(client, r, s: str) -> dict:
    found = await ok(await client.get("/v1/variants", params={"sku": s}, headers=r.admin))
    return {"id": found["product_id"]}


def ranked(body: dict) -> list[tuple[str, int, int]]:
    return [(g["product"], g["orders_together"], g["score"]) for g in body["data"]]


async def test_co_purchases_across_channels_available_in_the_channel(client, r):
    body = await ok(await client.get(url(r.wine["id"]), headers=r.shop))
    assert (body["product"], body["channel"], body["location"], body["personalized"]) == (r.wine["id"], r.web, None,
                                                                                          False)
    e = r.products["E"]["id"]
    assert ranked(body) == [(r.cheese["id"], 3, 3), (r.bread["id"], 2, 2), (e, 2, 2)]
    assert body["data"][0]["category"] == "cheese" and body["data"][0]["title"]
    # limit
    assert ranked(await ok(await client.get(url(r.wine["id"]), params={"limit": 1}, headers=r.shop))) == \
        [(r.cheese["id"], 3, 3)]


async def test_at_a_store_only_what_it_has(client, r):
    body = await ok(await client.get(url(r.wine["id"]), params={"location": r.be}, headers=r.shop))
    assert body["location"] == r.be
    assert ranked(body) == [(r.cheese["id"], 3, 3), (r.products["K"]["id"], 1, 1)]


async def test_another_channel_sees_its_own_catalog(client, r):
    body = await ok(await client.get(url(r.wine["id"]), params={"limit": 2}, headers=r.marketplace))
    assert ranked(body) == [(r.products["G"]["id"], 4, 4), (r.cheese["id"], 3, 3)]
    admin = await ok(await client.get(url(r.wine["id"]), params={"channel": r.market, "limit": 2}, headers=r.admin))
    assert admin["data"] == body["data"]


async def test_personal_only_with_consent_and_at_once(client, r):
    anonymous = await client.get(url(r.wine["id"]), headers=r.shop)
    # eve has not consented: exactly the anonymous answer, though she bought bread
    eve = await client.get(url(r.wine["id"]), params={"customer": r.eve["email"]}, headers=r.shop)
    assert eve.status_code == 200 and eve.content == anonymous.content
    # dora consents: the bread she bought is left out, the other bakery product ranks up (2 × 2)
    dora = await ok(await client.get(url(r.wine["id"]), params={"customer": r.dora["id"]}, headers=r.shop))
    assert dora["personalized"] is True
    assert ranked(dora) == [(r.products["E"]["id"], 2, 4), (r.cheese["id"], 3, 3)]
    # she withdraws her consent: the very next answer is the anonymous one
    await ok(await client.patch(f"/v1/customers/{r.dora['id']}", headers=r.admin,
                                json={"consents": {"personalization": False}}))
    after = await client.get(url(r.wine["id"]), params={"customer": r.dora["id"]}, headers=r.shop)
    assert after.status_code == 200 and after.content == anonymous.content
    # and gives it again
    await ok(await client.patch(f"/v1/customers/{r.dora['id']}", headers=r.admin,
                                json={"consents": {"personalization": True}}))
    again = await ok(await client.get(url(r.wine["id"]), params={"customer": r.dora["email"]}, headers=r.pos_hh))
    assert again["personalized"] is True and r.bread["id"] not in [g["product"] for g in again["data"]]


async def test_who_may_ask(client, r):
    wine = url(r.wine["id"])
    assert_problem(await client.get(url(r.products["G"]["id"]), headers=r.shop), 404)  # not in its channel
    assert_problem(await client.get(wine, params={"channel": r.pos}, headers=r.shop), 404)
    assert_problem(await client.get(url("prod_nosuchproduct"), headers=r.shop), 404)
    assert_problem(await client.get(wine, headers=r.dropshipper), 403, "forbidden")
    assert_problem(await client.get(wine, params={"customer": r.eve["id"]}, headers=r.marketplace), 403, "forbidden")
    assert_problem(await client.get(wine), 401)
    # a storefront key names only the customers of its channel
    other = await r.customer(client, "zoe")
    await ok(await client.patch(f"/v1/customers/{other['id']}", headers=r.admin, json={"consents": {"personalization": True}}))
    swiss = await client.get(wine, params={"customer": other["id"]}, headers=r.shop_ch)
    assert [e["field"] for e in assert_problem(swiss, 422)["errors"]] == ["customer"]
    # by handle works too
    handle = (await ok(await client.get(f"/v1/products/{r.wine['id']}", headers=r.admin)))["handle"]
    by_handle = await ok(await client.get(url(handle), headers=r.shop))
    assert by_handle["product"] == r.wine["id"]


@pytest.mark.parametrize("params, field", [({}, "channel"), ({"channel": "nope"}, "channel"),
                                           ({"channel": "{web}", "location": "nowhere"}, "location"),
                                           ({"channel": "{web}", "customer": "nobody@example.com"}, "customer"),
                                           ({"channel": "{web}", "limit": "51"}, "limit")])
async def test_bad_input(client, r, params, field):
    params = {k: v.format(web=r.web) for k, v in params.items()}
    body = assert_problem(await client.get(url(r.wine["id"]), params=params, headers=r.admin), 422)
    assert [e["field"] for e in body["errors"]] == [field]
