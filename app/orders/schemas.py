"""Request and response shapes of carts, checkout and orders (API.md section 8)."""
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from app.core.schemas import Address, Amount, Code, Input, Int, Version
from app.orders.states import FulfillmentMethod

Coupon = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")]
CustomerRef = Annotated[str, StringConstraints(min_length=1, max_length=320)]
Quantity = Annotated[Int, Field(ge=1, le=100_000)]
# Attribution (utm_source / utm_campaign, a referrer): kept lower-case so `Newsletter` and `newsletter` are one
Attribution = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True, to_lower=True,
                                               pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/+\- ]*$")]
SOURCE = "Attribution: where the shopper came from (utm_source, referrer: newsletter, google…); lower-cased"
CAMPAIGN = "Attribution: the campaign (utm_campaign); lower-cased"
MAX_LINES = 500


class CartStatus(StrEnum):
    open = "open"
    completed = "completed"


class PaymentProvider(StrEnum):
    stripe = "stripe"
    external = "external"  # paid elsewhere: POS cash or card terminal, marketplace, invoice
    store_credit = "store_credit"  # the customer's balance (app/payments/store_credit.py)
    none = "none"


class PaymentStatus(StrEnum):
    unpaid = "unpaid"
    authorized = "authorized"
    paid = "paid"
    partially_refunded = "partially_refunded"
    refunded = "refunded"


class PriceSource(StrEnum):
    quote = "quote"
    external = "external"


# --------------------------------------------------------------------------- requests

class LineIn(Input):
    sku: Code
    quantity: Quantity


class OrderLineIn(LineIn):
    unit_price: Amount | None = Field(
        default=None, description="Marketplace imports (and admin): the marketplace's own unit price, kept as "
                                  "given (`price_source: external`). All lines or none.")


class FulfillmentIn(Input):
    method: FulfillmentMethod = FulfillmentMethod.ship
    location: Code | None = Field(default=None, description="pickup / reserve: the store (code or id)")
    address: Address | None = Field(default=None, description="ship: the shipping address (lat/lon rank locations "
                                                              "by distance)")


class CartCreate(Input):
    channel: Code | None = Field(default=None, description="Default: the API key's channel")
    customer: CustomerRef | None = Field(default=None, description="Customer id, email or loyalty card number")
    coupon_codes: Annotated[list[Coupon], Field(max_length=20)] = []
    lines: Annotated[list[LineIn], Field(max_length=MAX_LINES)] = []
    fulfillment: FulfillmentIn = Field(default_factory=FulfillmentIn)
    source: Attribution | None = Field(default=None, description=SOURCE + "; the order takes it at checkout")
    campaign: Attribution | None = Field(default=None, description=CAMPAIGN)


class CartUpdate(Input):
    customer: CustomerRef | None = Field(default=None, description="null removes the customer")
    coupon_codes: Annotated[list[Coupon], Field(max_length=20)] | None = None
    lines: Annotated[list[LineIn], Field(max_length=MAX_LINES)] | None = Field(
        default=None, description="Replaces every line")
    fulfillment: FulfillmentIn | None = None
    source: Attribution | None = Field(default=None, description=SOURCE + " (null removes it)")
    campaign: Attribution | None = Field(default=None, description=CAMPAIGN + " (null removes it)")
    version: Version | None = None


class PaymentMethod(StrEnum):
    invoice = "invoice"  # on account: B2B customers only (app/customers/groups.py); the order stays unpaid


class PaymentIn(Input):
    provider: PaymentProvider
    reference: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    method: PaymentMethod | None = Field(default=None, description="With provider `external`: `invoice` (customers "
                                                                    "in a B2B group only); the order stays `unpaid` "
                                                                    "until the invoice is settled")


class CheckoutIn(Input):
    payment: PaymentIn


class OrderCreate(Input):
    """POST /v1/orders: a POS sale or a marketplace import (admin: either, by the channel's type)."""

    channel: Code | None = Field(default=None, description="Default: the API key's channel")
    external_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None, description="The marketplace's order id: unique per channel")
    customer: CustomerRef | None = None
    coupon_codes: Annotated[list[Coupon], Field(max_length=20)] = []
    lines: Annotated[list[OrderLineIn], Field(min_length=1, max_length=MAX_LINES)]
    fulfillment: FulfillmentIn | None = Field(default=None, description="Default: ship (imports), the POS's store (sales)")
    payment: PaymentIn | None = Field(default=None, description="Default: external (paid where the order was taken)")
    source: Attribution | None = Field(default=None, description=SOURCE)
    campaign: Attribution | None = Field(default=None, description=CAMPAIGN)


