"""Small builders shared by tests: create channels, locations… through the API."""
from contextlib import contextmanager

from sqlalchemy import event

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


@contextmanager
def sql_statements():
    """Collects the SQL statements the app runs inside the block (transaction control left out),
    so a test can hold a hot path to a constant number of statements."""
    from app.core.db import get_engine

    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA", "RELEASE", "SAVEPOINT")):
            statements.append(statement)

    engine = get_engine().sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)
