"""Request and response shapes of returns (API.md section 10)."""
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from app.core.schemas import Code, Input, Int, Money
from app.returns.states import Condition, RefundMethod

Ref = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-/]*$")]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Quantity = Annotated[Int, Field(ge=1, le=100_000)]
MAX_LINES = 500


class CreateStatus(StrEnum):
    """How a return starts: received now (`completed`), or opened online (`authorized`)."""

    completed = "completed"
    authorized = "authorized"


# --------------------------------------------------------------------------- requests

class ReturnLineIn(Input):
    order_line_id: Ref
    quantity: Quantity
    reason: Reason | None = None
    condition: Condition | None = Field(
        default=None, description="Required when the goods are received (`completed`); an authorization may state "
                                  "what the customer reports, the store decides on completion")


class ReturnCreate(Input):
    order: Ref = Field(description="Order id (`ord_…`) or number (`WEB-000123`), from any channel")
    location: Code | None = Field(
        default=None, description="Where the goods are received (code or id): a POS key's own store by default; "
                                  "admin names an active location with the returns capability. Optional for an "
                                  "authorization")
    lines: Annotated[list[ReturnLineIn], Field(min_length=1, max_length=MAX_LINES)]
    refund_method: RefundMethod = RefundMethod.original
    status: CreateStatus | None = Field(
        default=None, description="`completed` (default for POS and admin): goods received now, refund and stock at "
                                  "once. `authorized` (default for storefront keys): a return opened online, with a "
                                  "`code` any store completes")


class CompleteLineIn(Input):
    order_line_id: Ref
    condition: Condition


class ReturnComplete(Input):
    location: Code | None = Field(default=None, description="Default: the POS key's store, else the location "
                                                            "the authorization names")
    lines: Annotated[list[CompleteLineIn], Field(min_length=1, max_length=MAX_LINES)] | None = Field(
        default=None, description="The condition the store found, per authorized line (default: as authorized, "
                                  "else resellable)")
    refund_method: RefundMethod | None = Field(default=None, description="Default: as authorized")


class ReturnCancel(Input):
    reason: Reason | None = None


# --------------------------------------------------------------------------- responses (OpenAPI)

class ChargebackOut(BaseModel):
    location: str = Field(description="The dropship partner's location code")
    quantity: int
    amount: Money


class ReturnLineOut(BaseModel):
    id: str
    order_line_id: str
    sku: str
    quantity: int
    reason: str | None
    condition: Condition | None
    refund: Money = Field(description="What these units cost the customer (discounts allocated, tax as charged)")
    tax: Money = Field(description="The tax inside `refund`")
    chargeback: ChargebackOut | None = Field(description="Units a dropship partner shipped: charged back to it")
    chargebacks: list[ChargebackOut] = Field(description="Every partner's charge-back (more than one when a line's "
                                                         "units came from several partners)")
    sources: list[dict[str, Any]] = Field(description="The fulfillments the units came from: "
                                                      "[{fulfillment_id, location, kind, quantity, fulfilled_at}]")


class RefundOut(BaseModel):
    """The payments service's refund record (its fields as it renders them)."""

    model_config = {"extra": "allow"}
    id: str | None = None
    amount: Money
    provider: str | None = None
    status: str | None = None
    reference: str | None = None


class ReturnOut(BaseModel):
    id: str
    object: Literal["return"] = "return"
    order: str
    order_number: str
    channel: str
    location: str | None
    status: str
    code: str | None = Field(description="Authorizations: what the customer shows at any store (QR-ready)")
    lines: list[ReturnLineOut]
    refund_method: RefundMethod
    refund_total: Money
    tax_total: Money
    refund: RefundOut | None = Field(description="The refund record (null: nothing refunded yet, or zero)")
    expires_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class ReturnList(BaseModel):
    data: list[ReturnOut]
    next_cursor: str | None


class ReturnableLineOut(BaseModel):
    order_line_id: str
    sku: str
    title: str | None
    quantity: int
    quantity_fulfilled: int
    quantity_returned: int
    quantity_authorized: int
    returnable: int = Field(description="Units that may come back now (fulfilled, not returned or authorized, "
                                        "inside the return window)")
    expired: int = Field(description="Units not returned whose return window has closed")
    window_closes_at: datetime | None
    refund: Money = Field(description="The refund for returning every returnable unit")


class ReturnableOut(BaseModel):
    order: str
    order_number: str
    channel: str
    return_window_days: int
    lines: list[ReturnableLineOut]
