"""Shared by the bench scripts: a scratch PostgreSQL database, a migrated app, an admin key."""
import asyncio
import os
import secrets
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The benchmarks load their catalogs with one import each and time it as one request: answered
# inline whatever its size (by default a file over 5,000 rows becomes a background job, 202).
os.environ.setdefault("IMPORT_INLINE_MAX_ROWS", "1000000")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def run_with_database(pg: str | None, main) -> None:
    """Run `main(database_url)` against a scratch database on the PostgreSQL server `pg` (created
    and dropped here), or against $DATABASE_URL when `pg` is None."""
    if not pg:
        url = os.environ.get("DATABASE_URL")
        if not url:
            raise SystemExit("set DATABASE_URL or pass --pg")
        asyncio.run(main(url))
        return
    import asyncpg

    base = pg.rstrip("/")
    name = f"uc_bench_{secrets.token_hex(3)}"

    async def admin_sql(sql: str) -> None:
        conn = await asyncpg.connect(base + "/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    try:
        asyncio.run(main(base.replace("postgresql://", "postgresql+asyncpg://") + "/" + name))
    finally:
        asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class CpuMeter:
    """Wraps the ASGI app and adds up the CPU time spent inside it (the server's share of an
    in-process request: the httpx client's own work is outside). Sequential requests only."""

    def __init__(self, app):
        self.app = app
        self.seconds = 0.0
        self.requests = 0

    async def __call__(self, scope, receive, send):
        t0 = time.process_time()
        try:
            await self.app(scope, receive, send)
        finally:
            self.seconds += time.process_time() - t0
            self.requests += 1

    def reset(self) -> None:
        self.seconds, self.requests = 0.0, 0


async def new_api_key(**fields) -> str:
    """An API key (app.auth.service.create_api_key's arguments), committed; returns its secret."""
    from app.auth.service import create_api_key
    from app.core.db import sessionmaker

    async with sessionmaker()() as session:
        _, secret = await create_api_key(session, **fields)
        await session.commit()
    return secret


@asynccontextmanager
async def app_client(database_url: str):
    """(httpx client on the in-process ASGI app, admin headers, CPU meter) on a migrated database."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("RATE_LIMIT", "1000000/minute")
    import httpx

    from app.cli import run_migrations
    from app.core.db import dispose_engine

    await asyncio.to_thread(run_migrations, database_url)
    from app.main import app

    secret = await new_api_key(name="bench", role="admin")
    meter = CpuMeter(app)
    transport = httpx.ASGITransport(app=meter)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as client:
            client.meter = meter
            yield client, {"Authorization": f"Bearer {secret}"}
    finally:
        await dispose_engine()


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu(pid: int) -> float:
    """utime + stime of one process in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid` and all its live descendants,
    from /proc (Linux): uvicorn --workers N serves from child processes."""
    total, todo, seen = 0.0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            total += _cpu(p)
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited meanwhile
    return total


def pg_backends_cpu(database: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to `database`, by pid; empty when
    the server runs on another machine (backends show as "postgres: ... <user> <database> <host>")."""
    out = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes()
            if cmd.startswith(b"postgres: ") and f" {database} ".encode() in cmd:
                out[int(proc.name)] = _cpu(int(proc.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return out
