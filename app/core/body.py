"""Request bodies: bounded before they are read, JSON checked before the framework parses it.

Runs after authentication, so an anonymous request is refused before a byte of its body is
read. A body over the limit (by Content-Length, or counted while a chunked body arrives) is
answered `413 payload_too_large` at once. A JSON body that is not valid UTF-8 JSON, holds an
integer the parser refuses (over 4,300 digits) or nests deeper than MAX_JSON_DEPTH answers
`400 invalid_json` (the standard library's parser would otherwise raise deep inside the
framework). A body that is not declared JSON — another Content-Type, or none (`curl -d`
sends `application/x-www-form-urlencoded` unless told otherwise) — answers
`415 unsupported_media_type` saying to send `Content-Type: application/json`, except on the
paths that take other formats and check them themselves (the catalog import: NDJSON, CSV).
An empty body needs no Content-Type. The body read here is handed on unchanged and kept in
`scope["state"]["body"]` for the idempotency layer.
"""
import json

import orjson

from app.core.errors import problem_response
from app.core.settings import get_settings

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_JSON_DEPTH = 32
# Bulk endpoints that take large files: their own (larger) limit.
BULK_PATHS = ("/v1/catalog/import",)
# Endpoints whose body is not JSON: they check its media type themselves.
OWN_MEDIA_TYPES = BULK_PATHS


def _content_type(scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower()
    return b""


def is_json(content_type: bytes) -> bool:
    """application/json or a +json type (application/merge-patch+json…), parameters left off."""
    return content_type == b"application/json" or (content_type.startswith(b"application/") and
                                                     content_type.endswith(b"+json"))


def _content_length(scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def json_depth(value) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    depth = 0
    stack = [(value, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, dict):
            depth = max(depth, d)
            stack.extend((v, d + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            depth = max(depth, d)
            stack.extend((v, d + 1) for v in node if isinstance(v, (dict, list)))
    return depth


def json_problem(body: bytes) -> str | None:
    """Why this body is not JSON we accept, or None."""
    if not body.strip():
        return None
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        brackets_bound = True
    else:
        brackets_bound = False
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        msg = str(exc)
        if "recursion" in msg.lower():
            return f"The JSON nests deeper than {MAX_JSON_DEPTH} levels."
        # The standard library decodes bytes with "surrogatepass": UTF-8-encoded surrogates
        # (b"\xed\xa0\x80"), which are not UTF-8, would pass it. Strict UTF-8 first.
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc2:
            return f"The request body is not valid UTF-8 JSON ({exc2})."[:300]
        # orjson refuses integers beyond 64 bits, which the framework's parser accepts: ask it
        try:
            value = json.loads(body)
        except RecursionError:
            return f"The JSON nests deeper than {MAX_JSON_DEPTH} levels."
        except ValueError as exc2:  # includes UnicodeDecodeError and the 4,300-digit limit
            return f"The request body is not valid JSON ({exc2})."[:300]
    if not brackets_bound and json_depth(value) > MAX_JSON_DEPTH:
        return f"The JSON nests deeper than {MAX_JSON_DEPTH} levels."
    return None


class BodyMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            return await self.app(scope, receive, send)
        settings = get_settings()
        limit = settings.max_import_bytes if scope["path"].startswith(BULK_PATHS) else settings.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            return await _too_large(limit, scope, receive, send)
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await _too_large(limit, scope, receive, send)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        scope["state"]["body"] = body
        ctype = _content_type(scope)
        if is_json(ctype):
            problem = json_problem(body)
            if problem is not None:
                response = problem_response(400, "invalid_json", problem,
                                            [{"field": "body", "message": problem}])
                return await response(scope, receive, send)
        elif body and not scope["path"].startswith(OWN_MEDIA_TYPES):
            return await unsupported_media_type(ctype, scope["method"])(scope, receive, send)

        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


ACCEPT_HEADERS = {"POST": "Accept-Post", "PATCH": "Accept-Patch"}


def unsupported_media_type(ctype: bytes, method: str):
    """415 for a body not declared JSON, saying what to send instead."""
    given = ctype.decode("latin-1")
    if not given:
        why = "The request body has no Content-Type"
    elif given == "application/x-www-form-urlencoded":
        why = "The request body is sent as application/x-www-form-urlencoded (what `curl -d` sends by default)"
    else:
        why = f"The request body is sent as {given[:100]}"
    message = "Send JSON with the header 'Content-Type: application/json'."
    accept = ACCEPT_HEADERS.get(method)  # RFC 9110 §15.5.16: say which media types are accepted
    return problem_response(415, "unsupported_media_type", f"{why}; this endpoint takes JSON. {message}",
                            [{"field": "Content-Type", "message": message}],
                            headers={accept: "application/json"} if accept else None)


async def _too_large(limit: int, scope, receive, send):
    response = problem_response(
        413, "payload_too_large", f"The request body is larger than {limit} bytes.",
        headers={"Connection": "close"},
    )
    await response(scope, receive, send)
