"""Prices where shoppers see them: product and variant answers carry `price` and
`compare_at_price` in the key's channel (or an admin's `?channel=`), the very numbers a one-unit
quote gives, for a whole page in a constant number of statements."""
import secrets
from datetime import timedelta

import pytest

from app.catalog.schemas import ProductList, ProductOut, VariantDetailOut
from app.core import cache, clock
from app.core.db import sql_statements
from tests.catalog.builders import create_product, gtin, sku
from tests.conftest import auth, make_key, uid
from tests.helpers import assert_problem, create_channel, create_location, warm_keys


def _country() -> str:
    """A country of its own: this world's tax rates are exactly what it sets."""
    letters = secrets.token_hex(2).upper()
    return "".join(c if c.isalpha() else chr(71 + int(c) % 20) for c in letters[:2])


class Shop:
    """Tees (two sizes), coffee, a gift box, an unpriced and a draft product; a gross web channel, a
    net one, a pos channel and one that sells something else; retail and loyalty lists; a 10 %
    promotion on the tees, a loyalty unit discount on coffee, a "3 für 2" and a coupon (neither
    reaches a page), an exclusive and a stackable promotion on the box."""

    async def setup(self, client, admin):
        country = _country()
        ch = lambda kind, **kw: create_channel(client, admin, kind, country=country, **kw)  # noqa: E731
        self.web, self.net = (await ch("web"))["code"], (await ch("web", prices_include_tax=False))["code"]
        self.pos_channel, self.other = (await ch("pos"))["code"], (await ch("web"))["code"]
        self.store = (await create_location(client, admin, "store"))["code"]
        self.tag = uid("shelf")
        chans = [self.web, self.net, self.pos_channel]
        self.tee_s, self.tee_m, self.coffee, self.box = sku("TEE-S"), sku("TEE-M"), sku("COF"), sku("BOX")
        self.unpriced, self.draft, self.hidden = sku("NOP"), sku("DRAFT"), sku("HID")
        self.tee_gtin = gtin()
        self.tee = await create_product(client, admin, title=f"{self.tag} tee", category=f"{self.tag}/fashion", channels=chans,
                                        variants=[{"sku": self.tee_s, "gtin": self.tee_gtin}, {"sku": self.tee_m}])
        await create_product(client, admin, title=f"{self.tag} coffee", category=f"{self.tag}/coffee", tax_class="reduced",
                             channels=chans, variants=[{"sku": self.coffee}])
        await create_product(client, admin, title=f"{self.tag} box", type="bundle", channels=chans,
                             variants=[{"sku": self.box, "components": [{"sku": self.coffee, "quantity": 1},
                                                                         {"sku": self.tee_s, "quantity": 1}]}])
        await create_product(client, admin, title=f"{self.tag} unpriced", channels=chans, variants=[{"sku": self.unpriced}])
        self.draft_product = await create_product(client, admin, title=f"{self.tag} draft", status="draft", channels=chans,
                                                  variants=[{"sku": self.draft}])
        self.hidden_product = await create_product(client, admin, title=f"{self.tag} hidden", channels=[self.other],
                                                   variants=[{"sku": self.hidden}])
        self.retail, self.loyalty = uid("retail"), uid("loyal")
        for code, extra in ((self.retail, {}), (self.loyalty, {"customer_group": "loyalty"})):
            r = await client.post("/v1/price-lists", headers=admin, json={
                "code": code, "currency": "EUR", "channels": chans + [self.other], **extra})
            assert r.status_code == 201, r.text
        for code, rows in ((self.retail, [(self.tee_s, 2000), (self.tee_m, 2100), (self.coffee, 1000), (self.box, 2500),
                                          (self.draft, 500), (self.hidden, 100)]),
                           (self.loyalty, [(self.tee_s, 1800), (self.coffee, 950)])):
            r = await client.put(f"/v1/price-lists/{code}/prices", headers=admin,
                                 json=[{"sku": s, "amount": a} for s, a in rows] + (
                                     [{"sku": self.coffee, "amount": 900, "min_quantity": 5}] if code == self.retail else []))
            assert r.status_code == 200, r.text
        for tax_class, rate in (("standard", 1900), ("reduced", 700)):
            r = await client.post("/v1/tax-rates", json={"country": country, "tax_class": tax_class, "rate_bp": rate},
                                  headers=admin)
            assert r.status_code in (200, 201), r.text
        for body in (
            {"type": "percent_off", "params": {"percent_bp": 1000}, "categories": [f"{self.tag}/fashion"], "channels": chans},
            {"type": "amount_off", "params": {"amount": 50, "per": "unit"}, "skus": [self.coffee],
             "customer_groups": ["loyalty"]},
            {"type": "buy_x_pay_y", "params": {"x": 3, "y": 2}, "skus": [self.coffee], "stackable": False, "priority": 3},
            {"type": "percent_off", "params": {"percent_bp": 5000}, "coupon_code": uid("HALF").upper()},
            {"type": "percent_off", "params": {"percent_bp": 2000}, "skus": [self.box], "stackable": False, "priority": 7},
            {"type": "amount_off", "params": {"amount": 300, "per": "order"}, "skus": [self.box], "priority": 1},
        ):
            code = uid("promo")
            r = await client.post("/v1/promotions", json={"code": code, "name": code, **body}, headers=admin)
            assert r.status_code == 201, r.text
        self.storefront = auth(await make_key("storefront", channel=self.web))
        self.pos = auth(await make_key("pos", channel=self.pos_channel, location=self.store))
        market = (await ch("marketplace"))["code"]
        self.marketplace = auth(await make_key("marketplace", channel=market))
        return self


