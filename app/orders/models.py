"""Carts, orders, their lines, fulfillments (with the lines each serves) and status history.

Money columns are 64-bit integers in minor units. An order line keeps what the quote engine
computed for it (unit price, discounts, total, tax, bundle component shares), so a return can
refund exactly (pricing.engine.refund_for_units over `total` / `tax_amount` / `quantity`).
A fulfillment holds its stock as `reserved` on the inventory levels of its location (reference:
the fulfillment id) from checkout until it ships or is collected (stock leaves on_hand), is
declined or cancelled (released), or expires (released).
"""
from datetime import datetime

from sqlalchemy import BigInteger, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime
from app.core.models import id_field, json_field, ts_field


class Cart(SQLModel, table=True):
    __tablename__ = "carts"
    __table_args__ = (Index("ix_carts_customer_source", "customer_id", "created_at",  # attribution (app/reports)
                            postgresql_where=text("source IS NOT NULL"), sqlite_where=text("source IS NOT NULL")),)

    id: str = id_field()  # cart_<ulid>
    channel: str = Field(max_length=100, index=True)  # channel code
    customer_id: str | None = Field(default=None, max_length=40)
    coupon_codes: list = json_field(list)
    lines: list = json_field(list)  # [{sku, quantity}] in the client's order
    fulfillment: dict = json_field(dict)  # {method, location?, address?}
    status: str = Field(default="open", max_length=12)  # open | completed
    order_id: str | None = Field(default=None, max_length=40)
    api_key_id: str | None = Field(default=None, max_length=40)  # who made it (storefront carts are theirs)
    source: str | None = Field(default=None, max_length=100)  # attribution, passed to the order (app/reports)
    campaign: str | None = Field(default=None, max_length=100)
    version: int = 1
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_orders_channel_external_id"),
                      Index("ix_orders_customer_created", "customer_id", "created_at"),  # a customer's orders, reports
                      # a period's orders, index-only for the sales report (migration 0019; SQLite: created_at alone)
                      Index("ix_orders_report", "created_at", postgresql_include=[
                          "id", "status", "channel", "currency", "location", "source", "campaign", "customer_id",
                          "coupon_codes", "live_units", "live_total", "live_discount_total", "returned_units",
                          "returned_total"]),
                      # a channel's orders in time order; index-only for attribution's in-store sales (app/reports)
                      Index("ix_orders_channel_created", "channel", "created_at",
                            postgresql_include=["id", "customer_id", "source", "status", "location"]),
                      # the online touches of known customers, index-only for attribution (app/reports/attribution.py)
                      Index("ix_orders_touches", "created_at",
                            postgresql_include=["customer_id", "channel", "source", "campaign"],
                            postgresql_where=text("source IS NOT NULL AND customer_id IS NOT NULL"),
                            sqlite_where=text("source IS NOT NULL AND customer_id IS NOT NULL")))

    id: str = id_field()  # ord_<ulid>
    number: str = Field(max_length=30, unique=True, index=True)  # WEB-000123
    channel: str = Field(max_length=100)  # indexed by ix_orders_channel_created
    external_id: str | None = Field(default=None, max_length=200)
    cart_id: str | None = Field(default=None, max_length=40, unique=True)
    customer_id: str | None = Field(default=None, max_length=40, index=True)
    email: str | None = Field(default=None, max_length=320)
    status: str = Field(max_length=20)  # pending_payment | confirmed | partially_fulfilled | fulfilled | cancelled
    payment_status: str = Field(default="unpaid", max_length=20)
    payment_provider: str | None = Field(default=None, max_length=20)  # stripe | external | none
    payment_reference: str | None = Field(default=None, max_length=200, index=True)  # Stripe: the PaymentIntent id
    # the payment's figures (app/payments): what the provider holds, took and gave back
    amount_authorized: int = Field(default=0, sa_type=BigInteger)
    amount_captured: int = Field(default=0, sa_type=BigInteger)
    amount_refunded: int = Field(default=0, sa_type=BigInteger)
    multicapture: bool = False  # the authorization may be captured in parts (one per shipment)
    capture_before: datetime | None = ts_field(nullable=True)  # the authorization lapses then
    authorization_warned_at: datetime | None = ts_field(nullable=True)
    payment_expires_at: datetime | None = ts_field(nullable=True)  # pending_payment: cancelled after this
    price_source: str = Field(default="quote", max_length=10)  # quote | external
    currency: str = Field(max_length=3)
    prices_include_tax: bool = True
    subtotal: int = Field(sa_type=BigInteger)
    discount_total: int = Field(sa_type=BigInteger)
    tax_total: int = Field(sa_type=BigInteger)
    total: int = Field(sa_type=BigInteger)
    coupon_codes: list = json_field(list)
    promotions: list = json_field(list)  # the quote's promotions [{code, …}]
    fulfillment_method: str = Field(max_length=10)  # ship | pickup | reserve (as ordered)
    shipping_address: dict | None = json_field(lambda: None, nullable=True)
    location: str | None = Field(default=None, max_length=100)  # pickup/reserve store, POS store
    source: str | None = Field(default=None, max_length=100)  # attribution (referrer, utm_source): app/reports
    campaign: str | None = Field(default=None, max_length=100)  # attribution (utm_campaign)
    # what the order sold, summed from its lines for the sales report (app/orders/reporting.py)
    live_units: int = 0
    live_total: int = Field(default=0, sa_type=BigInteger)
    live_discount_total: int = Field(default=0, sa_type=BigInteger)
    returned_units: int = 0
    returned_total: int = Field(default=0, sa_type=BigInteger)
    api_key_id: str | None = Field(default=None, max_length=40)
    version: int = 1
    created_at: datetime = ts_field()  # indexed by ix_orders_report
    updated_at: datetime = ts_field()


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_lines"
    # the sales report by SKU, index-only (migration 0019); recommendations; references
    __table_args__ = (Index("ix_order_lines_sku_order", "sku", "order_id", postgresql_include=[
        "quantity", "quantity_cancelled", "quantity_returned", "total", "discount_total", "order_created_at",
        "order_channel", "order_currency", "order_location", "order_coupon"]),)

    id: str = id_field()  # ol_<ulid>
    order_id: str = Field(max_length=40, foreign_key="orders.id", index=True)
    position: int
    sku: str = Field(max_length=100)
    title: str | None = Field(default=None, max_length=500)
    quantity: int
    unit_price: int = Field(sa_type=BigInteger)
    subtotal: int = Field(sa_type=BigInteger)
    discounts: list = json_field(list)  # [{promotion, amount}]
    discount_total: int = Field(sa_type=BigInteger)
    total: int = Field(sa_type=BigInteger)  # what the customer pays for the line (tax included as charged)
    tax_rate_bp: int
    tax_amount: int = Field(sa_type=BigInteger)
    components: list | None = json_field(lambda: None, nullable=True)  # bundle: [{sku, quantity, …shares}]
    quantity_fulfilled: int = 0
    quantity_cancelled: int = 0  # unfulfillable or cancelled units
    quantity_returned: int = 0
    # the order's values that never change after checkout, for the sales report by SKU (app/orders/reporting.py)
    order_created_at: datetime = Field(sa_type=UTCDateTime)
    order_channel: str = Field(max_length=100)
    order_currency: str = Field(max_length=3)
    order_location: str | None = Field(default=None, max_length=100)
    order_coupon: bool


