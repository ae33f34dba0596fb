"""The audit trail of customer data: which API key read or changed which customer, when.

Every customer endpoint that reads or changes a customer's data writes a row here (the router
passes an `Actor`, built from the key and the request id): GET and HEAD of a customer, a
lookup by email or loyalty card (one row per customer found), the admin's list (one row per
customer on the page), the consent history, the export, the audit trail itself, the customer's
orders (app/orders/router.py) and store credit (app/payments/router.py), and every change
(create, update, merge, erase, a store-credit entry) in the change's own transaction.

Reads run in autocommit (app/core/db.py): the row of a read is one small INSERT on the
request's connection, committed by itself; a failed change rolls its row back with it.
Rows carry field names and ids, never values, so they hold no personal data and survive an
erasure (the trail of who touched the data stays).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Iterable

from fastapi import Request
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import clock
from app.core.ids import new_id
from app.core.pagination import PageParams, apply_page, page_result
from app.core.responses import rfc3339
from app.core.sql import where_in
from app.customers.models import AuditEntry

A = AuditEntry.__table__


class AuditAction(StrEnum):
    read = "read"  # GET /v1/customers/{ref}
    lookup = "lookup"  # GET /v1/customers?email= | ?loyalty_card=
    list = "list"  # GET /v1/customers (admin browsing)
    create = "create"
    update = "update"
    consents_read = "consents_read"
    export = "export"
    erase = "erase"
    merge = "merge"
    audit_read = "audit_read"
    orders_read = "orders_read"  # GET /v1/customers/{ref}/orders
    store_credit_read = "store_credit_read"
    store_credit_change = "store_credit_change"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts on customer data: the API key and its binding, and the request's id."""

    key_id: str | None = None
    role: str | None = None
    channel: str | None = None
    location: str | None = None
    request_id: str | None = None

    @classmethod
    def of(cls, who: Principal | None, request_id: str | None = None) -> "Actor":
        if who is None:
            return cls(request_id=request_id[:100] if request_id else None)
        return cls(who.key_id, who.role, who.channel, who.location, request_id[:100] if request_id else None)


SYSTEM = Actor()  # work nobody's key asked for (seed, jobs)


async def record(session: AsyncSession, actor: Actor, action: AuditAction, customer_ids: Iterable[str],
                 detail: dict[str, Any] | None = None) -> None:
    """One row per customer id (one INSERT statement whatever their number)."""
    ids = list(dict.fromkeys(customer_ids))
    if not ids:
        return
    now = clock.now()
    rows = [{"id": new_id("aud"), "customer_id": cid, "action": str(action), "api_key_id": actor.key_id,
             "role": actor.role, "channel": actor.channel, "location": actor.location,
             "request_id": actor.request_id, "detail": detail or {}, "created_at": now} for cid in ids]
    if len(rows) == 1:
        await session.execute(insert(A).values(**rows[0]))
    else:
        await session.execute(insert(A), rows)


def actor(who: Principal, request: Request) -> Actor:
    """The actor of a request: its key and the request's id."""
    return Actor.of(who, request.scope.get("state", {}).get("request_id"))


def render(r: Any) -> dict[str, Any]:
    return {"id": r.id, "object": "audit_entry", "customer": r.customer_id, "action": r.action,
            "api_key": r.api_key_id, "role": r.role, "channel": r.channel, "location": r.location,
            "request_id": r.request_id, "detail": r.detail or {}, "created_at": rfc3339(r.created_at)}


async def page(session: AsyncSession, customer_ids: list[str], params: PageParams) -> dict[str, Any]:
    """The trail of these customer records (a survivor and the records merged into it), oldest first."""
    stmt = select(A).where(where_in(session, A.c.customer_id, customer_ids))
    rows = (await session.execute(apply_page(stmt, A.c.id, params))).all()
    return page_result(list(rows), params, render)


async def all_of(session: AsyncSession, customer_ids: list[str]) -> list[dict[str, Any]]:
    rows = (await session.execute(select(A).where(where_in(session, A.c.customer_id, customer_ids))
                                  .order_by(A.c.id))).all()
    return [render(r) for r in rows]
