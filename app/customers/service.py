"""Customers: lookups for every domain, registration and changes. Plain functions over a
session; they never commit.

For other domains:
- `resolve_customer(session, ref, channel=)`: the active customer named by id, email (any
  case) or loyalty card number, or None. A merged record's id, email or card names its
  survivor; an erased customer is nobody. Orders use it for a cart's or order's `customer`.
- `get_customer_group(session, ref, channel=)`: the customer's group (None: no group), 404
  when unknown. Pricing uses it for a quote's `customer`.

`channel=` limits a read to the customers a key bound to that channel may see (storefront and
marketplace keys): those registered in the channel or with an order in it. None reads every
customer (admin, POS, internal callers).

Inside a write transaction on PostgreSQL the customer row is locked (FOR NO KEY UPDATE), so a
merge or an erasure running at the same time waits for the order or cart being attached (and
an attach waits for them): an order never ends up on a record just merged away, nor carries the
email of a customer just erased. Writes of one customer (two checkouts of one shopper) take
turns; those of different customers never meet. A shared lock would not do: a checkout paying
with store credit locks the row for update later on, and two shared holders upgrading deadlock.
SQLite serializes writers anyway.

Lock order, whoever takes them: carts and orders before customers (checkout claims its cart,
then the customer; a refund locks its order, then the customer's store credit), so merge and
erasure lock the carts and orders they rewrite before the customer rows.
"""
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.core.concurrency import apply_changes
from app.core.db import is_postgres
from app.core.errors import ApiError, not_found
from app.core.ids import new_id
from app.core.pagination import PageParams, apply_page, page_result
from app.core.responses import rfc3339
from app.customers import consents
from app.customers.models import Customer, CustomerStatus
from app.customers.schemas import CustomerCreate, CustomerUpdate
from app.events.service import emit
from app.orders.models import Order  # read only: "has an order in the channel" (visibility)

C = Customer.__table__
O = Order.__table__
MAX_REF = 320
CONSENTS = consents.PURPOSES
ACTIVE = CustomerStatus.active.value
MERGED = CustomerStatus.merged.value
ERASED = CustomerStatus.erased.value


def email_key(email: str) -> str:
    """The normalized email the uniqueness and lookups use."""
    return email.strip().lower()


def card_key(card: str) -> str:
    return card.strip().upper()


def _ref_clause(ref: str, entity: Any = Customer):
    """How `ref` names a customer: `cus_…` an id, with an @ an email, else a loyalty card
    (cards are letters, digits and dashes: never an @ or an underscore). None: names nobody."""
    if not ref or len(ref) > MAX_REF or "\x00" in ref:
        return None
    if ref.startswith("cus_"):
        return entity.id == ref
    if "@" in ref:
        return entity.email_lower == email_key(ref)
    return entity.loyalty_card == card_key(ref)


async def _in_write_transaction(session: AsyncSession) -> bool:
    """Lock the customer row an order or cart attaches to: inside a write transaction on
    PostgreSQL (reads run in autocommit, where a lock would only cost)."""
    if not is_postgres(session):
        return False
    conn = await session.connection()
    return conn.sync_connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT"


_NAMED = aliased(Customer, name="named")


async def find(session: AsyncSession, ref: str, *, for_update: bool = False, lock: bool = True) -> Customer | None:
    """The record `ref` names, whatever its status, a merged one's survivor in its place (an
    erased survivor included); None when nobody has that id, email or card. One statement: the
    record named joined to the one it stands for, and only that one locked (FOR UPDATE; in a
    write transaction FOR NO KEY UPDATE unless `lock=False`: the caller then locks rows itself,
    in its own order), so a lock is never held on a tombstone while waiting for its survivor."""
    clause = _ref_clause(ref, _NAMED)
    if clause is None:
        return None
    mode = "update" if for_update else ("no_key" if lock and await _in_write_transaction(session) else None)
    stmt = (select(Customer).select_from(_NAMED)
            .join(Customer, Customer.id == func.coalesce(_NAMED.merged_into, _NAMED.id)).where(clause))
    for _ in range(3):
        if mode is not None:
            stmt = stmt.with_for_update(of=Customer, key_share=mode == "no_key")
        row = (await session.execute(stmt.execution_options(populate_existing=True))).scalars().first()
        if row is None or row.status != MERGED or not row.merged_into:
            return row
        # merged while we waited for its lock: the survivor
        stmt = select(Customer).where(Customer.id == row.merged_into)
    return row


