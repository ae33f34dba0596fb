"""Small builders shared by tests: create channels, locations… through the API."""
import os
from contextlib import contextmanager

from tests.conftest import uid


def assert_problem(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text}"
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.headers["content-type"]
    body = resp.json()
    assert body["status"] == status
    assert set(body) >= {"type", "title", "status", "detail", "code", "errors"}
    assert body["type"].endswith("/errors/" + body["code"])
    if code is not None:
        assert body["code"] == code, body
    return body


async def create_location(client, admin, type: str = "store", **kw) -> dict:
    body = {"code": uid(type[:2]), "name": f"Test {type}", "type": type, **kw}
    r = await client.post("/v1/locations", json=body, headers=admin)
    assert r.status_code == 201, r.text
    return r.json()


async def create_channel(client, admin, type: str = "web", **kw) -> dict:
    body = {"code": uid(type), "name": f"Test {type}", "type": type, "currency": "EUR", "country": "DE", **kw}
    r = await client.post("/v1/channels", json=body, headers=admin)
    assert r.status_code == 201, r.text
    return r.json()


async def warm_keys(client, *headers) -> None:
    """Use each key, so its `last_used_at` (written at most once a minute) is fresh and it sits in
    the key cache, and a statement count that follows holds exactly the request's own statements.
    Twice: on SQLite any write (the first round's last_used_at) drops every cache once more."""
    for _ in range(2):
        for h in headers:
            r = await client.get("/v1/locations", params={"limit": 1}, headers=h)
            assert r.status_code == 200, r.text


async def count_rows(model, **where) -> int:
    """Rows of `model` (a table model) whose columns equal `where`, read in a session of its own."""
    from sqlalchemy import func, select

    from app.core.db import sessionmaker

    async with sessionmaker()() as s:
        stmt = select(func.count()).select_from(model)
        for k, v in where.items():
            stmt = stmt.where(getattr(model, k) == v)
        return (await s.execute(stmt)).scalar()


@contextmanager
def settings_env(**values: str):
    """Environment variables set for the block (the app's settings read again), then as they were."""
    from app.core.settings import get_settings

    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
