"""HEAD wherever GET works (RFC 9110 §9.3.2), for every route at once.

FastAPI registers an APIRouter GET route for GET alone, so HEAD would answer 405. This pure
ASGI middleware runs a HEAD request as the GET of the same path, through everything a GET goes
through (authentication, rate limit, the response cache, the route's own checks), and sends
that answer's status and headers — Content-Length and ETag included — without its body.

* A path that no GET route serves is left as it is: 405 with Allow (or 404), body dropped too.
* It never writes: a GET runs without a transaction (app.core.transaction) and without an
  idempotency record (app.core.idempotency: POST only).
* The inner layers get a copy of the scope with method GET: the server's own scope keeps HEAD
  (uvicorn expects no body for it only when it sees HEAD there), and what the router adds to
  the copy (`route`, for the metrics) is copied back.
"""
from app.core.errors import path_methods


class HeadMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)

        async def headers_only(message):
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # the body's chunks are dropped; the last message ends the answer
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        if "GET" not in path_methods(scope):
            return await self.app(scope, receive, headers_only)
        inner = dict(scope, method="GET")
        try:
            await self.app(inner, receive, headers_only)
        finally:
            for key in inner.keys() - scope.keys():
                scope[key] = inner[key]