async def visible_in(session: AsyncSession, customer: Customer, channel: str) -> bool:
    """Whether a key bound to `channel` may see the customer: registered there, or with an
    order there."""
    if customer.channel == channel:
        return True
    stmt = select(exists().where(O.c.customer_id == customer.id, O.c.channel == channel))
    return bool((await session.execute(stmt)).scalar())


async def resolve_customer(session: AsyncSession, ref: str, *, channel: str | None = None,
                           for_update: bool = False) -> Customer | None:
    """The active customer `ref` names (see the module doc), or None (also when `channel` is
    given and the customer is not visible in it)."""
    row = await find(session, ref, for_update=for_update)
    if row is None or row.status != ACTIVE:
        return None
    if channel is not None and not await visible_in(session, row, channel):
        return None
    return row


async def get_customer_group(session: AsyncSession, ref: str, *, channel: str | None = None) -> str | None:
    """The customer's group code (None: the customer has no group). ApiError 404 when no
    active customer has that id, email or loyalty card (visible in `channel`)."""
    row = await resolve_customer(session, ref, channel=channel)
    if row is None:
        raise not_found("Customer", ref)
    return row.group


def erased(customer: Customer) -> ApiError:
    return ApiError(410, "customer_erased", f"Customer {customer.id!r} was erased on "
                                            f"{rfc3339(customer.erased_at)}: no personal data is kept.",
                    customer=customer.id, erased_at=rfc3339(customer.erased_at))


async def get_or_404(session: AsyncSession, ref: str, *, channel: str | None = None,
                     for_update: bool = False) -> Customer:
    """The customer for the /v1/customers/{ref} endpoints: 404 when unknown or not visible in
    `channel`, 410 customer_erased when erased (to the keys that could see it)."""
    customer = await find(session, ref, for_update=for_update)
    if customer is None or (channel is not None and not await visible_in(session, customer, channel)):
        raise not_found("Customer", ref)
    if customer.status == ERASED:
        raise erased(customer)
    return customer


async def merged_ids(session: AsyncSession, customer_id: str) -> list[str]:
    """The records merged into this one (merges are flattened: every tombstone names the final survivor)."""
    return list((await session.execute(select(C.c.id).where(C.c.merged_into == customer_id)
                                       .order_by(C.c.id))).scalars())


