"""The one place a return asks for money back: the payments service's `refund`.

    refund = await payments.refund(session, order_row, amount, method=..., key=f"{order_id}:return:{n}",
                                   return_id=..., location=..., who=...)

`n` is the return's number within the order and a digest of what it refunds (`refund_key`): a
retry of the same return after an answer that never arrived (the transaction rolled back, the
provider may have refunded) sends the same key, so the provider refunds once; another return of
the same order, even one that takes the number of a failed attempt, sends another key (a
provider refuses a reused key with other parameters).

It writes the refund record, updates the order's payment_status and emits `refund.created` in
the caller's transaction; it raises ApiError 422 refund_method_not_allowed (field
refund_method), 409 refund_exceeds_payment, 503 payment_provider_unavailable or 502
payment_provider_error, and the whole return rolls back with it. A zero amount, or an order
nothing was paid for (pay at pickup never taken), records nothing (None). The service is called after
the order row is locked and the return validated, and before any stock moves: a provider call
never happens while stock rows are locked.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.payments import service as payments


def refund_key(seq: int, method: str, amount: int, units: Iterable[tuple[str, int]]) -> str:
    """`n` of the key: the return's number in the order and a digest of what it refunds."""
    what = f"{method}|{amount}|" + ";".join(f"{line}:{q}" for line, q in sorted(units))
    return f"{seq}-{hashlib.sha256(what.encode()).hexdigest()[:12]}"


async def refund(session: AsyncSession, order_row: Any, amount: int, *, method: str, n: str, return_id: str,
                 location: str | None, who: Principal | None) -> dict | None:
    """The rendered refund record ({id, amount, method, provider, reference, status, return_id}),
    or None when nothing was recorded."""
    return await payments.refund(session, order_row, amount, method=method, key=f"{order_row.id}:return:{n}",
                                 return_id=return_id, location=location, who=who)
