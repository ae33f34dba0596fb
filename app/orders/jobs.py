"""Background work of orders: pickups and reservations not collected in time expire.

Every 30 seconds the worker expires what is due (bulk_transitions.expire_due): a ready pickup or
an open reservation past its `expires_at` becomes `expired`, its stock is released, the event
`fulfillment.expired` is written and the order's status derived again. One transaction per
batch of orders, so a long backlog neither holds locks for long nor grows one transaction.
A batch that fails is done again order by order, so one order that cannot be expired (logged)
never holds up the others.
"""
import logging

from app.core.db import unit_of_work
from app.orders import bulk_transitions
from app.worker import periodic

log = logging.getLogger("app.orders.jobs")
BATCH = 200  # orders per transaction


@periodic(30)
async def expire_fulfillments() -> int:
    total = 0
    while True:
        try:
            async with unit_of_work() as session:
                n, orders = await bulk_transitions.expire_due(session, limit=BATCH)
        except Exception:  # noqa: BLE001 - retried one order at a time below
            log.exception("expiring a batch failed; going order by order")
            n, orders = await _one_by_one()
        total += n
        if orders < BATCH:
            return total


async def _one_by_one() -> tuple[int, int]:
    async with unit_of_work() as session:
        due = await bulk_transitions.due_orders(session, BATCH)
    done = 0
    for order_id in due:
        try:
            async with unit_of_work() as session:
                done += (await bulk_transitions.expire_due(session, order_ids=[order_id]))[0]
        except Exception:  # noqa: BLE001
            log.exception("expiring the fulfillments of order %s failed", order_id)
    return done, len(due)
