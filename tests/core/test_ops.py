from tests.helpers import assert_problem


async def test_healthz_readyz(client, backend):
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["database"] == ("postgresql" if backend == "postgres" else "sqlite")


async def test_metrics_prometheus(client, admin):
    await client.get("/v1/channels", headers=admin)
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert 'http_requests_total{method="GET",route="/v1/channels",status="200"}' in r.text


async def test_openapi_and_docs(client):
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "/v1/api-keys" in paths and "/v1/channels" in paths
    r = await client.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()


async def test_request_id_echoed_or_generated(client, admin):
    r = await client.get("/v1/channels", headers=admin | {"X-Request-Id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await client.get("/v1/channels", headers=admin)
    assert len(r.headers["x-request-id"]) >= 16
    r = await client.get("/nope")
    assert r.headers["x-request-id"]
    assert_problem(r, 404, "not_found")
