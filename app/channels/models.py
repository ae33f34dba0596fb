from datetime import datetime

from sqlmodel import Field, SQLModel

from app.core.models import id_field, json_field, ts_field


class Channel(SQLModel, table=True):
    __tablename__ = "channels"

    id: str = id_field()
    code: str = Field(max_length=100, unique=True, index=True)
    name: str = Field(max_length=200)
    type: str = Field(max_length=20)
    currency: str = Field(max_length=3)
    country: str = Field(max_length=2)
    prices_include_tax: bool = True
    # ordered codes: price lists in priority order, locations that fulfil this channel
    price_lists: list = json_field(list)
    fulfillment_locations: list = json_field(list)
    return_window_days: int = 30
    pickup_hold_days: int = 3
    # orders: which sourcing strategy ships its orders (app/orders/sourcing/strategies.py) and
    # over how many locations one order may be split at most
    sourcing_strategy: str = Field(default="default", max_length=20)
    max_splits: int = 3
    # an order waiting for its online payment (pending_payment) is cancelled after this long
    payment_timeout_minutes: int = 60
    version: int = 1
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()
