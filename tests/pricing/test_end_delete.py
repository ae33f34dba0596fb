"""Ending and deleting price lists and promotions, GET /v1/tax-rates/{id}; every change is seen
at once by quotes and product pages (the caches drop with the commit)."""
from datetime import datetime, timedelta

from sqlalchemy import select

from app.core import clock
from app.core.db import sessionmaker
from app.events.models import Event
from app.pricing import reference
from app.pricing.models import PriceEntry, Promotion
from app.pricing.schemas import PriceListOut, PromotionOut, TaxRateOut
from tests.conftest import auth, make_key, uid
from tests.helpers import assert_problem
from tests.orders.builders import Shop, lines
from tests.pricing.test_api import World, quote, world  # noqa: F401  (the fixture)


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _list_events(code: str) -> list[dict]:
    async with sessionmaker()() as s:
        rows = (await s.execute(select(Event).where(Event.type == "price_list.updated").order_by(Event.id))).scalars()
        return [e.data for e in rows if e.data.get("code") == code]


async def _sale_list(client, admin, w: World, amount: int = 1500, **kw) -> str:
    """A list naming the web channel with a higher priority than retail: it prices the tee."""
    code = uid("sale")
    r = await client.post("/v1/price-lists", headers=admin, json={
        "code": code, "currency": "EUR", "channels": [w.web], "priority": 50, **kw})
    assert r.status_code == 201, r.text
    r = await client.put(f"/v1/price-lists/{code}/prices", json=[{"sku": w.tee, "amount": amount}], headers=admin)
    assert r.status_code == 200, r.text
    return code


