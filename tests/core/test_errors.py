"""problem+json for every failure; no client input produces a 500."""
from tests.helpers import assert_problem, create_channel, create_location
from tests.conftest import uid


async def test_unknown_path_and_method(client, admin):
    assert_problem(await client.get("/v1/nothing-here", headers=admin), 404, "not_found")
    assert_problem(await client.delete("/v1/channels", headers=admin), 405, "method_not_allowed")


async def test_405_allow_lists_every_method_of_the_path(client, admin):
    ch = await create_channel(client, admin)
    # /v1/channels/{ref} is served by a GET and a PATCH route: Allow names both, not just the first route's
    r = await client.put(f"/v1/channels/{ch['code']}", json={}, headers=admin)
    assert_problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET, HEAD, PATCH"  # HEAD wherever GET (app.core.head)
    r = await client.delete("/v1/channels", headers=admin)
    assert_problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET, HEAD, POST"
    r = await client.post("/v1/variants/SOME-SKU", json={}, headers=admin)
    assert_problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET, HEAD, PATCH, DELETE"


async def test_invalid_json_is_400(client, admin):
    r = await client.post("/v1/channels", content=b'{"code": "x",', headers=admin | {"Content-Type": "application/json"})
    assert_problem(r, 400, "invalid_json")
    r = await client.post("/v1/channels", content=b"\xff\xfe", headers=admin | {"Content-Type": "application/json"})
    assert r.status_code in (400, 422)
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_validation_lists_every_bad_field(client, admin):
    r = await client.post("/v1/channels", json={
        "code": "has space", "name": "", "type": "telegraph", "currency": "euro", "country": "DE",
        "return_window_days": -1, "surprise": 1,
    }, headers=admin)
    body = assert_problem(r, 422, "validation_error")
    fields = {e["field"] for e in body["errors"]}
    assert fields >= {"code", "name", "type", "currency", "return_window_days", "surprise"}
    assert all(e["message"] for e in body["errors"])
    r = await client.post("/v1/channels", json=[1, 2], headers=admin)
    assert_problem(r, 422, "validation_error")
    r = await client.post("/v1/channels", json={"code": "a", "name": "b", "type": "web", "currency": "EUR",
                                                "country": "DE", "fulfillment_locations": [{"x": 1}]}, headers=admin)
    body = assert_problem(r, 422, "validation_error")
    assert body["errors"][0]["field"] == "fulfillment_locations[0]"


async def test_query_validation(client, admin):
    assert_problem(await client.get("/v1/channels?limit=0", headers=admin), 422, "validation_error")
    assert_problem(await client.get("/v1/channels?limit=501", headers=admin), 422, "validation_error")
    assert_problem(await client.get("/v1/channels?limit=abc", headers=admin), 422, "validation_error")
    assert_problem(await client.get("/v1/channels?cursor=%%%", headers=admin), 422, "validation_error")


async def test_conflict_409_and_nothing_half_written(client, admin):
    ch = await create_channel(client, admin)
    r = await client.post("/v1/channels", json={"code": ch["code"], "name": "again", "type": "web",
                                                "currency": "EUR", "country": "DE"}, headers=admin)
    body = assert_problem(r, 409, "duplicate_code")
    assert body["errors"][0]["field"] == "code"
    r = await client.post("/v1/channels", json={"code": uid("c"), "name": "n", "type": "web", "currency": "EUR",
                                                "country": "DE", "fulfillment_locations": ["nowhere"]}, headers=admin)
    body = assert_problem(r, 422, "validation_error")
    assert body["errors"][0]["field"] == "fulfillment_locations[0]"


async def test_huge_numbers_are_422_not_500(client, admin):
    r = await client.post("/v1/locations", json={"code": uid("l"), "name": "n", "type": "store", "priority": 10**30},
                          headers=admin)
    assert_problem(r, 422, "validation_error")
    raw = '{"code": "%s", "name": "n", "type": "store", "lat": 1e400}' % uid("l")
    r = await client.post("/v1/locations", content=raw, headers=admin | {"Content-Type": "application/json"})
    assert r.status_code in (400, 422)


