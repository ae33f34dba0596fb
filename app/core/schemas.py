"""Base classes and field types for request and response bodies, and the API's one reading of
an RFC 3339 timestamp in a query parameter."""
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints, model_validator

# Codes (sku, channel code, location code…): printable, no spaces, bounded.
Code = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-/]*$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]

# Numbers and booleans of request bodies are STRICT: JSON `true`, `"1"` and `100.0` are not
# integers, `1` and `"true"` are not booleans (422 validation_error naming the field). Every
# integer type also carries bounds that fit the column it ends up in (see
# tests/core/test_strict_types.py, which checks each schema bound against its column):
# 32-bit INTEGER columns (quantities, stock, days, priorities, versions) at most 2^31-1,
# money (BIGINT columns) at most MAX_AMOUNT. Query parameters stay lenient (strings on the wire).
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
MAX_AMOUNT = 10**13  # minor units: 100 billion in a two-decimal currency; prices.amount is BIGINT
Int = Annotated[int, Strict()]  # bound it where used: Annotated[Int, Field(ge=…, le=…)]
Bool = Annotated[bool, Strict()]
Int32 = Annotated[Int, Field(ge=INT32_MIN, le=INT32_MAX)]
NonNegInt = Annotated[Int, Field(ge=0, le=INT32_MAX)]
PosInt = Annotated[Int, Field(ge=1, le=INT32_MAX)]
Amount = Annotated[Int, Field(ge=0, le=MAX_AMOUNT)]  # minor units
Version = Annotated[Int, Field(ge=0, le=INT32_MAX, description="The version you expect (like If-Match); "
                                                               "another one answers 412 version_conflict")]
# JSON numbers: an integer is a fine latitude, `true` or "53.5" are not.
Lat = Annotated[float, Strict(), Field(ge=-90, le=90, allow_inf_nan=False)]
Lon = Annotated[float, Strict(), Field(ge=-180, le=180, allow_inf_nan=False)]

# The same constraints without Strict, for text formats where every value arrives as a string
# (the CSV catalog import): "500" is a weight there, not an error.
LaxNonNegInt = Annotated[int, Field(ge=0, le=INT32_MAX)]


def _find_nul(value, path: str = "") -> str | None:
    """Path of the first string (or key) holding a NUL character; PostgreSQL cannot store one."""
    if isinstance(value, str):
        return (path or "body") if "\x00" in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            if isinstance(k, str) and "\x00" in k:
                return sub
            found = _find_nul(v, sub)
            if found:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _find_nul(v, f"{path}[{i}]")
            if found:
                return found
    return None


class Input(BaseModel):
    """Request bodies: unknown fields are rejected with 422 naming the field; NUL characters too."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data):
        where = _find_nul(data)
        if where:
            raise ValueError(f"{where}: NUL characters (\\u0000) are not allowed in text.")
        return data


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Money(BaseModel):
    amount: int
    currency: str


# ---- problem+json (RFC 9457): the body of every 4xx/5xx answer, for the OpenAPI document ----

class ProblemFieldError(BaseModel):
    field: str = Field(description="Where: `lines[2].sku`, `amount`, `body`…")
    message: str


class Problem(BaseModel):
    """An error, as `application/problem+json` (RFC 9457). Some codes add members
    (`shortages` for insufficient_stock, `current_version` for version_conflict)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": True})

    type: str = Field(description="`https://errors.unified-commerce.dev/errors/<code>`")
    title: str
    status: int
    detail: str
    code: str = Field(description="Machine-readable: validation_error, not_found, version_conflict…")
    errors: list[ProblemFieldError] = Field(description="One entry per bad field (may be empty)")


class Address(Input):
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    line1: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    line2: Annotated[str, StringConstraints(max_length=200)] | None = None
    postal_code: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    city: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    country: Country
    lat: Lat | None = None
    lon: Lon | None = None


def parse_timestamp(name: str, value: str | None) -> datetime | None:
    """A query parameter's RFC 3339 timestamp as UTC (a date alone, or a time without offset, is
    taken as UTC); 422 validation_error naming `name` otherwise."""
    from app.core.errors import ApiError

    if value is None:
        return None
    raw = value.strip()
    day, sep, time = raw.partition("T")
    if sep:  # an unencoded '+' of the offset arrives as a space
        raw = day + "T" + time.replace(" ", "+")
    try:
        ts = datetime.fromisoformat(raw.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, "validation_error", f"{name} must be an RFC 3339 timestamp like 2026-01-31T12:00:00Z.",
                       errors=[{"field": name, "message": "Not an RFC 3339 timestamp."}]) from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)
