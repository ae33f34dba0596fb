"""Async engine and sessions for SQLite (embedded default) and PostgreSQL.

SQLite: WAL, a busy timeout, foreign keys on, and every transaction opened with
BEGIN IMMEDIATE so that read-then-write transactions serialize instead of
failing with "database is locked" on the upgrade. PostgreSQL: READ COMMITTED
and conditional UPDATEs / row locks where invariants need them.
"""
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime

import orjson
from sqlalchemy import JSON, DateTime, event
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.dialects.postgresql import JSONB
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.types import TypeDecorator

from app.core import cache
from app.core.errors import ApiError
from app.core.settings import get_settings

JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both databases (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):  # raw SQL on SQLite
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_dumps(value) -> str:
    """JSON columns are written with orjson (the standard library as a fallback for integers
    beyond 64 bits, which orjson refuses)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_loads(raw: str | bytes):
    """JSON columns are read with orjson; PostgreSQL's JSONB may hold a number orjson refuses
    (an exact integer beyond 64 bits): the standard library reads those."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


_engine: AsyncEngine | None = None
_sessionmaker: async_sessionmaker[AsyncSession] | None = None


def normalize_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url[len("postgresql://"):]
    if url.startswith("sqlite:///"):
        url = "sqlite+aiosqlite:///" + url[len("sqlite:///"):]
    return url


def make_engine(url: str | None = None) -> AsyncEngine:
    settings = get_settings()
    url = normalize_url(url or settings.database_url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=settings.db_echo, connect_args={"timeout": 30},
                                     json_serializer=json_dumps, json_deserializer=json_loads)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):
            # Let us issue BEGIN ourselves (pysqlite's implicit transactions are unreliable).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn):
            if not conn.get_execution_options().get("uc_autocommit"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(
        url,
        echo=settings.db_echo,
        json_serializer=json_dumps,
        json_deserializer=json_loads,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=False,
    )


def get_engine() -> AsyncEngine:
    global _engine, _sessionmaker
    if _engine is None:
        _engine = make_engine()
        _sessionmaker = async_sessionmaker(_engine, expire_on_commit=False, autoflush=False)
        cache.install(_engine)
        event.listen(_engine.sync_engine, "rollback", lambda conn: conn.info.pop(_AFTER_COMMIT, None))
        cache.bus.configure(_engine.url, _engine.dialect.name)
    return _engine


def sessionmaker() -> async_sessionmaker[AsyncSession]:
    get_engine()
    assert _sessionmaker is not None
    return _sessionmaker


async def dispose_engine() -> None:
    global _engine, _sessionmaker
    cache.bus.stop()
    if _engine is not None:
        await _engine.dispose()
    _engine = None
    _sessionmaker = None


def is_postgres(session_or_engine) -> bool:
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, AsyncSession) else session_or_engine
    return bind.dialect.name == "postgresql"


async def set_autocommit(conn: AsyncConnection, on: bool) -> None:
    """Reads run in autocommit (no BEGIN/ROLLBACK round trips); a write request switches its
    connection back before its first statement. PostgreSQL: asyncpg's own autocommit mode.
    SQLite: the connection is always in pysqlite's autocommit mode and our `begin` hook issues
    BEGIN IMMEDIATE, so the hook is told to skip it (SQLAlchemy's own SQLite isolation switch
    would emit PRAGMAs and hand transaction control back to pysqlite)."""
    if conn.dialect.name == "postgresql":
        await conn.execution_options(isolation_level="AUTOCOMMIT" if on else conn.default_isolation_level)
    else:
        await conn.execution_options(uc_autocommit=on)


def new_session(conn: AsyncConnection) -> AsyncSession:
    """An ORM session on the request's connection. It joins the connection's transaction and
    never commits or rolls back on its own: the request (RequestDb) decides."""
    return AsyncSession(bind=conn, expire_on_commit=False, autoflush=False,
                        join_transaction_mode="rollback_only")


class DatabaseUnavailable(ConnectionError):
    """A request could get no database connection: answered 503 service_unavailable with
    Retry-After (app/core/transaction.py), whatever the server's reason."""