def render(c: Customer) -> dict[str, Any]:
    return {
        "id": c.id, "object": "customer", "email": c.email, "name": c.name, "phone": c.phone, "group": c.group,
        "loyalty_card": c.loyalty_card, "addresses": list(c.addresses or []),
        "consents": consents.current(c.consents),
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


def event_data(c: Customer, **extra: Any) -> dict[str, Any]:
    """Event payloads carry no personal data (consumers read the customer by id), so erasing
    a customer never has to rewrite its own events."""
    return {"id": c.id, "group": c.group, "channel": c.channel, "version": c.version, **extra}


async def create(session: AsyncSession, data: CustomerCreate, *, channel: str | None = None,
                 api_key_id: str | None = None) -> Customer:
    """A new customer registered in `channel` (a code, already checked by the caller); the
    consents given are the first rows of its history (through `channel`).
    409 duplicate_email / duplicate_loyalty_card."""
    given = data.consents.model_dump() if data.consents else {}
    card = card_key(data.loyalty_card) if data.loyalty_card else None
    customer = Customer(
        id=new_id("cus"), email=data.email, email_lower=email_key(data.email), name=data.name, phone=data.phone,
        group=data.group, loyalty_card=card, addresses=[a.model_dump(exclude_none=True) for a in data.addresses],
        consents=consents.current(given), channel=channel, api_key_id=api_key_id, status=ACTIVE,
    )
    session.add(customer)
    await _flush(session, data.email, card)
    await consents.record_changes(session, customer.id, None, customer.consents, channel=channel,
                                  api_key_id=api_key_id, source="registration")
    await emit(session, "customer.created", event_data(customer), channel=channel)
    return customer


async def list_customers(session: AsyncSession, page: PageParams, *, email: str | None = None,
                         loyalty_card: str | None = None, q: str | None = None, group: str | None = None,
                         channel: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """One page in id (creation) order, and the ids on it (for the audit trail). A lookup by
    `email` or `loyalty_card` finds the customer they name (a merged record's survivor), the
    other filters narrow it; a list without them shows active customers only. `q`: part of the
    name, email or phone, any case."""
    stmt = select(Customer)
    if email is not None or loyalty_card is not None:
        found = [await resolve_customer(session, ref, channel=channel) for ref in (email, loyalty_card) if ref]
        ids = {c.id if c is not None else None for c in found}
        if None in ids or len(ids) != 1:
            return {"data": [], "next_cursor": None}, []
        stmt = stmt.where(Customer.id == ids.pop())
    else:
        stmt = stmt.where(Customer.status == ACTIVE)
        if channel is not None:
            stmt = stmt.where(or_(Customer.channel == channel,
                                  exists().where(O.c.customer_id == Customer.id, O.c.channel == channel)))
    if group is not None:
        stmt = stmt.where(Customer.group == group)
    if q:
        pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(or_(func.lower(Customer.name).like(pattern, escape="\\"),
                              Customer.email_lower.like(pattern, escape="\\"),
                              Customer.phone.like(pattern, escape="\\")))
    rows = list((await session.execute(apply_page(stmt, Customer.id, page))).scalars().all())
    result = page_result(rows, page, render)
    return result, [c["id"] for c in result["data"]]


def check_version(current: int, expected: tuple[int | None, ...]) -> None:
    for v in expected:
        if v is not None and v != current:
            raise ApiError(412, "version_conflict",
                           f"The resource is at version {current}, the request expected version {v}.",
                           current_version=current)


async def _release_aliases(session: AsyncSession, customer_id: str, changes: dict[str, Any]) -> None:
    """A customer taking back an email or card that one of its merged records still holds as an
    alias: the alias goes (it would otherwise refuse the change as a duplicate)."""
    if changes.get("email_lower"):
        await session.execute(sql_update(C).where(C.c.merged_into == customer_id,
                                                  C.c.email_lower == changes["email_lower"])
                              .values(email=None, email_lower=None))
    if changes.get("loyalty_card"):
        await session.execute(sql_update(C).where(C.c.merged_into == customer_id,
                                                  C.c.loyalty_card == changes["loyalty_card"])
                              .values(loyalty_card=None))


async def update(session: AsyncSession, ref: str, data: CustomerUpdate, *, expected_version: int | None = None,
                 channel: str | None = None, consent_channel: str | None = None,
                 api_key_id: str | None = None) -> tuple[Customer, list[str]]:
    """PATCH: what is sent changes (`null` clears name, phone, group, loyalty_card). 412 when
    `expected_version` (If-Match) or the body's `version` is not the current one. A change of
    consents is recorded with `consent_channel` and `api_key_id`. Returns the customer and the
    names of the fields that changed."""
    customer = await get_or_404(session, ref, channel=channel, for_update=True)
    check_version(customer.version, (expected_version, data.version))
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
    before = dict(customer.consents or {})
    if "consents" in changes:
        sent = data.consents.model_dump(exclude_unset=True) if data.consents else {}
        bad = [k for k, v in sent.items() if v is None]
        if bad:
            raise ApiError(422, "validation_error", f"consents.{bad[0]} may not be null.",
                           errors=[{"field": f"consents.{k}", "message": "May not be null."} for k in bad])
        changes["consents"] = {**consents.current(customer.consents), **sent}
    await _release_aliases(session, customer.id, changes)
    changed = apply_changes(customer, changes)
    fields: list[str] = []
    if changed:
        await _flush(session, customer.email, customer.loyalty_card)
        if "consents" in changed:
            await consents.record_changes(session, customer.id, before, customer.consents, channel=consent_channel,
                                          api_key_id=api_key_id, source="update")
        fields = sorted(k for k in changed if k != "email_lower")
        await emit(session, "customer.updated", event_data(customer, changed=fields), channel=customer.channel)
    return customer, fields
