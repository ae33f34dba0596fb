"""Customers: one record per shopper, whatever channel they buy in.

Built to grow (issue 14) without reshaping the table:
- `email` is kept as given, `email_lower` is the normalized key with the unique index (computed
  in Python, so SQLite and PostgreSQL compare alike, non-ASCII letters included). Both are
  nullable: a GDPR erasure will blank them and keep the row for the orders that point at it.
- `consents` is a small JSON object now (`{marketing, personalization}`); the history of who
  gave or withdrew which consent through which channel will be rows of its own table.
- `channel` (code) is where the customer was registered: a storefront key sees only the
  customers of its channel. Orders link customers by `customer_id`, so merging two records
  later moves those links, nothing here.
"""
from datetime import datetime

from sqlmodel import Field, SQLModel

from app.core.models import id_field, json_field, ts_field


class Customer(SQLModel, table=True):
    __tablename__ = "customers"

    id: str = id_field()  # cus_<ulid>
    email: str | None = Field(default=None, max_length=320)  # as given
    # the unique key; longer than `email`: lower-casing may lengthen a string (U+0130 becomes two characters)
    email_lower: str | None = Field(default=None, max_length=1000, unique=True, index=True)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    group: str | None = Field(default=None, max_length=100)  # customer group code (price lists, promotions)
    loyalty_card: str | None = Field(default=None, max_length=64, unique=True, index=True)  # stored upper-case
    addresses: list = json_field(list)  # API.md addresses
    consents: dict = json_field(dict)  # {marketing: bool, personalization: bool}
    channel: str | None = Field(default=None, max_length=100, index=True)  # registered in (code); None: by admin
    api_key_id: str | None = Field(default=None, max_length=40)  # who registered it
    version: int = 1
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()
