"""Customers: the rules, as plain functions over a session (they never commit).

For other domains:
- `resolve_customer(session, ref)`: the customer row by id, email (any case) or loyalty card
  number, or None. Orders use it for a cart's or order's `customer`.
- `get_customer_group(session, ref)`: the customer's group (None: no group), 404 when unknown.
  Pricing uses it for a quote's `customer`.

`channel=` on the reads limits them to the customers registered in that channel (what a
storefront key may see); None reads every customer (admin, POS, internal callers).
"""
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.concurrency import apply_changes
from app.core.errors import ApiError, not_found
from app.core.ids import new_id
from app.core.pagination import PageParams, apply_page, page_result
from app.core.responses import rfc3339
from app.customers.models import Customer
from app.customers.schemas import CustomerCreate, CustomerUpdate
from app.events.service import emit

C = Customer.__table__
MAX_REF = 320
CONSENTS = ("marketing", "personalization")


def email_key(email: str) -> str:
    """The normalized email the uniqueness and lookups use."""
    return email.strip().lower()


def card_key(card: str) -> str:
    return card.strip().upper()


def _ref_clause(ref: str):
    """How `ref` names a customer: `cus_…` an id, with an @ an email, else a loyalty card
    (cards are letters, digits and dashes: never an @ or an underscore). None: names nobody."""
    if not ref or len(ref) > MAX_REF or "\x00" in ref:
        return None
    if ref.startswith("cus_"):
        return Customer.id == ref
    if "@" in ref:
        return Customer.email_lower == email_key(ref)
    return Customer.loyalty_card == card_key(ref)


async def resolve_customer(session: AsyncSession, ref: str, *, channel: str | None = None,
                           for_update: bool = False) -> Customer | None:
    """The customer named by id, email or loyalty card number, or None (also when `channel` is
    given and the customer registered elsewhere). One indexed statement."""
    clause = _ref_clause(ref)
    if clause is None:
        return None
    stmt = select(Customer).where(clause)
    if channel is not None:
        stmt = stmt.where(Customer.channel == channel)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def get_customer_group(session: AsyncSession, ref: str, *, channel: str | None = None) -> str | None:
    """The customer's group code (None: the customer has no group). ApiError 404 when no
    customer has that id, email or loyalty card."""
    clause = _ref_clause(ref)
    row = None
    if clause is not None:
        stmt = select(C.c.group).where(clause)
        if channel is not None:
            stmt = stmt.where(C.c.channel == channel)
        row = (await session.execute(stmt)).first()
    if row is None:
        raise not_found("Customer", ref)
    return row.group


async def get_or_404(session: AsyncSession, ref: str, *, channel: str | None = None,
                     for_update: bool = False) -> Customer:
    customer = await resolve_customer(session, ref, channel=channel, for_update=for_update)
    if customer is None:
        raise not_found("Customer", ref)
    return customer


def render(c: Customer) -> dict[str, Any]:
    consents = c.consents or {}
    return {
        "id": c.id, "object": "customer", "email": c.email, "name": c.name, "phone": c.phone, "group": c.group,
        "loyalty_card": c.loyalty_card, "addresses": list(c.addresses or []),
        "consents": {k: bool(consents.get(k, False)) for k in CONSENTS},
        "channel": c.channel, "version": c.version,
        "created_at": rfc3339(c.created_at), "updated_at": rfc3339(c.updated_at),
    }


def _duplicate(exc: IntegrityError, email: str | None, card: str | None) -> ApiError:
    """409 naming the field a unique index refused (SQLite names the column, PostgreSQL the index)."""
    text = str(getattr(exc, "orig", exc))
    if "loyalty_card" in text:
        return ApiError(409, "duplicate_loyalty_card", f"A customer with loyalty card {card!r} already exists.",
                        errors=[{"field": "loyalty_card", "message": "Already in use."}])
    return ApiError(409, "duplicate_email", f"A customer with email {email!r} already exists.",
                    errors=[{"field": "email", "message": "Already in use (emails are compared case-insensitively)."}])


async def _flush(session: AsyncSession, email: str | None, card: str | None) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        raise _duplicate(exc, email, card) from None


