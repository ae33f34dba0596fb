from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.models import id_field, json_field, ts_field
from app.locations.models import Location  # noqa: F401  (the foreign keys' table)


class StockLevel(SQLModel, table=True):
    """Stock of one SKU at one location. available = max(0, on_hand - reserved - safety_stock).
    on_hand always equals the sum of the level's movements."""

    __tablename__ = "stock_levels"
    __table_args__ = (UniqueConstraint("sku", "location_id", name="uq_stock_levels_sku_location"),
                      Index("ix_stock_levels_updated_at", "updated_at"))  # the listing feed's updated_since

    id: str = id_field()
    sku: str = Field(max_length=100)
    location_id: str = Field(max_length=40, foreign_key="locations.id", index=True)
    on_hand: int = 0
    reserved: int = 0
    safety_stock: int = 0
    updated_at: datetime = ts_field()


class StockMovement(SQLModel, table=True):
    """The append-only ledger: one row per change of on_hand (quantity is the signed change)."""

    __tablename__ = "stock_movements"
    __table_args__ = (Index("ix_stock_movements_sku_location", "sku", "location_id", "id"),
                      Index("ix_stock_movements_location", "location_id", "id"))

    id: str = id_field()
    sku: str = Field(max_length=100)
    location_id: str = Field(max_length=40)
    quantity: int
    reason: str = Field(max_length=20)
    reference: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=500)
    created_at: datetime = ts_field()


class Reservation(SQLModel, table=True):
    """A hold on stock (click & reserve, cart holds) until `expires_at`."""

    __tablename__ = "reservations"
    __table_args__ = (Index("ix_reservations_due", "status", "expires_at"),
                      Index("ix_reservations_location", "location_id", "id"),
                      Index("ix_reservations_placed_from", "placed_from_location_id", "id"),
                      Index("ix_reservations_channel", "channel", "id"),
                      Index("ix_reservations_placed_by", "placed_by_key_id", "status"))  # a key's units held

    id: str = id_field()
    sku: str = Field(max_length=100)
    location_id: str = Field(max_length=40)
    quantity: int
    status: str = Field(max_length=10, default="active")  # active | released | expired | committed
    expires_at: datetime = ts_field()
    reference: str | None = Field(default=None, max_length=200)
    channel: str | None = Field(default=None, max_length=100)
    placed_by_key_id: str | None = Field(default=None, max_length=40)  # the API key that placed it
    placed_from_location_id: str | None = Field(default=None, max_length=40)  # a POS key's store
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class ReservationItem(SQLModel, table=True):
    """What a reservation holds, per stocked SKU (a bundle holds its components). `active` rows
    past `expires_at` no longer count against availability, even before the worker releases them."""

    __tablename__ = "reservation_items"
    __table_args__ = (Index("ix_reservation_items_expiry", "active", "expires_at"),
                      Index("ix_reservation_items_level", "sku", "location_id", "active"))

    reservation_id: str = Field(primary_key=True, max_length=40, foreign_key="reservations.id")
    sku: str = Field(primary_key=True, max_length=100)
    location_id: str = Field(max_length=40)
    quantity: int
    expires_at: datetime = ts_field()
    active: bool = True


class Transfer(SQLModel, table=True):
    __tablename__ = "transfers"

    id: str = id_field()
    from_location_id: str = Field(max_length=40, foreign_key="locations.id")
    to_location_id: str = Field(max_length=40, foreign_key="locations.id")
    status: str = Field(max_length=12, default="requested")  # requested | in_transit | received | cancelled
    lines: list = json_field(list)  # [{sku, quantity, received}]
    reference: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=500)
    version: int = 1
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()
    dispatched_at: datetime | None = ts_field(nullable=True)
    received_at: datetime | None = ts_field(nullable=True)
