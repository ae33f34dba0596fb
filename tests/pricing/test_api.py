"""Price lists, prices, tax rates, promotions and POST /v1/pricing/quote through the API."""
import asyncio
import importlib

import pytest
from sqlalchemy import select

from app.core.db import sessionmaker, sql_statements
from app.events.models import Event
from app.pricing.schemas import PriceListOut, PromotionOut, QuoteOut, TaxRateOut
from tests.catalog.builders import create_product, sku
from tests.conftest import auth, make_key, uid
from tests.helpers import assert_problem, create_channel, create_location


class World:
    """Products (tee 20.00 standard VAT, coffee 10.00 / chocolate 3.00 reduced, a gift box bundle),
    a gross web channel, a net b2b channel, a retail list for both and German tax rates."""

    async def setup(self, client, admin, country: str = "DE"):
        self.country = country
        self.web = (await create_channel(client, admin, "web", country=country))["code"]
        self.net = (await create_channel(client, admin, "web", country=country, prices_include_tax=False))["code"]
        self.other = (await create_channel(client, admin, "web", country=country))["code"]
        chans = [self.web, self.net, self.other]
        self.tee, self.coffee, self.choc, self.box, self.unpriced = sku("TEE"), sku("COF"), sku("CHO"), sku("BOX"), sku("NOP")
        self.cat = uid("grocery")
        await create_product(client, admin, channels=chans, variants=[{"sku": self.tee}], category="fashion/tees")
        await create_product(client, admin, channels=chans, variants=[{"sku": self.coffee}], tax_class="reduced",
                             category=f"{self.cat}/coffee")
        await create_product(client, admin, channels=chans, variants=[{"sku": self.choc}], tax_class="reduced",
                             category=f"{self.cat}/chocolate")
        await create_product(client, admin, channels=chans, variants=[{"sku": self.unpriced}])
        await create_product(client, admin, channels=chans, type="bundle",
                             variants=[{"sku": self.box, "components": [{"sku": self.coffee, "quantity": 1},
                                                                        {"sku": self.choc, "quantity": 2}]}])
        self.hidden = sku("HID")
        await create_product(client, admin, channels=[self.other], variants=[{"sku": self.hidden}])
        self.retail = uid("retail")
        r = await client.post("/v1/price-lists", json={"code": self.retail, "currency": "EUR", "channels": [self.web, self.net]},
                              headers=admin)
        assert r.status_code == 201, r.text
        r = await client.put(f"/v1/price-lists/{self.retail}/prices", headers=admin, json=[
            {"sku": self.tee, "amount": 2000}, {"sku": self.coffee, "amount": 1000},
            {"sku": self.coffee, "amount": 900, "min_quantity": 5}, {"sku": self.choc, "amount": 300},
            {"sku": self.box, "amount": 1500}, {"sku": self.hidden, "amount": 100}])
        assert r.status_code == 200, r.text
        for tax_class, rate in (("standard", 1900), ("reduced", 700)):
            r = await client.post("/v1/tax-rates", json={"country": country, "tax_class": tax_class, "rate_bp": rate},
                                  headers=admin)
            assert r.status_code in (200, 201), r.text
        return self


@pytest.fixture
async def world(client, admin):
    # a country of its own, so the tax rates of this world are exactly what it sets
    letters = uid("x")[-2:].upper()
    country = "".join(c if c.isalpha() else chr(65 + int(c)) for c in letters)
    return await World().setup(client, admin, country)


def sums_ok(q: dict) -> None:
    ls = q["lines"]
    assert q["subtotal"] == sum(x["subtotal"] for x in ls)
    assert q["discount_total"] == sum(sum(d["amount"] for d in x["discounts"]) for x in ls)
    assert q["tax_total"] == sum(x["tax_amount"] for x in ls)
    assert q["total"] == sum(x["total"] for x in ls)
    for x in ls:
        assert x["total"] == x["subtotal"] - sum(d["amount"] for d in x["discounts"]) + (0 if q["prices_include_tax"] else x["tax_amount"])


async def quote(client, headers, **body) -> dict:
    r = await client.post("/v1/pricing/quote", json=body, headers=headers)
    assert r.status_code == 200, r.text
    q = r.json()
    sums_ok(q)
    QuoteOut.model_validate(q)  # the documented shape is the real one
    return q


