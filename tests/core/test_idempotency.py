"""Idempotency-Key on POST: replay byte for byte, reuse 422, in-use 409, scoped per API key."""
import asyncio
from datetime import timedelta

from sqlalchemy import func, select, text

from app.channels.models import Channel
from app.core import clock
from app.core.db import get_engine, sessionmaker
from tests.conftest import auth, make_key, uid
from tests.helpers import assert_problem


def channel_body(code: str) -> dict:
    return {"code": code, "name": "Idem", "type": "web", "currency": "EUR", "country": "DE"}


async def _count_channels(code: str) -> int:
    async with sessionmaker()() as s:
        return (await s.execute(select(func.count()).select_from(Channel).where(Channel.code == code))).scalar_one()


async def test_replay_is_byte_for_byte(client, admin):
    key = uid("idem")
    body = channel_body(uid("c"))
    first = await client.post("/v1/channels", json=body, headers=admin | {"Idempotency-Key": key})
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    # same body, keys in another order and other whitespace: still the same request
    second = await client.post("/v1/channels", content='{"country":"DE", "currency":"EUR","type":"web","name":"Idem","code":"%s"}' % body["code"],
                               headers=admin | {"Idempotency-Key": key, "Content-Type": "application/json"})
    assert second.status_code == 201
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["etag"] == first.headers["etag"]
    assert await _count_channels(body["code"]) == 1


async def test_reuse_with_other_body_is_422(client, admin):
    key = uid("idem")
    r = await client.post("/v1/channels", json=channel_body(uid("c")), headers=admin | {"Idempotency-Key": key})
    assert r.status_code == 201
    other = channel_body(uid("c"))
    r = await client.post("/v1/channels", json=other, headers=admin | {"Idempotency-Key": key})
    assert_problem(r, 422, "idempotency_key_reused")
    assert await _count_channels(other["code"]) == 0
    # same key on another endpoint is also a different request
    r = await client.post("/v1/locations", json={"code": uid("l"), "name": "x", "type": "store"},
                          headers=admin | {"Idempotency-Key": key})
    assert_problem(r, 422, "idempotency_key_reused")


async def test_errors_are_replayed_too_but_5xx_429_are_not_stored(client, admin):
    key = uid("idem")
    bad = {"code": "has space"}
    r1 = await client.post("/v1/channels", json=bad, headers=admin | {"Idempotency-Key": key})
    r2 = await client.post("/v1/channels", json=bad, headers=admin | {"Idempotency-Key": key})
    assert r1.status_code == r2.status_code == 422
    assert r2.content == r1.content and r2.headers["idempotent-replayed"] == "true"


async def test_keys_are_scoped_per_api_key(client, admin):
    other_admin = auth(await make_key("admin"))
    key = uid("idem")
    a = channel_body(uid("c"))
    b = channel_body(uid("c"))
    assert (await client.post("/v1/channels", json=a, headers=admin | {"Idempotency-Key": key})).status_code == 201
    r = await client.post("/v1/channels", json=b, headers=other_admin | {"Idempotency-Key": key})
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers


async def test_in_use_is_409_while_the_first_holds_the_key(client, admin_secret, admin, backend):
    """PostgreSQL: the first request holds a transaction-scoped advisory lock on the key; a second
    one meanwhile answers 409 in_use, and once the first is gone (its connection closed: a
    crash) nothing is left behind, so a retry runs. SQLite serializes writers: the second waits
    for the first and then replays it (covered by the simultaneous-requests test)."""
    from app.auth.service import principal_for_secret
    from app.core.idempotency import lock_id

    if backend != "postgres":
        r = await client.post("/v1/channels", json=channel_body(uid("c")), headers=admin | {"Idempotency-Key": uid("idem")})
        assert r.status_code == 201
        return
    async with sessionmaker()() as s:
        principal = await principal_for_secret(s, admin_secret)
        await s.commit()
    key = uid("idem")
    body = channel_body(uid("c"))
    holder = await get_engine().connect()  # plays the first request, still running
    try:
        await holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_id(principal.key_id, key)})
        r = await client.post("/v1/channels", json=body, headers=admin | {"Idempotency-Key": key})
        assert_problem(r, 409, "idempotency_key_in_use")
        assert r.headers["retry-after"] == "1"
        assert await _count_channels(body["code"]) == 0
    finally:
        await holder.close()  # the first request died: its lock went with its connection
    r = await client.post("/v1/channels", json=body, headers=admin | {"Idempotency-Key": key})
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    assert await _count_channels(body["code"]) == 1


async def test_key_expires_after_24h(client, admin):
    key = uid("idem")
    assert (await client.post("/v1/channels", json=channel_body(uid("c")), headers=admin | {"Idempotency-Key": key})).status_code == 201
    clock.advance(timedelta(hours=25))
    try:
        r = await client.post("/v1/channels", json=channel_body(uid("c")), headers=admin | {"Idempotency-Key": key})
        assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    finally:
        clock.reset()


async def test_invalid_key_422(client, admin):
    r = await client.post("/v1/channels", json=channel_body(uid("c")), headers=admin | {"Idempotency-Key": "x" * 300})
    assert_problem(r, 422, "validation_error")


async def test_twenty_simultaneous_requests_create_one_resource(client, admin):
    key = uid("idem")
    body = channel_body(uid("c"))
    responses = await asyncio.gather(*[
        client.post("/v1/channels", json=body, headers=admin | {"Idempotency-Key": key}) for _ in range(20)
    ])
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, statuses
    created = [r for r in responses if r.status_code == 201]
    assert len(created) >= 1
    # every 201 is the same response (one original + replays)
    assert len({r.content for r in created}) == 1
    assert sum(1 for r in created if "idempotent-replayed" not in r.headers) == 1
    for r in responses:
        if r.status_code == 409:
            assert r.json()["code"] == "idempotency_key_in_use"
    assert await _count_channels(body["code"]) == 1
    # once finished, a retry replays
    r = await client.post("/v1/channels", json=body, headers=admin | {"Idempotency-Key": key})
    assert r.status_code == 201 and r.headers["idempotent-replayed"] == "true"