async def test_nul_characters_are_422_not_500(client, admin):
    # PostgreSQL cannot store NUL in text or jsonb: found by the fuzz test
    r = await client.post("/v1/locations", json={"code": uid("l"), "name": "a\u0000b", "type": "partner"}, headers=admin)
    body = assert_problem(r, 422, "validation_error")
    assert "name" in body["errors"][0]["message"]
    r = await client.post("/v1/locations", json={"code": uid("l"), "name": "ok", "type": "store", "address": {
        "line1": "x\u0000", "postal_code": "1", "city": "c", "country": "DE"}}, headers=admin)
    assert_problem(r, 422, "validation_error")
    r = await client.get("/v1/channels/a%00b", headers=admin)
    assert r.status_code in (404, 422)
    assert r.headers["content-type"].startswith("application/problem+json")


def test_json_of_integers_beyond_64_bits():
    """PostgreSQL's JSONB gives back a float like 1e20 as an exact integer; responses still render."""
    from app.core.responses import dumps

    assert dumps({"n": 10**20, "t": "ü"}) == '{"n":100000000000000000000,"t":"ü"}'.encode()


def test_ids_keep_creation_order_within_a_millisecond():
    from app.core.ids import new_id

    from app.core.ids import new_ids

    ids = [new_id("mov") for _ in range(2000)]  # thousands per millisecond
    ids += new_ids("mov", 3000) + [new_id("mov") for _ in range(10)] + new_ids("mov", 5)  # bulk ids interleaved
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(len(i) == len("mov_") + 26 for i in ids)


async def test_field_of_a_single_object_body_never_starts_with_an_index(client, admin):
    """errors[].field is the path in the body as sent: a body that is one object has no index
    in front (not "0.sku"), and pydantic's union-member names ("constrained-str") are not fields."""
    from tests.catalog.builders import sku

    loc = (await create_location(client, admin, "store"))["code"]
    r = await client.post("/v1/reservations", headers=admin,
                          json={"sku": "NO-SUCH-SKU", "location": "no-such-location", "quantity": 1, "ttl_seconds": 60})
    assert [e["field"] for e in assert_problem(r, 422, "unknown_sku")["errors"]] == ["sku", "location"]
    r = await client.post("/v1/inventory/transfers", headers=admin,
                          json={"from": "no-such-location", "to": loc, "lines": [{"sku": "X", "quantity": 1}]})
    assert [e["field"] for e in assert_problem(r, 422, "validation_error")["errors"]] == ["from"]
    r = await client.post("/v1/inventory/transfers", headers=admin,
                          json={"from": loc, "to": "nowhere-else", "lines": [{"sku": "X", "quantity": 1}]})
    assert [e["field"] for e in assert_problem(r, 422, "validation_error")["errors"]] == ["to"]
    # a value no member of a union accepts: one entry, named by the field
    r = await client.post("/v1/products", headers=admin, json={
        "title": "x", "variants": [{"sku": sku(), "attributes": {"material": {"nested": 1}, "sizes": [{"x": 1}]}}]})
    errors = assert_problem(r, 422, "validation_error")["errors"]
    assert [e["field"] for e in errors] == ["variants[0].attributes.material", "variants[0].attributes.sizes",
                                            "variants[0].attributes.sizes[0]"]
    assert all(e["message"] for e in errors)
    # a body that is a list keeps its index
    r = await client.put("/v1/price-lists/none/prices", headers=admin, json=[{"sku": "A", "amount": "x"}])
    assert [e["field"] for e in assert_problem(r, 422, "validation_error")["errors"]] == ["[0].amount"]


def test_field_path_leaves_out_schema_tags():
    from app.core.errors import field_path

    assert field_path(("body", "lines", 0, "sku")) == "lines[0].sku"
    assert field_path(("body", "attributes", "a", "constrained-str")) == "attributes.a"
    assert field_path(("body", "a", "list[union[constrained-str,constrained-int]]", 2, "constrained-int")) == "a[2]"
    assert field_path(("body", "channels", "function-after[_unique(), list[constrained-str]]", 1)) == "channels[1]"
    assert field_path(("body",)) == "body"
    assert field_path(("query", "limit")) == "limit"
