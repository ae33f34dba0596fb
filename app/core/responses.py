"""Fast JSON responses: routers build plain dicts and return them through here."""
import json
from datetime import date, datetime
from typing import Any

import orjson
from starlette.responses import Response

from app.core.concurrency import etag


def _default(obj: Any):
    if isinstance(obj, datetime):
        return obj.isoformat().replace("+00:00", "Z")
    if isinstance(obj, date):
        return obj.isoformat()
    raise TypeError


def dumps(data: Any) -> bytes:
    try:
        return orjson.dumps(data, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except TypeError:
        # integers beyond 64 bits (PostgreSQL's JSONB turns a large float like 1e20 into an
        # exact integer): the standard library writes any integer
        return json.dumps(data, default=_default, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None, version: int | None = None) -> Response:
    response = Response(dumps(data), status_code=status, media_type="application/json", headers=headers)
    if version is not None:
        response.headers["ETag"] = etag(version)
    return response


def created(data: Any, version: int | None = None) -> Response:
    return json_response(data, 201, version=version)


class HeldResponse:
    """An ASGI `send` that keeps the answer instead of sending it (to commit first, or store it)."""

    __slots__ = ("start", "chunks")

    def __init__(self):
        self.start: dict = {}
        self.chunks: list[bytes] = []

    async def __call__(self, message) -> None:
        if message["type"] == "http.response.start":
            self.start.update(message)
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))

    @property
    def status(self) -> int:
        return self.start.get("status", 500)

    @property
    def headers(self) -> list:
        return list(self.start.get("headers", []))

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    async def send_to(self, send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


def rfc3339(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None
