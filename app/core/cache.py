"""In-process caches of reference data that changes rarely (API keys, channels, price lists,
promotions, tax rates), dropped the moment the data changes, in every worker.

Writes to the tables behind a cache (TABLE_TOPICS) are noticed on the statement itself, and
when their transaction commits
* on PostgreSQL `pg_notify('uc_cache', topics)` runs as its last statement; PostgreSQL delivers
  it with the commit (never for a rollback); every API process LISTENs on one dedicated
  connection and drops those caches when the notification arrives (within a millisecond or so
  on one host: the other workers may serve the old value only to a request that races the
  commit itself);
* this process drops them at the commit and once more right after it, so the worker that made
  the change never serves the old value to a request after it.
A cache serves only while it can hear changes: on PostgreSQL while the LISTEN connection is up
(lost: every cache is dropped and bypassed until it is back); on SQLite, which has no
notifications, every request first asks `PRAGMA data_version` on a connection of its own and
everything is dropped when any other connection committed meanwhile. Each fill remembers the cache's generation before it read the
database and is kept only if no change arrived meanwhile, so a read racing a change can never
leave the old value behind.

What stays uncached on purpose: stock, prices of individual SKUs and catalog facts (they
change all the time and are read in the request's own transaction).
"""
import asyncio
import logging
from typing import Any

from sqlalchemy import event

from app.core import clock

log = logging.getLogger("app.cache")
CHANNEL = "uc_cache"
_TOPICS_KEY = "uc_changed_topics"
_COMMITTED_KEY = "uc_committed_topics"


class Cache:
    """A dict of values that depend on `topics`, with a generation counter (see the module docstring)."""

    def __init__(self, *topics: str, max_entries: int = 100_000, max_bytes: int | None = None):
        self.topics = topics
        self.max_entries = max_entries
        self.max_bytes = max_bytes  # with `size` given to put: a bound on what the values weigh
        self.bytes = 0
        self.data: dict[Any, Any] = {}
        self.generation = 0
        for topic in topics:
            _CACHES.setdefault(topic, []).append(self)

    def get(self, key: Any, conn=None) -> Any:
        """The cached value, or None. With `conn` (the AsyncConnection about to read instead):
        None too when its own open transaction changed this cache's tables (read your writes)."""
        if not bus.usable() or (conn is not None and self.dirty(conn)):
            return None
        return self.data.get(key)

    def dirty(self, conn) -> bool:
        topics = conn.sync_connection.info.get(_TOPICS_KEY) if conn.sync_connection is not None else None
        return bool(topics) and not topics.isdisjoint(self.topics)

    def put(self, key: Any, value: Any, generation: int, conn=None, size: int = 0) -> None:
        """Keep `value` if nothing changed since `generation` was read (before the database read),
        and it was not read by a transaction that changed these tables itself (`conn`): another
        request must never see what may still be rolled back. Full (entries, or `size`s adding up
        past max_bytes): emptied first, the simplest bound that never grows."""
        if generation != self.generation or not bus.usable() or (conn is not None and self.dirty(conn)):
            return
        if self.max_bytes is not None and size > self.max_bytes // 16:
            return  # one answer never takes a large share of the budget
        if len(self.data) >= self.max_entries or (self.max_bytes is not None and self.bytes + size > self.max_bytes):
            self.data.clear()
            self.bytes = 0
        self.data[key] = value
        self.bytes += size

    def clear(self) -> None:
        self.generation += 1
        self.data.clear()
        self.bytes = 0


_CACHES: dict[str, list[Cache]] = {}


def drop(*topics: str) -> None:
    for topic in topics:
        for cache in _CACHES.get(topic, ()):
            cache.clear()


def drop_all() -> None:
    drop(*list(_CACHES))


# Writes to these tables change what the caches hold. They are noticed on the statement itself
# (INSERT/UPDATE/DELETE through SQLAlchemy), so no code path can forget to invalidate.
TABLE_TOPICS = {
    "api_keys": "api_keys",
    "channels": "channels",
    "locations": "locations",
    "price_lists": "pricing",
    "promotions": "pricing",
    "tax_rates": "pricing",
    "products": "catalog",
    "variants": "catalog",
    "product_channels": "catalog",
    "bundle_components": "catalog",
    "prices": "prices",
}


