"""The sourcing engine: which locations serve an order's lines, and why.

Pure, like the pricing engine: no database, no I/O, no clock. The service loads a stock
snapshot (`Candidate.stock` is what each location may sell, already net of reserved units
and safety stock) and persists the `Plan`; the engine only decides. Plans are
deterministic: the same lines and candidates (in any order) give the same plan.

Demand
------
A plain line needs `quantity` units of its SKU. A bundle line needs its components
(`components`: (sku, quantity per bundle unit)) and is always sourced in whole bundle units:
every unit of a bundle is taken from one location, so a parcel never holds half a bundle.
Lines that share a SKU (two bundles with a common component, or a bundle and the component
sold alone) draw on the same stock, so nothing is ever assigned twice. Quantities in a plan
are line units (bundle units for bundles); `consumption()` turns them into stock units.

The default strategy
--------------------
pickup / reserve
    Only the chosen store is used: it must be active, pickup-capable, not excluded and hold
    every line in full. Otherwise nothing is assigned, every line is unsourced and the store's
    rejection says why (the API answers 409: the customer chose that store). Every other
    candidate is rejected as "excluded": the customer did not choose it. The rule is
    "chosen_store". (A service should pass only the chosen store, to keep explanations short.)
ship
    Usable candidates are active, ship-capable and not in `exclude` (e.g. the location that
    just declined). Partner (dropship) locations take part like any other: they take the lines
    of SKUs they stock.
    (a) One location covering every line wins ("single_location"); among several, the
        strategy's ranking decides: priority (lower number first, as locations define it: warehouses 10, stores 50, partners 90), then distance (nearest first,
        unknown last), then location code. The others that covered too are rejected as
        "lower_priority" or "further_away", whichever key they lost on.
    (b) Otherwise the lines are split greedily over as few locations as possible: repeatedly
        the location that can serve the most remaining line units (a bundle unit counts as
        one; ties: the ranking) takes all it can, until nothing is left, nobody can serve
        more, or `max_splits` locations are used.
        Its rule is "partner_stock" for a partner, "priority" or "distance" when it won a tie
        on units by that key, else "fewest_splits". A final pass hands every line whole to
        the first chosen location (in pick order) that can take it, then fills the rest in
        pick order; it is kept when it covers at least as much with no more line parts, so a
        bundle stays at one location where possible. What remains is unsourced.
    Unused candidates are rejected with the first reason that applies: "excluded",
    "inactive", "not_ship_capable", "no_stock" (none of any SKU needed), "split_limit" (it
    could serve what is left but max_splits was reached), "lower_priority"/"further_away"
    (it could serve as much as a chosen one but lost the tie; a tie on every key, settled by
    the code, reads "lower_priority"), "insufficient_stock".

Every candidate appears exactly once: in an assignment or in `rejected` (in ranking order).
The greedy split of (b) is in `split.py`; the rankings of the other strategies ("priority",
"nearest") are in `strategies.py`.
"""
from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol

from app.orders.sourcing.split import Parts, Vector, split

METHODS = ("ship", "pickup", "reserve")
RULES = ("chosen_store", "single_location", "priority", "distance", "fewest_splits", "partner_stock")
REASONS = ("no_stock", "insufficient_stock", "not_ship_capable", "not_pickup_capable", "inactive",
           "lower_priority", "further_away", "excluded", "split_limit")
DEFAULT_MAX_SPLITS = 3

Method = Literal["ship", "pickup", "reserve"]
LocationType = Literal["warehouse", "store", "partner"]


# --------------------------------------------------------------------------- inputs

@dataclass(frozen=True, slots=True)
class Candidate:
    """A location that might serve the order, with its sellable stock per SKU (never safety stock)."""

    location: str  # code: stable, unique, the last tie-break
    location_id: str
    type: LocationType
    priority: int = 100  # lower wins (locations: warehouse 10, store 50, partner 90)
    distance_km: float | None = None  # to the destination; None = unknown, ranks last
    can_ship: bool = True
    can_pickup: bool = False
    active: bool = True
    stock: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Line:
    """An order line; a bundle carries its components (sku, quantity per bundle unit)."""

    key: str
    sku: str
    quantity: int
    components: tuple[tuple[str, int], ...] = ()

    @property
    def parts(self) -> tuple[tuple[str, int], ...]:
        """The stock one unit of this line takes: its components, or one of its own SKU."""
        return self.components or ((self.sku, 1),)


class LinePart(NamedTuple):
    """Some units of one line (a plain tuple to callers: (line key, sku, quantity))."""

    key: str
    sku: str
    quantity: int


# --------------------------------------------------------------------------- outputs

@dataclass(frozen=True, slots=True)
class Assignment:
    location: str
    location_id: str
    lines: tuple[LinePart, ...]
    rule: str


