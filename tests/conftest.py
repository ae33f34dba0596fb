"""Test harness: one fresh database per run, on SQLite (default) or PostgreSQL.

    TEST_DB=sqlite      (default) a temporary SQLite file
    TEST_DB=postgres    a fresh database on TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432)

The app runs in-process over ASGI (real middleware, real database); `live_server`
starts uvicorn for black-box tests.
"""
import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
_TMP = tempfile.mkdtemp(prefix="uc-test-")
BACKEND = os.environ.get("TEST_DB", "sqlite")
PG_BASE = os.environ.get("TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432")
_DB_NAME = f"uc_test_{os.getpid()}_{secrets.token_hex(3)}"


def _pg_admin(sql: str) -> None:
    import asyncpg

    async def go():
        conn = await asyncpg.connect(PG_BASE + "/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


if BACKEND == "postgres":
    _pg_admin(f'CREATE DATABASE "{_DB_NAME}"')
    DATABASE_URL = PG_BASE.replace("postgresql://", "postgresql+asyncpg://") + "/" + _DB_NAME
elif BACKEND == "sqlite":
    DATABASE_URL = f"sqlite+aiosqlite:///{_TMP}/test.db"
else:  # pragma: no cover
    raise RuntimeError(f"TEST_DB must be sqlite or postgres, not {BACKEND!r}")

os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.setdefault("RATE_LIMIT", "1000000/minute")
os.environ.setdefault("STRIPE_API_KEY", "sk_test_fake")
os.environ.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_test_fake")

from app.cli import run_migrations  # noqa: E402

run_migrations(DATABASE_URL)

from app.main import app as asgi_app  # noqa: E402


def pytest_sessionfinish(session, exitstatus):
    if BACKEND == "postgres":
        try:
            _pg_admin(f'DROP DATABASE IF EXISTS "{_DB_NAME}" WITH (FORCE)')
        except Exception:  # noqa: BLE001
            pass


def pytest_report_header(config):
    return f"database: {BACKEND} ({DATABASE_URL})"


def uid(prefix: str = "t") -> str:
    """A unique code for test data (the database is shared by the whole run)."""
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def backend() -> str:
    return BACKEND


@pytest.fixture(scope="session")
async def client():
    transport = httpx.ASGITransport(app=asgi_app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as c:
        yield c


async def make_key(role: str = "admin", channel: str | None = None, location: str | None = None,
                   rate_limit: str | None = None) -> str:
    from app.auth.service import create_api_key
    from app.core.db import sessionmaker

    async with sessionmaker()() as session:
        _, secret = await create_api_key(session, name=f"test {role}", role=role, channel=channel,
                                         location=location, rate_limit=rate_limit)
    return secret


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture(scope="session")
async def admin_secret() -> str:
    return await make_key("admin")


@pytest.fixture(scope="session")
def admin(admin_secret) -> dict[str, str]:
    return auth(admin_secret)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server():
    """uvicorn serving the app on loopback against the test database."""
    port = _free_port()
    env = dict(os.environ, DATABASE_URL=DATABASE_URL)
    log_path = Path(_TMP) / "live_server.log"
    log = open(log_path, "wb")  # a file, not a pipe: an unread pipe fills up and blocks the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
        if proc.poll() is not None:
            raise RuntimeError(log_path.read_text())
    else:
        proc.kill()
        raise RuntimeError("live server did not start")
    yield base
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
