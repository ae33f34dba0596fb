from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from app.core.schemas import Bool, Code, Country, Currency, Input, Int, Name, Output, Version

ChannelType = Literal["web", "app", "pos", "marketplace", "social"]
Days = Annotated[Int, Field(ge=0, le=3650)]
# the strategies of app/orders/sourcing/strategies.py (a test keeps the two in step)
SourcingStrategy = Literal["default", "priority", "nearest"]
MaxSplits = Annotated[Int, Field(ge=1, le=20)]
Minutes = Annotated[Int, Field(ge=5, le=7 * 24 * 60)]  # Stripe holds an authorization at most 7 days


class ChannelCreate(Input):
    code: Code
    name: Name
    type: ChannelType
    currency: Currency
    country: Country
    prices_include_tax: Bool = True
    price_lists: Annotated[list[Code], Field(max_length=50)] = []
    fulfillment_locations: Annotated[list[Code], Field(max_length=1000)] = []
    return_window_days: Days = 30
    pickup_hold_days: Days = 3
    sourcing_strategy: SourcingStrategy = "default"
    max_splits: MaxSplits = 3
    payment_timeout_minutes: Minutes = 60


class ChannelUpdate(Input):
    """`code` and `type` are fixed once created (keys and orders refer to them)."""

    name: Name | None = None
    currency: Currency | None = None
    country: Country | None = None
    prices_include_tax: Bool | None = None
    price_lists: Annotated[list[Code], Field(max_length=50)] | None = None
    fulfillment_locations: Annotated[list[Code], Field(max_length=1000)] | None = None
    return_window_days: Days | None = None
    pickup_hold_days: Days | None = None
    sourcing_strategy: SourcingStrategy | None = None
    max_splits: MaxSplits | None = None
    payment_timeout_minutes: Minutes | None = None
    version: Version | None = None


class ChannelOut(Output):
    id: str
    code: str
    name: str
    type: ChannelType
    currency: str
    country: str
    prices_include_tax: bool
    price_lists: list[str]
    fulfillment_locations: list[str]
    return_window_days: int
    pickup_hold_days: int
    sourcing_strategy: SourcingStrategy
    max_splits: int
    payment_timeout_minutes: int
    version: int
    created_at: datetime
    updated_at: datetime
