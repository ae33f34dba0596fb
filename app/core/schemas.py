"""Base classes and field types for request and response bodies."""
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Codes (sku, channel code, location code…): printable, no spaces, bounded.
Code = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-/]*$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
# Integer bounds keep every number inside PostgreSQL's integer types.
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
NonNegInt = Annotated[int, Field(ge=0, le=2**31 - 1)]
PosInt = Annotated[int, Field(ge=1, le=2**31 - 1)]
Amount = Annotated[int, Field(ge=0, le=10**13)]  # minor units
Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


class Input(BaseModel):
    """Request bodies: unknown fields are rejected with 422 naming the field."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Money(BaseModel):
    amount: int
    currency: str


class Address(Input):
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    line1: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    line2: Annotated[str, StringConstraints(max_length=200)] | None = None
    postal_code: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    city: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    country: Country
    lat: Lat | None = None
    lon: Lon | None = None
