"""Transfers: stock in transit counts nowhere until received."""

from app.inventory.schemas import TransferOut
from tests.conftest import auth, make_key
from tests.helpers import assert_problem
from tests.inventory.builders import ledger_matches, level, put_levels


async def test_dispatch_and_receive(client, admin, world):
    w = world
    await put_levels(client, admin, w.wh, **{w.a: 10, w.b: 4})
    r = await client.post("/v1/inventory/transfers", headers=admin,
                          json={"from": w.wh, "to": w.hh, "lines": [{"sku": w.a, "quantity": 6}, {"sku": w.b, "quantity": 4}]})
    assert r.status_code == 201, r.text
    t = r.json()
    TransferOut.model_validate(t)
    assert t["status"] == "requested" and t["from"] == w.wh and t["to"] == w.hh and t["id"].startswith("trf_")
    assert (await level(client, admin, w.a, w.wh))["available"] == 10  # requested: nothing moved yet
    r = await client.post(f"/v1/inventory/transfers/{t['id']}/dispatch", headers=admin | {"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["status"] == "in_transit"
    # in transit: neither at the source nor at the target
    assert (await level(client, admin, w.a, w.wh))["on_hand"] == 4
    assert (await level(client, admin, w.a, w.hh))["on_hand"] == 0
    avail = (await client.get("/v1/availability", params={"skus": w.a, "channel": w.web}, headers=admin)).json()
    assert avail["data"][0]["available_to_sell"] == 4
    # part of it arrives, then the rest
    r = await client.post(f"/v1/inventory/transfers/{t['id']}/receive", headers=admin, json={"lines": [{"sku": w.a, "quantity": 2}]})
    assert r.status_code == 200 and r.json()["status"] == "in_transit"
    r = await client.post(f"/v1/inventory/transfers/{t['id']}/receive", headers=admin,
                          json={"lines": [{"sku": w.a, "quantity": 5}]})
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "lines[0].quantity"
    r = await client.post(f"/v1/inventory/transfers/{t['id']}/receive", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "received"
    assert [ln["received"] for ln in r.json()["lines"]] == [6, 4]
    assert (await level(client, admin, w.a, w.hh))["on_hand"] == 6 and (await level(client, admin, w.b, w.hh))["on_hand"] == 4
    moves = (await client.get("/v1/inventory/movements", params={"reference": t["id"]}, headers=admin)).json()["data"]
    assert sorted((m["sku"] == w.a, m["location"], m["quantity"], m["reason"]) for m in moves) == sorted([
        (True, w.wh, -6, "transfer_out"), (False, w.wh, -4, "transfer_out"), (True, w.hh, 2, "transfer_in"),
        (True, w.hh, 4, "transfer_in"), (False, w.hh, 4, "transfer_in")])
    assert_problem(await client.post(f"/v1/inventory/transfers/{t['id']}/receive", headers=admin), 409, "invalid_transition")
    assert_problem(await client.post(f"/v1/inventory/transfers/{t['id']}/cancel", headers=admin), 409, "invalid_transition")
    assert await ledger_matches([w.a, w.b]) == []


async def test_bad_transfers(client, admin, world):
    w = world
    await put_levels(client, admin, w.wh, **{w.a: 3})
    bad = [
        {"from": w.wh, "to": w.wh, "lines": [{"sku": w.a, "quantity": 1}]},
        {"from": w.wh, "to": "nowhere", "lines": [{"sku": w.a, "quantity": 1}]},
        {"from": w.wh, "to": w.hh, "lines": [{"sku": w.box, "quantity": 1}]},
        {"from": w.wh, "to": w.hh, "lines": [{"sku": w.a, "quantity": 0}]},
        {"from": w.wh, "to": w.hh, "lines": []},
    ]
    for body in bad:
        assert_problem(await client.post("/v1/inventory/transfers", json=body, headers=admin), 422, "validation_error")
    body = {"from": w.wh, "to": w.hh, "lines": [{"sku": w.a, "quantity": 1}, {"sku": "NO-SUCH", "quantity": 1}]}
    problem = assert_problem(await client.post("/v1/inventory/transfers", json=body, headers=admin), 422, "unknown_sku")
    assert problem["errors"] == [{"field": "lines[1].sku", "message": "Unknown SKU 'NO-SUCH'."}]
    t = (await client.post("/v1/inventory/transfers", headers=admin,
                           json={"from": w.wh, "to": w.hh, "lines": [{"sku": w.a, "quantity": 5}]})).json()
    r = await client.post(f"/v1/inventory/transfers/{t['id']}/dispatch", headers=admin)
    body = assert_problem(r, 409, "insufficient_stock")
    assert body["shortages"] == [{"sku": w.a, "location": w.wh, "requested": 5, "available": 3}]
    assert (await level(client, admin, w.a, w.wh))["on_hand"] == 3
    assert_problem(await client.post(f"/v1/inventory/transfers/{t['id']}/dispatch", headers=admin | {"If-Match": '"7"'}),
                   412, "version_conflict")
    r = await client.post(f"/v1/inventory/transfers/{t['id']}/cancel", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert_problem(await client.post(f"/v1/inventory/transfers/{t['id']}/dispatch", headers=admin), 409, "invalid_transition")
    assert_problem(await client.post("/v1/inventory/transfers/trf_nope/dispatch", headers=admin), 404, "not_found")


async def test_pos_works_its_own_transfers(client, admin, world):
    w = world
    await put_levels(client, admin, w.be, **{w.c: 5})
    pos_hh = auth(await make_key("pos", channel=w.pos, location=w.hh))
    pos_be = auth(await make_key("pos", channel=w.pos, location=w.be))
    r = await client.post("/v1/inventory/transfers", headers=pos_hh, json={"from": w.be, "to": w.hh, "lines": [{"sku": w.c, "quantity": 2}]})
    assert r.status_code == 201
    tid = r.json()["id"]
    assert_problem(await client.post(f"/v1/inventory/transfers/{tid}/dispatch", headers=pos_hh), 404, "not_found")
    assert (await client.post(f"/v1/inventory/transfers/{tid}/dispatch", headers=pos_be)).status_code == 200
    assert_problem(await client.post(f"/v1/inventory/transfers/{tid}/receive", headers=pos_be), 404, "not_found")
    assert (await client.post(f"/v1/inventory/transfers/{tid}/receive", headers=pos_hh)).status_code == 200
    r = await client.post("/v1/inventory/transfers", headers=pos_hh, json={"from": w.be, "to": w.wh, "lines": [{"sku": w.c, "quantity": 1}]})
    assert_problem(r, 404, "not_found")
    shop = auth(await make_key("storefront", channel=w.web))
    assert_problem(await client.get("/v1/inventory/transfers", headers=shop), 403, "forbidden")
