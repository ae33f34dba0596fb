"""Store credit: a customer's balance per currency, kept as a ledger (+ credited, − spent).

Spending locks the customer row first (PostgreSQL; SQLite serializes writers), so two
checkouts at once never spend the same credit twice. Nothing here commits.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select

from app.core import clock
from app.core.errors import ApiError
from app.core.ids import new_id
from app.core.responses import rfc3339
from app.customers.models import Customer
from app.payments.models import StoreCreditEntry

SC = StoreCreditEntry.__table__
C = Customer.__table__


async def balances(session, customer_id: str) -> dict[str, int]:
    rows = (await session.execute(select(SC.c.currency, func.sum(SC.c.amount)).where(SC.c.customer_id == customer_id)
                                  .group_by(SC.c.currency))).all()
    return {cur: int(total) for cur, total in rows}


async def entries(session, customer_id: str, limit: int = 100) -> list[Any]:
    return list((await session.execute(select(SC).where(SC.c.customer_id == customer_id)
                                       .order_by(SC.c.created_at.desc(), SC.c.id.desc()).limit(limit))).all())


async def _lock_customer(session, customer_id: str) -> None:
    found = (await session.execute(select(C.c.id).where(C.c.id == customer_id).with_for_update())).first()
    if found is None:
        raise ApiError(422, "validation_error", f"Unknown customer {customer_id!r}.",
                       errors=[{"field": "customer", "message": "Unknown customer."}])


async def add(session, customer_id: str, currency: str, amount: int, *, order_id: str | None = None,
              return_id: str | None = None, note: str | None = None, api_key_id: str | None = None) -> dict:
    """One ledger entry (amount > 0 credits, < 0 spends: refused beyond the balance). Returns
    {id, amount, balance} after it."""
    await _lock_customer(session, customer_id)
    balance = (await balances(session, customer_id)).get(currency, 0)
    if amount < 0 and balance + amount < 0:
        raise ApiError(409, "insufficient_store_credit",
                       f"The customer's store credit ({balance} {currency} in minor units) does not cover "
                       f"{-amount}.", errors=[{"field": "payment.provider", "message": "Not enough store credit."}],
                       balance={"amount": balance, "currency": currency})
    entry_id = new_id("scr")
    await session.execute(insert(SC).values(id=entry_id, customer_id=customer_id, currency=currency, amount=amount,
                                            order_id=order_id, return_id=return_id, note=note, api_key_id=api_key_id,
                                            created_at=clock.now()))
    return {"id": entry_id, "amount": amount, "balance": balance + amount}


def render_entry(r: Any) -> dict:
    return {"id": r.id, "amount": {"amount": r.amount, "currency": r.currency}, "order": r.order_id,
            "return": r.return_id, "note": r.note, "created_at": rfc3339(r.created_at)}
