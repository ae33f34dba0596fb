"""Idempotency-Key for every POST, stored in the database (safe with many workers).

* First request with a key claims it with an INSERT (the primary key makes the
  claim atomic on both databases), runs, and stores its response.
* Same key + same request  -> the stored response, byte for byte, with
  `Idempotent-Replayed: true`.
* Same key + other request -> 422 idempotency_key_reused.
* Same key while the first still runs -> 409 idempotency_key_in_use.
Keys are scoped to the API key and kept IDEMPOTENCY_TTL_SECONDS (24 h). 5xx,
401 and 429 answers are not stored, so the client may retry them.
"""
import hashlib
from datetime import datetime, timedelta

import orjson
from sqlalchemy import LargeBinary, delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel

from app.core import clock
from app.core.db import JSONType, UTCDateTime, sessionmaker
from app.core.errors import problem_response
from app.core.settings import get_settings

MAX_KEY_LENGTH = 255
NOT_STORED = {401, 429}
STORED_HEADERS = {b"content-type", b"etag", b"location"}


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    api_key_id: str = Field(primary_key=True, max_length=40)
    key: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    fingerprint: str = Field(max_length=64)
    state: str = Field(max_length=10)  # running | done
    response_status: int | None = None
    response_headers: list | None = Field(default=None, sa_type=JSONType)
    response_body: bytes | None = Field(default=None, sa_type=LargeBinary)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)


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


async def _claim(api_key_id: str, key: str, fp: str):
    """Returns ("claimed", None) or ("existing", record)."""
    settings = get_settings()
    now = clock.now()
    for _ in range(3):
        async with sessionmaker()() as session:
            session.add(IdempotencyRecord(api_key_id=api_key_id, key=key, fingerprint=fp, state="running", created_at=now))
            try:
                await session.commit()
                return "claimed", None
            except IntegrityError:
                await session.rollback()
            rec = await session.get(IdempotencyRecord, (api_key_id, key))
            if rec is None:
                continue  # deleted meanwhile: try again
            age = now - rec.created_at
            if age > timedelta(seconds=settings.idempotency_ttl_seconds):
                await session.execute(
                    delete(IdempotencyRecord).where(
                        IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key,
                        IdempotencyRecord.created_at == rec.created_at,
                    )
                )
                await session.commit()
                continue
            if (
                rec.state == "running" and rec.fingerprint == fp
                and age > timedelta(seconds=settings.idempotency_lock_timeout_seconds)
            ):
                # the first attempt died without answering: take the key over
                res = await session.execute(
                    update(IdempotencyRecord)
                    .where(
                        IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key,
                        IdempotencyRecord.created_at == rec.created_at, IdempotencyRecord.state == "running",
                    )
                    .values(created_at=now)
                )
                await session.commit()
                if res.rowcount == 1:
                    return "claimed", None
                continue
            return "existing", rec
    return "existing", None


async def _finish(api_key_id: str, key: str, status: int, headers: list, body: bytes) -> None:
    async with sessionmaker()() as session:
        where = (IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key)
        if status >= 500 or status in NOT_STORED:
            await session.execute(delete(IdempotencyRecord).where(*where))
        else:
            stored = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in headers if n.lower() in STORED_HEADERS]
            await session.execute(
                update(IdempotencyRecord).where(*where).values(
                    state="done", response_status=status, response_headers=stored, response_body=body,
                )
            )
        await session.commit()


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
        principal = scope.get("state", {}).get("principal")
        if key is None or principal is None:
            return await self.app(scope, receive, send)
        if not key.strip() or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            response = problem_response(
                422, "validation_error", f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.",
                [{"field": "Idempotency-Key", "message": "Invalid idempotency key."}],
            )
            return await response(scope, receive, send)

        chunks = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        fp = fingerprint(scope["method"], scope["path"], scope.get("query_string", b""), body)

        outcome, rec = await _claim(principal.key_id, key, fp)
        if outcome == "existing":
            if rec is None or rec.state == "running":
                if rec is not None and rec.fingerprint != fp:
                    response = problem_response(
                        422, "idempotency_key_reused",
                        "This Idempotency-Key was already used with a different request.",
                    )
                else:
                    response = problem_response(
                        409, "idempotency_key_in_use",
                        "A request with this Idempotency-Key is still being processed; retry shortly.",
                        headers={"Retry-After": "1"},
                    )
                return await response(scope, receive, send)
            if rec.fingerprint != fp:
                response = problem_response(
                    422, "idempotency_key_reused",
                    "This Idempotency-Key was already used with a different request.",
                )
                return await response(scope, receive, send)
            headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in rec.response_headers or []]
            headers.append((b"idempotent-replayed", b"true"))
            headers.append((b"content-length", str(len(rec.response_body or b"")).encode()))
            await send({"type": "http.response.start", "status": rec.response_status, "headers": headers})
            await send({"type": "http.response.body", "body": rec.response_body or b""})
            return

        replayed = False

        async def replay_receive():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        start_message = {}
        out_chunks: list[bytes] = []

        async def capture_send(message):
            if message["type"] == "http.response.start":
                start_message.update(message)
            elif message["type"] == "http.response.body":
                out_chunks.append(message.get("body", b""))

        try:
            await self.app(scope, replay_receive, capture_send)
        except BaseException:
            await _finish(principal.key_id, key, 500, [], b"")
            raise
        status = start_message.get("status", 500)
        headers = list(start_message.get("headers", []))
        out = b"".join(out_chunks)
        await _finish(principal.key_id, key, status, headers, out)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": out})
