"""Pricing request and response shapes (routers return plain dicts; the response models document them)."""
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from app.core.schemas import Amount, Bool, Code, Currency, Country, Input, Int, Name, PosInt, Version

PromotionType = Literal["buy_x_pay_y", "tiered_percent", "percent_off", "amount_off", "bundle_price"]
TaxClass = Literal["standard", "reduced", "zero"]
Priority = Annotated[Int, Field(ge=-1_000_000, le=1_000_000)]
CategoryRef = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^\w[\w .&'\-]*(?:/\w[\w .&'\-]*)*$")]
Coupon = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")]


def _unique(values: list | None) -> list | None:
    if values:
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise ValueError(f"Duplicate value {dupes[0]!r}.")
    return values


def Codes(max_length: int = 200):  # noqa: N802  (a type factory)
    return Annotated[list[Code], Field(max_length=max_length), AfterValidator(_unique)]


class PriceListCreate(Input):
    code: Code
    name: Name | None = None
    currency: Currency
    channels: Codes(100) = []  # type: ignore[valid-type]
    customer_group: Code | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    priority: Priority = 0
    active: Bool = True


class PriceListUpdate(Input):
    name: Name | None = None
    channels: Codes(100) | None = None  # type: ignore[valid-type]
    customer_group: Code | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    priority: Priority | None = None
    active: Bool | None = None
    version: Version | None = None


class PriceIn(Input):
    sku: Code
    amount: Amount | None = Field(description="Minor units; null removes this (sku, min_quantity) price")
    min_quantity: PosInt = 1


class TaxRateCreate(Input):
    country: Country
    tax_class: TaxClass
    rate_bp: Annotated[Int, Field(ge=0, le=10_000, description="Basis points: 1900 = 19 %")]


class TaxRateUpdate(Input):
    rate_bp: Annotated[Int, Field(ge=0, le=10_000)]
    version: Version | None = None


class PromotionCreate(Input):
    code: Code
    name: Name
    type: PromotionType
    params: dict[str, Any]
    skus: Codes(1000) | None = None  # type: ignore[valid-type]
    categories: Annotated[list[CategoryRef], Field(max_length=100), AfterValidator(_unique)] | None = None
    channels: Codes(100) | None = None  # type: ignore[valid-type]
    customer_groups: Codes(50) | None = None  # type: ignore[valid-type]
    coupon_code: Coupon | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    priority: Priority = 0
    stackable: Bool = True
    active: Bool = True


class PromotionUpdate(Input):
    name: Name | None = None
    params: dict[str, Any] | None = None
    skus: Codes(1000) | None = None  # type: ignore[valid-type]
    categories: Annotated[list[CategoryRef], Field(max_length=100), AfterValidator(_unique)] | None = None
    channels: Codes(100) | None = None  # type: ignore[valid-type]
    customer_groups: Codes(50) | None = None  # type: ignore[valid-type]
    coupon_code: Coupon | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    priority: Priority | None = None
    stackable: Bool | None = None
    active: Bool | None = None
    version: Version | None = None


class QuoteLineIn(Input):
    sku: Code
    quantity: Annotated[Int, Field(ge=1, le=100_000)]


class QuoteRequest(Input):
    channel: Code | None = Field(default=None, description="Default: the API key's channel")
    customer: Annotated[str, StringConstraints(min_length=1, max_length=320)] | None = Field(
        default=None, description="Customer id or email: their group's prices and promotions")
    customer_group: Code | None = Field(default=None, description="Admin and POS keys: price for this group directly")
    coupon_codes: Annotated[list[Coupon], Field(max_length=20)] = []
    lines: Annotated[list[QuoteLineIn], Field(min_length=1, max_length=500)]


# ---- responses (OpenAPI documentation; routers return plain dicts) ----

class LineDiscountOut(BaseModel):
    promotion: str
    amount: int


class BundleShareOut(BaseModel):
    sku: str
    quantity: int
    allocated: int = Field(description="This component's share of the line total (returns use it)")


class QuoteLineOut(BaseModel):
    sku: str
    quantity: int
    unit_price: int
    price_list: str | None = Field(description="The price list that priced the line (docs/pricing.md: which list wins)")
    subtotal: int
    discounts: list[LineDiscountOut]
    discount_total: int
    total: int = Field(description="What the customer pays for the line (tax included)")
    tax_rate_bp: int
    tax_amount: int
    components: list[BundleShareOut] | None = None


class AppliedPromotionOut(BaseModel):
    code: str
    name: str
    type: PromotionType
    amount: int


class CouponOut(BaseModel):
    code: str
    applied: bool
    reason: Literal["no_matching_items", "min_quantity", "min_subtotal", "not_combinable", "no_discount"] | None = Field(
        default=None, description=(
            "When not applied: no_matching_items (nothing in the basket qualifies, or a set is incomplete), "
            "min_quantity (fewer qualifying units than it needs), min_subtotal (qualifying items worth less than its "
            "min_subtotal), not_combinable (an exclusive promotion gives this basket more), no_discount. A coupon that "
            "can never apply here is refused with 422 invalid_coupon, each error naming its reason: unknown, "
            "not_yet_valid, expired, not_in_channel, customer_group."))
    message: str | None = Field(default=None, description="Why not, in a sentence for the shopper")


class QuoteOut(BaseModel):
    object: Literal["quote"] = "quote"
    channel: str
    customer_group: str | None
    currency: str
    prices_include_tax: bool
    lines: list[QuoteLineOut]
    subtotal: int
    discount_total: int
    tax_total: int
    total: int
    promotions: list[AppliedPromotionOut]
    coupons: list[CouponOut] = Field(description="Each coupon given: applied, or why not")


class PriceListOut(BaseModel):
    id: str
    object: Literal["price_list"] = "price_list"
    code: str
    name: str | None
    currency: str
    channels: list[str]
    customer_group: str | None
    valid_from: datetime | None
    valid_to: datetime | None
    priority: int
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime


class PriceListWarning(BaseModel):
    code: Literal["outranked_in_channel"]
    channel: str
    price_lists: list[str] = Field(description="The lists the channel names that rank ahead of this one there")
    message: str


class PriceListWritten(PriceListOut):
    warnings: list[PriceListWarning] = Field(description=(
        "Channels this list names where lists the channel names in its price_lists still rank ahead of it "
        "(see docs/pricing.md): it takes part there, but prices only the SKUs they do not"))


class PriceListList(BaseModel):
    data: list[PriceListOut]
    next_cursor: str | None


class PriceRowOut(BaseModel):
    sku: str
    min_quantity: int
    amount: int
    currency: str
    updated_at: datetime


class PriceRowList(BaseModel):
    data: list[PriceRowOut]
    next_cursor: str | None


class PromotionOut(BaseModel):
    id: str
    object: Literal["promotion"] = "promotion"
    code: str
    name: str
    type: PromotionType
    params: dict[str, Any]
    skus: list[str] | None
    categories: list[str] | None
    channels: list[str] | None
    customer_groups: list[str] | None
    coupon_code: str | None
    valid_from: datetime | None
    valid_to: datetime | None
    priority: int
    stackable: bool
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime


class TaxRateOut(BaseModel):
    id: str
    object: Literal["tax_rate"] = "tax_rate"
    country: str
    tax_class: TaxClass
    rate_bp: int
    version: int
    created_at: datetime
    updated_at: datetime
