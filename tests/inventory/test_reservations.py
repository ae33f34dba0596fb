"""Reservations: holds that run out without anyone calling."""
from datetime import timedelta

import pytest

from app.core import clock
from app.inventory.jobs import expire_reservations
from app.inventory.schemas import ReservationOut
from tests.conftest import auth, make_key
from tests.helpers import assert_problem, create_channel
from tests.inventory.builders import World, ledger_matches, level, put_levels


@pytest.fixture
async def world(client, admin):
    w = await World().setup(client, admin)
    yield w
    clock.reset()


async def avail(client, admin, w, sku, location):
    r = await client.get("/v1/availability", params={"skus": sku, "channel": w.web, "location": location}, headers=admin)
    assert r.status_code == 200, r.text
    locs = r.json()["data"][0]["locations"]
    return locs[0]["available"] if locs else 0


async def test_reserve_release_and_expire(client, admin, world):
    w = world
    await put_levels(client, admin, w.hh, **{w.a: 5})
    shop = auth(await make_key("storefront", channel=w.web))
    r = await client.post("/v1/reservations", headers=shop,
                          json={"sku": w.a, "location": w.hh, "quantity": 2, "ttl_seconds": 600, "reference": "cart-1"})
    assert r.status_code == 201, r.text
    res = r.json()
    ReservationOut.model_validate(res)
    assert res["status"] == "active" and res["id"].startswith("res_") and res["channel"] == w.web
    assert (await level(client, admin, w.a, w.hh))["reserved"] == 2
    assert await avail(client, admin, w, w.a, w.hh) == 3
    # released by the client
    r = await client.delete(f"/v1/reservations/{res['id']}", headers=shop)
    assert r.status_code == 200 and r.json()["status"] == "released"
    assert (await level(client, admin, w.a, w.hh))["reserved"] == 0
    assert (await client.delete(f"/v1/reservations/{res['id']}", headers=shop)).json()["status"] == "released"
    # runs out: it stops counting at once, before any worker runs
    r = await client.post("/v1/reservations", headers=shop, json={"sku": w.a, "location": w.hh, "quantity": 4, "ttl_seconds": 60})
    rid = r.json()["id"]
    assert await avail(client, admin, w, w.a, w.hh) == 1
    clock.advance(timedelta(seconds=61))
    assert await avail(client, admin, w, w.a, w.hh) == 5
    assert (await client.get(f"/v1/reservations/{rid}", headers=shop)).json()["status"] == "expired"
    # the worker releases it for good
    assert await expire_reservations() >= 1
    assert (await level(client, admin, w.a, w.hh))["reserved"] == 0
    assert await expire_reservations() == 0
    assert await ledger_matches([w.a]) == []


async def test_expired_hold_never_blocks_a_new_one(client, admin, world):
    w = world
    await put_levels(client, admin, w.hh, **{w.a: 3})
    r = await client.post("/v1/reservations", headers=admin, json={"sku": w.a, "location": w.hh, "quantity": 3, "ttl_seconds": 30})
    first = r.json()["id"]
    r = await client.post("/v1/reservations", headers=admin, json={"sku": w.a, "location": w.hh, "quantity": 1, "ttl_seconds": 30})
    assert_problem(r, 409, "insufficient_stock")
    clock.advance(timedelta(seconds=31))
    r = await client.post("/v1/reservations", headers=admin, json={"sku": w.a, "location": w.hh, "quantity": 3, "ttl_seconds": 30})
    assert r.status_code == 201, r.text  # the expired hold was released on the way
    assert (await client.get(f"/v1/reservations/{first}", headers=admin)).json()["status"] == "expired"
    assert (await level(client, admin, w.a, w.hh))["reserved"] == 3


async def test_bundle_reservation_holds_components(client, admin, world):
    w = world
    await put_levels(client, admin, w.hh, **{w.a: 3, w.b: 5})
    assert await avail(client, admin, w, w.box, w.hh) == 2  # min(3 // 1, 5 // 2)
    r = await client.post("/v1/reservations", headers=admin, json={"sku": w.box, "location": w.hh, "quantity": 2, "ttl_seconds": 60})
    assert r.status_code == 201, r.text
    assert (await level(client, admin, w.a, w.hh))["reserved"] == 2 and (await level(client, admin, w.b, w.hh))["reserved"] == 4
    r = await client.post("/v1/reservations", headers=admin, json={"sku": w.box, "location": w.hh, "quantity": 1, "ttl_seconds": 60})
    body = assert_problem(r, 409, "insufficient_stock")
    assert body["shortages"][0]["sku"] == w.box and body["shortages"][0]["available"] == 0
    assert_problem(await client.delete("/v1/reservations/res_nope", headers=admin), 404, "not_found")
    assert_problem(await client.get("/v1/reservations/res_nope", headers=admin), 404, "not_found")


