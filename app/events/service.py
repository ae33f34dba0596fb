"""The outbox interface every domain uses: `await emit(session, "order.created", {...})`.

The row is added to the caller's transaction, so an event exists exactly when the change it
describes was committed (a rolled-back request, or a savepoint rolled back for a 4xx, takes
its events with it).

Besides the payload each row gets
- `tx`, the commit-safe position GET /v1/events pages by (feed.py): on PostgreSQL the id of
  the writing transaction (`txid_current()`, assigned before the commit, so the feed holds
  back every event of a transaction still running); on SQLite one more than the largest so
  far, taken inside the INSERT while the connection holds SQLite's only write lock, so the
  order of `tx` is the order of commits;
- `channels`, the channels whose keys may read it (scope.py): the `channel` given and, for
  products and price lists, the channels named in the payload (`data.channels`; a product in
  `draft` is seen by admin only).
"""
from typing import Any

from sqlalchemy import func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.db import is_postgres
from app.core.ids import new_id
from app.events.models import Event

E = Event.__table__
_LISTS_CHANNELS = ("product.", "price_list.")


def audience(type_: str, data: dict[str, Any], channel: str | None) -> str | None:
    """The `channels` column: ",a,b," (None: no channel key may read it)."""
    found = {channel} if channel else set()
    if type_.startswith(_LISTS_CHANNELS) and isinstance(data, dict):
        listed = data.get("channels")
        if isinstance(listed, list) and not (type_.startswith("product.") and data.get("status") == "draft"):
            found.update(c for c in listed if isinstance(c, str) and c)
    return "," + ",".join(sorted(found)) + "," if found else None


def _tx(session: AsyncSession):
    if is_postgres(session):
        return func.txid_current()
    # SQLite: evaluated inside the INSERT, under the write lock BEGIN IMMEDIATE took
    return select(func.coalesce(func.max(E.c.tx), literal(0)) + 1).scalar_subquery()


async def insert_events(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Rows {id, type, data, channel, location, created_at}: written with their tx and audience."""
    if not rows:
        return
    for r in rows:
        r["channels"] = audience(r["type"], r["data"], r.get("channel"))
        r["delivered"] = False
    stmt = insert(E).values(tx=_tx(session))
    if len(rows) == 1:
        await session.execute(stmt.values(**rows[0]))
    else:
        await session.execute(stmt, rows)


async def emit(
    session: AsyncSession,
    type: str,
    data: dict[str, Any],
    *,
    channel: str | None = None,
    location: str | None = None,
) -> str:
    event_id = new_id("evt")
    await insert_events(session, [{"id": event_id, "type": type, "data": data, "channel": channel,
                                   "location": location, "created_at": clock.now()}])
    return event_id


async def emit_many(session: AsyncSession, events: list[dict[str, Any]]) -> None:
    """Set-based: one INSERT for many events ({type, data, channel?, location?})."""
    if not events:
        return
    now = clock.now()
    await insert_events(session, [
        {"id": new_id("evt"), "type": e["type"], "data": e["data"], "channel": e.get("channel"),
         "location": e.get("location"), "created_at": now}
        for e in events
    ])
