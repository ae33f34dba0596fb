"""Response shapes of the reports and recommendations (OpenAPI); the routers answer plain dicts."""
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from app.core.schemas import Money


class GroupBy(StrEnum):
    channel = "channel"
    location = "location"
    day = "day"
    sku = "sku"
    source = "source"
    campaign = "campaign"
    currency = "currency"


class PeriodOut(BaseModel):
    from_: str = Field(alias="from", description="UTC, inclusive")
    to: str = Field(description="UTC, exclusive")
    tz: str


class ReturnsOut(BaseModel):
    units: int
    refunded: Money


class SalesGroup(BaseModel):
    channel: str | None = Field(default=None, description="group_by=channel")
    location: str | None = Field(default=None, description="group_by=location: where the units were served")
    day: str | None = Field(default=None, description="group_by=day: YYYY-MM-DD in `tz`")
    sku: str | None = Field(default=None, description="group_by=sku")
    source: str | None = Field(default=None, description="group_by=source|campaign: own or attributed; null: none")
    campaign: str | None = Field(default=None, description="group_by=campaign")
    currency: str
    orders: int
    units: int
    revenue: Money = Field(description="Charged for the units not cancelled, tax included as charged; before returns")
    discounts: Money
    returns: ReturnsOut
    return_rate_bp: int | None = Field(description="returned units ÷ units, basis points")
    coupon_orders: int
    coupon_redemption_rate_bp: int | None = Field(description="orders with a coupon ÷ orders, basis points")
    attributed_orders: int | None = Field(default=None, description="group_by=source|campaign: in-store sales "
                                                                    "credited to an online touch")


class SalesReport(BaseModel):
    object: Literal["report.sales"] = "report.sales"
    group_by: GroupBy
    period: PeriodOut
    channel: str | None
    location: str | None
    attribution_days: int | None = None
    data: list[SalesGroup]
    next_cursor: str | None


class ChannelBuyers(BaseModel):
    channel: str
    buyers: int
    orders: int
    repeat_buyers: int
    repeat_rate_bp: int | None


class CustomersReport(BaseModel):
    object: Literal["report.customers"] = "report.customers"
    period: PeriodOut
    buyers: int
    orders: int
    anonymous_orders: int
    repeat_buyers: int
    returning_buyers: int
    cross_channel_buyers: int
    online_and_store_buyers: int
    repeat_rate_bp: int | None
    returning_rate_bp: int | None
    cross_channel_rate_bp: int | None
    online_and_store_rate_bp: int | None
    channels: list[ChannelBuyers]


class LowStockItem(BaseModel):
    sku: str
    location: str
    on_hand: int
    reserved: int
    safety_stock: int
    available: int
    shortfall: int = Field(description="safety_stock − (on_hand − reserved)")


class LowStockPage(BaseModel):
    data: list[LowStockItem]
    next_cursor: str | None


class Unpriced(BaseModel):
    skus: int
    units: int


class InventoryReport(BaseModel):
    object: Literal["report.inventory"] = "report.inventory"
    location: str | None
    channel: str = Field(description="Whose list prices value the stock")
    valued_at: Literal["list_price"] = "list_price"
    price_lists: list[str]
    stock_value: Money
    levels: int
    units_on_hand: int
    units_reserved: int
    unpriced: Unpriced
    low_stock_count: int
    low_stock: LowStockPage


class Recommendation(BaseModel):
    product: str
    handle: str
    title: str
    category: str | None
    orders_together: int
    score: int


class Recommendations(BaseModel):
    object: Literal["list"] = "list"
    product: str
    channel: str
    location: str | None
    personalized: bool
    data: list[Recommendation]
