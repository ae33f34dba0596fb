"""GET /v1/reports/customers on the orders of tests/reports/world.py (see test_sales.py's table):
ana bought on the web (o1) and at the Hamburg till (o3), ben at the Berlin till (o6; his web
cart is not an order), cleo on the web (o8); o2, o4, o7, o9, o10 have no customer; o5 was cancelled."""
from datetime import timedelta

import pytest

from tests.helpers import assert_problem
from tests.reports.world import Sales, iso

URL = "/v1/reports/customers"


@pytest.fixture(scope="module")
async def s(client, admin):
    return await (await Sales().setup(client, admin)).place(client)


async def test_repeat_and_cross_channel_buyers(client, s):
    r = await client.get(URL, params={"from": iso(s.t0), "to": iso(s.t0 + timedelta(days=3))}, headers=s.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["buyers"], body["orders"], body["anonymous_orders"]) == (3, 4, 5)
    assert (body["repeat_buyers"], body["repeat_rate_bp"]) == (1, 3333)  # ana: 2 orders
    assert (body["cross_channel_buyers"], body["cross_channel_rate_bp"]) == (1, 3333)  # ana: web and pos
    assert (body["online_and_store_buyers"], body["online_and_store_rate_bp"]) == (1, 3333)
    assert (body["returning_buyers"], body["returning_rate_bp"]) == (0, 0)
    channels = {c["channel"]: c for c in body["channels"]}
    assert set(channels) == {s.web, s.pos}
    assert (channels[s.web]["buyers"], channels[s.web]["orders"], channels[s.web]["repeat_buyers"]) == (2, 2, 0)
    assert (channels[s.pos]["buyers"], channels[s.pos]["orders"], channels[s.pos]["repeat_buyers"]) == (2, 2, 0)
    assert "email" not in r.text and s.ana["id"] not in r.text  # counts, never people


async def test_returning_buyers_bought_before_the_period(client, s):
    # from 10:30 on day 0: ana's web order (09:00) is before the period, her till sale (11:00) in it
    r = await client.get(URL, params={"from": iso(s.t0 + timedelta(hours=10, minutes=30)),
                                      "to": iso(s.t0 + timedelta(days=3))}, headers=s.admin)
    body = r.json()
    assert (body["buyers"], body["repeat_buyers"], body["returning_buyers"], body["cross_channel_buyers"]) == (3, 0, 1, 0)
    assert body["returning_rate_bp"] == 3333 and body["anonymous_orders"] == 4


async def test_an_empty_period_has_no_rates(client, s):
    r = await client.get(URL, params={"from": iso(s.t0 - timedelta(days=2)), "to": iso(s.t0)}, headers=s.admin)
    body = r.json()
    assert (body["buyers"], body["repeat_rate_bp"], body["channels"]) == (0, None, [])


async def test_admin_only_and_bad_input(client, s):
    for key in (s.shop, s.pos_hh, s.marketplace, s.dropshipper):
        assert_problem(await client.get(URL, headers=key), 403, "forbidden")
    assert_problem(await client.get(URL), 401, "unauthenticated")
    for params, field in (({"from": "2026-01-02", "to": "2026-01-01"}, "to"), ({"from": "2020-01-01"}, "from"),
                          ({"to": "soon"}, "to"), ({"tz": "Nowhere/City"}, "tz")):
        body = assert_problem(await client.get(URL, params=params, headers=s.admin), 422, "validation_error")
        assert body["errors"][0]["field"] == field
