"""What an order's payment should do next, from what was fulfilled and cancelled: a pure function.

Units carry their exact share of their line's total (pricing.money.refund_for_units): the
first k units of a line are worth floor(total·k/q), so the fulfilled units (counted from the
front) and the cancelled ones (from the back) of a line add up to its total to the cent.

Stripe authorizes the order total at checkout; then:
- multicapture (the card allows several captures): each time goods leave, capture what they are
  worth; the capture that leaves nothing open is final (Stripe releases the rest). When the last
  open units are cancelled instead, the rest of the authorization is released (void).
- single capture: when the first goods leave, capture what the order is still worth (total less
  the cancelled units) once; units cancelled after that are refunded.
- nothing fulfilled and nothing left open (the whole order cancelled): void the authorization
  (before the shopper paid, that also stops a later payment).
Store credit was spent at checkout: cancelled units are credited back. External payments
(till, marketplace) are settled where they were taken: nothing is planned for them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True, slots=True)
class Line:
    total: int
    quantity: int
    fulfilled: int
    cancelled: int


@dataclass(frozen=True, slots=True)
class Ledger:
    """The order's payment as far as operations were asked for (pending or done, not failed)."""

    provider: str
    total: int
    authorized: int = 0  # what the provider holds (0 until confirmed)
    captured: int = 0  # captures asked for
    final_captured: bool = False
    refunded_cancelled: int = 0  # refunds asked for cancelled units (not returns)
    voided: bool = False
    multicapture: bool = False


@dataclass(frozen=True, slots=True)
class Op:
    kind: str  # capture | void | refund
    amount: int
    reason: str  # fulfilled | cancelled | unfulfillable
    final: bool = False


def units_value(total: int, quantity: int, first: int, last: int) -> int:
    """What units first+1 … last of a line are worth."""
    return total * last // quantity - total * first // quantity


def fulfilled_value(lines: Iterable[Line]) -> int:
    return sum(units_value(ln.total, ln.quantity, 0, ln.fulfilled) for ln in lines)


def cancelled_value(lines: Iterable[Line]) -> int:
    return sum(units_value(ln.total, ln.quantity, ln.quantity - ln.cancelled, ln.quantity) for ln in lines)


def is_open(lines: Iterable[Line]) -> bool:
    return any(ln.fulfilled + ln.cancelled < ln.quantity for ln in lines)


def plan(lines: list[Line], ledger: Ledger) -> list[Op]:
    fulfilled, cancelled, still_open = fulfilled_value(lines), cancelled_value(lines), is_open(lines)
    if ledger.provider == "store_credit":
        due = cancelled - ledger.refunded_cancelled
        return [Op("refund", due, "cancelled")] if due > 0 else []
    if ledger.provider != "stripe" or ledger.voided:
        return []
    if ledger.authorized == 0 and ledger.captured == 0:  # not confirmed (yet)
        return [] if still_open or fulfilled else [Op("void", 0, "cancelled")]
    if ledger.multicapture:
        due = min(fulfilled, ledger.authorized) - ledger.captured
        if due > 0:
            return [Op("capture", due, "fulfilled", final=not still_open)]
        if not still_open and not ledger.final_captured:
            return [Op("void", 0, "cancelled")]  # release what is left of the authorization
        return []
    if ledger.captured == 0:
        if fulfilled > 0:
            return [Op("capture", min(ledger.total - cancelled, ledger.authorized), "fulfilled", final=True)]
        return [] if still_open else [Op("void", 0, "cancelled")]
    excess = ledger.captured - (ledger.total - cancelled) - ledger.refunded_cancelled
    return [Op("refund", excess, "unfulfillable")] if excess > 0 else []


def payment_status(current: str, *, authorized: int, captured: int, refunded: int) -> str:
    """unpaid | authorized | paid | partially_refunded | refunded from the figures."""
    if refunded > 0:
        return "refunded" if refunded >= captured else "partially_refunded"
    if captured > 0:
        return "paid"
    if authorized > 0:
        return "authorized"
    return current if current in ("paid", "unpaid") else "unpaid"
