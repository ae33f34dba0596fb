from datetime import datetime
from typing import Annotated, Literal

from pydantic import StringConstraints, field_validator

from app.core.schemas import Input, Name, Output

Role = Literal["admin", "storefront", "pos", "marketplace", "dropshipper"]


class ApiKeyCreate(Input):
    name: Name
    role: Role
    channel: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    location: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    rate_limit: Annotated[str, StringConstraints(max_length=40)] | None = None

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, v):
        if v is None:
            return v
        from limits import parse

        try:
            item = parse(v)
        except ValueError:
            raise ValueError("Use a limit like '100/second' or '5000/minute'.") from None
        if item.amount < 1:
            raise ValueError("The limit must allow at least one request.")
        return v


class ApiKeyOut(Output):
    id: str
    name: str
    role: Role
    channel: str | None
    location: str | None
    prefix: str
    rate_limit: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    secret: str