def mark_changed(conn, *tables: str) -> None:
    """For writes SQLAlchemy does not see (PostgreSQL COPY on the raw driver connection): `conn` is
    the AsyncConnection whose transaction wrote to `tables`."""
    topics = {TABLE_TOPICS[t] for t in tables if t in TABLE_TOPICS}
    if topics:
        conn.sync_connection.info.setdefault(_TOPICS_KEY, set()).update(topics)


def install(engine) -> None:
    """Engine events: note which topics a connection's transaction changes; at its commit, tell
    every process (pg_notify, delivered by PostgreSQL with the commit) and drop this process's
    caches (again right after the commit: `after_commit`)."""
    sync_engine = engine.sync_engine
    postgres = engine.dialect.name == "postgresql"

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _track(conn, cursor, statement, parameters, context, executemany):
        if context is None or not (context.isinsert or context.isupdate or context.isdelete):
            return
        table = getattr(getattr(context.compiled, "statement", None), "table", None)
        topic = TABLE_TOPICS.get(getattr(table, "name", None))
        if topic is not None:
            conn.info.setdefault(_TOPICS_KEY, set()).add(topic)

    @event.listens_for(sync_engine, "commit")
    def _on_commit(conn):
        topics = conn.info.pop(_TOPICS_KEY, None)
        if topics:
            if postgres:  # topics come from TABLE_TOPICS only: safe to inline
                conn.exec_driver_sql(f"SELECT pg_notify('{CHANNEL}', '{','.join(sorted(topics))}')")
            drop(*topics)
            conn.info[_COMMITTED_KEY] = topics

    @event.listens_for(sync_engine, "rollback")
    def _on_rollback(conn):
        topics = conn.info.pop(_TOPICS_KEY, None)
        if topics:  # belt and braces: nothing read inside that transaction may survive it
            drop(*topics)


def after_commit(info: dict) -> None:
    """Drop once more what a commit on a connection (its `.info`) just changed: a request that
    read the old rows between the drop and the COMMIT may have refilled the cache."""
    topics = info.pop(_COMMITTED_KEY, None)
    if topics:
        drop(*topics)


class Bus:
    """The LISTEN side: one asyncpg connection per process, started on first use."""

    def __init__(self):
        self.dsn: str | None = None
        self.dialect: str | None = None
        self.listening = False
        self.connection = None  # the LISTEN connection (asyncpg), while there is one
        self._task: asyncio.Task | None = None
        self._stop = False

    def configure(self, url, dialect: str) -> None:
        self.stop()
        self.dialect = dialect
        self.dsn = url.set(drivername="postgresql").render_as_string(hide_password=False) if dialect == "postgresql" else None
        self.sqlite_path = url.database if dialect == "sqlite" else None
        self._sqlite_watch = None
        self._data_version = None
        self._stop = False
        drop_all()

    def usable(self) -> bool:
        if self.dialect == "postgresql":
            if not self.listening:
                self._ensure_started()
            return self.listening
        return self.dialect == "sqlite" and self._data_version is not None

    async def refresh(self) -> None:  # async: a future watch may need I/O
        """Once per request, before any cache is read. SQLite has no notifications: a connection
        of our own asks `PRAGMA data_version`, which moves whenever another connection (of this
        process or another) committed, and everything is dropped when it moved."""
        if self.dialect != "sqlite" or self._stop:
            return
        try:
            if self._sqlite_watch is None:
                import sqlite3

                # a plain connection: data_version is a counter read from the WAL index in shared
                # memory (microseconds), not worth a thread hop
                self._sqlite_watch = sqlite3.connect(self.sqlite_path, check_same_thread=False, timeout=1)
            version = self._sqlite_watch.execute("PRAGMA data_version").fetchone()[0]
        except Exception as exc:  # noqa: BLE001 - no watch, no cache
            log.warning("cache watch on SQLite: %s", exc)
            self._data_version = None
            drop_all()
            return
        if version != self._data_version:
            drop_all()
            self._data_version = version

    def _ensure_started(self) -> None:
        if self._task is not None or self._stop or self.dsn is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self._listen())

    async def _listen(self) -> None:
        import asyncpg

        while not self._stop:
            conn = None
            try:
                conn = self.connection = await asyncpg.connect(self.dsn, timeout=5)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c: lost.set())
                await conn.add_listener(CHANNEL, lambda _c, _pid, _ch, payload: drop(*payload.split(",")))
                drop_all()  # whatever was cached before we listened may be stale
                self.listening = True
                await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - retried; caches are bypassed meanwhile
                log.warning("cache invalidation listener: %s", exc)
            finally:
                self.listening = False
                drop_all()
                if conn is not None and not conn.is_closed():
                    try:
                        await conn.close(timeout=1)
                    except Exception:  # noqa: BLE001
                        conn.terminate()
            if not self._stop:
                await asyncio.sleep(1)

    def stop(self) -> None:
        self._stop = True
        self.listening = False
        if self._task is not None:
            self._task.cancel()
            self._task = None
        watch, self._sqlite_watch, self._data_version = getattr(self, "_sqlite_watch", None), None, None
        if watch is not None:
            watch.close()
        drop_all()


