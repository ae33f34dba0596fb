"""The demo prices: idempotent, the demo basket prices as the README says, and the sale list
wins for the hoodies though the channels name only retail-eur."""
from app.catalog.seed import seed_demo as seed_catalog
from app.core.db import unit_of_work
from app.pricing.seed import seed_demo as seed_pricing
from app.seed import _name_price_lists, seed_locations_and_channels
from tests.conftest import auth, make_key


async def test_seed_demo_prices(client, admin):
    async with unit_of_work() as session:
        await seed_locations_and_channels(session)
        await seed_catalog(session)
        await seed_pricing(session)
        await _name_price_lists(session)
    async with unit_of_work() as session:
        assert await seed_pricing(session) == []
    ch = (await client.get("/v1/channels/web-de", headers=admin)).json()
    assert ch["price_lists"] == ["retail-eur"]
    body = {"channel": "web-de", "lines": [{"sku": "COFFEE-ESP-1KG", "quantity": 2}, {"sku": "CHOC-DARK-100", "quantity": 1},
                                           {"sku": "WINE-RIES-075", "quantity": 6}, {"sku": "GIFT-BOX", "quantity": 1}]}
    q = (await client.post("/v1/pricing/quote", json=body, headers=admin)).json()
    by = {x["sku"]: x for x in q["lines"]}
    # "3 für 2" on coffee and chocolate: the chocolate bar is free; six bottles reach the tier price and the 10 % staffel
    assert by["CHOC-DARK-100"]["discounts"] == [{"promotion": "3fuer2", "amount": 229}]
    assert by["WINE-RIES-075"]["unit_price"] == 1099
    assert by["WINE-RIES-075"]["discounts"] == [{"promotion": "wein-staffel", "amount": 659}]
    assert by["GIFT-BOX"]["unit_price"] == 1799 and len(by["GIFT-BOX"]["components"]) == 3
    member = (await client.post("/v1/pricing/quote", json={**body, "customer_group": "loyalty"}, headers=admin)).json()
    assert {x["sku"]: x["unit_price"] for x in member["lines"]}["COFFEE-ESP-1KG"] == 1699
    coupon = (await client.post("/v1/pricing/quote", json={**body, "coupon_codes": ["willkommen10"]}, headers=admin)).json()
    assert "willkommen10" in {p["code"] for p in coupon["promotions"]}
    # the sale list names the demo channels with a higher priority: it wins where it has a price
    hoodie = {"channel": "web-de", "lines": [{"sku": "HOOD-GRY-M", "quantity": 1}, {"sku": "TS-BLK-M", "quantity": 1}]}
    q = (await client.post("/v1/pricing/quote", json=hoodie, headers=admin)).json()
    assert [(x["unit_price"], x["price_list"]) for x in q["lines"]] == [(4999, "sale-eur"), (1999, "retail-eur")]
    ranked = (await client.get("/v1/price-lists", params={"channel": "web-de"}, headers=admin)).json()["data"]
    assert [x["code"] for x in ranked] == ["loyalty-eur", "sale-eur", "retail-eur"]
    # and a shopper sees it on the product page, the same number
    shop = auth(await make_key("storefront", channel="web-de"))
    page = (await client.get("/v1/products/merino-hoodie", headers=shop)).json()
    assert {v["price"]["amount"] for v in page["variants"]} == {4999}
    tee = (await client.get("/v1/variants/TS-BLK-M", headers=shop)).json()
    assert (tee["price"], tee["compare_at_price"]) == ({"amount": 1999, "currency": "EUR"}, None)
