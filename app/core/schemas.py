"""Base classes and field types for request and response bodies."""
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

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


class Address(Input):
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    line1: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    line2: Annotated[str, StringConstraints(max_length=200)] | None = None
    postal_code: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    city: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    country: Country
    lat: Lat | None = None
    lon: Lon | None = None
