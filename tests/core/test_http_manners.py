"""HTTP manners (issue 15): every 405 carries Allow; HEAD works wherever GET does, through
authentication, rate limits and the response cache, and never writes; a body that is not
declared JSON answers 415 saying what to send."""
import re

import httpx
import pytest

from app.main import app as asgi_app
from tests.conftest import auth, make_key, uid
from tests.helpers import assert_problem, create_channel
from tests.inventory.builders import World, level, put_levels

ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _routes():
    from fastapi.routing import iter_route_contexts

    return [r for r in iter_route_contexts(asgi_app.routes) if getattr(r, "methods", None)]


def _served(path: str) -> set[str]:
    """The methods the app's routes declare for a concrete path (HEAD where GET)."""
    methods = set()
    for r in _routes():
        if r.path_regex.match(path):
            methods |= set(r.methods)
    return methods | ({"HEAD"} if "GET" in methods else set())


# --------------------------------------------------------------------------- 405 and Allow

async def test_every_405_carries_allow_with_every_method_of_the_path(client, admin):
    checked = 0
    for path in sorted({re.sub(r"\{[^}]+\}", "x1", r.path) for r in _routes()}):
        served = _served(path)
        method = next((m for m in ("DELETE", "PUT", "PATCH", "POST", "GET") if m not in served), None)
        if method is None:
            continue
        r = await client.request(method, path, headers=admin)
        assert r.status_code == 405, (method, path, r.status_code, r.text)
        assert_problem(r, 405, "method_not_allowed")
        assert set(r.headers["allow"].split(", ")) == served, (method, path, r.headers.get("allow"))
        assert r.headers["allow"] == ", ".join(m for m in ORDER if m in served)
        checked += 1
    assert checked > 50


async def test_allow_of_a_few_routes(client, admin):
    cases = [
        ("PUT", "/v1/reservations", "GET, HEAD, POST"),
        ("PATCH", "/v1/reservations/res_x", "GET, HEAD, DELETE"),
        ("GET", "/v1/inventory/adjustments", "POST"),
        ("HEAD", "/v1/inventory/adjustments", "POST"),  # no GET here: HEAD is not allowed either
        ("POST", "/healthz", "GET, HEAD"),
        ("POST", "/docs/assets/swagger-ui.css", "GET, HEAD"),  # the docs' static files
    ]
    for method, path, allow in cases:
        r = await client.request(method, path, headers=admin)
        assert r.status_code == 405, (method, path, r.text)
        assert r.headers["allow"] == allow, (method, path)
        if method != "HEAD":
            assert_problem(r, 405, "method_not_allowed")
            assert method in r.json()["detail"]
        else:
            assert r.content == b""


# --------------------------------------------------------------------------- HEAD

async def test_head_answers_the_gets_headers_without_its_body(client, admin):
    ch = await create_channel(client, admin)
    for path, headers in (("/healthz", {}), ("/openapi.json", {}), ("/v1/channels", admin),
                          (f"/v1/channels/{ch['code']}", admin), ("/v1/reservations", admin),
                          ("/v1/inventory/movements", admin)):
        got = await client.get(path, headers=headers)
        head = await client.head(path, headers=headers)
        assert got.status_code == head.status_code == 200, (path, head.status_code)
        assert head.content == b""
        assert head.headers["content-length"] == str(len(got.content)), path
        assert head.headers["content-type"] == got.headers["content-type"], path
        assert head.headers.get("etag") == got.headers.get("etag"), path
        assert "x-request-id" in head.headers
    # the channel is a cached answer: its ETag follows a change at once, for HEAD as for GET
    r = await client.patch(f"/v1/channels/{ch['code']}", json={"name": "renamed"}, headers=admin)
    assert r.status_code == 200, r.text
    head = await client.head(f"/v1/channels/{ch['code']}", headers=admin)
    assert head.headers["etag"] == r.headers["etag"] != '"1"'
    # the error answers keep their status and headers
    r = await client.head("/v1/channels/no-such-channel", headers=admin)
    assert r.status_code == 404 and r.content == b"" and r.headers["content-type"] == "application/problem+json"
    r = await client.head("/v1/nothing-here", headers=admin)
    assert r.status_code == 404 and r.content == b""


async def test_head_is_authenticated_scoped_and_rate_limited_like_get(client, admin):
    r = await client.head("/v1/channels")
    assert r.status_code == 401 and r.content == b"" and r.headers["www-authenticate"] == "Bearer"
    # a key's binding holds for HEAD: another channel's resource is 404
    mine, other = await create_channel(client, admin), await create_channel(client, admin)
    shop = auth(await make_key("storefront", channel=mine["code"], rate_limit="3/minute"))
    assert (await client.head(f"/v1/channels/{mine['code']}", headers=shop)).status_code == 200
    assert (await client.head(f"/v1/channels/{other['code']}", headers=shop)).status_code == 404
    r = await client.head("/v1/api-keys", headers=shop)
    assert r.status_code == 403 and r.content == b""
    # the rate limit counts HEAD like GET
    r = await client.head(f"/v1/channels/{mine['code']}", headers=shop)
    assert r.status_code == 429 and r.headers["retry-after"] and r.content == b""
    assert r.headers["ratelimit-remaining"] == "0"


