"""The base's guarantees: secrets never replayed, limits before work (strict UTF-8 JSON), 503 when
the database is in trouble (also when it refuses the connection itself), idempotent read-only
POSTs, last_used_at, and rate limits shared by several workers (also under `uvicorn --workers`)."""
import select as selectors_module
import socket
import time

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.auth.models import ApiKey
from app.core.db import sessionmaker
from app.core.idempotency import IdempotencyRecord
from app.core.transaction import unavailable_problem
from tests.conftest import PG_BASE, Server, auth, make_key, uid
from tests.helpers import assert_problem


# ------------------------------------------------------------------- secrets are shown once

async def test_api_key_secret_is_never_stored_nor_replayed(client, admin):
    key = uid("idem")
    body = {"name": "web shop", "role": "admin"}
    first = await client.post("/v1/api-keys", json=body, headers=admin | {"Idempotency-Key": key})
    assert first.status_code == 201
    secret = first.json()["secret"]
    assert secret and secret.startswith("uc_")
    again = await client.post("/v1/api-keys", json=body, headers=admin | {"Idempotency-Key": key})
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["secret"] is None
    assert again.json()["id"] == first.json()["id"]  # the same key, not a second one
    async with sessionmaker()() as s:
        stored = (await s.execute(select(IdempotencyRecord.response_body))).scalars().all()
        hashes = (await s.execute(select(ApiKey.secret_hash))).scalars().all()
    assert not any(secret.encode() in (b or b"") for b in stored)
    assert not any(secret in h for h in hashes)
    # the secret works (it was shown once)
    assert (await client.get("/v1/channels", headers=auth(secret))).status_code == 200


async def test_last_used_at_is_filled(client):
    secret = await make_key("admin")
    h = auth(secret)
    listed = (await client.get("/v1/api-keys", params={"limit": 500}, headers=h)).json()["data"]
    mine = [k for k in listed if secret.startswith(k["prefix"])]
    assert mine and mine[0]["last_used_at"] is not None


# --------------------------------------------------------------------------- limits before work

