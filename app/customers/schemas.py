"""Request and response shapes of /v1/customers."""
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from app.core.schemas import Address, Bool, Code, Input, Name, Output, Version

# A pragmatic address check (RFC 5322 in full accepts far more than any shop should store):
# one @, no spaces, no quotes, brackets or slashes (an email is a path segment:
# /v1/customers/{email}), a domain with a dot; non-ASCII letters allowed (müller@beispiel.de).
# At most 254 characters (the SMTP limit of a path).
EMAIL_PATTERN = r"^[^\s@<>()\[\],;:\\\"/]{1,64}@[^\s@<>()\[\],;:\\\"/]+\.[^\s@<>()\[\],;:\\\"/.]{2,}$"
Email = Annotated[str, StringConstraints(min_length=3, max_length=254, pattern=EMAIL_PATTERN)]
# digits, spaces, parentheses, dots, slashes, dashes, an optional leading +
Phone = Annotated[str, StringConstraints(min_length=3, max_length=40, pattern=r"^\+?[0-9(][0-9 ()./-]{0,37}[0-9]$")]
# letters, digits, dashes: never an @ (an email) or an underscore (an id), so `{ref}` is unambiguous
LoyaltyCard = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")]
Group = Annotated[Code, Field(description="Customer group code (`retail`, `b2b`, `loyalty`…): price lists and "
                                          "promotions naming it apply to the customer")]
Addresses = Annotated[list[Address], Field(max_length=20)]


class ConsentsIn(Input):
    marketing: Bool = False
    personalization: Bool = False


class ConsentsUpdate(Input):
    """Only what is sent changes."""

    marketing: Bool | None = None
    personalization: Bool | None = None


class CustomerCreate(Input):
    email: Email = Field(description="Unique whatever its case; kept as given")
    name: Name | None = None
    phone: Phone | None = None
    group: Group | None = None
    loyalty_card: LoyaltyCard | None = Field(default=None, description="Unique, case-insensitive (stored upper-case)")
    addresses: Addresses = []
    consents: ConsentsIn | None = Field(default=None, description="Default: no consent to anything")
    channel: Code | None = Field(default=None, description="Where the customer registers. Admin keys may name any "
                                                           "channel (or none); other keys register in their own")


class CustomerUpdate(Input):
    """`null` clears name, phone, group or loyalty_card; email, addresses and consents cannot be null.
    A change of `consents` is recorded in the consent history with the key's channel."""

    email: Email | None = None
    name: Name | None = None
    phone: Phone | None = None
    group: Group | None = None
    loyalty_card: LoyaltyCard | None = None
    addresses: Addresses | None = None
    consents: ConsentsUpdate | None = None
    version: Version | None = None


class ConsentsOut(Output):
    marketing: bool
    personalization: bool


class CustomerOut(Output):
    id: str
    object: str = "customer"
    email: str | None
    name: str | None
    phone: str | None
    group: str | None
    loyalty_card: str | None
    addresses: list[dict]
    consents: ConsentsOut
    channel: str | None = Field(description="The channel the customer registered in (null: by an admin)")
    version: int
    created_at: datetime
    updated_at: datetime


class CustomerList(Output):
    data: list[CustomerOut]
    next_cursor: str | None


CustomerRef = Annotated[str, StringConstraints(min_length=1, max_length=320)]


class MergeIn(Input):
    other: CustomerRef = Field(description="The customer merged into this one (id, email or loyalty card): its "
                                           "orders, carts, consents, addresses and store credit move here")


class ConsentRecordOut(Output):
    id: str
    object: str = "consent"
    customer: str
    purpose: str
    granted: bool
    channel: str | None = Field(description="Through which channel (null: the back office)")
    api_key: str | None = Field(description="The API key that recorded it")
    source: str = Field(description="registration | update")
    created_at: datetime


class ConsentList(Output):
    data: list[ConsentRecordOut]
    next_cursor: str | None


class AuditEntryOut(Output):
    id: str
    object: str = "audit_entry"
    customer: str
    action: str = Field(description="read | lookup | list | create | update | consents_read | export | erase | "
                                    "merge | audit_read")
    api_key: str | None
    role: str | None
    channel: str | None
    location: str | None
    request_id: str | None
    detail: dict[str, Any]
    created_at: datetime


class AuditList(Output):
    data: list[AuditEntryOut]
    next_cursor: str | None


class CustomerExport(Output):
    """Everything held on one customer (GDPR art. 15 / 20)."""

    object: str = "customer_export"
    generated_at: datetime
    customer: CustomerOut
    merged_from: list[str] = Field(description="Ids of customer records merged into this one")
    consents: dict[str, Any] = Field(description="{current, history}")
    addresses: list[dict]
    orders: list[dict[str, Any]]
    returns: list[dict[str, Any]]
    carts: list[dict[str, Any]]
    store_credit: dict[str, Any] = Field(description="{balances, entries}")
    audit: list[AuditEntryOut]
