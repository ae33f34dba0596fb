from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from app.core.schemas import Code, Input, Int, Output


# ---- stock ----

Reason = Literal["receipt", "count", "damage", "shrinkage", "correction"]
Quantity = Annotated[Int, Field(ge=1, le=1_000_000)]
Count = Annotated[Int, Field(ge=0, le=1_000_000_000)]
Note = Annotated[str, Field(min_length=1, max_length=500)]
Reference = Annotated[str, Field(min_length=1, max_length=200)]


class AdjustmentIn(Input):
    """Exactly one of `delta` (signed change, not 0) and `set` (an absolute count)."""

    # The rule in the schema too: one branch per choice (the other one absent or null).
    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"required": ["delta"], "properties": {"delta": {"type": "integer"}, "set": {"type": "null"}}},
        {"required": ["set"], "properties": {"set": {"type": "integer"}, "delta": {"type": "null"}}},
    ]})

    location: Code
    sku: Code
    delta: Annotated[Int, Field(ge=-1_000_000_000, le=1_000_000_000)] | None = None
    set: Count | None = None
    safety_stock: Count | None = None
    reason: Reason
    note: Note | None = None
    reference: Reference | None = None


class LevelIn(Input):
    sku: Code
    on_hand: Count
    safety_stock: Count | None = None


class LevelsPut(Input):
    location: Code
    levels: Annotated[list[LevelIn], Field(min_length=1, max_length=10_000)]
    reason: Literal["count", "receipt", "correction"] = "count"
    note: Note | None = None


class TransferLineIn(Input):
    sku: Code
    quantity: Quantity


class TransferIn(Input):
    from_: Code = Field(alias="from")
    to: Code = Field(description="Another location than `from`")
    lines: Annotated[list[TransferLineIn], Field(min_length=1, max_length=500)]
    reference: Reference | None = None
    note: Note | None = None

    @field_validator("to")
    @classmethod
    def _not_from(cls, to: str, info: ValidationInfo) -> str:
        if to == info.data.get("from_"):
            raise ValueError("Must be another location than 'from'.")
        return to


class ReceiveIn(Input):
    lines: Annotated[list[TransferLineIn], Field(min_length=1, max_length=500)] | None = None


class ReservationIn(Input):
    sku: Code
    location: Code
    quantity: Quantity
    ttl_seconds: Annotated[Int, Field(ge=1, le=30 * 24 * 3600)] = 900
    reference: Reference | None = None


# ---- stock responses (OpenAPI documentation; routers return plain dicts) ----

class LevelOut(Output):
    sku: str
    location: str
    on_hand: int
    reserved: int
    safety_stock: int
    available: int = Field(description="max(0, on_hand - reserved - safety_stock)")


class AdjustmentOut(LevelOut):
    """The level after the adjustment."""

    object: Literal["adjustment"] = "adjustment"
    reason: str
    change: int = Field(description="The signed change of on_hand (the movement's quantity)")


class LevelChangeOut(LevelOut):
    change: int


class LevelUpdateOut(Output):
    object: Literal["level_update"] = "level_update"
    location: str
    changed: int = Field(description="How many levels changed")
    data: list[LevelChangeOut] = Field(description="Every level of the request, as it is now")


class MovementOut(Output):
    id: str
    object: Literal["movement"] = "movement"
    sku: str
    location: str
    quantity: int = Field(description="Signed change of on_hand")
    reason: str
    reference: str | None
    note: str | None
    created_at: datetime


class TransferLineOut(Output):
    sku: str
    quantity: int
    received: int


class TransferOut(Output):
    id: str
    object: Literal["transfer"] = "transfer"
    from_: str = Field(alias="from")
    to: str
    status: Literal["requested", "in_transit", "received", "cancelled"]
    lines: list[TransferLineOut]
    reference: str | None
    note: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    dispatched_at: datetime | None
    received_at: datetime | None


ReservationStatus = Literal["active", "released", "expired", "committed"]


class PlacedByOut(Output):
    api_key: str | None = Field(description="Id of the API key that placed the hold (null for holds older than this field)")
    location: str | None = Field(description="The store of the POS key that placed it (a hold placed for a customer at "
                                             "that store's till, perhaps at another store); null for other keys")


class ReservationOut(Output):
    id: str
    object: Literal["reservation"] = "reservation"
    sku: str
    location: str = Field(description="Where the stock is held")
    quantity: int
    status: ReservationStatus = Field(description="`expired` as soon as `expires_at` has passed, even before the "
                                                  "worker releases it")
    expires_at: datetime
    reference: str | None
    channel: str | None
    placed_by: PlacedByOut
    created_at: datetime
    updated_at: datetime


class ReservationPage(Output):
    data: list[ReservationOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last one")


class LocationAvailabilityOut(Output):
    location: str
    available: int
    distance_km: float | None = Field(description="From near=lat,lon, when both have coordinates")
    pickup: bool = Field(description="The location offers pickup and has the SKU available")


class SkuAvailabilityOut(Output):
    sku: str
    tracked: bool = Field(description="false: track_inventory is off, never short")
    available_to_sell: int | None = Field(description="Sum over the channel's fulfillment locations")
    locations: list[LocationAvailabilityOut]


class AvailabilityOut(Output):
    channel: str | None
    data: list[SkuAvailabilityOut]
