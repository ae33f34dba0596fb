"""What storefront and marketplace keys may hold (issue 9, item 3): only SKUs active and visible
in their channel, only at their channel's fulfillment locations, within the per-key caps, and a
shortage never tells them how much stock there is."""
from datetime import timedelta

import pytest

from app.core import clock
from app.core.settings import get_settings
from tests.catalog.builders import create_product, sku
from tests.conftest import auth, make_key
from tests.helpers import assert_problem, create_channel, create_location
from tests.inventory.builders import World, level, put_levels


@pytest.fixture
async def world(client, admin):
    w = await World().setup(client, admin)
    # beside the channel's own active products: a draft, an archived one, another channel's
    w.other = (await create_channel(client, admin, "web"))["code"]
    w.draft, w.archived, w.foreign = sku("DRAFT"), sku("ARCH"), sku("FOREIGN")
    await create_product(client, admin, status="draft", channels=[w.web], variants=[{"sku": w.draft}])
    await create_product(client, admin, status="archived", channels=[w.web], variants=[{"sku": w.archived}])
    await create_product(client, admin, channels=[w.other], variants=[{"sku": w.foreign}])
    await put_levels(client, admin, w.hh, **{w.a: 8, w.b: 3, w.draft: 5, w.archived: 5, w.foreign: 5})
    w.shop = auth(await make_key("storefront", channel=w.web))
    yield w
    clock.reset()


def res(sku_, location, quantity=1, ttl_seconds=60, **kw) -> dict:
    return {"sku": sku_, "location": location, "quantity": quantity, "ttl_seconds": ttl_seconds, **kw}


async def test_only_skus_active_and_visible_in_the_channel(client, admin, world):
    w = world
    unknown = assert_problem(await client.post("/v1/reservations", json=res("NO-SUCH-SKU", w.hh), headers=w.shop),
                             422, "unknown_sku")
    assert unknown["errors"] == [{"field": "sku", "message": "Unknown SKU 'NO-SUCH-SKU'."}]
    for hidden in (w.draft, w.archived, w.foreign):
        body = assert_problem(await client.post("/v1/reservations", json=res(hidden, w.hh), headers=w.shop),
                              422, "unknown_sku")
        # word for word the answer about a SKU that does not exist: nothing tells that it does
        assert body["errors"] == [{"field": "sku", "message": f"Unknown SKU {hidden!r}."}]
        assert {k: v for k, v in body.items() if k != "detail"} == \
            {k: v for k, v in unknown.items() if k != "detail"} | {"errors": body["errors"]}
        assert body["detail"] == unknown["detail"].replace("NO-SUCH-SKU", hidden)
        assert (await level(client, admin, hidden, w.hh))["reserved"] == 0
    # the admin key holds them all (it sees every product)
    for hidden in (w.draft, w.archived, w.foreign):
        assert (await client.post("/v1/reservations", json=res(hidden, w.hh), headers=admin)).status_code == 201
    # the channel's own active product is fine
    r = await client.post("/v1/reservations", json=res(w.a, w.hh), headers=w.shop)
    assert r.status_code == 201, r.text
    assert r.json()["channel"] == w.web


async def test_marketplace_keys_reserve_in_their_channel_too(client, admin, world):
    w = world
    market = (await create_channel(client, admin, "marketplace", fulfillment_locations=[w.hh]))["code"]
    listed = sku("LISTED")
    await create_product(client, admin, channels=[market], variants=[{"sku": listed}])
    await put_levels(client, admin, w.hh, **{listed: 4})
    seller = auth(await make_key("marketplace", channel=market))
    r = await client.post("/v1/reservations", json=res(listed, w.hh, 2), headers=seller)
    assert r.status_code == 201, r.text
    assert r.json()["channel"] == market
    assert (await client.get(f"/v1/reservations/{r.json()['id']}", headers=seller)).status_code == 200
    assert_problem(await client.get(f"/v1/reservations/{r.json()['id']}", headers=w.shop), 404, "not_found")
    # the web channel's products are not the marketplace's
    body = assert_problem(await client.post("/v1/reservations", json=res(w.a, w.hh), headers=seller), 422, "unknown_sku")
    assert [e["field"] for e in body["errors"]] == ["sku"]
    # nor are the web channel's other locations
    assert_problem(await client.post("/v1/reservations", json=res(listed, w.be), headers=seller), 404, "not_found")