async def test_quote_prices_tiers_tax_gross_and_net(client, admin, world):
    w = world
    q = await quote(client, admin, channel=w.web, lines=[{"sku": w.tee, "quantity": 2}, {"sku": w.coffee, "quantity": 1}])
    assert q["currency"] == "EUR" and q["prices_include_tax"] is True
    tee, coffee = q["lines"]
    assert (tee["unit_price"], tee["subtotal"], tee["tax_rate_bp"], tee["tax_amount"]) == (2000, 4000, 1900, 639)
    assert (coffee["unit_price"], coffee["tax_rate_bp"], coffee["tax_amount"]) == (1000, 700, 65)
    assert q["total"] == 5000 and q["tax_total"] == 704
    # tier price from 5 units (counted over the whole basket)
    q = await quote(client, admin, channel=w.web, lines=[{"sku": w.coffee, "quantity": 3}, {"sku": w.coffee, "quantity": 2}])
    assert [x["unit_price"] for x in q["lines"]] == [900, 900]
    # net channel: tax added per line
    q = await quote(client, admin, channel=w.net, lines=[{"sku": w.tee, "quantity": 1}])
    assert q["prices_include_tax"] is False and q["lines"][0]["tax_amount"] == 380 and q["total"] == 2380
    # a bundle is priced by its own price; its components' shares are given
    q = await quote(client, admin, channel=w.web, lines=[{"sku": w.box, "quantity": 2}])
    line = q["lines"][0]
    assert line["total"] == 3000
    assert {c["sku"]: c["allocated"] for c in line["components"]} == {w.coffee: 1875, w.choc: 1125}
    assert sum(c["allocated"] for c in line["components"]) == line["total"]


async def test_quote_errors(client, admin, world):
    w = world
    r = await client.post("/v1/pricing/quote", json={"channel": w.web, "lines": [{"sku": w.tee, "quantity": 1},
                                                                                {"sku": "NO-SUCH-SKU", "quantity": 1}]}, headers=admin)
    assert assert_problem(r, 422, "unknown_sku")["errors"][0]["field"] == "lines[1].sku"
    r = await client.post("/v1/pricing/quote", json={"channel": w.web, "lines": [{"sku": w.unpriced, "quantity": 1}]}, headers=admin)
    body = assert_problem(r, 422, "no_price")
    assert w.unpriced in body["detail"] and body["errors"][0]["field"] == "lines[0].sku"
    # a product not visible in the channel cannot be quoted there
    r = await client.post("/v1/pricing/quote", json={"channel": w.web, "lines": [{"sku": w.hidden, "quantity": 1}]}, headers=admin)
    assert_problem(r, 422, "unknown_sku")
    r = await client.post("/v1/pricing/quote", json={"channel": "no-such-channel", "lines": [{"sku": w.tee, "quantity": 1}]},
                          headers=admin)
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "channel"
    # the other channel has no price list: no price
    r = await client.post("/v1/pricing/quote", json={"channel": w.other, "lines": [{"sku": w.tee, "quantity": 1}]}, headers=admin)
    assert_problem(r, 422, "no_price")
    for bad in ({"channel": w.web, "lines": []}, {"channel": w.web, "lines": [{"sku": w.tee, "quantity": 0}]},
                {"channel": w.web, "lines": [{"sku": w.tee, "quantity": 2.5}]},
                {"channel": w.web, "lines": [{"sku": w.tee, "quantity": 1, "price": 1}]}):
        assert_problem(await client.post("/v1/pricing/quote", json=bad, headers=admin), 422, "validation_error")
    r = await client.post("/v1/pricing/quote", json={"channel": w.web, "coupon_codes": ["NOPE"],
                                                     "lines": [{"sku": w.tee, "quantity": 1}]}, headers=admin)
    assert assert_problem(r, 422, "invalid_coupon")["errors"][0]["field"] == "coupon_codes[0]"


