"""Request bodies of the fulfillment endpoints (POST /v1/fulfillments/{id}/…, /v1/orders/{id}/cancel)."""
from typing import Annotated, Any

from pydantic import BaseModel, Field

from app.core.schemas import Code, Input, PosInt
from app.orders.schemas import FulfillmentLineOut, FulfillmentOut

Text = Annotated[str, Field(min_length=1, max_length=200)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]


class ShipIn(Input):
    carrier: Annotated[str, Field(min_length=1, max_length=100)]
    tracking_number: Text


class CollectIn(Input):
    """A pickup is handed over against its `pickup_code`; a reservation (click & reserve) has no
    code and is paid at the till: `payment_reference` names the external payment (required
    while the order is unpaid)."""

    pickup_code: Annotated[str, Field(min_length=1, max_length=20)] | None = None
    payment_reference: Text | None = None


class DeclineLineIn(Input):
    sku: Code
    quantity: PosInt | None = Field(default=None, description="Units declined (default: all of the SKU here)")


class DeclineIn(Input):
    reason: Reason
    lines: Annotated[list[DeclineLineIn], Field(min_length=1, max_length=500)] | None = Field(
        default=None, description="Only these lines (default: the whole fulfillment)")


class CancelIn(Input):
    reason: Reason | None = None


# --------------------------------------------------------------------------- responses (OpenAPI)

class WorkLineOut(FulfillmentLineOut):
    title: str | None = None


class WorkItemOut(FulfillmentOut):
    """A fulfillment as its worker sees it: with the order's number, shipping address and line titles."""

    lines: list[WorkLineOut]  # type: ignore[assignment]
    reason: str | None = None
    shipping_address: dict[str, Any] | None = None


class WorkQueueOut(BaseModel):
    data: list[WorkItemOut]
    next_cursor: str | None


class UnfulfillableOut(BaseModel):
    order_line_id: str
    sku: str
    quantity: int


class DeclineOut(WorkItemOut):
    """The declined fulfillment, and where its lines went."""

    resourced: list[dict[str, Any]] = Field(
        description="New fulfillments elsewhere that took the declined lines over (in full for admin; for a "
                    "store or partner only {id, status, lines})")
    kept: list[dict[str, Any]] = Field(
        description="Partial decline: the lines not declined, in a new open fulfillment here")
    unfulfillable: list[UnfulfillableOut] = Field(description="Units no other location can serve (cancelled)")