@dataclass(frozen=True, slots=True)
class Rejection:
    location: str
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    strategy: str
    method: str
    assignments: tuple[Assignment, ...]
    rejected: tuple[Rejection, ...]
    unsourced: tuple[LinePart, ...]

    @property
    def ok(self) -> bool:
        """Every unit of every line has a location."""
        return not self.unsourced

    def assignment(self, location: str) -> Assignment:
        for a in self.assignments:
            if a.location == location:
                return a
        raise KeyError(location)

    def assigned(self, line_key: str) -> int:
        """Units of one line assigned over all locations."""
        return sum(p.quantity for a in self.assignments for p in a.lines if p.key == line_key)

    def explain(self, location: str) -> dict:
        """Why `location` serves its lines: stored on the fulfillment as its `sourcing`."""
        return {
            "strategy": self.strategy,
            "rule": self.assignment(location).rule,
            "rejected": [{"location": r.location, "reason": r.reason} for r in self.rejected],
        }


class SourcingStrategy(Protocol):
    name: str

    def plan(self, lines: Sequence[Line], candidates: Iterable[Candidate], *, method: Method,
             chosen_location: str | None = None, max_splits: int = DEFAULT_MAX_SPLITS,
             exclude: frozenset[str] = frozenset()) -> Plan: ...


# --------------------------------------------------------------------------- ranking

_KEYS = {
    "priority": lambda c: c.priority,
    "distance": lambda c: _UNKNOWN_DISTANCE if c.distance_km is None else c.distance_km,
}
_UNKNOWN_DISTANCE = float("inf")
_LOST_ON = {"priority": "lower_priority", "distance": "further_away"}


@functools.cache
def _sort_key(keys: tuple[str, ...]):
    """One flat function per ranking: sorting 200 candidates is a hot spot."""
    if keys == ("priority", "distance"):
        return lambda c: (c.priority, _UNKNOWN_DISTANCE if c.distance_km is None else c.distance_km, c.location)
    getters = [_KEYS[k] for k in keys]
    return lambda c: tuple([g(c) for g in getters] + [c.location])


@dataclass(frozen=True, slots=True)
class Ranking:
    """How a strategy orders candidates that serve equally well: `keys` in order, each
    "priority" (lower number first) or "distance" (nearest first, unknown last); the location code
    always breaks the last tie, so plans never depend on the order of the input."""

    keys: tuple[str, ...] = ("priority", "distance")

    def __post_init__(self) -> None:
        unknown = set(self.keys) - set(_KEYS)
        if unknown:
            raise ValueError(f"unknown ranking keys {sorted(unknown)}")

    def key(self, c: Candidate) -> tuple:
        return _sort_key(self.keys)(c)

    def rank(self, candidates: Iterable[Candidate]) -> list[Candidate]:
        return sorted(candidates, key=_sort_key(self.keys))

    def deciding_key(self, winner: Candidate, loser: Candidate) -> str | None:
        """The first key on which `winner` ranks before `loser` (None: only the code)."""
        for k in self.keys:
            if _KEYS[k](winner) != _KEYS[k](loser):
                return k
        return None

    def lost_reason(self, winner: Candidate, loser: Candidate) -> str:
        return _LOST_ON.get(self.deciding_key(winner, loser) or "priority", "lower_priority")


DEFAULT_RANKING = Ranking()


# --------------------------------------------------------------------------- helpers

def demand(lines: Iterable[Line]) -> dict[str, int]:
    """Stock units per SKU that the lines need in total (bundles as their components)."""
    out: dict[str, int] = {}
    for ln in lines:
        for sku, q in ln.parts:
            out[sku] = out.get(sku, 0) + q * ln.quantity
    return out


def stock_units(lines: Iterable[Line], parts: Iterable[LinePart]) -> dict[str, int]:
    """Stock units per SKU of some line parts (bundles as their components), e.g. a plan's
    `unsourced` for the SKUs a 409 insufficient_stock should name."""
    by_key = {ln.key: ln for ln in lines}
    return demand(Line(p.key, p.sku, p.quantity, by_key[p.key].components) for p in parts)


def consumption(lines: Iterable[Line], assignment: Assignment) -> dict[str, int]:
    """Stock units per SKU an assignment takes from its location: what to allocate there."""
    return stock_units(lines, assignment.lines)


