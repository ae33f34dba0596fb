from tests.conftest import uid
from tests.helpers import assert_problem, create_location


async def test_channel_crud_and_etag(client, admin):
    wh = await create_location(client, admin, "warehouse")
    code, retail = uid("web"), uid("retail")
    assert (await client.post("/v1/price-lists", json={"code": retail, "currency": "EUR"}, headers=admin)).status_code == 201
    r = await client.post("/v1/channels", json={
        "code": code, "name": "Web DE", "type": "web", "currency": "EUR", "country": "DE",
        "prices_include_tax": True, "price_lists": [retail], "fulfillment_locations": [wh["code"]],
        "return_window_days": 14, "pickup_hold_days": 2}, headers=admin)
    assert r.status_code == 201, r.text
    ch = r.json()
    assert ch["id"].startswith("ch_") and ch["version"] == 1 and r.headers["etag"] == '"1"'
    assert ch["fulfillment_locations"] == [wh["code"]] and ch["return_window_days"] == 14
    assert ch["created_at"].endswith("Z")
    # by code and by id
    for ref in (code, ch["id"]):
        r = await client.get(f"/v1/channels/{ref}", headers=admin)
        assert r.status_code == 200 and r.json()["id"] == ch["id"]
    # PATCH with a current If-Match
    r = await client.patch(f"/v1/channels/{code}", json={"name": "Webshop"}, headers=admin | {"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["version"] == 2 and r.headers["etag"] == '"2"'
    # stale If-Match and stale body version -> 412, nothing changed
    r = await client.patch(f"/v1/channels/{code}", json={"name": "Stale"}, headers=admin | {"If-Match": '"1"'})
    assert_problem(r, 412, "version_conflict")
    r = await client.patch(f"/v1/channels/{code}", json={"name": "Stale", "version": 1}, headers=admin)
    assert_problem(r, 412, "version_conflict")
    assert (await client.get(f"/v1/channels/{code}", headers=admin)).json()["name"] == "Webshop"
    # code and type are fixed; nulls rejected
    assert_problem(await client.patch(f"/v1/channels/{code}", json={"code": "x"}, headers=admin), 422)
    assert_problem(await client.patch(f"/v1/channels/{code}", json={"name": None}, headers=admin), 422)
    assert_problem(await client.patch("/v1/channels/nope", json={"name": "x"}, headers=admin), 404, "not_found")
    assert_problem(await client.get("/v1/channels/nope", headers=admin), 404, "not_found")
    r = await client.patch(f"/v1/channels/{code}", json={"price_lists": ["a", "a"]}, headers=admin)
    assert_problem(r, 422, "validation_error")


async def test_location_defaults_and_update(client, admin):
    store = await create_location(client, admin, "store", address={
        "line1": "Jungfernstieg 1", "postal_code": "20354", "city": "Hamburg", "country": "DE", "lat": 53.55, "lon": 9.99})
    assert store["capabilities"] == {"ship": True, "pickup": True, "returns": True}
    assert store["priority"] == 50 and store["lat"] == 53.55 and store["lon"] == 9.99
    wh = await create_location(client, admin, "warehouse")
    assert wh["capabilities"] == {"ship": True, "pickup": False, "returns": False} and wh["priority"] == 10
    assert wh["priority"] < store["priority"]
    r = await client.patch(f"/v1/locations/{store['code']}", json={"capabilities": {"ship": False}, "priority": 5},
                           headers=admin | {"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["capabilities"] == {"ship": False, "pickup": True, "returns": True} and out["priority"] == 5
    assert_problem(await client.patch(f"/v1/locations/{store['code']}", json={"active": False},
                                      headers=admin | {"If-Match": '"1"'}), 412, "version_conflict")
    r = await client.post("/v1/locations", json={"code": store["code"], "name": "dup", "type": "store"}, headers=admin)
    assert_problem(r, 409, "duplicate_code")
    r = await client.post("/v1/locations", json={"code": uid("x"), "name": "n", "type": "store", "lat": 10}, headers=admin)
    assert_problem(r, 422, "validation_error")
    r = await client.get("/v1/locations?type=warehouse&limit=500", headers=admin)
    assert all(x["type"] == "warehouse" for x in r.json()["data"])
    assert_problem(await client.get("/v1/locations?type=moon", headers=admin), 422)


async def test_pagination_walk_is_stable_under_inserts(client, admin):
    t = uid("pg")
    made = [await create_location(client, admin, "partner", name=t) for _ in range(7)]
    seen = []
    cursor = None
    pages = 0
    while True:
        url = "/v1/locations?type=partner&limit=3" + (f"&cursor={cursor}" if cursor else "")
        r = await client.get(url, headers=admin)
        assert r.status_code == 200
        page = r.json()
        assert set(page) == {"data", "next_cursor"}
        seen += [x["id"] for x in page["data"]]
        pages += 1
        if pages == 1:  # inserted mid-walk: appears at the end, nothing skipped or repeated
            made.append(await create_location(client, admin, "partner", name=t))
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen))
    assert [m["id"] for m in made] == [i for i in seen if i in {m["id"] for m in made}]
    assert seen == sorted(seen)
