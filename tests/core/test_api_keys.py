"""API keys and roles (API.md section 2): hashed secrets shown once, revocation at once, bindings."""
import hashlib

import pytest
from sqlalchemy import select

from app.auth.models import ApiKey
from app.core.db import sessionmaker
from tests.conftest import auth, make_key
from tests.helpers import assert_problem, create_channel, create_location


async def test_create_key_secret_shown_once_and_stored_hashed(client, admin):
    r = await client.post("/v1/api-keys", json={"name": "ops", "role": "admin"}, headers=admin)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"].startswith("key_") and body["role"] == "admin"
    secret = body["secret"]
    async with sessionmaker()() as s:
        row = (await s.execute(select(ApiKey).where(ApiKey.id == body["id"]))).scalar_one()
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in (row.secret_hash, row.prefix)
    # never shown again
    r = await client.get(f"/v1/api-keys/{body['id']}", headers=admin)
    assert r.status_code == 200 and "secret" not in r.json()
    listing = await client.get("/v1/api-keys?limit=500", headers=admin)
    assert all("secret" not in k for k in listing.json()["data"])
    # and it works
    r = await client.get("/v1/api-keys", headers=auth(secret))
    assert r.status_code == 200


async def test_revoked_key_is_rejected_at_once(client, admin):
    secret = await make_key("admin")
    r = await client.get("/v1/channels", headers=auth(secret))
    assert r.status_code == 200
    key_id = (await client.get("/v1/api-keys?limit=500", headers=admin)).json()
    key_id = [k for k in key_id["data"] if secret.startswith(k["prefix"])][-1]["id"]
    r = await client.delete(f"/v1/api-keys/{key_id}", headers=admin)
    assert r.status_code == 204
    assert_problem(await client.get("/v1/channels", headers=auth(secret)), 401, "unauthenticated")
    r = await client.get(f"/v1/api-keys/{key_id}", headers=admin)
    assert r.json()["revoked_at"] is not None
    assert_problem(await client.delete("/v1/api-keys/key_nope", headers=admin), 404, "not_found")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer "}])
async def test_missing_or_unknown_key_401(client, headers):
    r = await client.get("/v1/channels", headers=headers)
    body = assert_problem(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"] == "Bearer"
    assert body["detail"]


async def test_bindings_validated(client, admin):
    web = await create_channel(client, admin, "web")
    mkt = await create_channel(client, admin, "marketplace")
    pos_ch = await create_channel(client, admin, "pos")
    store = await create_location(client, admin, "store")
    partner = await create_location(client, admin, "partner")
    wh = await create_location(client, admin, "warehouse")
    ok = [
        {"role": "storefront", "channel": web["code"]},
        {"role": "marketplace", "channel": mkt["code"]},
        {"role": "pos", "location": store["code"], "channel": pos_ch["code"]},
        {"role": "dropshipper", "location": partner["code"]},
        {"role": "storefront", "channel": web["id"]},  # ids are accepted where codes are
    ]
    for body in ok:
        r = await client.post("/v1/api-keys", json={"name": "k", **body}, headers=admin)
        assert r.status_code == 201, (body, r.text)
        out = r.json()
        assert out["channel"] == (body.get("channel") and (web["code"] if body.get("channel") == web["id"] else body["channel"]))
    bad = [
        ({"role": "storefront"}, "channel"),
        ({"role": "storefront", "channel": mkt["code"]}, "channel"),
        ({"role": "storefront", "channel": "no-such"}, "channel"),
        ({"role": "marketplace", "channel": web["code"]}, "channel"),
        ({"role": "pos", "channel": pos_ch["code"]}, "location"),
        ({"role": "pos", "location": store["code"]}, "channel"),  # a POS key needs its pos channel too
        ({"role": "pos"}, "channel"),
        ({"role": "pos"}, "location"),
        ({"role": "pos", "location": wh["code"], "channel": pos_ch["code"]}, "location"),
        ({"role": "pos", "location": store["code"], "channel": web["code"]}, "channel"),
        ({"role": "dropshipper", "location": store["code"]}, "location"),
        ({"role": "dropshipper"}, "location"),
        ({"role": "admin", "channel": web["code"]}, "channel"),
        ({"role": "storefront", "channel": web["code"], "location": store["code"]}, "location"),
        ({"role": "superuser"}, "role"),
        ({"role": "admin", "rate_limit": "lots"}, "rate_limit"),
    ]
    for body, field in bad:
        r = await client.post("/v1/api-keys", json={"name": "k", **body}, headers=admin)
        problem = assert_problem(r, 422, "validation_error")
        assert field in [e["field"] for e in problem["errors"]], (body, problem)


async def test_role_matrix(client, admin):
    """Each role gets 401/403/404 exactly where it must."""
    web = await create_channel(client, admin, "web")
    other = await create_channel(client, admin, "web")
    mkt = await create_channel(client, admin, "marketplace")
    pos_ch = await create_channel(client, admin, "pos")
    store = await create_location(client, admin, "store")
    partner = await create_location(client, admin, "partner")
    partner2 = await create_location(client, admin, "partner")
    keys = {
        "storefront": auth(await make_key("storefront", channel=web["code"])),
        "pos": auth(await make_key("pos", channel=pos_ch["code"], location=store["code"])),
        "marketplace": auth(await make_key("marketplace", channel=mkt["code"])),
        "dropshipper": auth(await make_key("dropshipper", location=partner["code"])),
    }
    # admin-only endpoints: 403 for every other role
    for role, h in keys.items():
        assert_problem(await client.get("/v1/api-keys", headers=h), 403, "forbidden")
        assert_problem(await client.post("/v1/api-keys", json={"name": "x", "role": "admin"}, headers=h), 403, "forbidden")
        assert_problem(await client.post("/v1/channels", json={}, headers=h), 403, "forbidden")
        assert_problem(await client.patch(f"/v1/channels/{web['code']}", json={"name": "x"}, headers=h), 403, "forbidden")
        assert_problem(await client.post("/v1/locations", json={}, headers=h), 403, "forbidden")
    # channel binding: own channel visible, another channel is 404 (not 403)
    r = await client.get(f"/v1/channels/{web['code']}", headers=keys["storefront"])
    assert r.status_code == 200
    assert_problem(await client.get(f"/v1/channels/{other['code']}", headers=keys["storefront"]), 404, "not_found")
    assert_problem(await client.get(f"/v1/channels/{web['code']}", headers=keys["marketplace"]), 404, "not_found")
    listing = (await client.get("/v1/channels", headers=keys["storefront"])).json()["data"]
    assert [c["code"] for c in listing] == [web["code"]]
    # location binding: a dropshipper sees only its own location
    r = await client.get(f"/v1/locations/{partner['code']}", headers=keys["dropshipper"])
    assert r.status_code == 200
    assert_problem(await client.get(f"/v1/locations/{partner2['code']}", headers=keys["dropshipper"]), 404, "not_found")
    codes = [x["code"] for x in (await client.get("/v1/locations", headers=keys["dropshipper"])).json()["data"]]
    assert codes == [partner["code"]]
    # POS sees every location (stock at every store)
    codes = [x["code"] for x in (await client.get("/v1/locations?limit=500", headers=keys["pos"])).json()["data"]]
    assert {store["code"], partner["code"], partner2["code"]} <= set(codes)
    # unauthenticated everywhere
    for path in ("/v1/api-keys", "/v1/channels", "/v1/locations"):
        assert_problem(await client.get(path), 401, "unauthenticated")
