"""Customers: one record per shopper, whatever channel they buy in; their consent history and
the audit trail of who read or changed their data.

customers
- `email` is kept as given, `email_lower` is the normalized key with the unique index (computed
  in Python, so SQLite and PostgreSQL compare alike, non-ASCII letters included).
- `consents` holds the current state (`{marketing, personalization}`), for fast reads; every
  change is a `customer_consents` row (the history).
- `channel` (code) is where the customer was registered.
- `status`: `active`; `merged` (a tombstone: `merged_into` names the survivor; it keeps its
  email and loyalty card as aliases that still find the survivor, nothing else); `erased`
  (GDPR erasure: every personal field blank, the row kept so orders keep their customer_id).

customer_consents
    One row per change of one purpose's consent: granted or withdrawn, when, through which
    channel and with which API key (`source`: registration | update). Never updated; a merge
    moves the other record's rows to the survivor.

customer_audit
    One row per read or change of a customer's data by an API key: the action, the key (its
    id, role, channel, location), the request id and a small `detail` (field names, never
    values). Holds no personal data, so it survives an erasure.
"""
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from app.core.models import id_field, json_field, ts_field


class CustomerStatus(StrEnum):
    active = "active"
    merged = "merged"
    erased = "erased"


class ConsentPurpose(StrEnum):
    marketing = "marketing"
    personalization = "personalization"


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
    consents: dict = json_field(dict)  # the current state {marketing: bool, personalization: bool}
    channel: str | None = Field(default=None, max_length=100, index=True)  # registered in (code); None: by admin
    api_key_id: str | None = Field(default=None, max_length=40)  # who registered it
    status: str = Field(default=CustomerStatus.active.value, max_length=10)
    merged_into: str | None = Field(default=None, max_length=40, index=True)  # merged: the survivor
    erased_at: datetime | None = ts_field(nullable=True)
    version: int = 1
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class ConsentRecord(SQLModel, table=True):
    __tablename__ = "customer_consents"
    __table_args__ = (Index("ix_customer_consents_customer", "customer_id", "id"),)

    id: str = id_field()  # ccn_<ulid>: time ordered
    customer_id: str = Field(max_length=40)
    purpose: str = Field(max_length=20)  # ConsentPurpose
    granted: bool
    channel: str | None = Field(default=None, max_length=100)  # through which channel (None: back office)
    api_key_id: str | None = Field(default=None, max_length=40)
    source: str = Field(max_length=20)  # registration | update
    created_at: datetime = ts_field()


class AuditEntry(SQLModel, table=True):
    __tablename__ = "customer_audit"
    __table_args__ = (Index("ix_customer_audit_customer", "customer_id", "id"),)

    id: str = id_field()  # aud_<ulid>: time ordered
    customer_id: str = Field(max_length=40)
    action: str = Field(max_length=20)  # AuditAction
    api_key_id: str | None = Field(default=None, max_length=40)
    role: str | None = Field(default=None, max_length=20)
    channel: str | None = Field(default=None, max_length=100)  # the key's binding
    location: str | None = Field(default=None, max_length=100)
    request_id: str | None = Field(default=None, max_length=100)
    detail: dict = json_field(dict)  # field names, ids: never personal values
    created_at: datetime = ts_field()
