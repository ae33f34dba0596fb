from datetime import datetime

from sqlmodel import Field, SQLModel

from app.core.models import id_field, json_field, ts_field


class Event(SQLModel, table=True):
    """The transactional outbox: written in the business transaction, delivered by the worker."""

    __tablename__ = "events"

    id: str = id_field()  # evt_<ulid>: time ordered, the cursor of GET /v1/events
    type: str = Field(max_length=60, index=True)
    data: dict = json_field(dict)
    channel: str | None = Field(default=None, max_length=100)
    location: str | None = Field(default=None, max_length=100)
    created_at: datetime = ts_field()
    delivered: bool = Field(default=False, index=True)