async def test_head_never_writes(client, admin):
    w = await World().setup(client, admin)
    await put_levels(client, admin, w.hh, **{w.a: 5})
    hold = {"sku": w.a, "location": w.hh, "quantity": 2, "ttl_seconds": 60}
    # a body and an Idempotency-Key change nothing: HEAD /v1/reservations lists, it never holds
    r = await client.request("HEAD", "/v1/reservations", json=hold, headers=admin | {"Idempotency-Key": uid("k")})
    assert r.status_code == 200 and r.content == b""
    r = await client.request("HEAD", "/v1/inventory/adjustments", headers=admin,
                             json={"location": w.hh, "sku": w.a, "delta": 5, "reason": "receipt"})
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    r = await client.request("HEAD", "/v1/inventory/levels", headers=admin,
                             json={"location": w.hh, "levels": [{"sku": w.a, "on_hand": 50}]})
    assert r.status_code == 405 and r.headers["allow"] == "PUT"
    after = await level(client, admin, w.a, w.hh)
    assert (after["on_hand"], after["reserved"], after["available"]) == (5, 0, 5)
    r = await client.get("/v1/reservations", params={"location": w.hh}, headers=admin)
    assert r.json()["data"] == []


async def test_head_shows_in_the_metrics_as_head(client, admin):
    await client.head("/v1/reservations/res_nothing", headers=admin)
    metrics = (await client.get("/metrics")).text
    assert 'http_requests_total{method="HEAD",route="/v1/reservations/{rid}",status="404"}' in metrics


async def test_head_over_a_real_server(live_server):
    """uvicorn checks a HEAD answer itself (Content-Length without a body)."""
    secret = await make_key("admin")
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as c:
        for path, headers in (("/healthz", {}), ("/v1/channels", auth(secret)), ("/v1/reservations", auth(secret))):
            got, head = await c.get(path, headers=headers), await c.head(path, headers=headers)
            assert got.status_code == head.status_code == 200, (path, head.text)
            assert head.content == b"" and head.headers["content-length"] == str(len(got.content))
        r = await c.head("/v1/channels")
        assert r.status_code == 401 and r.content == b""
        assert (await c.get("/healthz")).status_code == 200  # the connection still works after HEADs


# --------------------------------------------------------------------------- 415

def _channel(code: str) -> bytes:
    return (f'{{"code": "{code}", "name": "n", "type": "web", "currency": "EUR", "country": "DE"}}').encode()


@pytest.mark.parametrize("content_type, says", [
    ("text/plain", "sent as text/plain"),
    (None, "has no Content-Type"),
    ("application/x-www-form-urlencoded", "curl -d"),  # what `curl -d` sends unless told otherwise
    ("text/json", "sent as text/json"),
    ("multipart/form-data; boundary=x", "sent as multipart/form-data"),
])
async def test_json_sent_as_something_else_is_415(client, admin, content_type, says):
    code = uid("ch")
    headers = admin | ({"Content-Type": content_type} if content_type else {})
    r = await client.post("/v1/channels", content=_channel(code), headers=headers)
    body = assert_problem(r, 415, "unsupported_media_type")
    assert says in body["detail"] and "Content-Type: application/json" in body["detail"]
    assert body["errors"] == [{"field": "Content-Type", "message": "Send JSON with the header 'Content-Type: application/json'."}]
    assert r.headers["accept-post"] == "application/json"
    assert_problem(await client.get(f"/v1/channels/{code}", headers=admin), 404, "not_found")  # nothing written


async def test_415_on_every_writing_method_and_the_json_types_pass(client, admin):
    ch = await create_channel(client, admin)
    text = admin | {"Content-Type": "text/plain"}
    r = await client.patch(f"/v1/channels/{ch['code']}", content=b'{"name": "x"}', headers=text)
    assert_problem(r, 415, "unsupported_media_type")
    assert r.headers["accept-patch"] == "application/json"
    r = await client.put("/v1/inventory/levels", content=b'{"location": "x", "levels": []}', headers=text)
    assert_problem(r, 415, "unsupported_media_type")
    r = await client.request("DELETE", "/v1/reservations/res_x", content=b'{"a": 1}', headers=text)
    assert_problem(r, 415, "unsupported_media_type")
    # JSON with parameters, in any case, and a +json type are JSON
    for ctype in ("application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"):
        r = await client.patch(f"/v1/channels/{ch['code']}", content=b'{"name": "renamed"}', headers=admin | {"Content-Type": ctype})
        assert r.status_code == 200, (ctype, r.text)
    # no body needs no Content-Type (curl -X POST, DELETE)
    assert_problem(await client.delete("/v1/reservations/res_nothing", headers=admin), 404, "not_found")
    r = await client.post("/v1/inventory/transfers/trf_nothing/cancel", headers=admin)
    assert_problem(r, 404, "not_found")


async def test_a_415_is_not_remembered_under_its_idempotency_key(client, admin):
    code, key = uid("ch"), uid("idem")
    r = await client.post("/v1/channels", content=_channel(code), headers=admin | {"Idempotency-Key": key})
    assert_problem(r, 415, "unsupported_media_type")
    r = await client.post("/v1/channels", content=_channel(code),
                          headers=admin | {"Idempotency-Key": key, "Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    assert "idempotent-replayed" not in r.headers


async def test_the_endpoints_that_take_other_formats_keep_working(client, admin):
    # the catalog import takes CSV (and NDJSON); it refuses other types itself
    t = uid("csv")
    r = await client.post("/v1/catalog/import", content=f"sku,product_handle,product_title\n{t}-S,{t},A shirt\n".encode(),
                          headers=admin | {"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1, r.json()
    assert_problem(await client.post("/v1/catalog/import", content=b"x", headers=admin | {"Content-Type": "text/plain"}),
                   415, "unsupported_media_type")
    # Stripe's webhook (application/json; charset=utf-8) reaches the signature check
    r = await client.post("/v1/payments/stripe/webhook", content=b'{"id": "evt_1", "type": "x"}',
                          headers={"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": "t=1,v1=bad"})
    assert_problem(r, 400)
    assert r.json()["code"] != "invalid_json"
