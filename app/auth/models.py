from datetime import datetime

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel

from app.core.models import id_field, ts_field


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: str = id_field()
    name: str = Field(max_length=200)
    role: str = Field(max_length=20)
    secret_hash: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(max_length=16)
    channel_id: str | None = Field(default=None, max_length=40, foreign_key="channels.id")
    channel_code: str | None = Field(default=None, max_length=100)
    location_id: str | None = Field(default=None, max_length=40, foreign_key="locations.id")
    location_code: str | None = Field(default=None, max_length=100)
    rate_limit: str | None = Field(default=None, max_length=40)
    created_at: datetime = ts_field()
    last_used_at: datetime | None = ts_field(nullable=True)
    revoked_at: datetime | None = ts_field(nullable=True)


class RateLimitCounter(SQLModel, table=True):
    """Hits per (caller, window) when rate limits are kept in the database (several workers)."""

    __tablename__ = "rate_limit_counters"

    ident: str = Field(primary_key=True, max_length=80)
    window_start: int = Field(primary_key=True, sa_type=BigInteger)  # unix time // window length
    hits: int = 0
