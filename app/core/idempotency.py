"""Idempotency-Key for every POST, stored in the database in the same transaction as the change.

* The first request with a key runs inside the request's transaction; its answer is written
  to `idempotency_keys` in that same transaction, so a change that committed always has its
  stored answer, and a request that died before committing left neither (a retry runs anew).
* Same key + same request  -> the stored response, byte for byte, `Idempotent-Replayed: true`.
* Same key + other request -> 422 idempotency_key_reused.
* Same key while the first still runs -> 409 idempotency_key_in_use with Retry-After
  (PostgreSQL: the first holds a transaction-scoped advisory lock on the key, which ends with
  its transaction, however long it runs, and with its connection if the process dies. SQLite:
  writers are serialized, so the second waits for the first and then replays it).
* A 4xx answer is stored too (its changes rolled back to a savepoint first, unless the route
  asked to keep them: `RequestDb.commit_on_error`); 5xx, 401 and 429 answers are not stored,
  so the client may retry them with the same key.
* Fields a route marks as secret (`mark_secret`) are never stored: a replay shows them as null.
Keys are scoped to the API key and kept IDEMPOTENCY_TTL_SECONDS (24 h).
"""
import hashlib
from datetime import datetime, timedelta

import orjson
from sqlalchemy import LargeBinary, bindparam, delete, func, select
from sqlmodel import Field, SQLModel

from app.core import clock
from app.core.db import JSONType, UTCDateTime, request_db
from app.core.errors import problem_response
from app.core.responses import HeldResponse
from app.core.settings import get_settings

MAX_KEY_LENGTH = 255
NOT_STORED = {401, 429}
STORED_HEADERS = {b"content-type", b"etag", b"location"}


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    api_key_id: str = Field(primary_key=True, max_length=40)
    key: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    fingerprint: str = Field(max_length=64)
    state: str = Field(max_length=10)  # done (records exist only once answered)
    response_status: int | None = None
    response_headers: list | None = Field(default=None, sa_type=JSONType)
    response_body: bytes | None = Field(default=None, sa_type=LargeBinary)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)


T = IdempotencyRecord.__table__
_FIND = select(T.c.fingerprint, T.c.response_status, T.c.response_headers, T.c.response_body, T.c.created_at).where(
    T.c.api_key_id == bindparam("api_key_id"), T.c.key == bindparam("key"))
_LOCK = select(func.pg_try_advisory_xact_lock(bindparam("lock_id")))


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body.strip() else b""
    except orjson.JSONDecodeError:
        canonical = body
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, canonical):
        h.update(part)
        h.update(b"\x00")
    return h.hexdigest()


def lock_id(api_key_id: str, key: str) -> int:
    """A signed 64-bit advisory-lock id for (API key, Idempotency-Key)."""
    digest = hashlib.sha256(f"{api_key_id}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def mark_secret(request, *fields: str) -> None:
    """Call from a route whose answer carries a secret (an API key's, a webhook's, a PaymentIntent's
    client_secret): those fields (top-level names or dotted paths) are stored as null, so a replay
    never shows the secret again."""
    request.scope["state"]["secret_fields"] = fields


def _redact(body: bytes, fields) -> bytes:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return b""
    for f in fields:  # "secret", or a dotted path like "payment.client_secret"
        *path, last = f.split(".")
        obj = data
        for name in path:
            obj = obj.get(name) if isinstance(obj, dict) else None
        if isinstance(obj, dict) and last in obj:
            obj[last] = None
    return orjson.dumps(data)


def _in_use():
    return problem_response(409, "idempotency_key_in_use",
                            "A request with this Idempotency-Key is still being processed; retry shortly.",
                            headers={"Retry-After": "1"})


def _reused():
    return problem_response(422, "idempotency_key_reused",
                            "This Idempotency-Key was already used with a different request.")


class IdempotencyMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        key = None
        for name, value in scope["headers"]:
            if name == b"idempotency-key":
                key = value.decode("latin-1")
                break
        state = scope.get("state", {})
        principal = state.get("principal")
        if key is None or principal is None:
            return await self.app(scope, receive, send)
        if not key.strip() or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            response = problem_response(
                422, "validation_error", f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.",
                [{"field": "Idempotency-Key", "message": "Invalid idempotency key."}],
            )
            return await response(scope, receive, send)

        body = state.get("body", b"")
        fp = fingerprint(scope["method"], scope["path"], scope.get("query_string", b""), body)
        db = request_db(scope)
        await db.begin_writes()
        conn = await db.connection()
        ident = {"api_key_id": principal.key_id, "key": key}
        if conn.dialect.name == "postgresql":
            if not (await conn.execute(_LOCK, {"lock_id": lock_id(principal.key_id, key)})).scalar():
                return await _in_use()(scope, receive, send)
        rec = (await conn.execute(_FIND, ident)).first()
        if rec is not None:
            if clock.now() - rec.created_at > timedelta(seconds=get_settings().idempotency_ttl_seconds):
                await conn.execute(delete(T).where(T.c.api_key_id == principal.key_id, T.c.key == key))
            elif rec.fingerprint != fp:
                return await _reused()(scope, receive, send)
            else:
                stored = rec.response_body or b""
                headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in rec.response_headers or []]
                headers += [(b"idempotent-replayed", b"true"), (b"content-length", str(len(stored)).encode())]
                await send({"type": "http.response.start", "status": rec.response_status, "headers": headers})
                await send({"type": "http.response.body", "body": stored})
                return

        # Run the request inside a savepoint, so a 4xx answer can be stored without its changes.
        savepoint = await conn.begin_nested()
        held = HeldResponse()
        await self.app(scope, receive, held)
        status, out, headers = held.status, held.body, held.headers
        if status >= 500 or status in NOT_STORED:
            if savepoint.is_active:
                await savepoint.rollback()
        else:
            if status >= 400 and not db.commit_on_error:
                if db.session is not None:
                    db.session.expunge_all()  # nothing of the failed work may be flushed later
                if savepoint.is_active:
                    await savepoint.rollback()
                db.commit_on_error = True  # the stored answer stays
            else:  # a success, or a 4xx whose route keeps what it wrote (a counted wrong pickup code)
                await db.flush()
                if savepoint.is_active:
                    await savepoint.commit()
            secret_fields = state.get("secret_fields")
            stored_body = _redact(out, secret_fields) if secret_fields else out
            await conn.execute(T.insert().values(
                api_key_id=principal.key_id, key=key, fingerprint=fp, state="done", response_status=status,
                response_headers=[[n.decode("latin-1"), v.decode("latin-1")] for n, v in headers
                                  if n.lower() in STORED_HEADERS],
                response_body=stored_body, created_at=clock.now()))
        await held.send_to(send)
