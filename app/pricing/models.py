from datetime import datetime

from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.models import id_field, json_field, ts_field


class PriceList(SQLModel, table=True):
    __tablename__ = "price_lists"

    id: str = id_field()
    code: str = Field(max_length=100, unique=True, index=True)
    name: str | None = Field(default=None, max_length=200)
    currency: str = Field(max_length=3)
    channels: list = json_field(list)  # channel codes
    customer_group: str | None = Field(default=None, max_length=100)
    valid_from: datetime | None = ts_field(nullable=True)
    valid_to: datetime | None = ts_field(nullable=True)
    priority: int = 0
    active: bool = True
    version: int = 1
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class PriceEntry(SQLModel, table=True):
    """One price of one SKU in one list; min_quantity > 1 is a tier price."""

    __tablename__ = "prices"
    __table_args__ = (Index("ix_prices_sku", "sku", "price_list_id"),
                      Index("ix_prices_updated_at", "updated_at"))  # the listing feed's updated_since

    price_list_id: str = Field(foreign_key="price_lists.id", primary_key=True, max_length=40, ondelete="CASCADE")
    sku: str = Field(primary_key=True, max_length=100)
    min_quantity: int = Field(primary_key=True, default=1)
    amount: int = Field(sa_type=BigInteger)  # money: 64 bits (schemas allow up to MAX_AMOUNT)
    updated_at: datetime = ts_field()


class TaxRate(SQLModel, table=True):
    __tablename__ = "tax_rates"
    __table_args__ = (UniqueConstraint("country", "tax_class", name="uq_tax_rates_country_class"),)

    id: str = id_field()
    country: str = Field(max_length=2)
    tax_class: str = Field(max_length=10)
    rate_bp: int
    version: int = 1
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class Promotion(SQLModel, table=True):
    __tablename__ = "promotions"

    id: str = id_field()
    code: str = Field(max_length=100, unique=True, index=True)
    name: str = Field(max_length=200)
    type: str = Field(max_length=20)
    params: dict = json_field(dict)
    skus: list | None = json_field(lambda: None, nullable=True)
    categories: list | None = json_field(lambda: None, nullable=True)
    channels: list | None = json_field(lambda: None, nullable=True)
    customer_groups: list | None = json_field(lambda: None, nullable=True)
    coupon_code: str | None = Field(default=None, max_length=100, index=True)
    valid_from: datetime | None = ts_field(nullable=True)
    valid_to: datetime | None = ts_field(nullable=True)
    priority: int = 0
    stackable: bool = True
    active: bool = Field(default=True, index=True)
    version: int = 1
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()
