"""Splitting a shipment over the fewest locations: greedy set cover over stock vectors.

Part of the pure sourcing engine (see `engine.py` for the rules as a whole); this module
knows nothing of lines or plans, only integers. Stock is a `Vector`: a list indexed by SKU
position. A line's `Parts` are (SKU position, units per line unit): one part for a plain
line, the components for a bundle, so a bundle unit is always made at one location.

The greedy loop: repeatedly the location that can serve the most remaining line units takes
all it can (ties: the ranking, candidates arrive in ranking order), until nothing is left,
nobody can serve more, or `max_splits` locations are used. Greedy is the classic set-cover
approximation: not always the fewest locations, but close, deterministic and fast.

The final pass re-deals the lines over the chosen locations: each line whole at the first
location (in pick order) that can take it, the rest filled in pick order. It is kept when it
covers at least as many units in no more line parts, so a line (above all a bundle) is not
split when the chosen locations can avoid it.

Speed: when no SKU is needed by two lines, a location's units per line are fixed caps and a
score is one `sum(map(min, remaining, caps))`; with shared SKUs `_serve` walks the lines,
consuming shared stock once. A location that serves nothing is dropped for good (what
remains only shrinks, so it never will).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the engine imports this module
    from app.orders.sourcing.engine import Candidate, Ranking

Vector = list[int]
Parts = tuple[tuple[int, int], ...]


def _capacity(stock: Vector, parts: Parts) -> int:
    """Whole units of a line that `stock` can make."""
    return min([stock[i] // q for i, q in parts])


def _take(stock: Vector, parts: Parts, units: int) -> None:
    for i, q in parts:
        stock[i] -= q * units


def _serve(avail: Vector, partss: Sequence[Parts], remaining: Sequence[int]) -> list[int]:
    """Units per line one location would take of `remaining`, lines in order, shared SKUs consumed once."""
    stock = list(avail)
    out = []
    for parts, need in zip(partss, remaining):
        units = min(need, _capacity(stock, parts)) if need else 0
        if units:
            _take(stock, parts, units)
        out.append(units)
    return out


def _whole_first(avails: Sequence[Vector], partss: Sequence[Parts], quantities: Sequence[int]) -> list[list[int]]:
    """Units per (location, line): each line whole at the first location that can take it, then
    what is left filled across the locations in order."""
    stocks = [list(a) for a in avails]
    remaining = list(quantities)
    alloc = [[0] * len(quantities) for _ in avails]
    for whole in (True, False):
        for i, parts in enumerate(partss):
            for j, stock in enumerate(stocks):
                if not remaining[i]:
                    break
                units = min(remaining[i], _capacity(stock, parts))
                if units and (units == remaining[i] or not whole):
                    _take(stock, parts, units)
                    alloc[j][i] += units
                    remaining[i] -= units
    return alloc


def split(candidates: Sequence[Candidate], avails: Sequence[Vector], partss: Sequence[Parts],
          quantities: Sequence[int], *, max_splits: int, ranking: Ranking
          ) -> tuple[list[tuple[Candidate, list[int], str]], dict[str, str]]:
    """Choose locations for the lines. `candidates` (usable, in ranking order) and `avails`
    (their stock vectors) run in parallel. Returns the picks, in pick order, as (candidate,
    units per line, rule), and {location: reason} for every candidate not picked."""
    if sum(map(len, partss)) == len({i for parts in partss for i, _ in parts}):  # no SKU in two lines
        if all(len(parts) == 1 and parts[0][1] == 1 for parts in partss):  # no bundles: caps are the stock
            at = [parts[0][0] for parts in partss]
            bases = [[avail[i] for i in at] for avail in avails]
        else:
            bases = [[_capacity(avail, parts) for parts in partss] for avail in avails]

        def serve(caps: Vector, remaining: list[int]) -> list[int]:
            return list(map(min, remaining, caps))

        def scores_of(pool: list[int], remaining: list[int]) -> list[int]:
            return [sum(map(min, remaining, bases[j])) for j in pool]
    else:
        bases = list(avails)

        def serve(avail: Vector, remaining: list[int]) -> list[int]:
            return _serve(avail, partss, remaining)

        def scores_of(pool: list[int], remaining: list[int]) -> list[int]:
            return [sum(_serve(bases[j], partss, remaining)) for j in pool]

    remaining = list(quantities)
    pool = list(range(len(candidates)))  # in ranking order: the first of equal score wins
    picks: list[tuple[int, list[int], str]] = []
    lost_tie: dict[str, str] = {}
    while any(remaining) and pool:
        scores = scores_of(pool, remaining)
        if not all(scores):
            pool = [j for j, score in zip(pool, scores) if score]
            scores = [score for score in scores if score]
        if not pool or len(picks) == max_splits:
            break
        top = max(scores)
        win = pool[scores.index(top)]
        winner = candidates[win]
        tied = [candidates[j] for j, score in zip(pool, scores) if score == top and j != win]
        for loser in tied:
            lost_tie.setdefault(loser.location, ranking.lost_reason(winner, loser))
        if winner.type == "partner":
            rule = "partner_stock"
        else:
            rule = (ranking.deciding_key(winner, tied[0]) if tied else None) or "fewest_splits"
        units = serve(bases[win], remaining)
        picks.append((win, units, rule))
        remaining = [r - u for r, u in zip(remaining, units)]
        pool.remove(win)

    reasons: dict[str, str] = {}
    capped = {j for j in pool if any(remaining) and any(serve(bases[j], remaining))}
    picked = {j for j, _, _ in picks}
    for j, c in enumerate(candidates):
        if j not in picked:
            reasons[c.location] = "split_limit" if j in capped else lost_tie.get(c.location, "insufficient_stock")

    greedy = [units for _, units, _ in picks]
    whole = _whole_first([avails[j] for j, _, _ in picks], partss, quantities)

    def measure(alloc: list[list[int]]) -> tuple[int, int]:
        return sum(map(sum, alloc)), -sum(1 for row in alloc for u in row if u)

    alloc = whole if measure(whole) >= measure(greedy) else greedy
    out = []
    for (j, _, rule), units in zip(picks, alloc):
        if any(units):
            out.append((candidates[j], units, rule))
        else:  # the final pass needed it no more
            reasons[candidates[j].location] = "insufficient_stock"
    return out, reasons
