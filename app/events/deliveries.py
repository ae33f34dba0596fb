"""The delivery log of an endpoint, and redelivery.

    GET  /v1/webhook-endpoints/{id}/deliveries?status=&event=&cursor=&limit=   newest first
    POST /v1/webhook-endpoints/{id}/deliveries/{delivery_id}/redeliver          202

A redelivery makes the delivery due at once: a pending one keeps its remaining attempts; a
delivered or failed one gets one more attempt (a failure then marks it failed again, no
further retries). One being sent right now answers 409 delivery_in_progress. The worker
sends it (never the request).
"""
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.errors import ApiError, validation_error
from app.core.pagination import encode_cursor
from app.core.responses import rfc3339
from app.events.models import WebhookDelivery

D = WebhookDelivery.__table__
STATUSES = ("pending", "delivering", "delivered", "failed")


def render(r: Any) -> dict:
    return {
        "id": r.id, "object": "webhook_delivery", "endpoint": r.endpoint_id, "event": r.event_id,
        "event_type": r.event_type, "status": r.status, "attempts": r.attempts, "max_attempts": r.max_attempts,
        "next_attempt_at": rfc3339(r.next_attempt_at) if r.status == "pending" else None,
        "last_attempt_at": rfc3339(r.last_attempt_at), "last_status_code": r.last_status_code,
        "last_error": r.last_error, "last_latency_ms": r.last_latency_ms,
        "delivered_at": rfc3339(r.delivered_at), "created_at": rfc3339(r.created_at),
    }


async def list_deliveries(session: AsyncSession, endpoint_id: str, *, before: str | None, limit: int,
                          status: str | None, event: str | None) -> dict:
    stmt = select(D).where(D.c.endpoint_id == endpoint_id)
    if status is not None:
        if status not in STATUSES:
            raise validation_error("status", f"One of {', '.join(STATUSES)}.")
        stmt = stmt.where(D.c.status == status)
    if event is not None:
        stmt = stmt.where(D.c.event_id == event)
    if before:
        stmt = stmt.where(D.c.id < before)
    rows = (await session.execute(stmt.order_by(D.c.id.desc()).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"data": [render(r) for r in rows], "next_cursor": encode_cursor(rows[-1].id) if more and rows else None}


async def redeliver(session: AsyncSession, endpoint_id: str, delivery_id: str) -> dict:
    row = (await session.execute(select(D).where(D.c.id == delivery_id, D.c.endpoint_id == endpoint_id))).first()
    if row is None:
        raise ApiError(404, "not_found", f"Delivery {delivery_id!r} of endpoint {endpoint_id!r} was not found.")
    if row.status == "delivering":
        raise ApiError(409, "delivery_in_progress", f"Delivery {delivery_id} is being sent right now; "
                                                    "look at its outcome before sending it again.")
    now = clock.now()
    values: dict[str, Any] = {"status": "pending", "next_attempt_at": now, "updated_at": now}
    if row.status in ("delivered", "failed"):
        values["max_attempts"] = row.attempts + 1
    done = (await session.execute(update(D).where(D.c.id == row.id, D.c.status == row.status)
                                  .values(**values).returning(*D.c))).first()
    if done is None:  # claimed or changed meanwhile
        raise ApiError(409, "delivery_in_progress", f"Delivery {delivery_id} changed meanwhile; look at it again.")
    return render(done)