async def test_quote_roles(client, admin, world):
    w = world
    body = {"lines": [{"sku": w.tee, "quantity": 1}]}
    shop = auth(await make_key("storefront", channel=w.web))
    q = await quote(client, shop, **body)  # the key's channel by default
    assert q["channel"] == w.web and q["total"] == 2000
    assert_problem(await client.post("/v1/pricing/quote", json={**body, "channel": w.net}, headers=shop), 404, "not_found")
    r = await client.post("/v1/pricing/quote", json={**body, "customer_group": "loyalty"}, headers=shop)
    assert_problem(r, 403, "forbidden")
    partner = (await create_location(client, admin, "partner"))["code"]
    dropship = auth(await make_key("dropshipper", location=partner))
    assert_problem(await client.post("/v1/pricing/quote", json={**body, "channel": w.web}, headers=dropship), 403, "forbidden")
    assert_problem(await client.post("/v1/pricing/quote", json={**body, "channel": w.web}), 401, "unauthenticated")
    # there is no POS key without its pos channel (that one could quote any channel)
    store = (await create_location(client, admin, "store"))["code"]
    r = await client.post("/v1/api-keys", json={"name": "till", "role": "pos", "location": store}, headers=admin)
    assert [e["field"] for e in assert_problem(r, 422, "validation_error")["errors"]] == ["channel"]
    for path in ("/v1/promotions", "/v1/tax-rates"):  # price lists: their channel's, read-only (test_shelf_and_lists)
        assert_problem(await client.get(path, headers=shop), 403, "forbidden")


async def test_quote_roles_bound_pos_and_marketplace(client, admin, world):
    """A POS key bound to its pos channel and a marketplace key quote in their own channel only."""
    w = world
    pos_ch = (await create_channel(client, admin, "pos", country=w.country))["code"]
    market = (await create_channel(client, admin, "marketplace", country=w.country))["code"]
    tee = sku("TEE")
    await create_product(client, admin, channels=[w.web, pos_ch, market], variants=[{"sku": tee}])
    r = await client.patch(f"/v1/price-lists/{w.retail}", json={"channels": [w.web, w.net, pos_ch, market]}, headers=admin)
    assert r.status_code == 200, r.text
    r = await client.put(f"/v1/price-lists/{w.retail}/prices", json=[{"sku": tee, "amount": 2000}], headers=admin)
    assert r.status_code == 200, r.text
    body = {"lines": [{"sku": tee, "quantity": 1}]}
    store = (await create_location(client, admin, "store"))["code"]
    pos = auth(await make_key("pos", channel=pos_ch, location=store))
    q = await quote(client, pos, **body)  # its channel by default
    assert q["channel"] == pos_ch and q["total"] == 2000
    assert_problem(await client.post("/v1/pricing/quote", json={**body, "channel": w.web}, headers=pos), 404, "not_found")
    # a POS may name a customer group (a loyalty card scanned at the till)
    assert (await quote(client, pos, **body, customer_group="loyalty"))["customer_group"] == "loyalty"
    seller = auth(await make_key("marketplace", channel=market))
    assert (await quote(client, seller, **body, channel=market))["total"] == 2000
    assert_problem(await client.post("/v1/pricing/quote", json={**body, "channel": w.web}, headers=seller), 404, "not_found")
    r = await client.post("/v1/pricing/quote", json={**body, "customer_group": "loyalty"}, headers=seller)
    assert_problem(r, 403, "forbidden")


async def test_quote_customer_without_customers_domain(client, admin, world):
    """`customer` is resolved through app.customers when that domain provides get_customer_group;
    until then a customer has no group and gets the general prices."""
    from app.pricing.service import customer_group_of

    w = world
    body = {"channel": w.web, "customer": f"{uid('nobody')}@example.com", "lines": [{"sku": w.tee, "quantity": 1}]}
    try:
        has_groups = hasattr(importlib.import_module("app.customers.service"), "get_customer_group")
    except ImportError:
        has_groups = False
    if not has_groups:
        async with sessionmaker()() as session:
            assert await customer_group_of(session, body["customer"]) is None
        q = await quote(client, admin, **body)
        assert q["customer_group"] is None and q["lines"][0]["unit_price"] == 2000
    else:  # the customers domain exists: an unknown customer is a clear 422
        r = await client.post("/v1/pricing/quote", json=body, headers=admin)
        assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "customer"


async def test_customer_group_prices(client, admin, world):
    w = world
    loyalty = uid("loyal")
    r = await client.post("/v1/price-lists", json={"code": loyalty, "currency": "EUR", "channels": [w.web],
                                                   "customer_group": "loyalty"}, headers=admin)
    assert r.status_code == 201
    assert (await client.put(f"/v1/price-lists/{loyalty}/prices", json=[{"sku": w.tee, "amount": 1700}], headers=admin)).status_code == 200
    lines = [{"sku": w.tee, "quantity": 1}, {"sku": w.coffee, "quantity": 1}]
    newcomer = await quote(client, admin, channel=w.web, lines=lines)
    member = await quote(client, admin, channel=w.web, customer_group="loyalty", lines=lines)
    assert [x["unit_price"] for x in newcomer["lines"]] == [2000, 1000]
    assert [x["unit_price"] for x in member["lines"]] == [1700, 1000]  # falls back to retail for coffee


