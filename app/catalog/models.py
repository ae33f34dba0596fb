"""Catalog tables: one product catalog for every channel.

A product has variants (the sellable units, each with a unique `sku` and an
optional unique `gtin` barcode). A bundle product has exactly one variant whose
`bundle_components` name other (non-bundle) variants and quantities; its stock
is derived from them. Channel visibility is a join table so that channel-scoped
listing stays one indexed query.
"""
from datetime import datetime

from sqlalchemy import Index, func
from sqlmodel import Field, SQLModel

from app.core.models import id_field, json_field, ts_field


class Product(SQLModel, table=True):
    __tablename__ = "products"

    id: str = id_field()
    handle: str = Field(max_length=200, unique=True, index=True)
    type: str = Field(default="standard", max_length=10)  # standard | bundle
    title: str = Field(max_length=500)
    description: str | None = Field(default=None)
    status: str = Field(default="draft", max_length=10, index=True)  # draft | active | archived
    category: str | None = Field(default=None, max_length=200, index=True)
    attributes: dict = json_field(dict)
    tax_class: str = Field(default="standard", max_length=10)  # standard | reduced | zero
    version: int = 1
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field(index=True)


class ProductChannel(SQLModel, table=True):
    """Where a product is visible (by channel code)."""

    __tablename__ = "product_channels"
    __table_args__ = (Index("ix_product_channels_channel", "channel_code", "product_id"),)

    product_id: str = Field(primary_key=True, max_length=40, foreign_key="products.id", ondelete="CASCADE")
    channel_code: str = Field(primary_key=True, max_length=100)


class Variant(SQLModel, table=True):
    __tablename__ = "variants"

    id: str = id_field()
    product_id: str = Field(max_length=40, foreign_key="products.id", index=True, ondelete="CASCADE")
    sku: str = Field(max_length=100, unique=True, index=True)
    gtin: str | None = Field(default=None, max_length=14, unique=True, index=True)
    title: str = Field(max_length=500)
    options: dict = json_field(dict)
    attributes: dict = json_field(dict)
    weight_grams: int | None = None
    track_inventory: bool = True
    is_bundle: bool = False
    position: int = 0
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field(index=True)


# SKUs are unique whatever their case (`ts-blk-m` cannot sit beside `TS-BLK-M`); lookups use
# this index too (migration 0006).
Index("ux_variants_sku_lower", func.lower(Variant.__table__.c.sku), unique=True)


class BundleComponent(SQLModel, table=True):
    __tablename__ = "bundle_components"  # one row per (bundle, component): the primary key

    bundle_variant_id: str = Field(primary_key=True, max_length=40, foreign_key="variants.id", ondelete="CASCADE")
    component_variant_id: str = Field(primary_key=True, max_length=40, foreign_key="variants.id", index=True)
    component_sku: str = Field(max_length=100)
    quantity: int