@pytest.fixture(scope="module")
async def shop(client, admin):
    return await Shop().setup(client, admin)


async def one_unit(client, admin, channel: str, s: str, group: str | None = None) -> dict | None:
    """The quote of one unit of `s`: its line, or None when the quote refuses it."""
    body = {"channel": channel, "lines": [{"sku": s, "quantity": 1}], **({"customer_group": group} if group else {})}
    r = await client.post("/v1/pricing/quote", json=body, headers=admin)
    if r.status_code == 422:
        assert r.json()["code"] in ("no_price", "unknown_sku"), r.text
        return None
    assert r.status_code == 200, r.text
    return r.json()["lines"][0]


async def assert_like_quotes(client, admin, channel: str, variants: list[dict], group: str | None = None) -> None:
    """Every variant's price is its one-unit quote: subtotal less discounts, and the list price as
    compare_at_price when a promotion took something off; null where the quote refuses it."""
    assert variants
    for v in variants:
        line = await one_unit(client, admin, channel, v["sku"], group)
        if line is None:
            assert v["price"] is None and v["compare_at_price"] is None, v
            continue
        assert v["price"] == {"amount": line["subtotal"] - line["discount_total"], "currency": "EUR"}, (v, line)
        expected = {"amount": line["unit_price"], "currency": "EUR"} if line["discounts"] else None
        assert v["compare_at_price"] == expected, (v, line)


def _variants(products: list[dict]) -> list[dict]:
    return [v for p in products for v in p["variants"]]


async def test_pages_carry_the_one_unit_quote_price(client, admin, shop):
    s = shop
    r = await client.get("/v1/products", params={"q": s.tag}, headers=s.storefront)
    assert r.status_code == 200, r.text
    ProductList.model_validate(r.json())
    page = {v["sku"]: v for v in _variants(r.json()["data"])}
    assert set(page) == {s.tee_s, s.tee_m, s.coffee, s.box, s.unpriced}  # the draft and the hidden one are not visible
    await assert_like_quotes(client, admin, s.web, list(page.values()))
    # the figures themselves: 10 % off the tees, the box's exclusive 20 % beats the stackable 3 €, no coupon
    # and no "3 für 2" on a page, no price for the unpriced one
    assert page[s.tee_s]["price"] == {"amount": 1800, "currency": "EUR"}
    assert page[s.tee_s]["compare_at_price"] == {"amount": 2000, "currency": "EUR"}
    assert page[s.coffee]["price"] == {"amount": 1000, "currency": "EUR"} and page[s.coffee]["compare_at_price"] is None
    assert page[s.box]["price"] == {"amount": 2000, "currency": "EUR"}
    assert page[s.unpriced]["price"] is None and page[s.unpriced]["compare_at_price"] is None
    # one product, a variant by sku, id and barcode: the same prices
    r = await client.get(f"/v1/products/{s.tee['handle']}", headers=s.storefront)
    ProductOut.model_validate(r.json())
    assert [v["price"] for v in r.json()["variants"]] == [page[s.tee_s]["price"], page[s.tee_m]["price"]]
    for path, params in ((f"/v1/variants/{s.tee_s}", {}), (f"/v1/variants/{s.tee['variants'][0]['id']}", {}),
                         ("/v1/variants", {"sku": s.tee_s.lower()}), ("/v1/variants", {"gtin": s.tee_gtin})):
        r = await client.get(path, params=params, headers=s.storefront)
        assert r.status_code == 200, r.text
        VariantDetailOut.model_validate(r.json())
        assert (r.json()["price"], r.json()["compare_at_price"]) == (page[s.tee_s]["price"], page[s.tee_s]["compare_at_price"])
    # a customer group's prices: its list first, its promotions too
    r = await client.get("/v1/products", params={"q": s.tag, "customer_group": "loyalty"}, headers=s.storefront)
    member = {v["sku"]: v for v in _variants(r.json()["data"])}
    await assert_like_quotes(client, admin, s.web, list(member.values()), "loyalty")
    assert member[s.tee_s]["price"]["amount"] == 1620 and member[s.coffee]["price"]["amount"] == 900
    assert member[s.coffee]["compare_at_price"] == {"amount": 950, "currency": "EUR"}
    # a POS key in its pos channel, with a loyalty card scanned
    for group in (None, "loyalty"):
        r = await client.get("/v1/variants", params={"sku": s.coffee, **({"customer_group": group} if group else {})},
                             headers=s.pos)
        await assert_like_quotes(client, admin, s.pos_channel, [r.json()], group)


