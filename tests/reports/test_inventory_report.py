"""GET /v1/reports/inventory: stock value at list price and the items at or below safety stock,
on the Berlin store of tests/reports/world.py, its levels set here:

    W  on_hand 4, safety 1, 3 reserved  -> free 1 ≤ 1: low;    value 4 × 1000 (EUR) / 4 × 1100 (CHF)
    C  on_hand 2, safety 2              -> free 2 ≤ 2: low;    value 2 × 500 (no CHF price)
    B  on_hand 0, safety 0              -> out of stock: low;  value 0
    X  on_hand 3, safety 0, no price    -> not low;            unpriced
"""
import pytest

from tests.catalog.builders import create_product, sku
from tests.helpers import assert_problem
from tests.reports.world import Retailer, ok

URL = "/v1/reports/inventory"


@pytest.fixture(scope="module")
async def r(client, admin):
    r = await Retailer().setup(client, admin)
    r.x = sku("NOPRICE")
    await create_product(client, admin, channels=[r.pos], variants=[{"sku": r.x}])
    await ok(await client.put("/v1/inventory/levels", headers=admin, json={"location": r.be, "levels": [
        {"sku": r.w, "on_hand": 4, "safety_stock": 1}, {"sku": r.c, "on_hand": 2, "safety_stock": 2},
        {"sku": r.b, "on_hand": 0, "safety_stock": 0}, {"sku": r.x, "on_hand": 3, "safety_stock": 0}]}))
    await ok(await client.post("/v1/reservations", headers=admin,
                               json={"sku": r.w, "location": r.be, "quantity": 3, "ttl_seconds": 3600}), 201)
    return r


async def test_value_at_the_stores_channel_prices_and_low_stock(client, r):
    body = await ok(await client.get(URL, params={"location": r.be}, headers=r.admin))
    assert (body["location"], body["channel"], body["price_lists"]) == (r.be, r.pos, [r.eur])  # the store's POS channel
    assert body["stock_value"] == {"amount": 4 * 1000 + 2 * 500, "currency": "EUR"}
    assert (body["levels"], body["units_on_hand"], body["units_reserved"]) == (4, 9, 3)
    assert body["unpriced"] == {"skus": 1, "units": 3}
    assert body["low_stock_count"] == 3
    low = {i["sku"]: i for i in body["low_stock"]["data"]}
    assert set(low) == {r.w, r.c, r.b} and body["low_stock"]["next_cursor"] is None
    assert (low[r.w]["on_hand"], low[r.w]["reserved"], low[r.w]["safety_stock"], low[r.w]["available"],
            low[r.w]["shortfall"]) == (4, 3, 1, 0, 0)
    assert (low[r.b]["available"], low[r.b]["shortfall"], low[r.b]["location"]) == (0, 0, r.be)
    assert [i["sku"] for i in body["low_stock"]["data"]] == sorted(low)


async def test_value_at_another_channels_prices(client, r):
    body = await ok(await client.get(URL, params={"location": r.be, "channel": r.webch}, headers=r.admin))
    assert body["stock_value"] == {"amount": 4 * 1100, "currency": "CHF"}
    assert body["unpriced"] == {"skus": 2, "units": 2 + 3}  # C and X have no CHF price (B has no stock)


async def test_low_stock_is_paged(client, r):
    first = await ok(await client.get(URL, params={"location": r.be, "limit": 2}, headers=r.admin))
    assert len(first["low_stock"]["data"]) == 2 and first["low_stock"]["next_cursor"]
    rest = await ok(await client.get(URL, params={"location": r.be, "limit": 2,
                                                  "cursor": first["low_stock"]["next_cursor"]}, headers=r.admin))
    assert rest["low_stock"]["next_cursor"] is None
    assert [i["sku"] for i in first["low_stock"]["data"] + rest["low_stock"]["data"]] == sorted([r.w, r.c, r.b])
    assert rest["stock_value"] == first["stock_value"]  # the figures are not paged


async def test_every_location_and_the_default_channel(client, r):
    hh = await ok(await client.get(URL, params={"location": r.hh}, headers=r.admin))
    assert hh["channel"] == r.pos  # hh serves web and pos: a store is valued at its till's prices
    everything = await ok(await client.get(URL, params={"channel": r.pos}, headers=r.admin))
    assert everything["location"] is None
    assert everything["stock_value"]["amount"] >= 5000 and everything["levels"] >= 4


async def test_who_sees_what(client, r):
    mine = await ok(await client.get(URL, headers=r.pos_be))  # a POS key: its store, its channel's prices
    assert (mine["location"], mine["channel"], mine["stock_value"]["amount"]) == (r.be, r.pos, 5000)
    assert_problem(await client.get(URL, params={"location": r.hh}, headers=r.pos_be), 404, "not_found")
    for key in (r.shop, r.marketplace, r.dropshipper):
        assert_problem(await client.get(URL, params={"location": r.be}, headers=key), 403, "forbidden")
    assert_problem(await client.get(URL, params={"location": r.be}), 401)


@pytest.mark.parametrize("params, field", [
    ({}, "channel"),  # admin: neither a location nor a channel says whose prices
    ({"location": "no-such-place"}, "location"),
    ({"location": "{be}", "channel": "no-such-channel"}, "channel"),
    ({"location": "{partner}"}, "channel"),  # no channel fulfils from a dropship partner
    ({"location": "{be}", "cursor": "e30"}, "cursor"),
    ({"location": "{be}", "limit": "0"}, "limit"),
])
async def test_bad_input(client, r, params, field):
    params = {k: v.format(be=r.be, partner=r.partner) for k, v in params.items()}
    body = assert_problem(await client.get(URL, params=params, headers=r.admin), 422)
    assert [e["field"] for e in body["errors"]] == [field]