async def _page_price(client, headers, sku_: str) -> dict:
    r = await client.get("/v1/variants", params={"sku": sku_}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_end_price_list(client, admin, world):
    w = world
    front = auth(await make_key("storefront", channel=w.web))
    code = await _sale_list(client, admin, w)
    for _ in range(2):  # quotes and pages priced by the sale list, and cached
        q = await quote(client, front, lines=lines((w.tee, 1)))
        assert (q["lines"][0]["unit_price"], q["lines"][0]["price_list"]) == (1500, code)
        assert (await _page_price(client, front, w.tee))["price"]["amount"] == 1500
    before = clock.now()
    r = await client.post(f"/v1/price-lists/{code}/end", headers=admin | {"If-Match": '"3"'})
    assert_problem(r, 412, "version_conflict")
    r = await client.post(f"/v1/price-lists/{code}/end", headers=admin | {"If-Match": '"2"'})
    assert r.status_code == 200, r.text
    pl = PriceListOut.model_validate(r.json())
    assert pl.version == 3 and r.headers["etag"] == '"3"' and before <= pl.valid_to <= clock.now()
    # at once: retail prices the tee again, on the page too
    q = await quote(client, front, lines=lines((w.tee, 1)))
    assert (q["lines"][0]["unit_price"], q["lines"][0]["price_list"]) == (2000, w.retail)
    assert (await _page_price(client, front, w.tee))["price"]["amount"] == 2000
    # the list stays for the record; ending it again changes nothing
    assert (await client.get(f"/v1/price-lists/{code}", headers=admin)).json()["valid_to"] == r.json()["valid_to"]
    r = await client.post(f"/v1/price-lists/{code}/end", headers=admin)
    assert r.status_code == 200 and r.json()["version"] == 3
    events = await _list_events(code)
    assert [e["change"] for e in events] == ["created", "prices", "ended"]
    # a list not yet started ends with the empty window now..now: it never prices
    later = uid("later")
    start = (clock.now() + timedelta(days=3)).isoformat()
    r = await client.post("/v1/price-lists", headers=admin, json={"code": later, "currency": "EUR", "valid_from": start})
    assert r.status_code == 201, r.text
    r = await client.post(f"/v1/price-lists/{later}/end", headers=admin)
    assert r.status_code == 200 and r.json()["valid_from"] == r.json()["valid_to"] and r.json()["version"] == 2
    clock.advance(timedelta(days=4))
    try:
        q = await quote(client, front, lines=lines((w.tee, 1)))
        assert q["lines"][0]["price_list"] == w.retail
    finally:
        clock.reset()
    assert_problem(await client.post("/v1/price-lists/no-such-list/end", headers=admin), 404, "not_found")
    assert_problem(await client.post(f"/v1/price-lists/{code}/end", headers=front), 403, "forbidden")


async def test_delete_price_list(client, admin, world):
    w = world
    front = auth(await make_key("storefront", channel=w.web))
    code = await _sale_list(client, admin, w)
    for _ in range(2):
        assert (await quote(client, front, lines=lines((w.tee, 1))))["lines"][0]["price_list"] == code
        assert (await _page_price(client, front, w.tee))["price"]["amount"] == 1500
    # a channel naming it in its price_lists: 409 naming the channel, nothing deleted
    r = await client.patch(f"/v1/channels/{w.other}", json={"price_lists": [code]}, headers=admin)
    assert r.status_code == 200, r.text
    body = assert_problem(await client.delete(f"/v1/price-lists/{code}", headers=admin), 409, "price_list_in_use")
    assert body["channels"] == [w.other] and w.other in body["detail"] and "/end" in body["detail"]
    assert [e["value"] for e in body["errors"]] == [w.other]
    assert (await client.get(f"/v1/price-lists/{code}", headers=admin)).status_code == 200
    assert_problem(await client.delete(f"/v1/price-lists/{code}", headers=front), 403, "forbidden")
    r = await client.patch(f"/v1/channels/{w.other}", json={"price_lists": []}, headers=admin)
    assert r.status_code == 200, r.text
    assert_problem(await client.delete(f"/v1/price-lists/{code}", headers=admin | {"If-Match": '"1"'}),
                   412, "version_conflict")
    r = await client.delete(f"/v1/price-lists/{code}", headers=admin | {"If-Match": '"2"'})
    assert r.status_code == 204 and r.content == b""
    # gone with its prices, and at once out of quotes and pages
    assert_problem(await client.get(f"/v1/price-lists/{code}", headers=admin), 404, "not_found")
    async with sessionmaker()() as s:
        assert (await s.execute(select(PriceEntry).where(PriceEntry.sku == w.tee, PriceEntry.amount == 1500))).first() is None
    q = await quote(client, front, lines=lines((w.tee, 1)))
    assert (q["lines"][0]["unit_price"], q["lines"][0]["price_list"]) == (2000, w.retail)
    assert (await _page_price(client, front, w.tee))["price"]["amount"] == 2000
    assert [e["change"] for e in await _list_events(code)] == ["created", "prices", "deleted"]
    assert_problem(await client.delete(f"/v1/price-lists/{code}", headers=admin), 404, "not_found")
    # the code is free again
    r = await client.post("/v1/price-lists", headers=admin, json={"code": code, "currency": "EUR"})
    assert r.status_code == 201, r.text


async def _promotion(client, admin, w: World, **kw) -> dict:
    body = {"code": uid("promo"), "name": "Tee deal", "type": "percent_off", "params": {"percent_bp": 1000},
            "skus": [w.tee], "priority": 3, **kw}
    r = await client.post("/v1/promotions", json=body, headers=admin)
    assert r.status_code == 201, r.text
    return r.json()


async def test_end_promotion(client, admin, world):
    w = world
    front = auth(await make_key("storefront", channel=w.web))
    promo = await _promotion(client, admin, w)
    coupon = await _promotion(client, admin, w, coupon_code=uid("C").upper(), params={"percent_bp": 500})
    for _ in range(2):
        q = await quote(client, front, lines=lines((w.tee, 1)))
        assert [d["promotion"] for d in q["lines"][0]["discounts"]] == [promo["code"]]
        v = await _page_price(client, front, w.tee)
        assert v["price"]["amount"] == 1800 and v["compare_at_price"]["amount"] == 2000
    r = await client.post(f"/v1/promotions/{promo['code']}/end", headers=admin | {"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    ended = PromotionOut.model_validate(r.json())
    assert ended.version == 2 and ended.valid_to <= clock.now() and r.headers["etag"] == '"2"'
    q = await quote(client, front, lines=lines((w.tee, 1)))
    assert q["lines"][0]["discounts"] == [] and q["total"] == 2000
    v = await _page_price(client, front, w.tee)
    assert v["price"]["amount"] == 2000 and v["compare_at_price"] is None
    r = await client.post(f"/v1/promotions/{promo['code']}/end", headers=admin)
    assert r.status_code == 200 and r.json()["version"] == 2  # ended already: unchanged
    # PATCH valid_to ends one too; an ended coupon is refused as expired
    r = await client.patch(f"/v1/promotions/{coupon['code']}", json={"valid_to": clock.now().isoformat()}, headers=admin)
    assert r.status_code == 200, r.text
    r = await client.post("/v1/pricing/quote", json={"lines": lines((w.tee, 1)), "coupon_codes": [coupon["coupon_code"]]},
                          headers=front)
    assert assert_problem(r, 422, "invalid_coupon")["errors"][0]["reason"] == "expired"
    # one not yet started: the empty window now..now, it never applies
    start = clock.now() + timedelta(days=2)
    later = await _promotion(client, admin, w, valid_from=start.isoformat(), priority=4)
    r = await client.post(f"/v1/promotions/{later['code']}/end", headers=admin)
    assert r.status_code == 200 and r.json()["valid_from"] == r.json()["valid_to"]
    assert _ts(r.json()["valid_to"]) < start
    clock.advance(timedelta(days=3))
    try:
        assert (await quote(client, front, lines=lines((w.tee, 1))))["lines"][0]["discounts"] == []
    finally:
        clock.reset()
    assert_problem(await client.post("/v1/promotions/no-such-promo/end", headers=admin), 404, "not_found")
    assert_problem(await client.post(f"/v1/promotions/{later['code']}/end", headers=front), 403, "forbidden")


async def test_delete_promotion(client, admin):
    shop = await Shop().setup(client, admin)
    front = shop.storefront
    unused = {"code": uid("promo"), "name": "x", "type": "percent_off", "params": {"percent_bp": 1000}, "skus": [shop.a],
              "priority": 2}
    r = await client.post("/v1/promotions", json=unused, headers=admin)
    assert r.status_code == 201, r.text
    for _ in range(2):
        r = await client.post("/v1/pricing/quote", json={"lines": lines((shop.a, 1))}, headers=front)
        assert r.json()["discount_total"] == 100
    assert_problem(await client.delete(f"/v1/promotions/{unused['code']}", headers=admin | {"If-Match": '"2"'}),
                   412, "version_conflict")
    assert_problem(await client.delete(f"/v1/promotions/{unused['code']}", headers=front), 403, "forbidden")
    r = await client.delete(f"/v1/promotions/{unused['code']}", headers=admin | {"If-Match": '"1"'})
    assert r.status_code == 204 and r.content == b""
    assert_problem(await client.get(f"/v1/promotions/{unused['code']}", headers=admin), 404, "not_found")
    r = await client.post("/v1/pricing/quote", json={"lines": lines((shop.a, 1))}, headers=front)
    assert r.json()["discount_total"] == 0  # at once
    assert_problem(await client.delete(f"/v1/promotions/{unused['code']}", headers=admin), 404, "not_found")
    # used by an order: 409 promotion_in_use, to be ended instead
    used = {**unused, "code": uid("promo")}
    r = await client.post("/v1/promotions", json=used, headers=admin)
    assert r.status_code == 201, r.text
    await shop.stock(client, shop.hh, **{shop.a: 2})  # a POS sale of A at Hamburg: the promotion applies
    r = await client.post("/v1/orders", headers=shop.pos_hh, json={"lines": lines((shop.a, 1))})
    assert r.status_code == 201, r.text
    assert used["code"] in [p["code"] for p in r.json()["promotions"]]
    body = assert_problem(await client.delete(f"/v1/promotions/{used['code']}", headers=admin), 409, "promotion_in_use")
    assert f"/v1/promotions/{used['code']}/end" in body["detail"]
    assert (await client.get(f"/v1/promotions/{used['code']}", headers=admin)).status_code == 200
    r = await client.post(f"/v1/promotions/{used['code']}/end", headers=admin)
    assert r.status_code == 200
    assert_problem(await client.delete(f"/v1/promotions/{used['code']}", headers=admin), 409, "promotion_in_use")


async def test_get_tax_rate(client, admin, world):
    rows = (await client.get("/v1/tax-rates", params={"country": world.country}, headers=admin)).json()["data"]
    t = next(x for x in rows if x["tax_class"] == "reduced")
    r = await client.get(f"/v1/tax-rates/{t['id']}", headers=admin)
    assert r.status_code == 200 and r.json() == t and r.headers["etag"] == f'"{t["version"]}"'
    TaxRateOut.model_validate(r.json())
    assert_problem(await client.get("/v1/tax-rates/tax_nope", headers=admin), 404, "not_found")
    front = auth(await make_key("storefront", channel=world.web))
    assert_problem(await client.get(f"/v1/tax-rates/{t['id']}", headers=front), 403, "forbidden")


async def test_reference_stamp_sees_a_delete_and_a_create(client, admin, world):
    """Without the cache (its invalidation unavailable), reference data is reloaded when a stamp
    moves: a promotion deleted and another created must move it (same count, same version sum)."""
    w = world
    first = await _promotion(client, admin, w, priority=9)
    async with sessionmaker()() as s:
        before = await reference._reference_by_stamp(s)
    assert first["code"] in {p.code for p in before.promotions}
    assert (await client.delete(f"/v1/promotions/{first['code']}", headers=admin)).status_code == 204
    second = await _promotion(client, admin, w, priority=9)
    async with sessionmaker()() as s:
        after = await reference._reference_by_stamp(s)
        count = len((await s.execute(select(Promotion.id))).all())
    codes = {p.code for p in after.promotions}
    assert first["code"] not in codes and second["code"] in codes and count >= 1
