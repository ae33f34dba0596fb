"""A POS key holds stock at another store for the customer at its till (issue 15: "staff check
other stores and reserve there"), while its stock counts and adjustments stay at its own store."""
import pytest

from app.core import clock
from tests.conftest import auth, uid
from tests.helpers import assert_problem, create_location
from tests.inventory.builders import World, ledger_matches, level, put_levels


@pytest.fixture
async def world(client, admin):
    w = await World().setup(client, admin)
    w.mu = (await create_location(client, admin, "store"))["code"]  # a third store
    for loc in (w.hh, w.be, w.mu, w.wh, w.partner):
        await put_levels(client, admin, loc, **{w.a: 10, w.b: 10})
    w.be_till, w.be_till_key = await pos_key(client, admin, w, w.be)
    w.be_till2, _ = await pos_key(client, admin, w, w.be)  # another till of the same store
    w.hh_till, _ = await pos_key(client, admin, w, w.hh)
    w.mu_till, _ = await pos_key(client, admin, w, w.mu)
    yield w
    clock.reset()


async def pos_key(client, admin, w, store: str) -> tuple[dict, str]:
    r = await client.post("/v1/api-keys", headers=admin,
                          json={"name": uid("till"), "role": "pos", "channel": w.pos, "location": store})
    assert r.status_code == 201, r.text
    return auth(r.json()["secret"]), r.json()["id"]


def res(sku_, location, quantity=1, **kw) -> dict:
    return {"sku": sku_, "location": location, "quantity": quantity, "ttl_seconds": 3600, **kw}


async def test_a_till_holds_at_another_store_and_both_stores_see_it(client, admin, world):
    w = world
    # Berlin's till holds 2 A at Hamburg for the customer in front of it
    r = await client.post("/v1/reservations", json=res(w.a, w.hh, 2, reference="customer-at-be"), headers=w.be_till)
    assert r.status_code == 201, r.text
    hold = r.json()
    assert hold["location"] == w.hh and hold["status"] == "active" and hold["channel"] == w.pos
    assert hold["placed_by"] == {"api_key": w.be_till_key, "location": w.be}
    assert (await level(client, admin, w.a, w.hh))["reserved"] == 2
    assert (await level(client, admin, w.a, w.be))["reserved"] == 0
    # a hold at its own store says so too
    own = (await client.post("/v1/reservations", json=res(w.b, w.be), headers=w.be_till)).json()
    assert own["placed_by"] == {"api_key": w.be_till_key, "location": w.be}
    # Hamburg's till, where the goods are held, sees it (it will hand them over); so do Berlin's tills
    for till in (w.hh_till, w.be_till, w.be_till2):
        got = await client.get(f"/v1/reservations/{hold['id']}", headers=till)
        assert got.status_code == 200 and got.json() == hold
    ids = lambda r: [x["id"] for x in r.json()["data"]]  # noqa: E731
    assert ids(await client.get("/v1/reservations", headers=w.be_till)) == [hold["id"], own["id"]]
    assert ids(await client.get("/v1/reservations", params={"location": w.hh}, headers=w.be_till)) == [hold["id"]]
    assert ids(await client.get("/v1/reservations", headers=w.hh_till)) == [hold["id"]]
    # Munich's till neither sees nor releases it, as if it did not exist
    assert ids(await client.get("/v1/reservations", headers=w.mu_till)) == []
    assert_problem(await client.get(f"/v1/reservations/{hold['id']}", headers=w.mu_till), 404, "not_found")
    assert_problem(await client.delete(f"/v1/reservations/{hold['id']}", headers=w.mu_till), 404, "not_found")
    assert_problem(await client.delete(f"/v1/reservations/{own['id']}", headers=w.hh_till), 404, "not_found")
    assert (await level(client, admin, w.a, w.hh))["reserved"] == 2


