"""Merging two customer records of one person: POST /v1/customers/{id}/merge {other}.

`{id}` survives, `other` is merged into it, in one transaction:
- the other's carts and orders are locked, then both customer rows in id order (FOR UPDATE; a
  merge the other way round at the same time waits instead of deadlocking; service.py has the
  lock order), their state checked again under the lock;
- the other's orders, carts, store-credit entries and consent history move to the survivor
  (set-based UPDATEs; returns follow their orders). Moved orders and carts get a new version;
- profile: the survivor keeps its own values; an empty name, phone, group or loyalty card is
  filled from the other; addresses are the survivor's plus the other's not already there
  (same line1, line2, postal code, city and country, ignoring case and spaces);
- consents: the history of both, and per purpose the latest decision wins (consents.py);
- the other row becomes a tombstone: status `merged`, `merged_into` the survivor, every
  personal field blank except its email and (when the survivor kept its own) loyalty card,
  which stay as aliases: an old id, email or card, at the till or in a storefront session,
  still finds the survivor (service.find), and a new registration with that email is a
  duplicate. Records merged into the other earlier now name the survivor (no chains);
- event `customer.merged` {id, merged, version, …} and an audit row on both records.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.errors import ApiError, not_found
from app.customers import audit, consents, service
from app.customers.models import Customer, CustomerStatus
from app.events.service import emit
from app.orders.models import Cart, Order
from app.payments.models import StoreCreditEntry

C = Customer.__table__
CC = consents.CC
O = Order.__table__
CART = Cart.__table__
SC = StoreCreditEntry.__table__
FILLED = ("name", "phone", "group")


def _address_key(a: dict) -> tuple:
    def norm(v: Any) -> str:
        return " ".join(str(v or "").lower().split())

    return tuple(norm(a.get(k)) for k in ("line1", "line2", "postal_code", "city", "country"))


def merge_addresses(mine: list[dict], theirs: list[dict]) -> list[dict]:
    """Mine, then theirs not already there (deduplicated by the place, not by the name on it)."""
    out, seen = [], set()
    for a in [*(mine or []), *(theirs or [])]:
        key = _address_key(a)
        if key not in seen:
            seen.add(key)
            out.append(a)
    return out


def _other_problem(detail: str) -> ApiError:
    return ApiError(422, "validation_error", detail, errors=[{"field": "other", "message": detail}])


async def merge(session: AsyncSession, survivor_ref: str, other_ref: str, *, actor: audit.Actor,
                expected_version: int | None = None) -> Customer:
    """Merge `other_ref` into `survivor_ref` (see the module doc). 404 / 410 for the survivor,
    422 naming `other` when it is unknown, erased or the survivor itself, 412 on If-Match."""
    first = await service.find(session, survivor_ref, lock=False)  # locked below
    if first is None:
        raise not_found("Customer", survivor_ref)
    if first.status == service.ERASED:
        raise service.erased(first)
    second = await service.find(session, other_ref, lock=False)
    if second is None:
        raise _other_problem(f"Unknown customer {other_ref!r}.")
    if second.status == service.ERASED:
        raise _other_problem(f"Customer {second.id!r} was erased: there is nothing to merge.")
    if second.id == first.id:
        raise _other_problem(f"{other_ref!r} is customer {first.id!r} itself (or was merged into it already).")

    # carts and orders before customers (the lock order of checkouts and refunds), customers in id order
    await session.execute(select(CART.c.id).where(CART.c.customer_id == second.id).with_for_update())
    await session.execute(select(O.c.id).where(O.c.customer_id == second.id).with_for_update())
    locked = {r.id: r for r in (await session.execute(
        select(C).where(C.c.id.in_(sorted((first.id, second.id)))).order_by(C.c.id).with_for_update())).all()}
    keep, gone = locked.get(first.id), locked.get(second.id)
    if keep is None or gone is None or keep.status != service.ACTIVE or gone.status != service.ACTIVE:
        raise ApiError(409, "conflict", "One of the two customers was merged or erased meanwhile; read them again.")
    service.check_version(keep.version, (expected_version,))
    now = clock.now()

    # the other's links move to the survivor
    await session.execute(update(O).where(O.c.customer_id == gone.id)
                          .values(customer_id=keep.id, version=O.c.version + 1, updated_at=now))
    await session.execute(update(CART).where(CART.c.customer_id == gone.id)
                          .values(customer_id=keep.id, version=CART.c.version + 1, updated_at=now))
    await session.execute(update(SC).where(SC.c.customer_id == gone.id).values(customer_id=keep.id))
    await session.execute(update(CC).where(CC.c.customer_id == gone.id).values(customer_id=keep.id))
    await session.execute(update(C).where(C.c.merged_into == gone.id).values(merged_into=keep.id))

    # the tombstone first: a loyalty card moving to the survivor must leave it before it arrives
    take_card = keep.loyalty_card is None and gone.loyalty_card is not None
    await session.execute(update(C).where(C.c.id == gone.id).values(
        status=CustomerStatus.merged.value, merged_into=keep.id, name=None, phone=None, group=None,
        loyalty_card=None if take_card else gone.loyalty_card, addresses=[], consents={},
        version=C.c.version + 1, updated_at=now))
    values: dict[str, Any] = {f: getattr(gone, f) for f in FILLED if getattr(keep, f) is None and getattr(gone, f)}
    if take_card:
        values["loyalty_card"] = gone.loyalty_card
    values["addresses"] = merge_addresses(keep.addresses, gone.addresses)
    values["consents"] = await consents.latest_state(session, keep.id)
    await session.execute(update(C).where(C.c.id == keep.id).values(**values, version=C.c.version + 1,
                                                                      updated_at=now))

    survivor = (await session.execute(select(Customer).where(Customer.id == keep.id)
                                      .execution_options(populate_existing=True))).scalars().one()
    await audit.record(session, actor, audit.AuditAction.merge, [keep.id], {"merged": gone.id})
    await audit.record(session, actor, audit.AuditAction.merge, [gone.id], {"into": keep.id})
    await emit(session, "customer.merged", service.event_data(survivor, merged=gone.id), channel=survivor.channel)
    return survivor
