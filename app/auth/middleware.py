"""Who is calling, how often, and refusing the anonymous before any work is done.

Pure ASGI (no BaseHTTPMiddleware). For every request outside the ops endpoints:
1. the API key is looked up on the request's own connection (RequestDb, in autocommit: no
   BEGIN/ROLLBACK), every time, so a revocation takes effect on the next request;
2. the caller's rate limit is counted (by key, or by client address when anonymous), so a
   rejected request still counts;
3. a request without a valid key is answered 401 here, before its body is read or parsed.
The principal is put in `scope["state"]` for the route dependencies (`require(...)`) and the
idempotency layer.
"""
import math
import multiprocessing
import os
import time

from limits import parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string
from sqlalchemy import BigInteger, String, bindparam, text

from app.auth.service import principal_for_secret
from app.core.db import request_db
from app.core.errors import problem_response
from app.core.settings import get_settings

# Everything under /v1/ needs a key, except webhooks that carry their own signature. Ops
# endpoints, docs and unknown paths outside /v1/ are left to the router.
PUBLIC_PREFIXES = ("/v1/payments/stripe/webhook",)


def _bearer(scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            raw = value.decode("latin-1").strip()
            if raw[:7].lower() == "bearer ":
                return raw[7:].strip() or None
            return None
    return None


class AuthMiddleware:
    def __init__(self, app):
        self.app = app
        self.limiter = RateLimiter.from_settings()

    async def __call__(self, scope, receive, send):
        path = scope["path"] if scope["type"] == "http" else ""
        if not path.startswith("/v1/") or path.startswith(PUBLIC_PREFIXES):
            return await self.app(scope, receive, send)
        state = scope.setdefault("state", {})
        secret = _bearer(scope)
        principal = None
        db = request_db(scope)
        if secret:
            principal = await principal_for_secret(db.connection, secret)
        state["principal"] = principal
        if principal is not None:
            ident = principal.key_id
        else:
            client = scope.get("client")
            ident = "ip:" + (client[0] if client else "unknown")
        allowed, limit, remaining, retry_after = await self.limiter.hit(
            ident, principal.rate_limit if principal is not None else None, db)
        headers = [(b"ratelimit-limit", str(limit).encode()), (b"ratelimit-remaining", str(remaining).encode())]
        if not allowed:
            response = problem_response(
                429, "rate_limited", f"Rate limit of {limit} requests exceeded; retry after {retry_after} s.",
                headers={"Retry-After": str(retry_after), "RateLimit-Limit": str(limit), "RateLimit-Remaining": "0"},
            )
            return await response(scope, receive, send)
        if principal is None:
            response = problem_response(
                401, "unauthenticated", "Send a valid API key as 'Authorization: Bearer <secret>'.",
                headers={"WWW-Authenticate": "Bearer", "RateLimit-Limit": str(limit),
                         "RateLimit-Remaining": str(remaining)},
            )
            return await response(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# ------------------------------------------------------------------------------ rate limits

_DB_HIT_PG = text("""
WITH hit AS (
  INSERT INTO rate_limit_counters (ident, window_start, hits) VALUES (:ident, :window, 1)
  ON CONFLICT (ident, window_start) DO UPDATE SET hits = rate_limit_counters.hits + 1
  RETURNING hits)
SELECT hit.hits, (SELECT p.hits FROM rate_limit_counters p WHERE p.ident = :ident AND p.window_start = :prev)
FROM hit""").bindparams(bindparam("ident", type_=String), bindparam("window", type_=BigInteger),
                        bindparam("prev", type_=BigInteger))
_DB_HIT_SQLITE = text("""
INSERT INTO rate_limit_counters (ident, window_start, hits) VALUES (:ident, :window, 1)
ON CONFLICT (ident, window_start) DO UPDATE SET hits = hits + 1 RETURNING hits""")
_DB_PREV_SQLITE = text("SELECT hits FROM rate_limit_counters WHERE ident = :ident AND window_start = :prev")


def rate_limit_storage() -> str:
    """`RATE_LIMIT_STORAGE_URI`, or by default: process memory for one worker, the database as
    soon as more than one worker may serve (so they share one budget): WEB_CONCURRENCY > 1, or
    this process is a worker that a supervisor started (`uvicorn --workers N` spawns its
    workers with multiprocessing and need not set WEB_CONCURRENCY)."""
    uri = get_settings().rate_limit_storage_uri
    if uri != "auto":
        return uri
    try:
        workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
    except ValueError:
        workers = 1
    return "database" if workers > 1 or multiprocessing.parent_process() is not None else "memory://"


class RateLimiter:
    """A sliding-window counter per key: the hits of the current window plus the previous
    window's hits weighted by how much of it still overlaps. Kept in process memory or Redis
    (the `limits` library), or in the database table `rate_limit_counters` (one upsert per
    request on the request's connection, outside its transaction)."""

    def __init__(self, default: str, storage: str):
        self.default = parse(default)
        self._parsed: dict[str, object] = {}
        self.storage = storage
        self.limiter = None
        # memory: {ident: [window, hits, previous window's hits]}; the `limits` library's own
        # in-memory strategy costs ~0.1 ms a request (async locks, two calls), this a dict lookup
        self._memory: dict[str, list[int]] = {}
        if storage not in ("database", "memory://"):
            uri = storage
            if uri.startswith(("redis://", "rediss://")):
                uri = "async+" + uri
            if uri == "memory://":
                uri = "async+memory://"
            self.limiter = SlidingWindowCounterRateLimiter(storage_from_string(uri))

    @classmethod
    def from_settings(cls) -> "RateLimiter":
        return cls(get_settings().rate_limit, rate_limit_storage())

    def _limit(self, own: str | None):
        if not own:
            return self.default
        lim = self._parsed.get(own)
        if lim is None:
            lim = self._parsed[own] = parse(own)
        return lim

    async def hit(self, ident: str, own_limit: str | None, db) -> tuple[bool, int, int, int]:
        """(allowed, limit, remaining, retry_after seconds)."""
        limit = self._limit(own_limit)
        if self.limiter is not None:
            allowed = await self.limiter.hit(limit, ident)
            stats = await self.limiter.get_window_stats(limit, ident)
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            return allowed, limit.amount, max(0, stats.remaining), retry_after
        period = limit.get_expiry()
        now = time.time()
        window = int(now // period)
        if self.storage == "memory://":
            return self._hit_memory(ident, limit.amount, period, now, window)
        conn = await db.connection()  # still in autocommit: the count never joins the request's transaction
        # windows are stored by their start (unix seconds), so limits of any length share the table
        params = {"ident": ident[:80], "window": window * period, "prev": (window - 1) * period}
        if conn.dialect.name == "postgresql":
            hits, prev = (await conn.execute(_DB_HIT_PG, params)).one()
        else:
            hits = (await conn.execute(_DB_HIT_SQLITE, params)).scalar_one()
            prev = (await conn.execute(_DB_PREV_SQLITE, params)).scalar()
        overlap = 1 - (now / period - window)
        used = hits + math.floor((prev or 0) * overlap)
        allowed = used <= limit.amount
        retry_after = max(1, math.ceil((window + 1) * period - now))
        return allowed, limit.amount, max(0, limit.amount - used), retry_after

    def _hit_memory(self, ident: str, amount: int, period: int, now: float, window: int) -> tuple[bool, int, int, int]:
        key = f"{ident}/{period}"
        slot = self._memory.get(key)
        if slot is None or slot[0] < window - 1:
            if len(self._memory) > 100_000:  # forget idle callers now and then
                self._memory = {k: v for k, v in self._memory.items() if v[0] >= window - 1}
            slot = self._memory[key] = [window, 0, 0]
        elif slot[0] == window - 1:
            slot[:] = [window, 0, slot[1]]
        used = slot[1] + 1 + math.floor(slot[2] * (1 - (now / period - window)))
        allowed = used <= amount
        if allowed:  # like the limits library: a refused request does not use up the window
            slot[1] += 1
        retry_after = max(1, math.ceil((window + 1) * period - now))
        return allowed, amount, max(0, amount - used), retry_after
