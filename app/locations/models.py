"""Warehouses, stores and dropship partners: where stock is, where orders are fulfilled and
collected. Used by auth (key bindings), channels, inventory and orders."""
from datetime import datetime

from sqlmodel import Field, SQLModel

from app.core.models import id_field, json_field, ts_field


class Location(SQLModel, table=True):
    __tablename__ = "locations"

    id: str = id_field()
    code: str = Field(max_length=100, unique=True, index=True)
    name: str = Field(max_length=200)
    type: str = Field(max_length=20)  # warehouse | store | partner
    address: dict | None = json_field(lambda: None, nullable=True)
    lat: float | None = None
    lon: float | None = None
    # capabilities: {ship, pickup, returns}
    can_ship: bool = True
    can_pickup: bool = False
    can_return: bool = False
    priority: int = 100
    active: bool = True
    version: int = 1
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()
