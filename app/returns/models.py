"""Returns and their lines.

A return belongs to one order and is received at one location (a store's till, a warehouse for
mail-in returns). It is `completed` at once when the goods are handed in, or starts as an
`authorized` return a customer opened online (a short `code` any store scans), which a store
completes later, the customer cancels, or the return window ends (`expires_at`).

Each line keeps what the return did for one order line: the units, their condition, the refund
and the tax in it (pricing.money.refund_for_units over the order line's stored figures), the
fulfillments the units came from (`sources`, which decide the return window and a dropship
partner's charge-back) and the charge-back itself. `refund` keeps the payments service's refund
record as it answered (null: nothing refunded, e.g. a zero amount or an authorization).
"""
from datetime import datetime

from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.models import id_field, json_field, ts_field


class Return(SQLModel, table=True):
    __tablename__ = "returns"
    __table_args__ = (UniqueConstraint("order_id", "seq", name="uq_returns_order_seq"),
                      Index("ix_returns_status_expires_at", "status", "expires_at"))

    id: str = id_field()  # ret_<ulid>
    order_id: str = Field(max_length=40, foreign_key="orders.id", index=True)
    order_number: str = Field(max_length=30, index=True)
    channel: str = Field(max_length=100, index=True)  # the order's channel code
    seq: int  # 1, 2, … per order: the refund's idempotency key is "<order id>:return:<seq>"
    status: str = Field(max_length=12)  # authorized | completed | cancelled | expired
    code: str | None = Field(default=None, max_length=12, unique=True)  # authorizations: what a store scans
    location_id: str | None = Field(default=None, max_length=40, foreign_key="locations.id", index=True)
    location: str | None = Field(default=None, max_length=100)  # location code
    refund_method: str = Field(max_length=12)  # original | cash | store_credit
    currency: str = Field(max_length=3)
    refund_total: int = Field(default=0, sa_type=BigInteger)
    tax_total: int = Field(default=0, sa_type=BigInteger)
    refund_id: str | None = Field(default=None, max_length=40)
    refund: dict | None = json_field(lambda: None, nullable=True)  # the refund record as payments answered
    expires_at: datetime | None = ts_field(nullable=True)  # authorizations: end of the return window
    completed_at: datetime | None = ts_field(nullable=True)
    cancelled_at: datetime | None = ts_field(nullable=True)
    api_key_id: str | None = Field(default=None, max_length=40)  # who created it
    completed_by: str | None = Field(default=None, max_length=40)  # the key that received the goods
    version: int = 1
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class ReturnLine(SQLModel, table=True):
    __tablename__ = "return_lines"

    id: str = id_field()  # retl_<ulid>
    return_id: str = Field(max_length=40, foreign_key="returns.id", index=True)
    order_line_id: str = Field(max_length=40, foreign_key="order_lines.id", index=True)
    position: int
    sku: str = Field(max_length=100)
    quantity: int
    reason: str | None = Field(default=None, max_length=500)
    condition: str | None = Field(default=None, max_length=12)  # resellable | damaged (authorizations: as stated)
    refund_amount: int = Field(default=0, sa_type=BigInteger)
    tax_amount: int = Field(default=0, sa_type=BigInteger)
    sources: list = json_field(list)  # [{fulfillment_id, location, kind, quantity, fulfilled_at}]
    chargebacks: list = json_field(list)  # [{location, quantity, amount}] dropship partners charged back
