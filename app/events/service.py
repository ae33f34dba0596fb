"""The outbox interface every domain uses: `await emit(session, "order.created", {...})`.

The row is added to the caller's transaction, so an event exists exactly when
the change it describes was committed.
"""
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.ids import new_id
from app.events.models import Event


async def emit(
    session: AsyncSession,
    type: str,
    data: dict[str, Any],
    *,
    channel: str | None = None,
    location: str | None = None,
) -> str:
    event_id = new_id("evt")
    await session.execute(
        insert(Event).values(
            id=event_id, type=type, data=data, channel=channel, location=location,
            created_at=clock.now(), delivered=False,
        )
    )
    return event_id


async def emit_many(session: AsyncSession, events: list[dict[str, Any]]) -> None:
    """Set-based: one INSERT for many events ({type, data, channel?, location?})."""
    if not events:
        return
    now = clock.now()
    rows = [
        {"id": new_id("evt"), "type": e["type"], "data": e["data"], "channel": e.get("channel"),
         "location": e.get("location"), "created_at": now, "delivered": False}
        for e in events
    ]
    await session.execute(insert(Event), rows)
