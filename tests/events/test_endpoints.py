"""/v1/webhook-endpoints: who may subscribe to what, URLs, the secret shown once, rotation,
changes and deletion, and the delivery log's errors."""
import pytest

from app.core.settings import get_settings
from tests.conftest import Server, auth, make_key, uid
from tests.events.conftest import track
from tests.events.helpers import create_endpoint
from tests.helpers import assert_problem, create_channel, create_location

HOOK = "http://127.0.0.1:9/hooks"  # nothing listens there: endpoints here are never delivered to


@pytest.fixture(scope="module")
async def keys(client, admin):
    market = (await create_channel(client, admin, "marketplace"))["code"]
    web = (await create_channel(client, admin, "web"))["code"]
    pos = (await create_channel(client, admin, "pos"))["code"]
    store = (await create_location(client, admin, "store"))["code"]
    partner = (await create_location(client, admin, "partner"))["code"]
    return {
        "marketplace": auth(await make_key("marketplace", channel=market)),
        "storefront": auth(await make_key("storefront", channel=web)),
        "pos": auth(await make_key("pos", channel=pos, location=store)),
        "dropshipper": auth(await make_key("dropshipper", location=partner)),
    }


async def test_create_shows_the_secret_once(client, admin):
    key = uid("idem")
    r = await client.post("/v1/webhook-endpoints", headers={**admin, "Idempotency-Key": key},
                          json={"url": HOOK, "events": ["order.created", "fulfillment.shipped"]})
    assert r.status_code == 201, r.text
    ep = r.json()
    track(ep["id"])
    assert ep["id"].startswith("whe_") and ep["secret"].startswith("whsec_") and len(ep["secret"]) > 40
    assert ep["events"] == ["order.created", "fulfillment.shipped"]
    assert ep["active"] is True and ep["status"] == "active" and ep["version"] == 1
    assert r.headers["etag"] == '"1"'
    # a replay of the same request by its Idempotency-Key: the same answer without the secret
    again = await client.post("/v1/webhook-endpoints", headers={**admin, "Idempotency-Key": key},
                              json={"url": HOOK, "events": ["order.created", "fulfillment.shipped"]})
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == ep["id"] and again.json()["secret"] is None
    # reads never show it
    r = await client.get(f"/v1/webhook-endpoints/{ep['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["secret"] is None
    r = await client.get("/v1/webhook-endpoints", headers=admin, params={"limit": 500})
    assert all(e["secret"] is None for e in r.json()["data"])
    assert ep["secret"] not in r.text


async def test_who_may_own_endpoints(client, admin, keys):
    for role in ("storefront", "pos"):
        r = await client.post("/v1/webhook-endpoints", headers=keys[role], json={"url": HOOK, "events": ["*"]})
        assert_problem(r, 403, "forbidden")
        assert_problem(await client.get("/v1/webhook-endpoints", headers=keys[role]), 403, "forbidden")
    mine = await create_endpoint(client, keys["marketplace"], HOOK, ["order.created", "product.updated"])
    partner = await create_endpoint(client, keys["dropshipper"], HOOK, ["fulfillment.created"])
    assert (await create_endpoint(client, keys["dropshipper"], HOOK, ["*"]))["events"] == ["*"]
    # a key lists and reads its own; another key's is not found; admin sees all
    listed = (await client.get("/v1/webhook-endpoints", headers=keys["marketplace"])).json()["data"]
    assert [e["id"] for e in listed] == [mine["id"]]
    assert_problem(await client.get(f"/v1/webhook-endpoints/{partner['id']}", headers=keys["marketplace"]), 404)
    assert_problem(await client.delete(f"/v1/webhook-endpoints/{partner['id']}", headers=keys["marketplace"]), 404)
    r = await client.get(f"/v1/webhook-endpoints/{partner['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["api_key"] == partner["api_key"]


async def test_subscriptions_outside_the_keys_rights_are_403(client, keys):
    r = await client.post("/v1/webhook-endpoints", headers=keys["dropshipper"],
                          json={"url": HOOK, "events": ["fulfillment.created", "order.created", "product.updated"]})
    body = assert_problem(r, 403, "forbidden")
    assert "order.created" in body["detail"] and "product.updated" in body["detail"]
    assert [e["field"] for e in body["errors"]] == ["events[1]", "events[2]"]
    for types in (["webhook_endpoint.failing"], ["transfer.dispatched"]):  # admin's; stores' (no channel)
        r = await client.post("/v1/webhook-endpoints", headers=keys["marketplace"], json={"url": HOOK, "events": types})
        assert_problem(r, 403, "forbidden")


async def test_unknown_event_types_are_422_naming_them(client, admin):
    r = await client.post("/v1/webhook-endpoints", headers=admin,
                          json={"url": HOOK, "events": ["order.created", "order.exploded", "nope"]})
    body = assert_problem(r, 422, "validation_error")
    assert "order.exploded" in body["detail"] and "nope" in body["detail"]
    assert [e["field"] for e in body["errors"]] == ["events[1]", "events[2]"]
    body = assert_problem(await client.post("/v1/webhook-endpoints", headers=admin,
                                            json={"url": HOOK, "events": ["*", "order.created"]}), 422)
    assert body["errors"][0]["field"] == "events"
    body = assert_problem(await client.post("/v1/webhook-endpoints", headers=admin, json={"url": HOOK, "events": []}),
                          422)
    assert body["errors"][0]["field"] == "events"
    body = assert_problem(await client.get("/v1/events", headers=admin, params={"type": "order.created,bogus.type"}),
                          422)
    assert body["errors"] == [{"field": "type", "message": "Unknown event type 'bogus.type'."}]


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/hooks", "file:///etc/passwd", "127.0.0.1:8080/hooks",
                                 "javascript:alert(1)", "http://", "http://127.0.0.1:99999/x", "mailto:a@b.de"])
