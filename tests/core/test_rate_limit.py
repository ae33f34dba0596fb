from tests.conftest import auth, make_key
from tests.helpers import assert_problem


async def test_rate_limit_headers_and_429(client):
    h = auth(await make_key("admin", rate_limit="5/minute"))
    remaining = []
    for _ in range(5):
        r = await client.get("/v1/channels", headers=h)
        assert r.status_code == 200
        assert r.headers["ratelimit-limit"] == "5"
        remaining.append(int(r.headers["ratelimit-remaining"]))
    assert remaining == sorted(remaining, reverse=True) and remaining[-1] == 0
    r = await client.get("/v1/channels", headers=h)
    assert_problem(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["ratelimit-remaining"] == "0"
    # another key is not affected
    r = await client.get("/v1/channels", headers=auth(await make_key("admin")))
    assert r.status_code == 200


async def test_ops_endpoints_not_limited(client):
    r = await client.get("/healthz")
    assert "ratelimit-limit" not in r.headers