async def test_admin_prices_only_with_a_channel(client, admin, shop):
    s = shop
    r = await client.get("/v1/products", params={"q": s.tag}, headers=admin)
    assert r.status_code == 200 and len(r.json()["data"]) == 6
    assert all("price" not in v and "compare_at_price" not in v for v in _variants(r.json()["data"]))
    assert "price" not in (await client.get(f"/v1/variants/{s.tee_s}", headers=admin)).json()
    # ?channel= filters and prices; a draft product is not sold (the quote refuses it): null
    r = await client.get("/v1/products", params={"q": s.tag, "channel": s.web}, headers=admin)
    products = r.json()["data"]
    assert {p["title"].split()[-1] for p in products} == {"tee", "coffee", "box", "unpriced", "draft"}
    await assert_like_quotes(client, admin, s.web, _variants(products))
    assert {v["sku"]: v["price"] for v in _variants(products)}[s.draft] is None
    # a net channel: the unit's net price (the quote adds tax on top)
    r = await client.get(f"/v1/products/{s.tee['id']}", params={"channel": s.net}, headers=admin)
    await assert_like_quotes(client, admin, s.net, r.json()["variants"])
    line = await one_unit(client, admin, s.net, s.tee_s)
    assert r.json()["variants"][0]["price"]["amount"] == 1800 and line["total"] == 1800 + line["tax_amount"] > 1800
    # a product not sold in the channel, asked for by id: no price
    r = await client.get(f"/v1/products/{s.hidden_product['id']}", params={"channel": s.web}, headers=admin)
    assert r.status_code == 200 and r.json()["variants"][0]["price"] is None
    r = await client.get(f"/v1/variants/{s.hidden}", params={"channel": s.web}, headers=admin)
    assert r.json()["price"] is None
    r = await client.get(f"/v1/variants/{s.hidden}", params={"channel": s.other}, headers=admin)
    assert r.json()["price"] == {"amount": 100, "currency": "EUR"}
    r = await client.get(f"/v1/variants/{s.tee_s}", params={"channel": s.web, "customer_group": "loyalty"}, headers=admin)
    await assert_like_quotes(client, admin, s.web, [r.json()], "loyalty")
    # clear 4xx answers for what cannot be priced
    r = await client.get("/v1/products", params={"customer_group": "loyalty"}, headers=admin)
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "channel"
    r = await client.get("/v1/products", params={"channel": "no-such-channel"}, headers=admin)
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "channel"
    assert_problem(await client.get("/v1/products", params={"customer_group": "bad group!"}, headers=admin), 422)
    r = await client.get("/v1/products", params={"customer_group": "loyalty"}, headers=s.marketplace)
    assert_problem(r, 403, "forbidden")
    # a bound key is priced in its own channel; another channel is not found (a list of it is empty)
    assert_problem(await client.get(f"/v1/products/{s.tee['id']}", params={"channel": s.net}, headers=s.storefront),
                   404, "not_found")
    assert_problem(await client.get(f"/v1/variants/{s.tee_s}", params={"channel": s.net}, headers=s.storefront),
                   404, "not_found")
    r = await client.get(f"/v1/products/{s.tee['id']}", params={"channel": s.web}, headers=s.storefront)
    assert r.status_code == 200 and r.json()["variants"][0]["price"]["amount"] == 1800
    r = await client.get("/v1/products", params={"q": s.tag, "channel": s.net}, headers=s.storefront)
    assert r.json()["data"] == []


