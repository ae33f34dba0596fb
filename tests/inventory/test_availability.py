"""GET /v1/availability: per location, channel-wide, near me, bundles; in few statements."""
from app.core import cache
from app.core.db import sql_statements
from app.inventory.schemas import AvailabilityOut
from tests.catalog.builders import create_product, sku
from tests.conftest import auth, make_key
from tests.helpers import assert_problem, create_channel, create_location
from tests.inventory.builders import put_levels


async def test_availability_per_location_and_channel(client, admin, world):
    w = world
    await put_levels(client, admin, w.wh, **{w.a: 10, w.b: 10})
    await put_levels(client, admin, w.hh, **{w.a: 3, w.b: 1})
    await put_levels(client, admin, w.be, **{w.a: 1, w.b: 4})
    await put_levels(client, admin, w.partner, **{w.a: 50})  # not a fulfillment location of the channel
    r = await client.post("/v1/inventory/adjustments", headers=admin,
                          json={"location": w.wh, "sku": w.a, "delta": 0 + 1, "safety_stock": 3, "reason": "correction"})
    assert r.status_code == 201
    shop = auth(await make_key("storefront", channel=w.web))
    r = await client.get("/v1/availability", params={"skus": f"{w.a},{w.box},{w.free}"}, headers=shop)
    assert r.status_code == 200, r.text
    AvailabilityOut.model_validate(r.json())
    by = {d["sku"]: d for d in r.json()["data"]}
    a = by[w.a]
    assert a["available_to_sell"] == (11 - 3) + 3 + 1  # safety stock is never sold; the partner is not in the channel
    assert {x["location"]: x["available"] for x in a["locations"]} == {w.wh: 8, w.hh: 3, w.be: 1}
    hh = next(x for x in a["locations"] if x["location"] == w.hh)
    assert hh["pickup"] is True and hh["distance_km"] is None
    # bundle = 1 A + 2 B, per location
    assert {x["location"]: x["available"] for x in by[w.box]["locations"]} == {w.wh: 5, w.hh: 0, w.be: 1}
    assert by[w.box]["available_to_sell"] == 6
    assert by[w.free]["tracked"] is False and by[w.free]["available_to_sell"] is None
    # admin without a channel: every active location with stock
    r = await client.get("/v1/availability", params={"skus": w.a}, headers=admin)
    assert w.partner in {x["location"] for x in r.json()["data"][0]["locations"]}


async def test_near_me_sorted_and_within_radius(client, admin, world):
    w = world
    for loc, n in ((w.wh, 5), (w.hh, 2), (w.be, 2)):
        await put_levels(client, admin, loc, **{w.c: n})
    hamburg_city = "53.5503,10.0007"
    r = await client.get("/v1/availability", params={"skus": w.c, "channel": w.web, "near": hamburg_city}, headers=admin)
    locs = r.json()["data"][0]["locations"]
    assert [x["location"] for x in locs] == [w.hh, w.wh, w.be]
    assert locs[0]["distance_km"] < 1 and 250 < locs[2]["distance_km"] < 270  # Hamburg -> Berlin ≈ 255 km
    r = await client.get("/v1/availability", params={"skus": w.c, "channel": w.web, "near": hamburg_city, "radius_km": 50},
                         headers=admin)
    assert [x["location"] for x in r.json()["data"][0]["locations"]] == [w.hh]
    assert r.json()["data"][0]["available_to_sell"] == 9  # the channel-wide figure does not depend on the radius
    for params in ({"skus": ""}, {"skus": w.c, "near": "x"}, {"skus": w.c, "near": "91,0"},
                   {"skus": w.c, "radius_km": 5}, {"skus": w.c, "location": "nowhere"},
                   {"skus": ",".join(f"S{i}" for i in range(101))}, {"skus": w.c, "channel": "no-such-channel"}):
        assert_problem(await client.get("/v1/availability", params=params, headers=admin), 422, "validation_error")
    body = assert_problem(await client.get("/v1/availability", params={"skus": f"{w.c},NO-SUCH"}, headers=admin),
                          422, "unknown_sku")
    assert body["errors"] == [{"field": "skus", "message": "Unknown SKU 'NO-SUCH'."}]
    other = (await create_channel(client, admin, "web"))["code"]
    shop = auth(await make_key("storefront", channel=w.web))
    assert_problem(await client.get("/v1/availability", params={"skus": w.c, "channel": other}, headers=shop), 404, "not_found")
    hidden = sku("HID")
    await create_product(client, admin, channels=[other], variants=[{"sku": hidden}])
    assert_problem(await client.get("/v1/availability", params={"skus": hidden}, headers=shop), 422, "unknown_sku")