async def test_only_at_the_channels_fulfillment_locations(client, admin, world):
    w = world
    # w.web fulfils from wh, hh and be: the partner location is outside, like an unknown one
    outside = await client.post("/v1/reservations", json=res(w.a, w.partner), headers=w.shop)
    nowhere = await client.post("/v1/reservations", json=res(w.a, "no-such-location"), headers=w.shop)
    assert assert_problem(outside, 404, "not_found")["errors"] == assert_problem(nowhere, 404, "not_found")["errors"]
    # a channel naming no fulfillment location: every active location that ships or offers pickup
    open_ch = (await create_channel(client, admin, "web"))["code"]
    prod = sku("OPEN")
    await create_product(client, admin, channels=[open_ch], variants=[{"sku": prod}])
    neither = (await create_location(client, admin, "warehouse", capabilities={"ship": False, "pickup": False}))["code"]
    pickup_only = (await create_location(client, admin, "store", capabilities={"ship": False, "pickup": True}))["code"]
    closed = (await create_location(client, admin, "warehouse", active=False))["code"]
    for loc in (w.wh, w.hh, neither, pickup_only, closed):
        await put_levels(client, admin, loc, **{prod: 5})
    shop = auth(await make_key("storefront", channel=open_ch))
    for loc in (w.wh, w.hh, pickup_only):
        r = await client.post("/v1/reservations", json=res(prod, loc), headers=shop)
        assert r.status_code == 201, (loc, r.text)
    for loc in (neither, closed):
        assert_problem(await client.post("/v1/reservations", json=res(prod, loc), headers=shop), 404, "not_found")
        assert (await level(client, admin, prod, loc))["reserved"] == 0


async def test_caps_on_quantity_and_ttl(client, admin, world):
    w = world
    s = get_settings()
    qmax, tmax = s.reservation_max_quantity_public, s.reservation_max_ttl_seconds_public
    assert (qmax, tmax) == (10, 3600)  # the documented defaults
    await put_levels(client, admin, w.hh, **{w.c: 1_000_000})
    cases = [
        (res(w.c, w.hh, qmax + 1), ["quantity"]),
        (res(w.c, w.hh, 1_000_000, 30 * 24 * 3600), ["quantity", "ttl_seconds"]),
        (res(w.c, w.hh, 1, tmax + 1), ["ttl_seconds"]),
    ]
    for body, fields in cases:
        problem = assert_problem(await client.post("/v1/reservations", json=body, headers=w.shop), 422, "validation_error")
        assert [e["field"] for e in problem["errors"]] == fields
    assert (await level(client, admin, w.c, w.hh))["reserved"] == 0
    r = await client.post("/v1/reservations", json=res(w.c, w.hh, qmax, tmax), headers=w.shop)
    assert r.status_code == 201, r.text
    # admin (and POS) keys are not capped by these settings
    r = await client.post("/v1/reservations", json=res(w.c, w.hh, 1_000, 7 * 24 * 3600), headers=admin)
    assert r.status_code == 201, r.text
    pos = auth(await make_key("pos", channel=w.pos, location=w.hh))
    r = await client.post("/v1/reservations", json=res(w.c, w.hh, qmax + 1, tmax + 1), headers=pos)
    assert r.status_code == 201, r.text