async def test_a_page_is_priced_in_a_constant_number_of_statements(client, admin, shop):
    s = shop
    tag = uid("bulk")
    skus = []
    for i in range(12):
        p = await create_product(client, admin, title=f"{tag} {i}", channels=[s.web],
                                 variants=[{"sku": sku("B")}, {"sku": sku("B")}, {"sku": sku("B")}])
        skus += [v["sku"] for v in p["variants"]]
    r = await client.put(f"/v1/price-lists/{s.retail}/prices", json=[{"sku": x, "amount": 100 + i} for i, x in enumerate(skus)],
                         headers=admin)
    assert r.status_code == 200
    await warm_keys(client, s.storefront, admin)
    assert (await client.get("/v1/products", params={"q": tag, "limit": 12}, headers=s.storefront)).status_code == 200
    counts = {}
    with sql_statements() as statements:
        for limit in (1, 5, 12):
            for prices_cached in (False, True):
                cache.drop("catalog")  # a catalog change: the page is read anew
                if not prices_cached:
                    cache.drop("prices")  # a price change: the page's prices too
                statements.clear()
                r = await client.get("/v1/products", params={"q": tag, "limit": limit}, headers=s.storefront)
                assert r.status_code == 200 and len(r.json()["data"]) == limit
                assert all(v["price"] is not None for v in _variants(r.json()["data"]))
                counts[limit, prices_cached] = len(statements)
        # without prices: as before this feature (the page, its variants)
        cache.drop("catalog")
        statements.clear()
        assert (await client.get("/v1/products", params={"q": tag, "limit": 12}, headers=admin)).status_code == 200
        unpriced = len(statements)
        first = await client.get("/v1/products", params={"q": tag, "limit": 12}, headers=s.storefront)
        statements.clear()
        again = await client.get("/v1/products", params={"q": tag, "limit": 12}, headers=s.storefront)
        assert again.content == first.content and statements == []  # then from memory
    # the page (with its channels), all its variants, and the prices of the SKUs not in the price cache
    assert counts == {(1, False): 3, (1, True): 2, (5, False): 3, (5, True): 2, (12, False): 3, (12, True): 2}, counts
    assert unpriced == 2


async def test_priced_pages_follow_price_and_promotion_changes(client, admin, shop):
    s = shop
    solo = sku("SOLO")
    await create_product(client, admin, title=f"{s.tag} solo", category="misc", channels=[s.web], variants=[{"sku": solo}])
    url = f"/v1/variants/{solo}"

    async def shown() -> tuple:
        r = await client.get(url, headers=s.storefront)
        assert r.status_code == 200, r.text
        return r.json()["price"], r.json()["compare_at_price"]

    assert await shown() == (None, None)
    assert (await client.put(f"/v1/price-lists/{s.retail}/prices", json=[{"sku": solo, "amount": 1000}],
                             headers=admin)).status_code == 200
    assert await shown() == ({"amount": 1000, "currency": "EUR"}, None)
    code = uid("later")
    start = clock.now() + timedelta(hours=1)
    r = await client.post("/v1/promotions", headers=admin, json={
        "code": code, "name": code, "type": "amount_off", "params": {"amount": 250}, "skus": [solo],
        "valid_from": start.isoformat()})
    assert r.status_code == 201, r.text
    assert await shown() == ({"amount": 1000, "currency": "EUR"}, None)  # not yet: and so answered from memory
    try:
        clock.advance(timedelta(hours=2))  # the promotion has started: the remembered answer has expired
        assert await shown() == ({"amount": 750, "currency": "EUR"}, {"amount": 1000, "currency": "EUR"})
        line = await one_unit(client, admin, s.web, solo)
        assert line["subtotal"] - line["discount_total"] == 750
    finally:
        clock.reset()
        cache.drop_all()  # answers remembered in the moved clock's future (real clocks never go back)