def _check(lines: Sequence[Line], candidates: Sequence[Candidate], method: str, max_splits: int) -> None:
    """Programming errors, not domain errors: the service validates requests before this."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if max_splits < 1:
        raise ValueError("max_splits must be at least 1")
    if not lines:
        raise ValueError("nothing to source: no lines")
    if len({ln.key for ln in lines}) != len(lines):
        raise ValueError("line keys must be unique")
    if len({c.location for c in candidates}) != len(candidates):
        raise ValueError("candidate location codes must be unique")
    for ln in lines:
        if ln.quantity < 1 or any(q < 1 for _, q in ln.components):
            raise ValueError(f"line {ln.key!r}: quantities must be positive")


def _merged(parts: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """A bundle listing one SKU twice needs their sum per unit."""
    out: dict[str, int] = {}
    for sku, q in parts:
        out[sku] = out.get(sku, 0) + q
    return list(out.items())


def _unusable(c: Candidate, method: str, exclude: frozenset[str]) -> str | None:
    if c.location in exclude:
        return "excluded"
    if not c.active:
        return "inactive"
    if method == "ship" and not c.can_ship:
        return "not_ship_capable"
    if method != "ship" and not c.can_pickup:
        return "not_pickup_capable"
    return None


def _parts_of(lines: Sequence[Line], units: Sequence[int]) -> tuple[LinePart, ...]:
    return tuple(LinePart(ln.key, ln.sku, u) for ln, u in zip(lines, units) if u)


# --------------------------------------------------------------------------- the plan

def source(lines: Sequence[Line], candidates: Iterable[Candidate], *, method: Method,
           chosen_location: str | None = None, max_splits: int = DEFAULT_MAX_SPLITS,
           exclude: frozenset[str] = frozenset(), ranking: Ranking = DEFAULT_RANKING,
           strategy: str = "default") -> Plan:
    """Plan where each line comes from (see the module doc). `chosen_location` is the store of
    a pickup or reservation (ignored for ship); `exclude` names locations never to use."""
    lines = tuple(lines)
    ranked = ranking.rank(candidates)
    _check(lines, ranked, method, max_splits)
    needed = demand(lines)
    reasons: dict[str, str] = {}
    if method == "ship":
        assignments = _ship(lines, ranked, needed, max_splits, exclude, ranking, reasons)
    else:
        if chosen_location is None:
            raise ValueError(f"{method} needs the chosen store")
        assignments = _chosen_store(lines, ranked, needed, method, chosen_location, exclude, reasons)
    assigned: dict[str, int] = {}
    for a in assignments:
        for p in a.lines:
            assigned[p.key] = assigned.get(p.key, 0) + p.quantity
    unsourced = tuple(LinePart(ln.key, ln.sku, ln.quantity - assigned.get(ln.key, 0))
                      for ln in lines if ln.quantity > assigned.get(ln.key, 0))
    rejected = tuple(Rejection(c.location, reasons[c.location]) for c in ranked if c.location in reasons)
    return Plan(strategy, method, tuple(assignments), rejected, unsourced)


def _stock_reason(avail: Mapping[str, int]) -> str:
    return "insufficient_stock" if any(avail.values()) else "no_stock"


def _chosen_store(lines, ranked, needed, method, chosen_location, exclude, reasons) -> list[Assignment]:
    """pickup / reserve: all from the chosen store, or nothing."""
    store = None
    for c in ranked:
        if c.location == chosen_location:
            store = c
        else:
            reasons[c.location] = "excluded"
    if store is None:
        return []
    reason = _unusable(store, method, exclude)
    if reason is None:
        avail = {s: max(0, store.stock.get(s, 0)) for s in needed}
        if all(avail[s] >= n for s, n in needed.items()):
            everything = _parts_of(lines, [ln.quantity for ln in lines])
            return [Assignment(store.location, store.location_id, everything, "chosen_store")]
        reason = _stock_reason(avail)
    reasons[store.location] = reason
    return []


def _ship(lines, ranked, needed, max_splits, exclude, ranking: Ranking, reasons) -> list[Assignment]:
    skus = list(needed)
    position = {sku: i for i, sku in enumerate(skus)}
    need = [needed[sku] for sku in skus]
    partss: list[Parts] = [tuple((position[sku], q) for sku, q in _merged(ln.parts)) for ln in lines]
    usable: list[tuple[Candidate, Vector]] = []
    for c in ranked:
        reason = _unusable(c, "ship", exclude)
        if reason is None:
            get = c.stock.get
            avail = [get(sku, 0) for sku in skus]
            if min(avail) < 0:
                avail = [v if v > 0 else 0 for v in avail]
            if any(avail):
                usable.append((c, avail))
                continue
            reason = "no_stock"
        reasons[c.location] = reason

    # (a) one location for everything
    covering = [c for c, avail in usable if all(map(operator.ge, avail, need))]
    if covering:
        winner = covering[0]
        for c, _ in usable:
            if c is not winner:
                reasons[c.location] = "insufficient_stock"
        for c in covering[1:]:
            reasons[c.location] = ranking.lost_reason(winner, c)
        return [Assignment(winner.location, winner.location_id, _parts_of(lines, [ln.quantity for ln in lines]),
                           "single_location")]

    # (b) split over as few locations as possible
    picks, unpicked = split([c for c, _ in usable], [avail for _, avail in usable], partss,
                            [ln.quantity for ln in lines], max_splits=max_splits, ranking=ranking)
    reasons.update(unpicked)
    return [Assignment(c.location, c.location_id, _parts_of(lines, units), rule) for c, units, rule in picks]
