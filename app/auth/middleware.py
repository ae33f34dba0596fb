"""Resolve the API key once per request and apply its rate limit.

Pure ASGI (no BaseHTTPMiddleware): the principal is put in `scope["state"]`
for the route dependencies (`require(...)`) and the idempotency layer. A
missing or unknown key is not rejected here: the route decides (ops endpoints
need no key); a rejected request still counts against the caller's limit.
"""
import math
import time

from limits import parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from app.auth.service import principal_for_secret
from app.core.db import get_engine
from app.core.errors import problem_response
from app.core.settings import get_settings

EXEMPT_PREFIXES = ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/redoc")


class AuthMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            return await self.app(scope, receive, send)
        state = scope.setdefault("state", {})
        secret = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                raw = value.decode("latin-1").strip()
                if raw[:7].lower() == "bearer ":
                    secret = raw[7:].strip()
                break
        principal = None
        if secret:
            # a Core connection, not an ORM session: one indexed read, no unit of work to set up
            async with get_engine().connect() as conn:
                principal = await principal_for_secret(conn, secret)
        state["principal"] = principal
        await self.app(scope, receive, send)


class RateLimitMiddleware:
    """Per-key limit (the key's own `rate_limit` or RATE_LIMIT), by client address when anonymous.

    Storage is in-process by default; set RATE_LIMIT_STORAGE_URI=async+redis://host:6379
    when several workers serve the API so they share one budget.
    """

    def __init__(self, app):
        self.app = app
        settings = get_settings()
        self.default = parse(settings.rate_limit)
        uri = settings.rate_limit_storage_uri
        if uri.startswith("redis://"):
            uri = "async+" + uri
        if uri == "memory://":
            uri = "async+memory://"
        self.limiter = SlidingWindowCounterRateLimiter(storage_from_string(uri))
        self._parsed: dict[str, object] = {}

    def _limit_for(self, principal):
        if principal is not None and principal.rate_limit:
            lim = self._parsed.get(principal.rate_limit)
            if lim is None:
                lim = self._parsed[principal.rate_limit] = parse(principal.rate_limit)
            return lim
        return self.default

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            return await self.app(scope, receive, send)
        principal = scope.get("state", {}).get("principal")
        if principal is not None:
            ident = principal.key_id
        else:
            client = scope.get("client")
            ident = "ip:" + (client[0] if client else "unknown")
        limit = self._limit_for(principal)
        allowed = await self.limiter.hit(limit, ident)
        stats = await self.limiter.get_window_stats(limit, ident)
        remaining = max(0, stats.remaining)
        headers = [
            (b"ratelimit-limit", str(limit.amount).encode()),
            (b"ratelimit-remaining", str(remaining).encode()),
        ]
        if not allowed:
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            response = problem_response(
                429, "rate_limited",
                f"Rate limit of {limit.amount} requests per {limit.get_expiry()} s exceeded; retry after {retry_after} s.",
                headers={"Retry-After": str(retry_after), "RateLimit-Limit": str(limit.amount), "RateLimit-Remaining": "0"},
            )
            return await response(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
