"""Levels, adjustments, bulk counts, the ledger and who may touch what."""
from sqlalchemy import select

from app.core.db import sessionmaker
from app.events.models import Event
from app.inventory.schemas import AdjustmentOut, LevelUpdateOut
from tests.conftest import auth, make_key
from tests.helpers import assert_problem
from tests.inventory.builders import ledger_matches, level, put_levels


async def test_adjustments_and_ledger(client, admin, world):
    w = world
    r = await client.post("/v1/inventory/adjustments", headers=admin,
                          json={"location": w.hh, "sku": w.a, "delta": 7, "reason": "receipt", "note": "delivery 4711"})
    assert r.status_code == 201, r.text
    body = r.json()
    AdjustmentOut.model_validate(body)
    assert body["change"] == 7
    assert {k: body[k] for k in ("sku", "location", "on_hand", "reserved", "safety_stock", "available")} == \
        {"sku": w.a, "location": w.hh, "on_hand": 7, "reserved": 0, "safety_stock": 0, "available": 7}
    r = await client.post("/v1/inventory/adjustments", headers=admin,
                          json={"location": w.hh, "sku": w.a, "set": 5, "safety_stock": 2, "reason": "count"})
    assert r.status_code == 201 and r.json()["change"] == -2
    assert r.json()["available"] == 3
    r = await client.post("/v1/inventory/adjustments", headers=admin,
                          json={"location": w.hh, "sku": w.a, "delta": -1, "reason": "damage"})
    assert r.json()["on_hand"] == 4
    moves = (await client.get("/v1/inventory/movements", params={"sku": w.a, "location": w.hh}, headers=admin)).json()["data"]
    assert [(m["quantity"], m["reason"]) for m in moves] == [(7, "receipt"), (-2, "count"), (-1, "damage")]
    assert moves[0]["note"] == "delivery 4711" and moves[0]["location"] == w.hh and moves[0]["id"].startswith("mov_")
    assert await ledger_matches([w.a]) == []
    async with sessionmaker()() as s:
        events = (await s.execute(select(Event).where(Event.type == "inventory.level_changed")
                                  .order_by(Event.id))).scalars().all()
    mine = [e.data for e in events if e.data["sku"] == w.a and e.data["location"] == w.hh]
    assert [e["on_hand"] for e in mine] == [7, 5, 4] and mine[1]["safety_stock"] == 2


async def test_bad_adjustments_change_nothing(client, admin, world):
    w = world
    await put_levels(client, admin, w.hh, **{w.a: 2})
    cases = [
        ({"location": w.hh, "sku": w.a, "reason": "count"}, 422, "validation_error"),  # neither delta nor set
        ({"location": w.hh, "sku": w.a, "delta": 1, "set": 1, "reason": "count"}, 422, "validation_error"),
        ({"location": w.hh, "sku": w.a, "delta": 0, "reason": "count"}, 422, "validation_error"),
        ({"location": w.hh, "sku": w.a, "set": -1, "reason": "count"}, 422, "validation_error"),
        ({"location": w.hh, "sku": w.a, "delta": 1, "reason": "gift"}, 422, "validation_error"),
        ({"location": w.hh, "sku": "NO-SUCH", "delta": 1, "reason": "receipt"}, 422, "unknown_sku"),
        ({"location": "nowhere", "sku": w.a, "delta": 1, "reason": "receipt"}, 422, "validation_error"),
        ({"location": w.hh, "sku": w.box, "delta": 1, "reason": "receipt"}, 422, "validation_error"),
        ({"location": w.hh, "sku": w.free, "delta": 1, "reason": "receipt"}, 422, "validation_error"),
        ({"location": w.hh, "sku": w.a, "delta": -3, "reason": "shrinkage"}, 409, "insufficient_stock"),
    ]
    for body, status, code in cases:
        assert_problem(await client.post("/v1/inventory/adjustments", json=body, headers=admin), status, code)
    assert (await level(client, admin, w.a, w.hh))["on_hand"] == 2
    assert await ledger_matches([w.a]) == []


