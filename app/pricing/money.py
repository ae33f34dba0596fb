"""Money arithmetic for the quote engine and returns: integers only.

Amounts are integers in minor units; rates and percentages are basis points (`BP` = 100 %,
1900 = 19 %). Pure: no database, no I/O, no clock.

* `div_half_up`   rounds a quotient half-up (halves away from zero), exactly.
* `allocate`, `allocate_capped`  split an amount over lines by largest remainder, so the parts
  add up to the whole to the cent; `allocate_bundle` spreads a bundle line over its components.
* `tax_of`        a line's tax: gross channels (prices include tax) round(total × rate /
  (10000 + rate)), net channels round(total_net × rate / 10000).
* `refund_for_units`  what returning units of a line refunds, each unit its exact share.
"""
from __future__ import annotations

from collections.abc import Sequence

BP = 10_000


def div_half_up(numerator: int, denominator: int) -> int:
    """round(numerator / denominator), halves away from zero; exact on integers."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    if numerator >= 0:
        return (2 * numerator + denominator) // (2 * denominator)
    return -((-2 * numerator + denominator) // (2 * denominator))


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` over `weights` proportionally; the parts are integers that add up to `total`
    exactly (largest remainder; equal remainders go to the earlier weight). All-zero weights
    split evenly."""
    n = len(weights)
    if n == 0:
        if total:
            raise ValueError("nothing to allocate to")
        return []
    wsum = sum(weights)
    if wsum <= 0:
        weights = [1] * n
        wsum = n
    sign = -1 if total < 0 else 1
    t = abs(total)
    parts = [t * w // wsum for w in weights]
    left = t - sum(parts)
    if left:
        order = sorted(range(n), key=lambda i: (-((t * weights[i]) % wsum), i))
        for i in order[:left]:
            parts[i] += 1
    return [sign * p for p in parts]


def allocate_capped(total: int, weights: Sequence[int], caps: Sequence[int]) -> list[int]:
    """Like `allocate`, but no part exceeds its cap (the amount left on a line); the overflow is
    re-spread over the lines with room. `total` must not exceed sum(caps)."""
    parts = allocate(total, weights)
    while True:
        over = sum(max(0, p - c) for p, c in zip(parts, caps))
        if not over:
            return parts
        parts = [min(p, c) for p, c in zip(parts, caps)]
        room = [c - p for p, c in zip(parts, caps)]
        extra = allocate(over, room)
        parts = [p + e for p, e in zip(parts, extra)]


def allocate_bundle(total: int, components: Sequence[tuple[str, int, int]]) -> list[dict]:
    """A bundle line's amount spread over its components (returns and reports need it).

    components: (sku, quantity, weight) with weight = the component's own price × quantity
    (0 when it has none: then by quantity). Returns [{sku, quantity, allocated}] adding up to
    `total` exactly."""
    weights = [w for _, _, w in components]
    if not any(weights):
        weights = [q for _, q, _ in components]
    parts = allocate(total, weights)
    return [{"sku": s, "quantity": q, "allocated": a} for (s, q, _), a in zip(components, parts)]


def refund_for_units(line_total: int, line_tax: int, quantity: int, already_returned: int, returning: int) -> tuple[int, int]:
    """What returning `returning` more units of a line refunds: (amount, tax included in it).

    Each unit carries its exact share of the line total (its unit price less its share of every
    discount, plus tax as charged): unit k's share is floor(total·k/q) − floor(total·(k−1)/q), so
    refunding every unit, in any number of returns, refunds the line total to the cent."""
    if quantity <= 0 or returning < 0 or already_returned < 0 or already_returned + returning > quantity:
        raise ValueError("invalid return quantity")
    a, b = already_returned, already_returned + returning
    amount = line_total * b // quantity - line_total * a // quantity
    tax = line_tax * b // quantity - line_tax * a // quantity
    return amount, tax


def tax_of(total: int, rate_bp: int, prices_include_tax: bool) -> int:
    if rate_bp <= 0 or total <= 0:
        return 0
    if prices_include_tax:
        return div_half_up(total * rate_bp, BP + rate_bp)
    return div_half_up(total * rate_bp, BP)
