"""Background work of payments (python -m app.cli worker, or INLINE_WORKER=true):

- every 5 s, the payment operations due: pending ones (their first try normally runs right
  after the commit that wrote them; these are the retries, with backoff) and running ones whose
  lease ran out (the process that claimed them died);
- every 30 s, orders left in pending_payment past their channel's payment_timeout_minutes are
  cancelled (their stock released; settling voids the PaymentIntent so it cannot be paid later);
- every 10 minutes, authorizations about to lapse (capture_before within
  AUTHORIZATION_WARNING_HOURS) while goods are still to ship: event
  `payment.authorization_expiring`, once per order.
"""
import logging
from datetime import timedelta

from sqlalchemy import select, update

from app.core import clock
from app.core.db import unit_of_work
from app.core.settings import get_settings
from app.events.service import emit
from app.orders import bulk_transitions
from app.orders.models import Order
from app.payments import service
from app.worker import periodic

log = logging.getLogger("app.payments.jobs")
O = Order.__table__
BATCH = 100


@periodic(5)
async def run_payment_operations() -> int:
    return await service.run_pending()


@periodic(30)
async def expire_unpaid_orders() -> int:
    async with unit_of_work() as session:
        due = list((await session.execute(
            select(O.c.id).where(O.c.status == "pending_payment", O.c.payment_expires_at <= clock.now())
            .order_by(O.c.payment_expires_at).limit(BATCH))).scalars())
    done = 0
    for order_id in due:
        try:
            async with unit_of_work() as session:
                order = (await session.execute(select(O.c.status).where(O.c.id == order_id).with_for_update())).first()
                if order is None or order.status != "pending_payment":
                    continue  # paid (or cancelled) meanwhile
                await bulk_transitions.cancel_order(session, order_id, None, expected_version=None,
                                                    reason="payment not completed in time")
            done += 1
        except Exception:  # noqa: BLE001 - one order never holds up the others
            log.exception("expiring the unpaid order %s failed", order_id)
    return done


@periodic(600)
async def warn_lapsing_authorizations() -> int:
    horizon = clock.now() + timedelta(hours=get_settings().authorization_warning_hours)
    async with unit_of_work() as session:
        rows = (await session.execute(
            update(O).where(O.c.capture_before <= horizon, O.c.authorization_warned_at.is_(None),
                            O.c.amount_authorized > O.c.amount_captured,
                            O.c.status.in_(("confirmed", "partially_fulfilled")))
            .values(authorization_warned_at=clock.now()).returning(
                O.c.id, O.c.number, O.c.channel, O.c.capture_before, O.c.amount_authorized, O.c.amount_captured,
                O.c.currency))).all()
        for r in rows:
            await emit(session, "payment.authorization_expiring",
                       {"order": r.id, "order_number": r.number, "capture_before": r.capture_before.isoformat()
                        .replace("+00:00", "Z"), "uncaptured": {"amount": r.amount_authorized - r.amount_captured,
                                                                 "currency": r.currency}}, channel=r.channel)
    return len(rows)
