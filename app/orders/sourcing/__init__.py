"""Sourcing: a pure engine over a stock snapshot (`engine`, with its greedy split in `split`)
and the strategies a channel chooses from (`strategies`); `service` loads the snapshot (the
channel's candidate locations and their sellable stock) and persists a plan as fulfillments."""
from app.orders.sourcing.engine import (
    DEFAULT_MAX_SPLITS, METHODS, REASONS, RULES, Assignment, Candidate, Line, LinePart, Plan, Ranking, Rejection,
    SourcingStrategy, consumption, demand, source, stock_units,
)
from app.orders.sourcing.strategies import STRATEGIES, RankedStrategy, UnknownStrategy, get_strategy

__all__ = [
    "DEFAULT_MAX_SPLITS", "METHODS", "REASONS", "RULES", "STRATEGIES", "Assignment", "Candidate", "Line",
    "LinePart", "Plan", "RankedStrategy", "Ranking", "Rejection", "SourcingStrategy", "UnknownStrategy",
    "consumption", "demand", "get_strategy", "source", "stock_units",
]