class RequestDb:
    """The one connection of a request, taken from the pool on first use, and the ORM session
    on it. Reads run in autocommit; a write request (`writes=True`) runs every statement after
    authentication in one transaction, committed by the DatabaseMiddleware after the response
    (and its idempotency record) exist, so the change and its stored answer are one."""

    __slots__ = ("conn", "session", "writes", "_tx_mode", "commit_on_error")

    def __init__(self, writes: bool):
        self.conn: AsyncConnection | None = None
        self.session: AsyncSession | None = None
        self.writes = writes
        self._tx_mode = False
        # a 4xx answer normally rolls the request back; set when what was written must stay
        # (the stored idempotency answer of a failed request, a counted wrong pickup code)
        self.commit_on_error = False

    async def connection(self) -> AsyncConnection:
        if self.conn is None:
            try:
                self.conn = await get_engine().connect()
            except DBAPIError as exc:  # no connection at all ("does not exist", "not currently
                # accepting connections", "too many clients"…): never the request's fault
                raise DatabaseUnavailable(f"No database connection: {exc.orig}"[:300]) from exc
            await set_autocommit(self.conn, True)
        return self.conn

    async def begin_writes(self) -> None:
        """From here on, statements run in the request's transaction (begun lazily by the first one)."""
        conn = await self.connection()
        if not self._tx_mode:
            if conn.in_transaction():  # the autocommit reads' logical transaction
                await conn.commit()
            await set_autocommit(conn, False)
            self._tx_mode = True

    async def get_session(self) -> AsyncSession:
        if self.session is None:
            if self.writes:
                await self.begin_writes()
            self.session = new_session(await self.connection())
        return self.session

    async def flush(self) -> None:
        if self.session is not None and self.session.in_transaction():
            await self.session.flush()

    async def commit(self) -> None:
        if self.session is not None:
            await self.session.flush()
        if self.conn is not None and self.conn.in_transaction():
            await self.conn.commit()
            committed(self.conn.sync_connection.info)

    async def rollback(self) -> None:
        if self.session is not None:
            self.session.expunge_all()
        if self.conn is not None and self.conn.in_transaction():
            await self.conn.rollback()

    async def close(self) -> None:
        try:
            if self.session is not None:
                await self.session.close()
        finally:
            self.session = None
            if self.conn is not None:
                conn, self.conn = self.conn, None
                await conn.close()


def request_db(scope) -> RequestDb:
    return scope["state"]["db"]


async def get_session(request: Request) -> AsyncSession:
    """FastAPI dependency: the request's session (see RequestDb). Domain functions take it and
    never commit; the request commits once, after the answer is known."""
    return await request_db(request.scope).get_session()


@asynccontextmanager
async def unit_of_work() -> AsyncIterator[AsyncSession]:
    """A session in one transaction for work outside a request (CLI, worker jobs, tests):
    committed when the block ends, rolled back when it raises."""
    async with sessionmaker()() as session:
        async with session.begin():
            yield session
            info = (await session.connection()).sync_connection.info
        committed(info)


_AFTER_COMMIT = "uc_after_commit"


async def on_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Call `callback` (plain, quick: it may start a task) once the session's transaction has
    committed, whoever commits it (the request, a unit of work); dropped when it rolls back."""
    info = (await session.connection()).sync_connection.info
    info.setdefault(_AFTER_COMMIT, []).append(callback)


def committed(info: dict) -> None:
    """After a COMMIT on a connection (its `.info`): caches dropped once more, callbacks run."""
    cache.after_commit(info)
    for callback in info.pop(_AFTER_COMMIT, ()):
        try:
            callback()
        except Exception:  # noqa: BLE001 - the commit stands; the callback's work is retried elsewhere
            logging.getLogger("app.db").exception("an after-commit callback failed")


async def flush_unique(session: AsyncSession, what: str, code: str, field: str = "code") -> None:
    """Flush new rows; a unique violation (a concurrent create of the same code, or a code that
    exists) answers `409 duplicate_code` naming the field (the request is then rolled back)."""
    try:
        await session.flush()
    except IntegrityError:
        raise ApiError(409, "duplicate_code", f"A {what} with code {code!r} already exists.",
                       errors=[{"field": field, "message": "Already in use."}]) from None


@contextmanager
def sql_statements():
    """Collects the SQL statements the app runs inside the block (transaction control left out),
    so a test or a benchmark can hold a hot path to a constant number of statements."""
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
