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
# The PostgreSQL server may be shared: every process of the suite (the in-process app, the live
# servers) keeps at most 2 x DB_POOL_SIZE connections, so the whole run stays under
# MAX_TEST_CONNECTIONS (checked below); requests wait for a connection rather than fail.
os.environ.setdefault("DB_POOL_SIZE", "3")
os.environ.setdefault("DB_POOL_TIMEOUT", "30")
MAX_TEST_CONNECTIONS = 25
os.environ.setdefault("STRIPE_API_KEY", "sk_test_fake")
os.environ.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_test_fake")
# never the real Stripe: a closed local port unless a test starts the fake (tests/payments/conftest.py)
os.environ.setdefault("STRIPE_API_BASE", "http://127.0.0.1:9")
os.environ.setdefault("STRIPE_MAX_NETWORK_RETRIES", "0")
# the webhook tests' receivers listen on 127.0.0.1 (refused by default: tests/events/test_urls.py)
os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_URLS", "true")

from app.cli import run_migrations  # noqa: E402

run_migrations(DATABASE_URL)

from app.main import app as asgi_app  # noqa: E402


class ConnectionWatch:
    """Samples how many connections the suite holds on its PostgreSQL database (its own sampling
    connection included), every 50 ms in a thread, for the whole run."""

    def __init__(self):
        import threading

        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    async def _run(self):
        import asyncpg

        conn = await asyncpg.connect(PG_BASE + "/postgres")
        try:
            while not self._stop.is_set():
                n = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", _DB_NAME)
                self.peak = max(self.peak, n + 1)
                await asyncio.sleep(0.05)
        finally:
            await conn.close()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak


_watch = ConnectionWatch() if BACKEND == "postgres" else None


def pytest_sessionfinish(session, exitstatus):
    if _watch is not None:
        peak = _watch.stop()
        print(f"\npeak PostgreSQL connections of the suite: {peak} (limit {MAX_TEST_CONNECTIONS})")
        if peak > MAX_TEST_CONNECTIONS and session.exitstatus == 0:
            print("FAILED: the suite held more PostgreSQL connections than allowed")
            session.exitstatus = 1
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
    from app.core.db import unit_of_work

    async with unit_of_work() as session:
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


class Server:
    """A uvicorn process serving the app on loopback (kill -9 it, start another)."""

    def __init__(self, env: dict[str, str] | None = None, workers: int = 1, database_url: str | None = None):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, DATABASE_URL=database_url or DATABASE_URL, **(env or {}))
        self.workers = workers
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(_TMP) / f"server_{self.port}.log"

    def start(self, wait_ready: bool = True) -> "Server":
        log = open(self.log_path, "ab")  # a file, not a pipe: an unread pipe fills up and blocks the server
        cmd = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(self.port),
               "--log-level", "warning", "--no-access-log"]
        if self.workers > 1:
            cmd += ["--workers", str(self.workers)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        deadline = time.time() + 30
        while wait_ready and time.time() < deadline:
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
            if self.proc.poll() is not None:
                raise RuntimeError(self.log_path.read_text())
        if wait_ready:
            self.kill()
            raise RuntimeError("server did not start")
        return self

    def kill(self) -> None:
        """kill -9 the server (and its workers)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.kill()


@pytest.fixture(scope="session")
def live_server():
    """uvicorn serving the app on loopback against the test database."""
    server = Server().start()
    yield server.base
    server.stop()