async def test_put_levels_is_all_or_nothing(client, admin, world):
    w = world
    r = await client.put("/v1/inventory/levels", headers=admin, json={"location": w.be, "levels": [
        {"sku": w.a, "on_hand": 10, "safety_stock": 1}, {"sku": w.b, "on_hand": 4}]})
    assert r.status_code == 200 and r.json()["changed"] == 2
    LevelUpdateOut.model_validate(r.json())
    assert [(x["sku"], x["on_hand"], x["available"], x["change"]) for x in r.json()["data"]] == [(w.a, 10, 9, 10), (w.b, 4, 4, 4)]
    r = await client.put("/v1/inventory/levels", headers=admin, json={"location": w.be, "levels": [
        {"sku": w.a, "on_hand": 8}, {"sku": "NO-SUCH", "on_hand": 1}]})
    assert assert_problem(r, 422, "unknown_sku")["errors"] == [{"field": "levels[1].sku", "message": "Unknown SKU 'NO-SUCH'."}]
    r = await client.put("/v1/inventory/levels", headers=admin, json={"location": w.be, "levels": [
        {"sku": w.a, "on_hand": 8}, {"sku": w.a, "on_hand": 1}]})
    assert_problem(r, 422, "validation_error")
    r = await client.put("/v1/inventory/levels", headers=admin, json={"location": w.be, "levels": [{"sku": w.a, "on_hand": -1}]})
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "levels[0].on_hand"
    assert (await level(client, admin, w.a, w.be))["on_hand"] == 10
    # the same count again changes nothing and writes nothing
    r = await client.put("/v1/inventory/levels", headers=admin, json={"location": w.be, "levels": [{"sku": w.a, "on_hand": 10}]})
    assert r.json()["changed"] == 0
    moves = (await client.get("/v1/inventory/movements", params={"sku": w.a, "location": w.be}, headers=admin)).json()["data"]
    assert [m["quantity"] for m in moves] == [10]
    below = (await client.get("/v1/inventory", params={"location": w.be, "below_safety": "true"}, headers=admin)).json()["data"]
    assert below == []


async def test_roles_and_bindings(client, admin, world):
    w = world
    pos = auth(await make_key("pos", channel=w.pos, location=w.hh))
    partner = auth(await make_key("dropshipper", location=w.partner))
    shop = auth(await make_key("storefront", channel=w.web))
    body = {"sku": w.c, "delta": 3, "reason": "receipt"}
    assert (await client.post("/v1/inventory/adjustments", json={**body, "location": w.hh}, headers=pos)).status_code == 201
    assert_problem(await client.post("/v1/inventory/adjustments", json={**body, "location": w.be}, headers=pos), 404, "not_found")
    r = await client.put("/v1/inventory/levels", json={"location": w.partner, "levels": [{"sku": w.c, "on_hand": 9}]}, headers=partner)
    assert r.status_code == 200
    r = await client.put("/v1/inventory/levels", json={"location": w.hh, "levels": [{"sku": w.c, "on_hand": 9}]}, headers=partner)
    assert_problem(r, 404, "not_found")
    assert_problem(await client.post("/v1/inventory/adjustments", json={**body, "location": w.hh}, headers=shop), 403, "forbidden")
    # the partner sees its own stock only; the POS sees every location
    own = (await client.get("/v1/inventory", params={"sku": w.c}, headers=partner)).json()["data"]
    assert [(x["location"], x["on_hand"]) for x in own] == [(w.partner, 9)]
    assert_problem(await client.get("/v1/inventory", params={"location": w.hh}, headers=partner), 404, "not_found")
    every = (await client.get("/v1/inventory", params={"sku": w.c}, headers=pos)).json()["data"]
    assert {x["location"] for x in every} == {w.hh, w.partner}
    assert_problem(await client.get("/v1/inventory", headers=shop), 403, "forbidden")
    assert_problem(await client.get("/v1/inventory/movements", params={"location": w.be}, headers=pos), 404, "not_found")
    assert_problem(await client.get("/v1/availability", params={"skus": w.c}, headers=partner), 403, "forbidden")


async def test_counts_at_an_inactive_location(client, admin, world):
    """A closed store still gets counted: the answer shows the real level (the fuzz test found a 500 here)."""
    w = world
    assert (await client.patch(f"/v1/locations/{w.be}", json={"active": False}, headers=admin)).status_code == 200
    r = await client.put("/v1/inventory/levels", headers=admin, json={"location": w.be, "levels": [{"sku": w.a, "on_hand": 0}]})
    assert r.status_code == 200 and r.json()["data"][0]["on_hand"] == 0 and r.json()["changed"] == 0
    r = await client.post("/v1/inventory/adjustments", headers=admin, json={"location": w.be, "sku": w.a, "delta": 2, "reason": "count"})
    assert r.status_code == 201 and r.json()["on_hand"] == 2
