"""One connection and at most one transaction per request; a database in trouble answers 503.

The DatabaseMiddleware gives every request a RequestDb (app/core/db.py). Reads run on it in
autocommit. A write request (POST, PUT, PATCH, DELETE) runs in one transaction that this
middleware ends after the whole answer exists: committed when the status is below 400 (or a
layer asked to keep what it wrote, like a stored idempotent answer), rolled back otherwise.
The answer is held back until the commit succeeded, so a client never sees a 201 for a change
that was not made; a commit that fails answers 503 (or 409 for a conflict found at commit).

Whatever the layer, a database that cannot be reached, is out of connections, or refuses work
(too many clients, disk full, shutting down, locked) answers `503 service_unavailable` with
Retry-After, never a 500.
"""
import logging
import os
import signal

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.core import cache
from app.core.db import DatabaseUnavailable, RequestDb
from app.core.errors import problem_response
from app.core.responses import HeldResponse

log = logging.getLogger("app.db")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# SQLSTATE classes that mean "not now" rather than "bad input": connection exceptions,
# insufficient resources (too many connections, disk full), operator intervention (shutdown).
UNAVAILABLE_SQLSTATES = ("08", "53", "57P", "58")
RETRYABLE_SQLSTATES = ("40001", "40P01")  # serialization failure, deadlock
# Fault injection for the crash tests only: with UC_TEST_CRASH_POINTS=1 in the environment, a
# request carrying `X-Test-Crash: before_commit|after_commit` kills its own process (kill -9)
# at that point. Off (and never looked at) otherwise.
CRASH_POINTS = os.environ.get("UC_TEST_CRASH_POINTS") == "1"


def _crash_point(scope, point: str) -> None:
    for name, value in scope["headers"]:
        if name == b"x-test-crash" and value.decode("latin-1") == point:
            os.kill(os.getpid(), signal.SIGKILL)


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error (asyncpg or psycopg), or None."""
    orig = getattr(exc, "orig", None)
    for obj in (orig, getattr(orig, "__cause__", None)):
        code = getattr(obj, "sqlstate", None) or getattr(obj, "pgcode", None)
        if code:
            return str(code)
    return None


def unavailable_problem(exc: BaseException):
    """A 503 answer when `exc` says the database is unavailable (not the request's fault), else None."""
    if isinstance(exc, DatabaseUnavailable) and isinstance(exc.__cause__, BaseException):
        return unavailable_problem(exc.__cause__) or problem_response(
            503, "service_unavailable", "No database connection can be had right now; retry shortly.",
            headers={"Retry-After": "1"})
    if isinstance(exc, PoolTimeout):
        detail = "All database connections are busy; retry shortly."
    elif isinstance(exc, (ConnectionError, TimeoutError)):
        detail = "The database cannot be reached; retry shortly."
    elif isinstance(exc, DBAPIError):
        state = sqlstate(exc)
        if getattr(exc, "connection_invalidated", False) or isinstance(exc, InterfaceError):
            detail = "The database connection was lost; retry."
        elif state and state.startswith(UNAVAILABLE_SQLSTATES):
            detail = "The database refuses work right now (connections, disk or shutdown); retry shortly."
        elif state and state.startswith(RETRYABLE_SQLSTATES):
            detail = "The change collided with a concurrent one; retry."
        elif state is None and isinstance(exc, OperationalError):  # SQLite: locked, disk full, I/O error
            detail = "The database is busy or unavailable; retry shortly."
        elif isinstance(exc.orig, (ConnectionError, TimeoutError, OSError)):
            detail = "The database cannot be reached; retry shortly."
        else:
            return None
    else:
        return None
    return problem_response(503, "service_unavailable", detail, headers={"Retry-After": "1"})


_READ_ONLY_POSTS: set[str] = set()


def read_only_post(path: str) -> None:
    """A POST that only reads (a price quote): it runs like a GET, in autocommit, with no
    transaction to begin and commit (two round trips less). With an Idempotency-Key it still gets
    a transaction, for the stored answer."""
    _READ_ONLY_POSTS.add(path)


class DatabaseMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        # a read-only POST with an Idempotency-Key still needs the transaction that stores its answer
        db = RequestDb(writes=scope["method"] in WRITE_METHODS and (
            scope["path"] not in _READ_ONLY_POSTS or any(n == b"idempotency-key" for n, _ in scope["headers"])))
        scope.setdefault("state", {})["db"] = db
        started = False
        if scope["path"].startswith("/v1/"):
            await cache.bus.refresh()

        async def send_tracked(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            if db.writes:
                await self._write(db, scope, receive, send_tracked)
            else:
                await self.app(scope, receive, send_tracked)
        except Exception as exc:
            problem = None if started else unavailable_problem(exc)
            if problem is None:
                raise
            log.warning("database unavailable: %s", exc)
            await problem(scope, receive, send)
        finally:
            try:
                await db.close()
            except Exception:  # noqa: BLE001 - a broken connection is discarded by the pool
                log.warning("closing the request's database connection failed", exc_info=True)

    async def _write(self, db: RequestDb, scope, receive, send):
        held = HeldResponse()
        try:
            await self.app(scope, receive, held)
        except BaseException:
            await _quietly_rollback(db)
            raise
        if held.status < 400 or db.commit_on_error:
            try:
                if CRASH_POINTS:
                    _crash_point(scope, "before_commit")
                await db.commit()
                if CRASH_POINTS:
                    _crash_point(scope, "after_commit")
            except IntegrityError:
                await _quietly_rollback(db)
                return await problem_response(409, "conflict", "The change conflicts with existing data.")(
                    scope, receive, send)
            except Exception:
                await _quietly_rollback(db)
                raise
        else:
            await db.rollback()
        await held.send_to(send)


async def _quietly_rollback(db: RequestDb) -> None:
    try:
        await db.rollback()
    except Exception:  # noqa: BLE001 - the connection may be gone; the pool discards it
        pass