async def test_urls_that_are_not_http_are_422(client, admin, url):
    body = assert_problem(await client.post("/v1/webhook-endpoints", headers=admin,
                                            json={"url": url, "events": ["*"]}), 422, "validation_error")
    assert body["errors"][0]["field"] == "url"


async def test_urls_of_this_api_itself_are_422(client, admin):
    public = get_settings().public_base_url.rstrip("/")
    for url in (f"{public}/v1/payments/stripe/webhook", "http://testserver/v1/events", "http://TestServer:80/x"):
        body = assert_problem(await client.post("/v1/webhook-endpoints", headers=admin,
                                                json={"url": url, "events": ["*"]}), 422)
        assert body["errors"][0]["field"] == "url", url
    # the same host on another port is another service
    await create_endpoint(client, admin, "http://testserver:8081/hooks", ["*"])
    # PATCH checks too
    ep = await create_endpoint(client, admin, HOOK, ["*"])
    body = assert_problem(await client.patch(f"/v1/webhook-endpoints/{ep['id']}", headers=admin,
                                             json={"url": f"{public}/x"}), 422)
    assert body["errors"][0]["field"] == "url"


async def test_loopback_urls_are_refused_only_on_this_servers_port(admin_secret):
    import httpx

    server = Server().start()
    try:
        headers = auth(admin_secret)
        async with httpx.AsyncClient(base_url=server.base, headers=headers, timeout=30) as http:
            for url in (f"http://127.0.0.1:{server.port}/v1/events", f"http://localhost:{server.port}/x",
                        f"http://[::1]:{server.port}/x", f"http://0.0.0.0:{server.port}/x"):
                r = await http.post("/v1/webhook-endpoints", json={"url": url, "events": ["*"]})
                assert r.status_code == 422 and r.json()["errors"][0]["field"] == "url", (url, r.text)
            r = await http.post("/v1/webhook-endpoints",
                                json={"url": f"http://127.0.0.1:{server.port + 1}/hooks", "events": ["*"]})
        assert r.status_code == 201, r.text
        track(r.json()["id"])
    finally:
        server.stop()


