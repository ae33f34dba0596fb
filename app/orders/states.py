"""Order and fulfillment states: the statuses, one transition table per fulfillment kind,
and the order status derived from its lines.

A state machine is a table (STYLE.md): `TRANSITIONS[kind][current]` is the set of states a
fulfillment may move to. The tables are checked when this module is imported
(`validate_tables`): a target that is not a state of the table, or a state that cannot be
reached from `open`, fails at start-up instead of in production. Guards and side effects
(stock release, events, status history) belong to the service's `transition()`, which asks
`check()` first and maps `TransitionError` to 409 `invalid_transition`.

Kinds: a fulfillment's kind follows from its method and its location (`kind_for`): shipping
from a partner location is a dropship, which moves like a shipment.

    ship, dropship   open -> shipped | declined | cancelled
    pickup           open -> ready | declined | cancelled
                     ready -> collected | expired | cancelled | declined
    reserve          open -> collected | expired | cancelled | declined

`declined` means the location cannot serve it: the service re-sources its lines elsewhere.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class FulfillmentStatus(StrEnum):
    open = "open"
    ready = "ready"
    shipped = "shipped"
    collected = "collected"
    declined = "declined"
    cancelled = "cancelled"
    expired = "expired"


class OrderStatus(StrEnum):
    pending_payment = "pending_payment"
    confirmed = "confirmed"
    partially_fulfilled = "partially_fulfilled"
    fulfilled = "fulfilled"
    cancelled = "cancelled"


class FulfillmentMethod(StrEnum):
    """What the customer chose at checkout."""

    ship = "ship"
    pickup = "pickup"
    reserve = "reserve"


class FulfillmentKind(StrEnum):
    """Which table a fulfillment follows: its method, or dropship when a partner ships it."""

    ship = "ship"
    pickup = "pickup"
    reserve = "reserve"
    dropship = "dropship"


S = FulfillmentStatus
INITIAL = S.open

_SHIP: dict[S, frozenset[S]] = {
    S.open: frozenset({S.shipped, S.declined, S.cancelled}),
    S.shipped: frozenset(),
    S.declined: frozenset(),
    S.cancelled: frozenset(),
}

TRANSITIONS: dict[FulfillmentKind, dict[S, frozenset[S]]] = {
    FulfillmentKind.ship: _SHIP,
    FulfillmentKind.dropship: dict(_SHIP),
    FulfillmentKind.pickup: {
        S.open: frozenset({S.ready, S.declined, S.cancelled}),
        S.ready: frozenset({S.collected, S.expired, S.cancelled, S.declined}),
        S.collected: frozenset(),
        S.expired: frozenset(),
        S.cancelled: frozenset(),
        S.declined: frozenset(),
    },
    FulfillmentKind.reserve: {
        S.open: frozenset({S.collected, S.expired, S.cancelled, S.declined}),
        S.collected: frozenset(),
        S.expired: frozenset(),
        S.cancelled: frozenset(),
        S.declined: frozenset(),
    },
}

# What a fulfillment's final status means for its order lines (`line_progress`).
FULFILLED = frozenset({S.shipped, S.collected})
CANCELLED = frozenset({S.cancelled, S.expired})  # the stock went back; the units are not coming
# `declined` counts as neither: its lines are re-sourced into a new fulfillment.


class TransitionError(Exception):
    """A fulfillment cannot move from `current` to `target` (HTTP: 409 invalid_transition)."""

    code = "invalid_transition"

    def __init__(self, current: str, target: str, kind: str):
        self.current, self.target, self.kind = str(current), str(target), str(kind)
        nexts = sorted(TRANSITIONS.get(kind, {}).get(current, ()))  # type: ignore[call-overload]
        allowed_text = f"it can move to {', '.join(nexts)}" if nexts else "it is final"
        self.detail = (f"The {self.kind} fulfillment is {self.current}: it cannot become {self.target} "
                       f"({allowed_text}).")
        super().__init__(self.detail)


def validate_tables(tables: Mapping[str, Mapping[str, Iterable[str]]] = TRANSITIONS) -> None:
    """Raise ValueError if a table names a target that is not one of its states (or not a
    FulfillmentStatus), lacks the initial state, or has a state unreachable from `open`."""
    known = set(FulfillmentStatus)
    for kind, table in tables.items():
        states = set(table)
        if not states <= known:
            raise ValueError(f"{kind}: unknown states {sorted(states - known)}")
        if INITIAL not in table:
            raise ValueError(f"{kind}: no initial state {INITIAL!s}")
        for state, targets in table.items():
            unknown = set(targets) - states
            if unknown:
                raise ValueError(f"{kind}: {state} -> unknown targets {sorted(unknown)}")
        seen, todo = {INITIAL}, [INITIAL]
        while todo:
            for nxt in table[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        if seen != states:
            raise ValueError(f"{kind}: unreachable states {sorted(states - seen)}")


def kind_for(method: str, location_type: str) -> FulfillmentKind:
    """The table a fulfillment follows: shipping from a partner is a dropship."""
    if FulfillmentMethod(method) is FulfillmentMethod.ship and location_type == "partner":
        return FulfillmentKind.dropship
    return FulfillmentKind(method)


def allowed(kind: str, current: str, target: str) -> bool:
    """Whether the table lets a `kind` fulfillment move from `current` to `target`.
    An unknown kind raises ValueError (a programming error); unknown states are just not allowed."""
    return target in TRANSITIONS[FulfillmentKind(kind)].get(current, frozenset())  # type: ignore[call-overload]


def check(kind: str, current: str, target: str) -> None:
    """Raise TransitionError unless the move is allowed."""
    if not allowed(kind, current, target):
        raise TransitionError(current, target, kind)


def is_final(kind: str, status: str) -> bool:
    return not TRANSITIONS[FulfillmentKind(kind)].get(status)  # type: ignore[call-overload]


# --------------------------------------------------------------------------- the order's status

@dataclass(frozen=True, slots=True)
class LineProgress:
    """One order line's units: ordered, fulfilled (shipped or collected), cancelled."""

    ordered: int
    fulfilled: int = 0
    cancelled: int = 0