# --------------------------------------------------------------------------- responses (OpenAPI)

class DiscountOut(BaseModel):
    promotion: str
    amount: int


class CartLineOut(BaseModel):
    sku: str
    quantity: int
    title: str | None = None
    unit_price: int | None = None
    subtotal: int | None = None
    discounts: list[DiscountOut] = []
    discount_total: int | None = None
    total: int | None = None
    tax_rate_bp: int | None = None
    tax_amount: int | None = None
    components: list[dict[str, Any]] | None = None
    availability: int | None = Field(default=None, description="Units sellable for the chosen method (ship: "
                                                               "the channel's locations; pickup/reserve: the "
                                                               "store); null: not stock-tracked")


class FulfillmentChoiceOut(BaseModel):
    method: FulfillmentMethod
    location: str | None = None
    address: dict[str, Any] | None = None


class CartOut(BaseModel):
    id: str
    object: Literal["cart"] = "cart"
    channel: str
    customer: str | None
    coupon_codes: list[str]
    status: CartStatus
    order: str | None
    source: str | None = None
    campaign: str | None = None
    fulfillment: FulfillmentChoiceOut
    currency: str
    prices_include_tax: bool
    lines: list[CartLineOut]
    fulfillable: bool | None = Field(default=None, description=(
        "Whether checkout could source the whole basket now: the same plan over the same stock, with the channel's "
        "sourcing strategy and max_splits (null while a pickup / reserve cart has no store)"))
    unsourced: list[str] = Field(default=[], description="SKUs checkout could not source now (409 insufficient_stock)")
    subtotal: int
    discount_total: int
    tax_total: int
    total: int
    promotions: list[dict[str, Any]]
    pricing_error: dict[str, Any] | None = None
    version: int
    created_at: datetime
    updated_at: datetime


class FulfillmentLineOut(BaseModel):
    order_line_id: str
    sku: str
    quantity: int


class TrackingOut(BaseModel):
    carrier: str | None
    tracking_number: str | None


class SourcingOut(BaseModel):
    strategy: str | None = None
    rule: str | None = Field(default=None, description="chosen_store | single_location | priority | distance | "
                                                       "fewest_splits | partner_stock")
    rejected: list[dict[str, str]] = Field(default=[], description="[{location, reason}]: no_stock, "
                                                                   "insufficient_stock, not_ship_capable, …")


class FulfillmentOut(BaseModel):
    id: str
    object: Literal["fulfillment"] = "fulfillment"
    order: str
    order_number: str | None
    location: str
    method: str
    kind: str
    status: str
    lines: list[FulfillmentLineOut]
    tracking: TrackingOut | None
    pickup_code: str | None
    expires_at: datetime | None
    sourcing: SourcingOut
    replaces: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class OrderLineOut(BaseModel):
    id: str
    sku: str
    title: str | None
    quantity: int
    unit_price: int
    subtotal: int
    discounts: list[DiscountOut]
    discount_total: int
    total: int
    tax_rate_bp: int
    tax_amount: int
    components: list[dict[str, Any]] | None = None
    quantity_fulfilled: int
    quantity_cancelled: int
    quantity_returned: int


class TotalsOut(BaseModel):
    subtotal: int
    discount_total: int
    tax_total: int
    total: int


class OrderOut(BaseModel):
    id: str
    object: Literal["order"] = "order"
    number: str
    channel: str
    external_id: str | None
    customer: str | None
    source: str | None = None
    campaign: str | None = None
    status: str
    payment_status: PaymentStatus
    payment: dict[str, Any] = {}  # {provider, reference, authorized, captured, refunded, capture_before, client_secret?}
    price_source: PriceSource
    currency: str
    lines: list[OrderLineOut]
    totals: TotalsOut
    fulfillments: list[FulfillmentOut]
    unfulfillable: list[dict[str, Any]] = []  # [{order_line_id, sku, quantity}] nobody can serve
    returns: list[dict[str, Any]]
    version: int
    created_at: datetime
    updated_at: datetime


class OrderList(BaseModel):
    data: list[OrderOut]
    next_cursor: str | None
