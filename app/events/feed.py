"""GET /v1/events: the outbox as a stream for pollers, oldest first.

Why not simply `WHERE id > :cursor ORDER BY id`: an event's id is made when it is written,
but it becomes visible only when its transaction commits, and transactions do not commit in
the order they wrote. A poller that has read up to id X would never see an event with a
smaller id committed after its read. So the stream is ordered by (tx, id), where `tx` is the
commit-safe position `emit` stores (service.py), and a page only reaches up to the *settled*
horizon:

- PostgreSQL: only events whose writing transaction id is below the oldest write transaction
  still running in this database (from the statement's own snapshot; transactions that
  pg_stat_activity places in another database of the server do not count). Every event that can
  still appear belongs to a running or future transaction, so its tx is above everything
  handed out. A long write transaction in this database holds back the events written after it
  began until it ends (the price of never skipping one);
- SQLite: commits are serialized and `tx` is taken under the write lock, so every committed
  event is settled.

The answer's `next_cursor` is always given (the stream has no end): after the last page it is
the settled horizon itself, so the next poll does not re-read events this key may not see.

Events are kept EVENTS_RETENTION_DAYS (retention.py). A cursor below the retention mark (the
newest position of an event deleted so far) would silently skip the deleted events, so it is
answered `410 cursor_expired` instead, with `cursor`, where to go on from after resynchronising;
no cursor starts at the oldest event kept. The mark is read after the page, so a deletion that
commits while the page is read cannot slip by unnoticed.
"""
import base64
from typing import Any

from sqlalchemy import select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import is_postgres
from app.core.errors import ApiError, validation_error
from app.core.settings import get_settings
from app.events.models import Event
from app.events.retention import mark
from app.events.scope import Scope, render, sql_filter
from app.events.types import unknown

E = Event.__table__
START = (0, "")


def encode_cursor(position: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(f"{position[0]}:{position[1]}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tx, event_id = raw.split(":", 1)
        position = (int(tx), event_id)
    except Exception:
        raise validation_error("cursor", "Invalid cursor: pass a next_cursor of this endpoint.") from None
    if position[0] < 0 or len(event_id) > 40 or (event_id and not event_id.startswith("evt_")):
        raise validation_error("cursor", "Invalid cursor: pass a next_cursor of this endpoint.")
    return position


def parse_types(raw: str | None) -> list[str]:
    if not raw:
        return []
    types = sorted({t.strip() for t in raw.split(",") if t.strip()})
    bad = unknown(types) + (["*"] if "*" in types else [])
    if bad:
        raise ApiError(422, "validation_error", f"Unknown event type(s): {', '.join(bad)}.",
                       errors=[{"field": "type", "message": f"Unknown event type {t!r}."} for t in bad])
    return types


# PostgreSQL: the newest event below the horizon, in one statement (one snapshot). The horizon
# is the oldest transaction id still running *in this database* as of the statement's snapshot
# (or the snapshot's xmax when none runs): a transaction listed in the snapshot as running counts
# unless pg_stat_activity shows it belongs to another database (ids are cluster-wide, and
# another database's long transaction must not hold our stream back). One that has ended since
# the snapshot is no longer listed there and counts, which is safe (it only waits a poll).
_PG_NEWEST_SETTLED = text("""
WITH snap AS MATERIALIZED (SELECT txid_current_snapshot() AS s),
foreign_xids AS (
    SELECT backend_xid::text::bigint AS x FROM pg_stat_activity
    WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()),
horizon AS (
    SELECT LEAST((SELECT txid_snapshot_xmax(s) FROM snap),
                 (SELECT min(r.xid) FROM snap, txid_snapshot_xip(snap.s) AS r(xid)
                  WHERE r.xid % 4294967296 NOT IN (SELECT x FROM foreign_xids))) AS h)
SELECT tx, id FROM events WHERE tx < (SELECT h FROM horizon) ORDER BY tx DESC, id DESC LIMIT 1
""")
_NEWEST = select(E.c.tx, E.c.id).order_by(E.c.tx.desc(), E.c.id.desc()).limit(1)


async def horizon(session: AsyncSession) -> tuple[int, str] | None:
    """The newest settled position (see the module doc), whoever may read it."""
    stmt = _PG_NEWEST_SETTLED if is_postgres(session) else _NEWEST
    row = (await session.execute(stmt)).first()
    return (row.tx, row.id) if row is not None else None


async def check_not_expired(session: AsyncSession, after: tuple[int, str]) -> None:
    """410 cursor_expired when events after the cursor were deleted by retention."""
    deleted_to = await mark(session)
    if after < deleted_to:
        days = get_settings().events_retention_days
        raise ApiError(
            410, "cursor_expired",
            f"Events after this cursor were deleted unread: events are kept {days} days. Resynchronise from the "
            f"resources (or accept the gap), then poll on with the `cursor` of this answer; without a cursor the "
            f"stream starts at the oldest event kept.",
            errors=[{"field": "cursor", "message": f"Older than the event retention ({days} days)."}],
            cursor=encode_cursor(deleted_to))


async def list_events(session: AsyncSession, scope: Scope, *, types: list[str], cursor: str | None,
                      limit: int) -> dict[str, Any]:
    after = decode_cursor(cursor) if cursor else START
    top = await horizon(session)  # first: the page reaches no further than this position
    if top is None or top <= after:
        if cursor:
            await check_not_expired(session, after)
        return {"data": [], "next_cursor": encode_cursor(after), "has_more": False}
    position = tuple_(E.c.tx, E.c.id)
    stmt = (select(E.c.id, E.c.type, E.c.data, E.c.created_at, E.c.tx)
            .where(sql_filter(scope), position > tuple_(*after), position <= tuple_(*top))
            .order_by(E.c.tx, E.c.id).limit(limit + 1))
    if types:
        stmt = stmt.where(E.c.type.in_(types))
    rows = (await session.execute(stmt)).all()
    if cursor:
        await check_not_expired(session, after)
    has_more = len(rows) > limit
    rows = rows[:limit]
    last = (rows[-1].tx, rows[-1].id) if has_more else top
    return {"data": [render(scope, r) for r in rows], "next_cursor": encode_cursor(last), "has_more": has_more}
