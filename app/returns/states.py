"""A return's statuses and how it may move, as a table (like app/orders/states.py).

    (received at a till or a warehouse)          -> completed
    (opened online: an authorization with a code) -> authorized
    authorized -> completed   a store (any store) received the goods: refund and stock
               -> cancelled   the customer or the back office called it off
               -> expired     the return window ended before the goods came back

An authorized return whose `expires_at` has passed is expired whether or not the worker has
written it yet (`effective_status`): it is shown, filtered and refused as expired at once.
"""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from app.core.errors import ApiError


class ReturnStatus(StrEnum):
    authorized = "authorized"
    completed = "completed"
    cancelled = "cancelled"
    expired = "expired"


class Condition(StrEnum):
    """What the store found: resellable units go back on hand, damaged ones are only recorded."""

    resellable = "resellable"
    damaged = "damaged"


class RefundMethod(StrEnum):
    original = "original"  # back to how the order was paid (Stripe, the marketplace…)
    cash = "cash"  # at the till
    store_credit = "store_credit"


S = ReturnStatus
TRANSITIONS: dict[ReturnStatus, frozenset[ReturnStatus]] = {
    S.authorized: frozenset({S.completed, S.cancelled, S.expired}),
    S.completed: frozenset(),
    S.cancelled: frozenset(),
    S.expired: frozenset(),
}
CREATED_AS = frozenset({S.authorized, S.completed})  # the statuses a return starts in


def effective_status(status: str, expires_at: datetime | None, now: datetime) -> str:
    """The status as of `now`: an authorization past its expiry is expired."""
    if status == S.authorized and expires_at is not None and expires_at <= now:
        return S.expired.value
    return status


def check(current: str, target: str) -> None:
    """409 invalid_transition naming the current status unless the table allows the move."""
    allowed = TRANSITIONS.get(ReturnStatus(current), frozenset())
    if target not in allowed:
        nexts = sorted(allowed)
        raise ApiError(409, "invalid_transition",
                       f"The return is {current}: it cannot become {target} "
                       f"({'it can become ' + ', '.join(nexts) if nexts else 'it is final'}).",
                       current_status=str(current), allowed=nexts)


def _validate() -> None:
    states = set(TRANSITIONS)
    if states != set(ReturnStatus):
        raise ValueError(f"statuses without a row: {sorted(set(ReturnStatus) - states)}")
    for state, targets in TRANSITIONS.items():
        if not targets <= states:
            raise ValueError(f"{state} -> unknown {sorted(targets - states)}")
    reached = set(CREATED_AS)
    for state in CREATED_AS:
        reached |= TRANSITIONS[state]
    if reached != states:
        raise ValueError(f"unreachable statuses {sorted(states - reached)}")


_validate()