async def test_bad_reservations(client, admin, world):
    w = world
    await put_levels(client, admin, w.hh, **{w.a: 2})
    cases = [
        ({"sku": w.a, "location": w.hh, "quantity": 3, "ttl_seconds": 60}, 409, "insufficient_stock"),
        ({"sku": w.a, "location": w.hh, "quantity": 0, "ttl_seconds": 60}, 422, "validation_error"),
        ({"sku": w.a, "location": w.hh, "quantity": 1, "ttl_seconds": 0}, 422, "validation_error"),
        ({"sku": "NO-SUCH", "location": w.hh, "quantity": 1, "ttl_seconds": 60}, 422, "unknown_sku"),
        ({"sku": w.a, "location": "nowhere", "quantity": 1, "ttl_seconds": 60}, 422, "validation_error"),
    ]
    for body, status, code in cases:
        assert_problem(await client.post("/v1/reservations", json=body, headers=admin), status, code)
    assert (await level(client, admin, w.a, w.hh))["reserved"] == 0
    # an untracked SKU is never short
    r = await client.post("/v1/reservations", headers=admin, json={"sku": w.free, "location": w.hh, "quantity": 50, "ttl_seconds": 60})
    assert r.status_code == 201
    # scope: a storefront reserves only at its channel's locations; another channel's key cannot see it
    shop = auth(await make_key("storefront", channel=w.web))
    r = await client.post("/v1/reservations", headers=shop, json={"sku": w.a, "location": w.partner, "quantity": 1, "ttl_seconds": 60})
    assert_problem(r, 404, "not_found")
    rid = (await client.post("/v1/reservations", headers=shop, json={"sku": w.a, "location": w.hh, "quantity": 1, "ttl_seconds": 60})).json()["id"]
    other = (await create_channel(client, admin, "web"))["code"]
    stranger = auth(await make_key("storefront", channel=other))
    assert_problem(await client.get(f"/v1/reservations/{rid}", headers=stranger), 404, "not_found")
    assert_problem(await client.delete(f"/v1/reservations/{rid}", headers=stranger), 404, "not_found")
    # a POS key holds at its own store or another store (tests/inventory/test_pos_holds.py), never at a warehouse
    pos_be = auth(await make_key("pos", channel=w.pos, location=w.be))
    r = await client.post("/v1/reservations", headers=pos_be, json={"sku": w.a, "location": w.wh, "quantity": 1, "ttl_seconds": 60})
    assert_problem(r, 404, "not_found")


async def test_commit_a_reservation(client, admin, world):
    """What orders call when held goods leave (click & reserve picked up): on_hand and reserved
    both drop by what was held, one sale movement per component, status committed; in the
    caller's transaction (a rollback leaves the reservation active)."""
    from app.core.db import sessionmaker
    from app.core.errors import ApiError
    from app.inventory import reservations

    w = world
    await put_levels(client, admin, w.hh, **{w.a: 5, w.b: 6})
    rid = (await client.post("/v1/reservations", headers=admin, json={
        "sku": w.box, "location": w.hh, "quantity": 2, "ttl_seconds": 600, "reference": "pickup-7"})).json()["id"]
    async with sessionmaker()() as s:  # rolled back: nothing happened
        await reservations.commit(s, rid)
        await s.rollback()
    assert (await client.get(f"/v1/reservations/{rid}", headers=admin)).json()["status"] == "active"
    async with sessionmaker()() as s:
        out = await reservations.commit(s, rid, reference="ord_77")
        await s.commit()
    assert out["status"] == "committed"
    a, b = await level(client, admin, w.a, w.hh), await level(client, admin, w.b, w.hh)
    assert (a["on_hand"], a["reserved"], b["on_hand"], b["reserved"]) == (3, 0, 2, 0)
    moves = (await client.get("/v1/inventory/movements", params={"reference": "ord_77"}, headers=admin)).json()["data"]
    assert sorted((m["sku"] == w.a, m["quantity"], m["reason"]) for m in moves) == [(False, -4, "sale"), (True, -2, "sale")]
    # a committed reservation stays committed: DELETE returns it as it is, a second commit is refused
    r = await client.delete(f"/v1/reservations/{rid}", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "committed"
    assert (await level(client, admin, w.a, w.hh))["reserved"] == 0
    async with sessionmaker()() as s:
        with pytest.raises(ApiError) as e:
            await reservations.commit(s, rid)
        assert (e.value.status, e.value.code) == (409, "invalid_transition")
        with pytest.raises(ApiError) as e:
            await reservations.commit(s, "res_nope")
        assert e.value.status == 404
    # an expired hold cannot be committed (its stock may be sold already)
    late = (await client.post("/v1/reservations", headers=admin, json={
        "sku": w.a, "location": w.hh, "quantity": 1, "ttl_seconds": 30})).json()["id"]
    clock.advance(timedelta(seconds=31))
    async with sessionmaker()() as s:
        with pytest.raises(ApiError) as e:
            await reservations.commit(s, late)
        assert (e.value.status, e.value.code) == (409, "invalid_transition")
    assert await ledger_matches([w.a, w.b]) == []
