"""Consents per purpose (`marketing`, `personalization`) and their history.

The customer row holds the current state (`customers.consents`); every change of one purpose
is a `customer_consents` row: granted or withdrawn, when, through which channel (the key's
channel; the back office: none) and with which API key. A value sent again unchanged writes
nothing. Nobody has consented to anything until they say so (the default is false).

After a merge the survivor holds both records' history, and the current state of each purpose
is the latest row of that history (the most recent decision of the person wins, whichever
record it was made on); a purpose with no row at all stays false.

For other domains: `has_consent(session, customer_id, purpose)` (recommendations personalise
only with `personalization`).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.ids import new_id
from app.core.pagination import PageParams, apply_page, page_result
from app.core.responses import rfc3339
from app.core.sql import where_in
from app.customers.models import ConsentPurpose, ConsentRecord, Customer, CustomerStatus

CC = ConsentRecord.__table__
C = Customer.__table__
PURPOSES = tuple(p.value for p in ConsentPurpose)


def current(consents: dict | None) -> dict[str, bool]:
    """The state of every purpose (false when never given)."""
    consents = consents or {}
    return {p: bool(consents.get(p, False)) for p in PURPOSES}


async def record_changes(session: AsyncSession, customer_id: str, before: dict | None, after: dict, *,
                         channel: str | None, api_key_id: str | None, source: str) -> list[dict[str, Any]]:
    """A history row for each purpose whose state differs between `before` and `after` (one
    INSERT). Returns the rows written."""
    old, now = current(before), clock.now()
    rows = [{"id": new_id("ccn"), "customer_id": customer_id, "purpose": p, "granted": bool(after[p]),
             "channel": channel, "api_key_id": api_key_id, "source": source, "created_at": now}
            for p in PURPOSES if p in after and bool(after[p]) != old[p]]
    if rows:
        await session.execute(insert(CC), rows)
    return rows


def render(r: Any) -> dict[str, Any]:
    g = r.get if isinstance(r, dict) else (lambda k: getattr(r, k))
    return {"id": g("id"), "object": "consent", "customer": g("customer_id"), "purpose": g("purpose"),
            "granted": bool(g("granted")), "channel": g("channel"), "api_key": g("api_key_id"),
            "source": g("source"), "created_at": rfc3339(g("created_at"))}


async def page(session: AsyncSession, customer_id: str, params: PageParams) -> dict[str, Any]:
    """The history, oldest first."""
    stmt = select(CC).where(CC.c.customer_id == customer_id)
    rows = (await session.execute(apply_page(stmt, CC.c.id, params))).all()
    return page_result(list(rows), params, render)


async def history(session: AsyncSession, customer_ids: list[str]) -> list[dict[str, Any]]:
    rows = (await session.execute(select(CC).where(where_in(session, CC.c.customer_id, customer_ids))
                                  .order_by(CC.c.created_at, CC.c.id))).all()
    return [render(r) for r in rows]


async def latest_state(session: AsyncSession, customer_id: str) -> dict[str, bool]:
    """Each purpose's state from the customer's history: its latest row (by time, then id)."""
    rows = (await session.execute(select(CC.c.purpose, CC.c.granted).where(CC.c.customer_id == customer_id)
                                  .order_by(CC.c.created_at, CC.c.id))).all()
    state = {p: False for p in PURPOSES}
    for purpose, granted in rows:
        if purpose in state:
            state[purpose] = bool(granted)
    return state


async def has_consent(session: AsyncSession, customer_id: str | None, purpose: str) -> bool:
    """Whether an active customer consents to `purpose` now (False for no customer, an unknown
    or erased one). One indexed statement."""
    if customer_id is None or purpose not in PURPOSES:
        return False
    row = (await session.execute(select(C.c.consents).where(C.c.id == customer_id,
                                                            C.c.status == CustomerStatus.active.value))).first()
    return row is not None and bool((row.consents or {}).get(purpose, False))
