"""Event retention: the outbox and the delivery log do not grow forever.

A job of the worker (`python -m app.cli worker`, hourly) deletes, with `cutoff = now -
EVENTS_RETENTION_DAYS` (default 30):
- delivery-log rows (`webhook_deliveries`) that are finished (delivered or failed) and last
  changed before the cutoff;
- events created before the cutoff that are fully delivered: fanned out (`delivered`), and no
  delivery still to be sent (pending or delivering) refers to them. An event whose deliveries
  still retry stays until they end. The events of the newest transaction in the stream always
  stay: SQLite numbers the stream's positions on from the largest one kept (service.py).
Each in batches of at most BATCH rows, one short transaction per batch, oldest first (an id
range over the primary key, so a run that finds nothing reads nothing), until a batch comes back
short or the run's time budget is spent; PostgreSQL workers skip each other's locked rows.

Deleting events moves the stream's retention mark (`event_retention`): the newest position
(tx, id) of an event deleted so far, in the batch's transaction. GET /v1/events answers a
cursor below it `410 cursor_expired` (feed.py): events after that cursor were deleted unread,
so the poller must resynchronise from the resources and go on from the cursor the answer gives.
A poller that polls at least once per retention period never sees it.
"""
import time
from datetime import datetime, timedelta

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.db import is_postgres, unit_of_work
from app.core.ids import id_floor
from app.core.settings import get_settings
from app.core.sql import where_in
from app.events.models import Event, EventRetention, WebhookDelivery
from app.worker import periodic

E = Event.__table__
D = WebhookDelivery.__table__
R = EventRetention.__table__
BATCH = 5000
BUDGET_SECONDS = 60.0
UNSENT = ("pending", "delivering")


def cutoff() -> datetime:
    return clock.now() - timedelta(days=get_settings().events_retention_days)


async def _picked(session: AsyncSession, stmt) -> list[str]:
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.execute(stmt)).scalars())


async def delete_deliveries(before: datetime, batch: int = BATCH) -> int:
    """One batch of finished delivery-log rows last changed before `before`."""
    async with unit_of_work() as session:
        ids = await _picked(session, select(D.c.id).where(
            D.c.id < id_floor("whd", before), D.c.status.in_(("delivered", "failed")), D.c.updated_at < before,
        ).order_by(D.c.id).limit(batch))
        if ids:
            await session.execute(D.delete().where(where_in(session, D.c.id, ids)))
    return len(ids)


async def delete_events(before: datetime, batch: int = BATCH) -> int:
    """One batch of fully delivered events created before `before`; the retention mark moves
    to the newest of them (in the same transaction)."""
    async with unit_of_work() as session:
        unsent = select(D.c.event_id).where(D.c.status.in_(UNSENT))
        last_tx = select(func.max(E.c.tx)).scalar_subquery()
        ids = await _picked(session, select(E.c.id).where(
            E.c.id < id_floor("evt", before), E.c.created_at < before, E.c.delivered, E.c.id.not_in(unsent),
            E.c.tx < last_tx,
        ).order_by(E.c.id).limit(batch))
        if not ids:
            return 0
        gone = (await session.execute(
            E.delete().where(where_in(session, E.c.id, ids)).returning(E.c.tx, E.c.id))).all()
        if gone:
            newest = max((r.tx, r.id) for r in gone)
            await session.execute(
                update(R).where(R.c.id == 1, tuple_(R.c.tx, R.c.event_id) < tuple_(*newest))
                .values(tx=newest[0], event_id=newest[1], updated_at=clock.now()))
    return len(ids)


async def mark(session: AsyncSession) -> tuple[int, str]:
    """The retention mark: the newest position of an event deleted so far ((0, "") when none)."""
    row = (await session.execute(select(R.c.tx, R.c.event_id).where(R.c.id == 1))).first()
    return (row.tx, row.event_id) if row is not None else (0, "")


async def purge(batch: int = BATCH, budget_seconds: float = BUDGET_SECONDS) -> dict[str, int]:
    """Everything past retention, batch after batch (see the module doc)."""
    before = cutoff()
    deadline = time.monotonic() + budget_seconds
    done = {"deliveries": 0, "events": 0}
    for key, step in (("deliveries", delete_deliveries), ("events", delete_events)):
        while time.monotonic() < deadline:
            n = await step(before, batch)
            done[key] += n
            if n < batch:
                break
    return done


@periodic(3600)
async def purge_old_events() -> int:
    return sum((await purge()).values())