async def test_released_by_the_placing_till_or_the_holding_store(client, admin, world):
    w = world
    first = (await client.post("/v1/reservations", json=res(w.a, w.hh, 3), headers=w.be_till)).json()
    second = (await client.post("/v1/reservations", json=res(w.a, w.hh, 4), headers=w.be_till)).json()
    third = (await client.post("/v1/reservations", json=res(w.a, w.hh, 1), headers=w.be_till)).json()
    assert (await level(client, admin, w.a, w.hh))["reserved"] == 8
    r = await client.delete(f"/v1/reservations/{first['id']}", headers=w.be_till)  # the till that placed it
    assert r.status_code == 200 and r.json()["status"] == "released"
    r = await client.delete(f"/v1/reservations/{second['id']}", headers=w.hh_till)  # the store holding the goods
    assert r.status_code == 200 and r.json()["status"] == "released"
    r = await client.delete(f"/v1/reservations/{third['id']}", headers=w.be_till2)  # another till of the placing store
    assert r.status_code == 200 and r.json()["status"] == "released"
    assert (await level(client, admin, w.a, w.hh))["reserved"] == 0
    assert await ledger_matches([w.a]) == []


async def test_only_active_stores_offering_pickup(client, admin, world):
    w = world
    no_pickup = (await create_location(client, admin, "store", capabilities={"pickup": False}))["code"]
    closed = (await create_location(client, admin, "store", active=False))["code"]
    for loc in (no_pickup, closed):
        await put_levels(client, admin, loc, **{w.a: 5})
    for loc in (w.wh, w.partner, no_pickup, closed, "no-such-location"):
        body = assert_problem(await client.post("/v1/reservations", json=res(w.a, loc), headers=w.be_till),
                              404, "not_found")
        assert [e["field"] for e in body["errors"]] == ["location"], loc
        assert (await level(client, admin, w.a, loc))["reserved"] == 0
    # staff keys keep the stock figures: a shortage at another store says how much is there
    body = assert_problem(await client.post("/v1/reservations", json=res(w.a, w.mu, 11), headers=w.be_till),
                          409, "insufficient_stock")
    assert body["shortages"] == [{"sku": w.a, "location": w.mu, "requested": 11, "available": 10}]
    # an unknown SKU answers as everywhere
    body = assert_problem(await client.post("/v1/reservations", json=res("NO-SUCH", w.mu), headers=w.be_till),
                          422, "unknown_sku")
    assert body["errors"] == [{"field": "sku", "message": "Unknown SKU 'NO-SUCH'."}]


async def test_stock_counts_and_adjustments_stay_at_the_own_store(client, admin, world):
    w = world
    till = w.be_till
    adjust = {"sku": w.a, "delta": 1, "reason": "receipt"}
    count = {"levels": [{"sku": w.a, "on_hand": 99}], "reason": "count"}
    for other in (w.hh, w.mu, w.wh):
        assert_problem(await client.post("/v1/inventory/adjustments", json={**adjust, "location": other}, headers=till),
                       404, "not_found")
        assert_problem(await client.put("/v1/inventory/levels", json={**count, "location": other}, headers=till),
                       404, "not_found")
        assert_problem(await client.get("/v1/inventory/movements", params={"location": other}, headers=till),
                       404, "not_found")
        assert (await level(client, admin, w.a, other))["on_hand"] == 10
    assert_problem(await client.post("/v1/inventory/transfers", headers=till,
                                     json={"from": w.hh, "to": w.mu, "lines": [{"sku": w.a, "quantity": 1}]}),
                   404, "not_found")
    # at its own store it counts and adjusts
    r = await client.post("/v1/inventory/adjustments", json={**adjust, "location": w.be}, headers=till)
    assert r.status_code == 201, r.text
    r = await client.put("/v1/inventory/levels", json={**count, "location": w.be}, headers=till)
    assert r.status_code == 200, r.text
    assert (await level(client, admin, w.a, w.be))["on_hand"] == 99
    assert await ledger_matches([w.a]) == []