bus = Bus()



# ------------------------------------------------------------------------------ responses

_RESPONSE_ROUTES: list[tuple[str, Cache]] = []


RESPONSE_CACHE_MAX_BYTES = 64 * 1024 * 1024  # per collection: the memory whole answers may take


def cache_responses(collection: str, *topics: str, max_entries: int = 5_000) -> None:
    """Whole GET answers of `collection` and of `collection/{ref}` (status 200; nothing deeper,
    so a later `collection/{ref}/something` is never caught) are kept per (path, query, who may
    see what) and dropped with `topics`. For reads whose answer depends only on those topics'
    tables and on the caller's role and binding (the catalog: status and channel visibility),
    and on the clock only through a moment the route names: an answer whose request state has
    `cache_until` (a datetime of app.core.clock) is served from memory only before then."""
    _RESPONSE_ROUTES.append((collection, Cache(*topics, max_entries=max_entries, max_bytes=RESPONSE_CACHE_MAX_BYTES)))


def _response_cache(path: str) -> Cache | None:
    for collection, store in _RESPONSE_ROUTES:
        if path == collection or (path.startswith(collection + "/") and "/" not in path[len(collection) + 1:]):
            return store
    return None


_KEPT_HEADERS = (b"content-type", b"etag")


class ResponseCacheMiddleware:
    """Serves registered GETs from memory before any routing, dependency solving or SQL. Runs
    after authentication (the key decides what is visible) and inside the rate limit."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "GET" or not _RESPONSE_ROUTES:
            return await self.app(scope, receive, send)
        path = scope["path"]
        store = _response_cache(path)
        principal = scope.get("state", {}).get("principal")
        if store is None or principal is None:
            return await self.app(scope, receive, send)
        key = (path, scope.get("query_string", b""), principal.role, principal.channel, principal.location)
        hit = store.get(key)
        if hit is not None and (hit[3] is None or clock.now() < hit[3]):
            status, headers, body, _ = hit
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        generation = store.generation
        start: dict = {}
        chunks: list[bytes] = []

        async def capture(message):
            if message["type"] == "http.response.start":
                start.update(message)
                if message["status"] != 200:
                    await send(message)
            elif start.get("status") != 200:
                await send(message)
            else:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    headers = [(n, v) for n, v in start.get("headers", []) if n.lower() in _KEPT_HEADERS]
                    body = b"".join(chunks)
                    headers.append((b"content-length", str(len(body)).encode()))
                    # an answer that depends on time says until when it holds (state "cache_until")
                    until = scope.get("state", {}).get("cache_until")
                    store.put(key, (200, headers, body, until), generation, size=len(body))
                    await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
                    await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)
