"""The outbox (`events`), webhook endpoints and their deliveries.

events
    Written by `emit` in the business transaction. `tx` orders the stream by commit safety:
    PostgreSQL stores the writing transaction's id (`txid_current()`), SQLite a counter taken
    under its single write lock; GET /v1/events pages by (tx, id) and hands out only events of
    finished transactions (see feed.py). `channels` is the event's audience among channels
    (",web-de,pos-hh,"): its own channel and, for products and price lists, the channels they
    are visible in. `delivered` means "fanned out": the delivery worker has written a
    webhook_deliveries row for every endpoint that takes it (or found none).

webhook_endpoints
    One receiver URL per row, owned by the API key that created it (it sees what that key may
    read). `secret` is kept as it is (HMAC needs it; see signing.py for why it is not hashed).
    During a rotation's overlap `previous_secret` signs too, until `previous_expires_at`.

webhook_deliveries
    One row per (endpoint, event): its id is the stable `Webhook-Id` header. `status`
    pending -> delivering (claimed, with a lease in next_attempt_at) -> delivered | pending
    (retry later) | failed (attempts reached max_attempts).

event_retention
    One row: the newest stream position (tx, id) of an event the retention job deleted
    (retention.py); GET /v1/events answers a cursor below it 410 cursor_expired.
"""
from datetime import datetime

from sqlalchemy import BigInteger, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from app.core.models import id_field, json_field, ts_field


class Event(SQLModel, table=True):
    """The transactional outbox: written in the business transaction, delivered by the worker."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_tx", "tx", "id"),
        # the fan-out's work list: only the rows not fanned out yet
        Index("ix_events_undelivered", "id", postgresql_where=text("NOT delivered"),
              sqlite_where=text("delivered = 0")),
        # a type's events in time order (GET /v1/events?type=, the listing feed's last price list change)
        Index("ix_events_type_created_at", "type", "created_at"),
    )

    id: str = id_field()  # evt_<ulid>: time ordered
    type: str = Field(max_length=60)
    data: dict = json_field(dict)
    channel: str | None = Field(default=None, max_length=100)
    location: str | None = Field(default=None, max_length=100)
    channels: str | None = Field(default=None, sa_type=Text)  # ",a,b,": the channels that may read it
    tx: int = Field(default=0, sa_type=BigInteger)  # commit-safe order (PostgreSQL: the transaction id)
    created_at: datetime = ts_field()
    delivered: bool = Field(default=False)  # fanned out to webhook deliveries


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"

    id: str = id_field()  # whe_<ulid>
    api_key_id: str = Field(max_length=40, foreign_key="api_keys.id", index=True)
    url: str = Field(max_length=2000)
    description: str | None = Field(default=None, max_length=500)
    events: list = json_field(list)  # ["order.created", …] or ["*"]
    active: bool = True  # the owner's switch
    status: str = Field(default="active", max_length=10)  # active | failing (disabled: active is false)
    secret: str = Field(max_length=100)  # whsec_…: never answered again after creation / rotation
    previous_secret: str | None = Field(default=None, max_length=100)
    previous_expires_at: datetime | None = ts_field(nullable=True)
    failing_since: datetime | None = ts_field(nullable=True)
    version: int = 1
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    )

    id: str = id_field()  # whd_<ulid>: the Webhook-Id header, stable across retries
    endpoint_id: str = Field(max_length=40, foreign_key="webhook_endpoints.id")
    event_id: str = Field(max_length=40)
    event_type: str = Field(max_length=60)
    status: str = Field(max_length=12)  # pending | delivering | delivered | failed
    attempts: int = 0
    max_attempts: int = 8  # the attempt after which it fails (a redelivery allows one more)
    next_attempt_at: datetime | None = ts_field(nullable=True)  # due time; while delivering: the lease's end
    last_attempt_at: datetime | None = ts_field(nullable=True)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    last_latency_ms: int | None = None
    delivered_at: datetime | None = ts_field(nullable=True)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class EventRetention(SQLModel, table=True):
    __tablename__ = "event_retention"

    id: int = Field(default=1, primary_key=True)  # the one row (made by migration 0018)
    tx: int = Field(default=0, sa_type=BigInteger)  # the newest (tx, event_id) deleted so far
    event_id: str = Field(default="", max_length=40)
    updated_at: datetime = ts_field()