async def test_promotions_3_fuer_2_staffel_coupon(client, admin, world):
    w = world
    three = uid("3fuer2")
    r = await client.post("/v1/promotions", json={
        "code": three, "name": "3 für 2", "type": "buy_x_pay_y", "params": {"x": 3, "y": 2},
        "categories": [w.cat], "channels": [w.web], "priority": 10, "stackable": False}, headers=admin)
    assert r.status_code == 201, r.text
    PromotionOut.model_validate(r.json())
    # mixed SKUs of the qualifying set: the cheapest unit is free
    q = await quote(client, admin, channel=w.web, lines=[{"sku": w.coffee, "quantity": 2}, {"sku": w.choc, "quantity": 1},
                                                        {"sku": w.tee, "quantity": 1}])
    by = {x["sku"]: x for x in q["lines"]}
    assert by[w.choc]["discounts"] == [{"promotion": three, "amount": 300}] and by[w.coffee]["discounts"] == []
    assert q["discount_total"] == 300 and [p["code"] for p in q["promotions"]] == [three]
    assert by[w.tee]["total"] == 2000
    # not in the other channel
    q = await quote(client, admin, channel=w.net, lines=[{"sku": w.coffee, "quantity": 3}])
    assert q["discount_total"] == 0
    # a Rabattstaffel on the tee (stackable) and a coupon
    staffel, coupon = uid("staffel"), uid("coupon")
    r = await client.post("/v1/promotions", json={
        "code": staffel, "name": "Staffel", "type": "tiered_percent", "skus": [w.tee], "priority": 5,
        "params": {"tiers": [{"min_quantity": 2, "percent_bp": 500}, {"min_quantity": 4, "percent_bp": 1000}]}}, headers=admin)
    assert r.status_code == 201, r.text
    code = uid("SAVE").upper()
    r = await client.post("/v1/promotions", json={
        "code": coupon, "name": "5 € off from 50 €", "type": "amount_off", "coupon_code": code,
        "params": {"amount": 500, "per": "order", "min_subtotal": 5000}}, headers=admin)
    assert r.status_code == 201, r.text
    q = await quote(client, admin, channel=w.web, lines=[{"sku": w.tee, "quantity": 4}])
    assert q["discount_total"] == 800
    q = await quote(client, admin, channel=w.web, coupon_codes=[code.lower()], lines=[{"sku": w.tee, "quantity": 4}])
    assert q["discount_total"] == 800 + 500  # the staffel (priority 5) first, then the coupon on what is left
    assert {p["code"] for p in q["promotions"]} == {staffel, coupon}
    # the coupon's threshold is not reached: valid coupon, no discount
    q = await quote(client, admin, channel=w.web, coupon_codes=[code], lines=[{"sku": w.tee, "quantity": 1}])
    assert q["discount_total"] == 0
    # deactivated promotions stop applying at once
    r = await client.patch(f"/v1/promotions/{staffel}", json={"active": False}, headers=admin | {"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["version"] == 2
    q = await quote(client, admin, channel=w.web, lines=[{"sku": w.tee, "quantity": 4}])
    assert q["discount_total"] == 0


async def test_bundle_price_promotion(client, admin, world):
    w = world
    code = uid("set")
    r = await client.post("/v1/promotions", json={
        "code": code, "name": "Kaffee + 2 Schokolade für 12 €", "type": "bundle_price", "channels": [w.web],
        "params": {"items": [{"sku": w.coffee, "quantity": 1}, {"sku": w.choc, "quantity": 2}], "amount": 1200}}, headers=admin)
    assert r.status_code == 201, r.text
    q = await quote(client, admin, channel=w.web, lines=[{"sku": w.coffee, "quantity": 1}, {"sku": w.choc, "quantity": 3}])
    assert q["discount_total"] == 400  # 1000 + 600 -> 1200; the third bar at full price
    assert q["total"] == 1200 + 300


async def test_promotion_validation_and_conflicts(client, admin, world):
    w = world
    base = {"name": "x", "type": "percent_off", "params": {"percent_bp": 1000}}
    cases = [
        ({"type": "buy_x_pay_y", "params": {"x": 3, "y": 3}}, "params.y"),
        ({"type": "tiered_percent", "params": {"tiers": []}}, "params.tiers"),
        ({"params": {"percent_bp": 20000}}, "params.percent_bp"),
        ({"params": {"pct": 10}}, "params.pct"),
        ({"channels": ["no-such-channel"]}, "channels[0]"),
        ({"valid_from": "2026-12-01T00:00:00Z", "valid_to": "2026-11-01T00:00:00Z"}, "valid_to"),
        ({"type": "free_lunch"}, "type"),
        ({"bogus": 1}, "bogus"),
    ]
    for extra, field in cases:
        r = await client.post("/v1/promotions", json={**base, "code": uid("bad"), **extra}, headers=admin)
        body = assert_problem(r, 422, "validation_error")
        assert field in [e["field"] for e in body["errors"]], (extra, body)
    # unknown SKUs answer like everywhere: unknown_sku, naming the body's own path
    for extra, field in [
        ({"type": "bundle_price", "params": {"items": [{"sku": w.tee, "quantity": 1}, {"sku": "NO-SUCH", "quantity": 1}],
                                              "amount": 100}}, "params.items[1].sku"),
        ({"skus": [w.tee, "NO-SUCH"]}, "skus[1]"),
    ]:
        r = await client.post("/v1/promotions", json={**base, "code": uid("bad"), **extra}, headers=admin)
        assert assert_problem(r, 422, "unknown_sku")["errors"] == [{"field": field, "message": "Unknown SKU 'NO-SUCH'."}]
    a = uid("excl")
    r = await client.post("/v1/promotions", json={**base, "code": a, "skus": [w.tee], "stackable": False, "priority": 7}, headers=admin)
    assert r.status_code == 201
    assert_problem(await client.post("/v1/promotions", json={**base, "code": a}, headers=admin), 409, "duplicate_code")
    # a second exclusive promotion of the same priority on the same SKU cannot be ranked: 409 naming it
    b = uid("excl")
    r = await client.post("/v1/promotions", json={**base, "code": b, "skus": [w.tee], "stackable": False, "priority": 7}, headers=admin)
    assert a in assert_problem(r, 409, "promotion_conflict")["detail"]
    # resolvable: another priority, or other products
    r = await client.post("/v1/promotions", json={**base, "code": b, "skus": [w.tee], "stackable": False, "priority": 8}, headers=admin)
    assert r.status_code == 201
    r = await client.patch(f"/v1/promotions/{b}", json={"priority": 7}, headers=admin)
    assert_problem(r, 409, "promotion_conflict")
    assert (await client.get(f"/v1/promotions/{b}", headers=admin)).json()["priority"] == 8
    r = await client.patch(f"/v1/promotions/{b}", json={"priority": 7}, headers=admin | {"If-Match": '"9"'})
    assert_problem(r, 412, "version_conflict")


async def test_price_lists_and_prices(client, admin, world):
    w = world
    code = uid("pl")
    assert_problem(await client.post("/v1/price-lists", json={"code": code, "currency": "EUR", "channels": ["nope"]},
                                     headers=admin), 422, "validation_error")
    usd_channel = (await create_channel(client, admin, "web", currency="USD"))["code"]
    r = await client.post("/v1/price-lists", json={"code": code, "currency": "EUR", "channels": [usd_channel]}, headers=admin)
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "channels[0]"
    r = await client.post("/v1/price-lists", json={"code": code, "currency": "EUR", "channels": [w.web], "priority": 5,
                                                   "valid_from": "2026-01-01T00:00:00Z"}, headers=admin)
    assert r.status_code == 201 and r.headers["etag"] == '"1"'
    pl = r.json()
    PriceListOut.model_validate(pl)
    assert pl["id"].startswith("pl_") and pl["valid_from"] == "2026-01-01T00:00:00Z"
    assert_problem(await client.post("/v1/price-lists", json={"code": code, "currency": "EUR"}, headers=admin), 409, "duplicate_code")
    # prices: unknown SKU and duplicates are 422 naming the entry; nothing is stored
    r = await client.put(f"/v1/price-lists/{code}/prices", json=[{"sku": w.tee, "amount": 1}, {"sku": "NO-SUCH", "amount": 1}],
                         headers=admin)
    assert assert_problem(r, 422, "unknown_sku")["errors"] == [{"field": "[1].sku", "message": "Unknown SKU 'NO-SUCH'."}]
    r = await client.put(f"/v1/price-lists/{code}/prices", json=[{"sku": w.tee, "amount": 1}, {"sku": w.tee, "amount": 2}],
                         headers=admin)
    assert_problem(r, 422, "validation_error")
    r = await client.put(f"/v1/price-lists/{code}/prices", json=[{"sku": w.tee, "amount": -1}], headers=admin)
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "[0].amount"
    assert (await client.get(f"/v1/price-lists/{code}/prices", headers=admin)).json()["data"] == []
    r = await client.put(f"/v1/price-lists/{code}/prices", headers=admin, json=[
        {"sku": w.tee, "amount": 1800}, {"sku": w.tee, "amount": 1600, "min_quantity": 10}, {"sku": w.coffee, "amount": 950}])
    assert r.status_code == 200 and r.json()["set"] == 3
    # the higher-priority list wins for the SKUs it prices
    q = await quote(client, admin, channel=w.web, lines=[{"sku": w.tee, "quantity": 10}, {"sku": w.choc, "quantity": 1}])
    assert [x["unit_price"] for x in q["lines"]] == [1600, 300]
    # upsert, remove with null, stale If-Match
    r = await client.put(f"/v1/price-lists/{code}/prices", json=[{"sku": w.tee, "amount": None, "min_quantity": 10},
                                                                 {"sku": w.coffee, "amount": 990}], headers=admin)
    assert r.json()["removed"] == 1
    data = (await client.get(f"/v1/price-lists/{code}/prices", headers=admin)).json()["data"]
    assert {(p["sku"], p["min_quantity"], p["amount"]) for p in data} == {(w.tee, 1, 1800), (w.coffee, 1, 990)}
    r = await client.put(f"/v1/price-lists/{code}/prices", json=[{"sku": w.tee, "amount": 1}], headers=admin | {"If-Match": '"1"'})
    assert_problem(r, 412, "version_conflict")
    # replace: exactly the body
    r = await client.put(f"/v1/price-lists/{code}/prices?replace=true", json=[{"sku": w.choc, "amount": 250}], headers=admin)
    assert r.status_code == 200
    data = (await client.get(f"/v1/price-lists/{code}/prices", headers=admin)).json()["data"]
    assert [(p["sku"], p["amount"]) for p in data] == [(w.choc, 250)]
    # deactivating a list takes its prices out of quotes
    r = await client.patch(f"/v1/price-lists/{code}", json={"active": False}, headers=admin)
    assert r.status_code == 200
    q = await quote(client, admin, channel=w.web, lines=[{"sku": w.choc, "quantity": 1}])
    assert q["lines"][0]["unit_price"] == 300
    # every change wrote a price_list.updated event
    async with sessionmaker()() as s:
        events = (await s.execute(select(Event).where(Event.type == "price_list.updated"))).scalars().all()
    assert len([e for e in events if e.data["code"] == code]) >= 5
    assert_problem(await client.put("/v1/price-lists/nope/prices", json=[], headers=admin), 404, "not_found")


async def test_tax_rates(client, admin):
    country = "Q" + uid("x")[-1].upper().replace("0", "Z").replace("1", "Y").replace("2", "X").replace("3", "W") \
        .replace("4", "V").replace("5", "U").replace("6", "T").replace("7", "S").replace("8", "R").replace("9", "P")
    r = await client.post("/v1/tax-rates", json={"country": country, "tax_class": "reduced", "rate_bp": 2000}, headers=admin)
    assert r.status_code in (200, 201), r.text  # 200: an earlier test run in this database set it (the letter space is small)
    tid = r.json()["id"]
    # setting it again changes it in place: one rate per country and class
    r = await client.post("/v1/tax-rates", json={"country": country, "tax_class": "reduced", "rate_bp": 900}, headers=admin)
    assert r.status_code == 200 and r.json()["id"] == tid and r.json()["rate_bp"] == 900
    r = await client.post("/v1/tax-rates", json={"country": country, "tax_class": "zero", "rate_bp": 0}, headers=admin)
    assert r.status_code in (200, 201) and r.json()["id"] != tid
    for bad in ({"country": "de", "tax_class": "standard", "rate_bp": 1}, {"country": "DE", "tax_class": "luxury", "rate_bp": 1},
                {"country": "DE", "tax_class": "standard", "rate_bp": 10001}):
        assert_problem(await client.post("/v1/tax-rates", json=bad, headers=admin), 422, "validation_error")
    r = await client.patch(f"/v1/tax-rates/{tid}", json={"rate_bp": 2100}, headers=admin)
    assert r.status_code == 200 and r.json()["rate_bp"] == 2100
    TaxRateOut.model_validate(r.json())
    rates = (await client.get("/v1/tax-rates", params={"country": country}, headers=admin)).json()["data"]
    # other classes of this country may exist (the fuzz test or an earlier run set them): one row per class, ours as set
    classes = [t["tax_class"] for t in rates]
    assert len(classes) == len(set(classes)) and {t["country"] for t in rates} == {country}
    by_class = {t["tax_class"]: t["rate_bp"] for t in rates}
    assert (by_class["reduced"], by_class["zero"]) == (2100, 0)


async def test_channel_price_lists_must_exist_in_its_currency(client, admin):
    usd = uid("usd")
    assert (await client.post("/v1/price-lists", json={"code": usd, "currency": "USD"}, headers=admin)).status_code == 201
    body = {"code": uid("web"), "name": "x", "type": "web", "currency": "EUR", "country": "DE"}
    r = await client.post("/v1/channels", json={**body, "price_lists": ["no-such-list"]}, headers=admin)
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "price_lists[0]"
    r = await client.post("/v1/channels", json={**body, "price_lists": [usd]}, headers=admin)
    assert "USD" in assert_problem(r, 422, "validation_error")["detail"]
    r = await client.post("/v1/channels", json={**body, "price_lists": [usd], "currency": "USD"}, headers=admin)
    assert r.status_code == 201
    r = await client.patch(f"/v1/channels/{body['code']}", json={"currency": "EUR"}, headers=admin)
    assert_problem(r, 422, "validation_error")


async def test_quote_sql_statements_do_not_grow_with_the_basket(client, admin, world):
    w = world
    skus = [sku("BULK") for _ in range(60)]
    for s in skus:
        await create_product(client, admin, channels=[w.web], variants=[{"sku": s}])
    r = await client.put(f"/v1/price-lists/{w.retail}/prices", json=[{"sku": s, "amount": 100 + i} for i, s in enumerate(skus)],
                         headers=admin)
    assert r.status_code == 200
    counts = []
    await quote(client, admin, channel=w.web, lines=[{"sku": w.tee, "quantity": 1}])  # reference data cached
    with sql_statements() as statements:
        for n in (1, 10, 60):
            statements.clear()
            await quote(client, admin, channel=w.web, lines=[{"sku": s, "quantity": 1} for s in skus[:n]])
            counts.append(len(statements))
        statements.clear()
        await quote(client, admin, channel=w.web, lines=[{"sku": s, "quantity": 1} for s in skus[:60]])
        again = len(statements)
    # catalog facts + prices of the SKUs not yet seen; the key, the channel, price lists,
    # promotions, tax rates, SKU facts and prices come from the process's caches, which every
    # change drops at its commit: a basket seen before needs no statement at all
    assert counts == [2, 2, 2], counts
    assert again == 0
    # a new promotion is seen by the next quote (no stale cache)
    code = uid("stamp")
    r = await client.post("/v1/promotions", headers=admin, json={
        "code": code, "name": "Stamp", "type": "percent_off", "params": {"percent_bp": 1000}, "skus": [skus[0]],
        "channels": [w.web]})
    assert r.status_code == 201, r.text
    q = await quote(client, admin, channel=w.web, lines=[{"sku": skus[0], "quantity": 1}])
    assert [p["code"] for p in q["promotions"]] == [code] and q["discount_total"] == 10
    r = await client.patch(f"/v1/promotions/{code}", headers=admin, json={"active": False})
    assert r.status_code == 200, r.text
    q = await quote(client, admin, channel=w.web, lines=[{"sku": skus[0], "quantity": 1}])
    assert q["promotions"] == [] and q["discount_total"] == 0


async def test_concurrent_quotes_agree(client, admin, world):
    """Many clients quoting the same basket at once get the same answer to the cent."""
    w = world
    lines = [{"sku": w.tee, "quantity": 3}, {"sku": w.coffee, "quantity": 5}, {"sku": w.box, "quantity": 1}]
    results = await asyncio.gather(*(client.post("/v1/pricing/quote", json={"channel": w.web, "lines": lines}, headers=admin)
                                     for _ in range(20)))
    assert {r.status_code for r in results} == {200}
    assert len({r.content for r in results}) == 1