def _raw(base: str, request: bytes, read_timeout: float = 5, until: bytes | None = None) -> bytes:
    """Send raw bytes, return what the server answered until it closes (or `until` arrived)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=read_timeout) as sock:
        sock.sendall(request)
        data = b""
        deadline = time.time() + read_timeout
        while time.time() < deadline:  # until the server closes (it must: the body was not read)
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
            if until is not None and until in data:
                break
        return data


def test_anonymous_big_body_is_refused_before_it_is_read(live_server):
    # announces 100 MB and sends none of it: the 401 comes at once, nothing waits for the body
    start = time.perf_counter()
    answer = _raw(live_server, b"POST /v1/channels HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               b"Content-Length: 100000000\r\n\r\n", until=b"unauthenticated")
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert time.perf_counter() - start < 2


async def test_body_over_the_limit_is_413_by_length_and_when_chunked(live_server):
    secret = await make_key("admin")
    answer = _raw(live_server, b"POST /v1/channels HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + secret.encode()
                  + b"\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"payload_too_large" in answer

    # chunked, no length: counted while it arrives; the 413 comes as soon as the limit is passed
    host, port = live_server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /v1/channels HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + secret.encode()
                     + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = b"1," * (128 * 1024)
        answer, sent = b"", 0
        while sent < 20 * 1024 * 1024 and not answer:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            except OSError:
                break
            sent += len(piece)
            readable, _, _ = selectors_module.select([sock], [], [], 0.02)
            if readable:
                answer = sock.recv(65536)
        sock.settimeout(2)
        try:
            while True:
                more = sock.recv(65536)
                if not more:
                    break
                answer += more
        except OSError:
            pass
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"payload_too_large" in answer
    assert sent < 8 * 1024 * 1024  # refused soon after the 4 MiB limit, not after reading everything


@pytest.mark.parametrize("body", [
    b"[" * 300 + b"]" * 300,                                   # nests too deep
    b'{"a":' * 1100 + b"1" + b"}" * 1100,                      # deeper than any parser's stack
    b'{"code": "\xff\xfe"}',                                   # not UTF-8
    b'{"return_window_days": ' + b"9" * 4301 + b"}",            # an integer no parser should convert
    b'{"code": ',                                              # cut off
])
async def test_bad_json_is_400_invalid_json_even_with_an_idempotency_key(client, admin, body):
    for headers in ({}, {"Idempotency-Key": uid("idem")}):
        r = await client.post("/v1/channels", content=body, headers=admin | headers | {"Content-Type": "application/json"})
        assert_problem(r, 400, "invalid_json")
    # the connection and the API still work
    assert (await client.get("/v1/channels", headers=admin)).status_code == 200


async def test_deep_json_keeps_the_keep_alive_connection(live_server):
    secret = await make_key("admin")
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as http:
        h = auth(secret) | {"Content-Type": "application/json", "Idempotency-Key": uid("idem")}
        r = await http.post("/v1/channels", content=b"[" * 800 + b"]" * 800, headers=h)
        assert_problem(r, 400, "invalid_json")
        r = await http.get("/v1/channels", headers=auth(secret))
        assert r.status_code == 200


# ------------------------------------------------------------------ the database in trouble

def test_unavailable_problem_maps_database_trouble_to_503():
    class Orig(Exception):
        def __init__(self, sqlstate):
            self.sqlstate = sqlstate

    for sqlstate in ("53300", "53100", "08006", "57P01", "40P01", "40001"):
        p = unavailable_problem(DBAPIError("stmt", {}, Orig(sqlstate)))
        assert p is not None and p.status_code == 503 and p.headers["retry-after"] == "1", sqlstate
    assert unavailable_problem(PoolTimeout("pool exhausted")).status_code == 503
    assert unavailable_problem(OperationalError("stmt", {}, Exception("database is locked"))).status_code == 503
    assert unavailable_problem(ConnectionRefusedError()).status_code == 503
    assert unavailable_problem(DBAPIError("stmt", {}, Orig("23505"))) is None  # a conflict is the client's
    assert unavailable_problem(ValueError("x")) is None


@pytest.mark.parametrize("url", [
    "postgresql+asyncpg://postgres@127.0.0.1:9/none",  # nothing listens on the discard port
    "sqlite+aiosqlite:////nonexistent-dir/uc.db",       # the file cannot be opened
])
def test_database_down_answers_503_everywhere(url):
    server = Server(database_url=url).start()
    try:
        h = {"Authorization": "Bearer uc_admi_whatever", "Idempotency-Key": "k1"}
        for method, path, body in (("GET", "/v1/channels", None), ("POST", "/v1/channels", {"code": "x"}),
                                   ("GET", "/readyz", None)):
            r = httpx.request(method, server.base + path, json=body, headers=h, timeout=30)
            assert_problem(r, 503, "service_unavailable")
            assert int(r.headers["retry-after"]) >= 1
    finally:
        server.stop()


# ---------------------------------------------------------------- rate limits across workers

async def test_two_workers_share_one_rate_limit():
    """WEB_CONCURRENCY=2: the default storage is the database, so two workers allow the key's
    limit once, not once each."""
    secret = await make_key("admin", rate_limit="10/hour")
    env = {"WEB_CONCURRENCY": "2", "DB_POOL_SIZE": "2", "RATE_LIMIT_STORAGE_URI": "auto"}
    server = Server(env=env, workers=2).start()
    try:
        statuses = []
        for _ in range(30):  # a new connection each time, so both workers take requests
            statuses.append(httpx.get(server.base + "/v1/channels", headers=auth(secret), timeout=30).status_code)
        assert statuses.count(200) == 10 and statuses.count(429) == 20, statuses
    finally:
        server.stop()


async def test_database_rate_limiter_in_process(client):
    from app.auth.middleware import RateLimiter
    from app.core.db import RequestDb

    limiter = RateLimiter("3/hour", "database")
    ident = uid("ip")
    results = []
    for _ in range(5):
        db = RequestDb(writes=False)
        try:
            results.append(await limiter.hit(ident, None, db))
        finally:
            await db.close()
    assert [r[0] for r in results] == [True, True, True, False, False]
    assert [r[2] for r in results] == [2, 1, 0, 0, 0]
    async with sessionmaker()() as s:
        hits = (await s.execute(text("SELECT hits FROM rate_limit_counters WHERE ident = :i"), {"i": ident})).scalar()
    assert hits == 5


# ------------------------------------------------------------------- edges an audit found


@pytest.mark.parametrize("body", [
    b'{"code": "\xed\xa0\x80"}',          # a UTF-16 surrogate encoded as if it were UTF-8
    b'{"code": "a\xed\xbf\xbfb"}',
])
async def test_encoded_surrogates_are_invalid_json(client, admin, body):
    for headers in ({}, {"Idempotency-Key": uid("idem")}):
        r = await client.post("/v1/channels", content=body,
                              headers=admin | headers | {"Content-Type": "application/json"})
        assert_problem(r, 400, "invalid_json")


async def test_a_read_only_post_stores_its_idempotent_answer(client, admin):
    key = uid("idem")
    body = {"channel": uid("no-such-channel"), "lines": [{"sku": "X", "quantity": 1}]}
    first = await client.post("/v1/pricing/quote", json=body, headers=admin | {"Idempotency-Key": key})
    assert 400 <= first.status_code < 500, first.text
    again = await client.post("/v1/pricing/quote", json=body, headers=admin | {"Idempotency-Key": key})
    assert again.status_code == first.status_code and again.content == first.content
    assert again.headers.get("idempotent-replayed") == "true"
    other = body | {"lines": [{"sku": "Y", "quantity": 2}]}
    r = await client.post("/v1/pricing/quote", json=other, headers=admin | {"Idempotency-Key": key})
    assert_problem(r, 422, "idempotency_key_reused")
    # without a key the quote stays a plain read
    r = await client.post("/v1/pricing/quote", json=body, headers=admin)
    assert r.status_code == first.status_code and "idempotent-replayed" not in r.headers


def test_a_database_that_refuses_the_connection_answers_503(backend):
    if backend != "postgres":
        pytest.skip("needs the PostgreSQL server (a database on it that does not exist)")
    url = PG_BASE.replace("postgresql://", "postgresql+asyncpg://") + "/" + uid("no_such_db").replace("-", "_")
    server = Server(database_url=url).start()
    try:
        h = {"Authorization": "Bearer uc_admi_whatever", "Idempotency-Key": "k1"}
        for method, path, body in (("GET", "/v1/channels", None), ("POST", "/v1/channels", {"code": "x"}),
                                   ("POST", "/v1/pricing/quote", {"lines": []}), ("GET", "/readyz", None)):
            r = httpx.request(method, server.base + path, json=body, headers=h, timeout=30)
            assert_problem(r, 503, "service_unavailable")
            assert int(r.headers["retry-after"]) >= 1
    finally:
        server.stop()


async def test_uvicorn_workers_share_one_rate_limit_without_web_concurrency():
    secret = await make_key("admin", rate_limit="10/hour")
    server = Server(env={"DB_POOL_SIZE": "2", "RATE_LIMIT_STORAGE_URI": "auto"}, workers=2)
    server.env.pop("WEB_CONCURRENCY", None)  # plain `uvicorn --workers 2`
    server.start()
    try:
        statuses = []
        for _ in range(30):  # a new connection each time, so both workers take requests
            statuses.append(httpx.get(server.base + "/v1/channels", headers=auth(secret), timeout=30).status_code)
        assert statuses.count(200) == 10 and statuses.count(429) == 20, statuses
    finally:
        server.stop()


async def test_database_trouble_past_authentication_is_503_in_the_route_and_the_idempotency_layer(client, admin, backend):
    """A database that fails after the key was checked (here: "disk full", SQLSTATE 53100, raised
    by triggers on this test's own rows only) answers 503 with Retry-After from the route and from
    the idempotency layer; nothing is stored, so the same key runs anew once the database is back."""
    if backend != "postgres":
        pytest.skip("PostgreSQL triggers stand in for a full disk")
    from sqlalchemy import text

    from app.core.db import unit_of_work

    tag = uid("full").replace("-", "_")
    ddl = [
        f"""CREATE FUNCTION {tag}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
              IF to_jsonb(NEW) ->> (CASE TG_TABLE_NAME WHEN 'channels' THEN 'code' ELSE 'key' END) LIKE '{tag}%' THEN
                RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = '53100';
              END IF;
              RETURN NEW; END $$""",
        f"CREATE TRIGGER {tag} BEFORE INSERT ON channels FOR EACH ROW EXECUTE FUNCTION {tag}()",
        f"CREATE TRIGGER {tag} BEFORE INSERT ON idempotency_keys FOR EACH ROW EXECUTE FUNCTION {tag}()",
    ]

    def channel(code: str) -> dict:
        return {"code": code, "name": "Full", "type": "web", "currency": "EUR", "country": "DE"}

    async with unit_of_work() as s:
        for stmt in ddl:
            await s.execute(text(stmt))
    try:
        in_route = channel(f"{tag}-a")
        r = await client.post("/v1/channels", json=in_route, headers=admin | {"Idempotency-Key": uid("idem")})
        assert_problem(r, 503, "service_unavailable")
        assert r.headers["retry-after"] == "1"
        r = await client.post("/v1/channels", json=in_route, headers=admin)
        assert_problem(r, 503, "service_unavailable")
        key = f"{tag}-key"
        stored_answer = channel(uid("c"))
        r = await client.post("/v1/channels", json=stored_answer, headers=admin | {"Idempotency-Key": key})
        assert_problem(r, 503, "service_unavailable")
        assert r.headers["retry-after"] == "1"
        assert (await client.get(f"/v1/channels/{stored_answer['code']}", headers=admin)).status_code == 404
    finally:
        async with unit_of_work() as s:
            await s.execute(text(f"DROP TRIGGER {tag} ON channels"))
            await s.execute(text(f"DROP TRIGGER {tag} ON idempotency_keys"))
            await s.execute(text(f"DROP FUNCTION {tag}()"))
    r = await client.post("/v1/channels", json=stored_answer, headers=admin | {"Idempotency-Key": key})
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers, r.text
