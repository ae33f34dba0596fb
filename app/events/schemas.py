"""Request and response shapes of /v1/events and /v1/webhook-endpoints."""
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from app.core.schemas import Bool, Input, Int, Output, Version

EventType = Annotated[str, StringConstraints(min_length=1, max_length=60)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
# a rotation's overlap: how long the old secret still signs (at most 7 days)
OverlapSeconds = Annotated[Int, Field(ge=0, le=7 * 24 * 3600)]
DEFAULT_OVERLAP_SECONDS = 24 * 3600


class EndpointCreate(Input):
    url: Url = Field(description="Where to POST events: http(s), not this API itself")
    events: Annotated[list[EventType], Field(min_length=1, max_length=100)] = Field(
        description='Event types, or ["*"] for every event the key may read')
    active: Bool = True
    description: Annotated[str, StringConstraints(max_length=500)] | None = None


class EndpointUpdate(Input):
    url: Url | None = None
    events: Annotated[list[EventType], Field(min_length=1, max_length=100)] | None = None
    active: Bool | None = None
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    version: Version | None = None


class RotateIn(Input):
    overlap_seconds: OverlapSeconds = Field(
        DEFAULT_OVERLAP_SECONDS, description="How long the old secret keeps signing besides the new one "
                                             "(0: the new one alone at once). Default 24 h, at most 7 days.")


class EndpointOut(Output):
    id: str
    object: Literal["webhook_endpoint"]
    api_key: str = Field(description="The key that owns it (it receives what that key may read)")
    url: str
    description: str | None = None
    events: list[str]
    active: bool
    status: Literal["active", "failing", "disabled"]
    secret: str | None = Field(None, description="Shown once: in the answer that created or rotated it")
    secret_rotation: dict[str, Any] | None = Field(
        None, description="While a rotated secret still signs: {previous_secret_expires_at}")
    failing_since: str | None = None
    version: int
    created_at: str
    updated_at: str


class DeliveryOut(Output):
    id: str
    object: Literal["webhook_delivery"]
    endpoint: str
    event: str
    event_type: str
    status: Literal["pending", "delivering", "delivered", "failed"]
    attempts: int
    max_attempts: int
    next_attempt_at: str | None = None
    last_attempt_at: str | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    last_latency_ms: int | None = None
    delivered_at: str | None = None
    created_at: str


class EventOut(BaseModel):
    id: str
    type: str
    created_at: str
    data: dict[str, Any]


class EventPage(BaseModel):
    data: list[EventOut]
    next_cursor: str = Field(description="Where to poll from next: always given (the stream has no end)")
    has_more: bool