def line_progress(ordered: Mapping[str, int],
                  fulfillments: Iterable[tuple[str, Iterable[tuple[str, int]]]]) -> dict[str, LineProgress]:
    """Progress per order line from its fulfillments: `ordered` maps line key to quantity;
    each fulfillment is (status, [(line key, quantity)]). Shipped and collected units are
    fulfilled, cancelled and expired units cancelled; open, ready and declined count as neither."""
    done = dict.fromkeys(ordered, 0)
    gone = dict.fromkeys(ordered, 0)
    for status, lines in fulfillments:
        bucket = done if status in FULFILLED else gone if status in CANCELLED else None
        if bucket is not None:
            for key, qty in lines:
                bucket[key] += qty
    return {k: LineProgress(q, done[k], gone[k]) for k, q in ordered.items()}


def derive_order_status(lines: Iterable[LineProgress], *, payment_pending: bool = False) -> OrderStatus:
    """The order's status from its lines, first match wins:
    every unit cancelled -> cancelled (even while payment is pending: nothing left to pay for);
    payment pending -> pending_payment; every unit not cancelled fulfilled -> fulfilled;
    some unit fulfilled -> partially_fulfilled; else confirmed.
    Raises ValueError for an order without units or a line whose counts do not add up."""
    ordered = fulfilled = cancelled = 0
    for ln in lines:
        if ln.ordered < 1 or ln.fulfilled < 0 or ln.cancelled < 0 or ln.fulfilled + ln.cancelled > ln.ordered:
            raise ValueError(f"inconsistent line quantities: {ln}")
        ordered += ln.ordered
        fulfilled += ln.fulfilled
        cancelled += ln.cancelled
    if not ordered:
        raise ValueError("an order has at least one line")
    if cancelled == ordered:
        return OrderStatus.cancelled
    if payment_pending:
        return OrderStatus.pending_payment
    if fulfilled == ordered - cancelled:
        return OrderStatus.fulfilled
    if fulfilled:
        return OrderStatus.partially_fulfilled
    return OrderStatus.confirmed


validate_tables()
