"""The sourcing strategies a channel can choose, wired in one place.

Each is the engine's algorithm (see `engine.py`) with its own ranking of candidates that
serve equally well; the location code always breaks the last tie.

| name     | ranking                          | for                                            |
|----------|----------------------------------|------------------------------------------------|
| default  | priority, then distance          | warehouses first (higher priority), then near  |
| priority | priority only (distance ignored) | no reliable destination, or strict preference  |
| nearest  | distance, then priority          | fastest delivery, ship-from-store networks     |

A new strategy implements `SourcingStrategy.plan` (anything with that method will do) and
is added to `STRATEGIES`; nothing else changes.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.orders.sourcing.engine import (
    DEFAULT_MAX_SPLITS, DEFAULT_RANKING, Candidate, Line, Method, Plan, Ranking, SourcingStrategy, source,
)


@dataclass(frozen=True, slots=True)
class RankedStrategy:
    """The engine's algorithm under one ranking."""

    name: str
    ranking: Ranking

    def plan(self, lines: Sequence[Line], candidates: Iterable[Candidate], *, method: Method,
             chosen_location: str | None = None, max_splits: int = DEFAULT_MAX_SPLITS,
             exclude: frozenset[str] = frozenset()) -> Plan:
        return source(lines, candidates, method=method, chosen_location=chosen_location,
                      max_splits=max_splits, exclude=exclude, ranking=self.ranking, strategy=self.name)


STRATEGIES: dict[str, SourcingStrategy] = {
    "default": RankedStrategy("default", DEFAULT_RANKING),
    "priority": RankedStrategy("priority", Ranking(("priority",))),
    "nearest": RankedStrategy("nearest", Ranking(("distance", "priority"))),
}


class UnknownStrategy(KeyError):
    """A channel names a strategy that does not exist (a configuration error)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"Unknown sourcing strategy {self.name!r} (known: {', '.join(sorted(STRATEGIES))})."


def get_strategy(name: str) -> SourcingStrategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise UnknownStrategy(name) from None