class Fulfillment(SQLModel, table=True):
    __tablename__ = "fulfillments"
    __table_args__ = (Index("ix_fulfillments_location_status", "location_id", "status"),
                      Index("ix_fulfillments_status_expires_at", "status", "expires_at"),  # the expiry job
                      Index("ix_fulfillments_created_at", "created_at"))  # reports by location

    id: str = id_field()  # ful_<ulid>
    order_id: str = Field(max_length=40, foreign_key="orders.id", index=True)
    location_id: str = Field(max_length=40, foreign_key="locations.id")
    location: str = Field(max_length=100)  # location code
    method: str = Field(max_length=10)  # ship | pickup | reserve
    kind: str = Field(max_length=10)  # ship | pickup | reserve | dropship (states.TRANSITIONS)
    status: str = Field(max_length=12)  # open | ready | shipped | collected | declined | cancelled | expired
    sourcing: dict = json_field(dict)  # {strategy, rule, rejected: [{location, reason}]}
    replaces: str | None = Field(default=None, max_length=40)  # the declined fulfillment it re-sources
    pickup_code: str | None = Field(default=None, max_length=12)
    pickup_attempts: int = 0
    expires_at: datetime | None = ts_field(nullable=True)
    carrier: str | None = Field(default=None, max_length=100)
    tracking_number: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=500)  # decline / cancel reason
    version: int = 1
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class FulfillmentLine(SQLModel, table=True):
    __tablename__ = "fulfillment_lines"

    fulfillment_id: str = Field(primary_key=True, max_length=40, foreign_key="fulfillments.id")
    order_line_id: str = Field(primary_key=True, max_length=40, foreign_key="order_lines.id")
    sku: str = Field(max_length=100)
    quantity: int


class FulfillmentEvent(SQLModel, table=True):
    """Every status change of a fulfillment: from, to, when, by which key."""

    __tablename__ = "fulfillment_events"

    id: str = id_field()  # fev_<ulid>
    fulfillment_id: str = Field(max_length=40, foreign_key="fulfillments.id", index=True)
    from_status: str | None = Field(default=None, max_length=12)
    to_status: str = Field(max_length=12)
    api_key_id: str | None = Field(default=None, max_length=40)
    note: str | None = Field(default=None, max_length=500)
    created_at: datetime = ts_field()


class OrderCounter(SQLModel, table=True):
    """SQLite's order numbers (PostgreSQL uses the sequence order_number_seq)."""

    __tablename__ = "order_counters"

    name: str = Field(primary_key=True, max_length=20)
    last: int = Field(default=0, sa_type=BigInteger)