async def test_many_skus_many_locations_in_constant_statements(client, admin):
    locs = [(await create_location(client, admin, "store", lat=50 + i / 10, lon=10))["code"] for i in range(12)]
    ch = (await create_channel(client, admin, "web", fulfillment_locations=locs))["code"]
    skus = [sku("M") for _ in range(20)]
    for s in skus:
        await create_product(client, admin, channels=[ch], variants=[{"sku": s}])
    for i, loc in enumerate(locs):
        await put_levels(client, admin, loc, **{s: (i + j) % 5 for j, s in enumerate(skus)})
    counts = []
    r = await client.get("/v1/availability", params={"skus": skus[0], "channel": ch}, headers=admin)  # channel cached
    with sql_statements() as statements:
        for n in (1, 20):
            cache.drop("catalog")  # the SKUs' facts read anew, as after a catalog change
            statements.clear()
            r = await client.get("/v1/availability", params={"skus": ",".join(skus[:n]), "channel": ch}, headers=admin)
            assert r.status_code == 200
            counts.append(len(statements))
    data = r.json()["data"]
    assert len(data) == 20 and all(len(d["locations"]) == 12 for d in data)
    assert data[0]["available_to_sell"] == sum(i % 5 for i in range(12))
    # catalog facts + ONE read of all levels at all locations (key and channel: cached)
    assert counts == [2, 2], counts


async def test_service_availability_is_two_statements(client, admin):
    """The function orders call: 50 SKUs (5 of them bundles) × every location in at most two
    statements (catalog facts, then one read of every level), counted on the engine."""
    from app.core.db import sessionmaker
    from app.inventory import service

    locs = [(await create_location(client, admin, "store"))["code"] for _ in range(6)]
    ch = (await create_channel(client, admin, "web", fulfillment_locations=locs))["code"]
    skus = [sku("Q") for _ in range(45)]
    for s in skus:
        await create_product(client, admin, channels=[ch], variants=[{"sku": s}])
    bundles = [sku("QB") for _ in range(5)]
    for i, b in enumerate(bundles):
        await create_product(client, admin, channels=[ch], type="bundle",
                             variants=[{"sku": b, "components": [{"sku": skus[i], "quantity": 1},
                                                                 {"sku": skus[i + 10], "quantity": 2}]}])
    for i, loc in enumerate(locs):
        await put_levels(client, admin, loc, **{s: (i + j) % 7 for j, s in enumerate(skus)})
    async with sessionmaker()() as s:
        with sql_statements() as statements:
            got = await service.availability(s, skus + bundles)
        assert len(statements) <= 2, statements
        with sql_statements() as statements:
            only = await service.availability(s, skus[:3], locs[:2])
        assert len(statements) <= 3, statements  # + the location codes' lookup
    assert len(got) == 50 and all(set(got[x]) >= set(locs) for x in skus + bundles)
    assert got[skus[4]][locs[3]] == (3 + 4) % 7
    b0 = {loc: min(got[skus[0]][loc] // 1, got[skus[10]][loc] // 2) for loc in locs}
    assert {loc: got[bundles[0]][loc] for loc in locs} == b0
    assert set(only[skus[0]]) == set(locs[:2])


async def test_in_stock_and_limit_locations_trim_the_list_not_the_total(client, admin):
    locs = [(await create_location(client, admin, "store", lat=50 + i / 10, lon=10))["code"] for i in range(6)]
    ch = (await create_channel(client, admin, "web", fulfillment_locations=locs))["code"]
    s = sku("T")
    await create_product(client, admin, channels=[ch], variants=[{"sku": s}])
    for i, loc in enumerate(locs):
        await put_levels(client, admin, loc, **{s: i % 3})  # 0,1,2,0,1,2
    base = {"skus": s, "channel": ch, "near": "50.0,10.0"}
    full = (await client.get("/v1/availability", params=base, headers=admin)).json()["data"][0]
    assert len(full["locations"]) == 6 and full["available_to_sell"] == 6
    only = (await client.get("/v1/availability", params=base | {"in_stock": "true"}, headers=admin)).json()["data"][0]
    assert [e["location"] for e in only["locations"]] == [e["location"] for e in full["locations"] if e["available"] > 0]
    assert only["available_to_sell"] == 6
    near2 = (await client.get("/v1/availability", params=base | {"in_stock": "true", "limit_locations": 2},
                              headers=admin)).json()["data"][0]
    assert near2["locations"] == only["locations"][:2] and near2["locations"][0]["distance_km"] <= near2["locations"][1]["distance_km"]
    assert_problem(await client.get("/v1/availability", params=base | {"limit_locations": 0}, headers=admin), 422)