async def test_a_key_holds_at_most_so_many_units_at_once(client, admin, world):
    w = world
    s = get_settings()
    qmax, cap = s.reservation_max_quantity_public, s.reservation_max_units_held_public
    assert cap == 200  # the documented default
    await put_levels(client, admin, w.hh, **{w.c: 10_000})
    holds = []
    for _ in range(cap // qmax):  # many small holds add up to the cap
        r = await client.post("/v1/reservations", json=res(w.c, w.hh, qmax), headers=w.shop)
        assert r.status_code == 201, r.text
        holds.append(r.json()["id"])
    problem = assert_problem(await client.post("/v1/reservations", json=res(w.c, w.hh, 1), headers=w.shop),
                             409, "reservation_limit")
    assert problem["errors"][0]["field"] == "quantity" and str(cap) in problem["detail"]
    # another key of the same channel has its own budget; admin keys are not capped
    other = auth(await make_key("storefront", channel=w.web))
    assert (await client.post("/v1/reservations", json=res(w.c, w.hh, 1), headers=other)).status_code == 201
    assert (await client.post("/v1/reservations", json=res(w.c, w.hh, 1), headers=admin)).status_code == 201
    # a released hold, and holds past their expiry, no longer count
    assert (await client.delete(f"/v1/reservations/{holds[0]}", headers=w.shop)).status_code == 200
    assert (await client.post("/v1/reservations", json=res(w.c, w.hh, qmax), headers=w.shop)).status_code == 201
    assert_problem(await client.post("/v1/reservations", json=res(w.c, w.hh, 1), headers=w.shop), 409)
    clock.advance(timedelta(seconds=61))
    assert (await client.post("/v1/reservations", json=res(w.c, w.hh, qmax), headers=w.shop)).status_code == 201


def _figures(body: dict) -> list:
    """Every `available` figure anywhere in a problem body."""
    found = []

    def walk(x):
        if isinstance(x, dict):
            found.extend(v for k, v in x.items() if k == "available")
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(body)
    return found


async def test_shortage_without_figures_for_storefront_with_them_for_admin(client, admin, world):
    w = world
    # 8 of A at Hamburg; a storefront asking for 9 learns that it cannot have them, not that 8 are left
    r = await client.post("/v1/reservations", json=res(w.a, w.hh, 9), headers=w.shop)
    body = assert_problem(r, 409, "insufficient_stock")
    assert _figures(body) == []
    assert body["shortages"] == [{"sku": w.a, "location": w.hh, "requested": 9}]
    assert [e["field"] for e in body["errors"]] == ["quantity"]
    for text in [body["detail"]] + [e["message"] for e in body["errors"]]:
        assert "8" not in text.replace(w.a, "").replace(w.hh, ""), text
    # a bundle (1 A + 2 B; 3 B make 1 box): no figures and no component breakdown either
    r = await client.post("/v1/reservations", json=res(w.box, w.hh, 2), headers=w.shop)
    body = assert_problem(r, 409, "insufficient_stock")
    assert _figures(body) == [] and "components" not in str(body)
    assert body["shortages"] == [{"sku": w.box, "location": w.hh, "requested": 2}]
    # admin and POS keys keep the numbers
    body = assert_problem(await client.post("/v1/reservations", json=res(w.a, w.hh, 9), headers=admin), 409, "insufficient_stock")
    assert body["shortages"] == [{"sku": w.a, "location": w.hh, "requested": 9, "available": 8}]
    assert "8 available" in body["detail"]
    pos = auth(await make_key("pos", channel=w.pos, location=w.hh))
    body = assert_problem(await client.post("/v1/reservations", json=res(w.box, w.hh, 2), headers=pos), 409, "insufficient_stock")
    assert body["shortages"][0]["available"] == 1 and body["shortages"][0]["components"]
    assert (await level(client, admin, w.a, w.hh))["reserved"] == 0


async def test_reservations_take_any_spelling_of_a_sku(client, admin, world):
    w = world
    r = await client.post("/v1/reservations", json=res(w.a.lower(), w.hh, 2), headers=w.shop)
    assert r.status_code == 201, r.text
    assert r.json()["sku"] == w.a
    assert (await level(client, admin, w.a, w.hh))["reserved"] == 2
    body = assert_problem(await client.post("/v1/reservations", json=res(w.a.lower(), w.hh, 7), headers=w.shop),
                          409, "insufficient_stock")
    assert body["shortages"][0]["sku"] == w.a