async def test_patch_and_delete(client, admin):
    ep = await create_endpoint(client, admin, HOOK, ["order.created"])
    path = f"/v1/webhook-endpoints/{ep['id']}"
    r = await client.patch(path, headers=admin, json={"events": ["order.created", "order.cancelled"], "active": False})
    assert r.status_code == 200, r.text
    assert r.json()["events"] == ["order.created", "order.cancelled"]
    assert r.json()["active"] is False and r.json()["status"] == "disabled" and r.json()["version"] == 2
    assert_problem(await client.patch(path, headers={**admin, "If-Match": '"1"'}, json={"active": True}), 412)
    r = await client.patch(path, headers={**admin, "If-Match": '"2"'}, json={"active": True, "url": HOOK + "/v2"})
    assert r.status_code == 200 and r.json()["status"] == "active" and r.json()["url"] == HOOK + "/v2"
    assert_problem(await client.patch(path, headers=admin, json={"events": ["order.nope"]}), 422)
    assert_problem(await client.patch(path, headers=admin, json={"active": None}), 422)
    assert_problem(await client.patch(path, headers=admin, json={"secret": "whsec_mine"}), 422)  # not settable
    assert (await client.delete(path, headers=admin)).status_code == 204
    assert_problem(await client.get(path, headers=admin), 404)
    assert_problem(await client.delete(path, headers=admin), 404)


async def test_rotation_answers_the_new_secret_once(client, admin):
    ep = await create_endpoint(client, admin, HOOK, ["*"])
    path = f"/v1/webhook-endpoints/{ep['id']}/rotate-secret"
    r = await client.post(path, headers={**admin, "Idempotency-Key": "rot-" + ep["id"]}, json={"overlap_seconds": 600})
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["secret"].startswith("whsec_") and new["secret"] != ep["secret"]
    assert new["secret_rotation"]["previous_secret_expires_at"] is not None and new["version"] == 2
    replay = await client.post(path, headers={**admin, "Idempotency-Key": "rot-" + ep["id"]},
                               json={"overlap_seconds": 600})
    assert replay.headers["idempotent-replayed"] == "true" and replay.json()["secret"] is None
    r = await client.post(path, headers=admin)  # no body: the default overlap
    assert r.status_code == 200 and r.json()["version"] == 3
    r = await client.post(path, headers=admin, json={"overlap_seconds": 0})
    assert r.status_code == 200 and r.json()["secret_rotation"] is None
    for bad in (-1, 7 * 24 * 3600 + 1, "60", True):
        body = assert_problem(await client.post(path, headers=admin, json={"overlap_seconds": bad}), 422)
        assert body["errors"][0]["field"] == "overlap_seconds"
    assert_problem(await client.post(path, headers={**admin, "If-Match": '"1"'}), 412)


async def test_delivery_log_errors(client, admin, keys):
    ep = await create_endpoint(client, admin, HOOK, ["*"])
    base = f"/v1/webhook-endpoints/{ep['id']}/deliveries"
    assert (await client.get(base, headers=admin)).json() == {"data": [], "next_cursor": None}
    assert_problem(await client.post(f"{base}/whd_nope/redeliver", headers=admin), 404)
    assert_problem(await client.get(base, headers=admin, params={"status": "lost"}), 422)
    assert_problem(await client.get("/v1/webhook-endpoints/whe_nope/deliveries", headers=admin), 404)
    assert_problem(await client.post("/v1/webhook-endpoints/whe_nope/deliveries/whd_x/redeliver", headers=admin), 404)
    # another key's endpoint: not found, its log and redelivery too
    assert_problem(await client.get(base, headers=keys["marketplace"]), 404)