def _event(c: Customer, **extra: Any) -> dict[str, Any]:
    """Event payloads carry no personal data (consumers read the customer by id), so erasing
    a customer later never has to rewrite the outbox."""
    return {"id": c.id, "group": c.group, "channel": c.channel, "version": c.version, **extra}


async def create(session: AsyncSession, data: CustomerCreate, *, channel: str | None = None,
                 api_key_id: str | None = None) -> Customer:
    """A new customer registered in `channel` (a code, already checked by the caller).
    409 duplicate_email / duplicate_loyalty_card."""
    consents = (data.consents.model_dump() if data.consents else {k: False for k in CONSENTS})
    card = card_key(data.loyalty_card) if data.loyalty_card else None
    customer = Customer(
        id=new_id("cus"), email=data.email, email_lower=email_key(data.email), name=data.name, phone=data.phone,
        group=data.group, loyalty_card=card, addresses=[a.model_dump(exclude_none=True) for a in data.addresses],
        consents=consents, channel=channel, api_key_id=api_key_id,
    )
    session.add(customer)
    await _flush(session, data.email, card)
    await emit(session, "customer.created", _event(customer), channel=channel)
    return customer


async def list_customers(session: AsyncSession, page: PageParams, *, email: str | None = None,
                         loyalty_card: str | None = None, q: str | None = None, group: str | None = None,
                         channel: str | None = None) -> dict[str, Any]:
    """One page in id (creation) order. `q`: part of the name, email or phone, any case."""
    stmt = select(Customer)
    if email is not None:
        stmt = stmt.where(Customer.email_lower == email_key(email))
    if loyalty_card is not None:
        stmt = stmt.where(Customer.loyalty_card == card_key(loyalty_card))
    if group is not None:
        stmt = stmt.where(Customer.group == group)
    if channel is not None:
        stmt = stmt.where(Customer.channel == channel)
    if q:
        pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(or_(func.lower(Customer.name).like(pattern, escape="\\"),
                              Customer.email_lower.like(pattern, escape="\\"),
                              Customer.phone.like(pattern, escape="\\")))
    rows = (await session.execute(apply_page(stmt, Customer.id, page))).scalars().all()
    return page_result(list(rows), page, render)


def _check_version(current: int, expected: tuple[int | None, ...]) -> None:
    for v in expected:
        if v is not None and v != current:
            raise ApiError(412, "version_conflict",
                           f"The resource is at version {current}, the request expected version {v}.",
                           current_version=current)


async def update(session: AsyncSession, ref: str, data: CustomerUpdate, *, expected_version: int | None = None,
                 channel: str | None = None) -> Customer:
    """PATCH: what is sent changes (`null` clears name, phone, group, loyalty_card). 412 when
    `expected_version` (If-Match) or the body's `version` is not the current one."""
    customer = await get_or_404(session, ref, channel=channel, for_update=True)
    _check_version(customer.version, (expected_version, data.version))
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    bad = [f for f in ("email", "addresses", "consents") if f in changes and changes[f] is None]
    if bad:
        raise ApiError(422, "validation_error", f"{bad[0]} may not be null.",
                       errors=[{"field": f, "message": "May not be null."} for f in bad])
    if "email" in changes:
        changes["email_lower"] = email_key(changes["email"])
    if changes.get("loyalty_card") is not None:
        changes["loyalty_card"] = card_key(changes["loyalty_card"])
    if "addresses" in changes:
        changes["addresses"] = [a.model_dump(exclude_none=True) for a in data.addresses or []]
    if "consents" in changes:
        sent = data.consents.model_dump(exclude_unset=True) if data.consents else {}
        bad = [k for k, v in sent.items() if v is None]
        if bad:
            raise ApiError(422, "validation_error", f"consents.{bad[0]} may not be null.",
                           errors=[{"field": f"consents.{k}", "message": "May not be null."} for k in bad])
        changes["consents"] = {**{k: bool((customer.consents or {}).get(k, False)) for k in CONSENTS}, **sent}
    changed = apply_changes(customer, changes)
    if changed:
        await _flush(session, customer.email, customer.loyalty_card)
        fields = sorted(k for k in changed if k != "email_lower")
        await emit(session, "customer.updated", _event(customer, changed=fields), channel=customer.channel)
    return customer
