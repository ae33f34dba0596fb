"""Attribution on carts and orders: `source` and `campaign` are taken, kept lower-case, handed from
a cart to its order, and given directly to POS sales and imports. (The in-store rule that credits
a till sale to an online touch is tested with the sales report, test_sales.py.)"""
import pytest

from tests.helpers import assert_problem
from tests.reports.world import ADDRESS, Retailer, ok


@pytest.fixture(scope="module")
async def r(client, admin):
    return await Retailer().setup(client, admin)


async def test_a_cart_hands_its_source_and_campaign_to_its_order(client, r):
    cart = await r.cart(client, {r.w: 1}, source="  Newsletter", campaign="Spring Sale")
    assert (cart["source"], cart["campaign"]) == ("newsletter", "spring sale")
    listed = await ok(await client.get("/v1/carts", headers=r.shop))
    assert any(c["id"] == cart["id"] and c["source"] == "newsletter" for c in listed["data"])
    # PATCH changes one, null removes the other
    patched = await ok(await client.patch(f"/v1/carts/{cart['id']}", headers=r.shop,
                                          json={"source": "google/cpc", "campaign": None}))
    assert (patched["source"], patched["campaign"]) == ("google/cpc", None)
    order = await r.checkout(client, patched)
    assert (order["source"], order["campaign"]) == ("google/cpc", None)
    again = await ok(await client.get(f"/v1/orders/{order['id']}", headers=r.admin))
    assert (again["source"], again["campaign"]) == ("google/cpc", None)
    # a cart without any: an order without any
    plain = await r.web_order(client, {r.w: 1})
    assert (plain["source"], plain["campaign"]) == (None, None)


async def test_pos_sales_and_imports_take_them_directly(client, r):
    sale = await r.sale(client, r.pos_hh, {r.c: 1}, source="Flyer", campaign="Store-Opening")
    assert (sale["source"], sale["campaign"]) == ("flyer", "store-opening")
    imported = await r.sale(client, r.marketplace, {r.b: 1}, external_id="AMZ-attr-1", source="amazon-ads",
                            fulfillment={"method": "ship", "address": ADDRESS})
    assert (imported["source"], imported["campaign"]) == ("amazon-ads", None)


@pytest.mark.parametrize("field, value", [("source", ""), ("source", "x" * 101), ("campaign", "!promo"),
                                          ("source", 42), ("campaign", ["a"]), ("source", "a\nb")])
async def test_bad_attribution_is_422_naming_the_field(client, r, field, value):
    resp = await client.post("/v1/carts", headers=r.shop, json={"lines": [], field: value})
    body = assert_problem(resp, 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == [field]
    resp = await client.post("/v1/orders", headers=r.pos_hh, json={"lines": [{"sku": r.c, "quantity": 1}],
                                                                    field: value})
    assert [e["field"] for e in assert_problem(resp, 422)["errors"]] == [field]
