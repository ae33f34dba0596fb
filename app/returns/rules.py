"""The rules of a return, without a database: what may come back, from which fulfillment, until
when, and for how much. The service loads an order's facts (under the order's lock), asks
these functions, and writes what they decided.

Which units come back (`attribute`). An order line's fulfilled units sit in the fulfillments
that shipped or handed them over (`Shipment`: a fulfillment's units of the line and when they
were fulfilled). Returned units, and units held by a live authorization, are taken from those
shipments newest first, and each return line remembers its parts (`sources`). Newest first is
the customer's side of the doubt: without serial numbers nobody can tell two units of a line
apart, and the newest units are the ones whose window is still open.

The return window (`closes_at`): `return_window_days` of the order's channel counted from
the moment the units were fulfilled: the fulfillment's first `shipped` / `collected` status
change (fulfillment_events; its `updated_at` when there is none). A line may come back while
the window of the units it takes is open; units whose window closed are not returnable (422
return_window_expired, saying when it closed).

How much (`price`): what the customer paid for exactly those units, from the order line's
stored figures: pricing.money.refund_for_units(total, tax_amount, quantity, already returned,
returning). Every discount (a broken "3 für 2", tiers, a coupon spread over lines, a bundle
price) is already inside the line's total, so unit k's share is exact and all returns of a
line refund its total to the cent. A bundle line comes back by the bundle.

Charge-backs: units a dropship partner shipped (fulfillment kind `dropship`) and brought back
anywhere but to that partner are charged back to it: per partner, the units and what the
customer is refunded for them (the same per-unit shares).
"""
from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.core.errors import ApiError
from app.pricing.money import refund_for_units

DROPSHIP = "dropship"

# Authorization codes: 10 characters from 31 that cannot be misread (no 0/O, 1/I/L), upper case
# so a QR code holds them in its compact alphanumeric mode: 31^10 ≈ 8.2e14 codes.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 10


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str:
    """A code as typed or read out (lower case, spaces, dashes) as it is stored."""
    return "".join(ch for ch in text.upper() if ch not in " -")


def looks_like_code(text: str) -> bool:
    code = normalize_code(text)
    return len(code) == CODE_LENGTH and all(ch in CODE_ALPHABET for ch in code)


# --------------------------------------------------------------------------- facts

@dataclass(frozen=True, slots=True)
class Shipment:
    """Units of one order line that one fulfillment shipped or handed over."""

    fulfillment_id: str
    location: str  # code
    kind: str  # ship | pickup | reserve | dropship
    quantity: int
    fulfilled_at: datetime

    def closes_at(self, days: int) -> datetime:
        return self.fulfilled_at + timedelta(days=days)

    def newest_first(self) -> tuple:
        return (-self.fulfilled_at.timestamp(), self.fulfillment_id)


@dataclass(slots=True)
class Line:
    """An order line as returns see it."""

    id: str
    sku: str
    quantity: int
    total: int
    tax_amount: int
    quantity_fulfilled: int
    quantity_returned: int
    shipments: list[Shipment] = field(default_factory=list)
    taken: dict[str, int] = field(default_factory=dict)  # fulfillment id -> units returned or authorized
    authorized: int = 0  # units held by live authorizations

    def open_shipments(self) -> list[tuple[Shipment, int]]:
        """(shipment, units not yet returned or authorized), newest first."""
        out = []
        for s in sorted(self.shipments, key=Shipment.newest_first):
            left = s.quantity - self.taken.get(s.fulfillment_id, 0)
            if left > 0:
                out.append((s, left))
        return out

    def returnable(self, now: datetime, days: int) -> tuple[int, int, datetime | None]:
        """(units returnable now, units past their window, when the window of the newest closes)."""
        cap = max(0, self.quantity_fulfilled - self.quantity_returned - self.authorized)
        within = expired = 0
        closes = None
        for s, left in self.open_shipments():
            if s.closes_at(days) > now:
                within += left
                closes = closes or s.closes_at(days)
            else:
                expired += left
        within = min(within, cap)
        return within, min(expired, cap - within), closes


@dataclass(frozen=True, slots=True)
class Part:
    shipment: Shipment
    quantity: int

    def source(self) -> dict:
        s = self.shipment
        return {"fulfillment_id": s.fulfillment_id, "location": s.location, "kind": s.kind,
                "quantity": self.quantity, "fulfilled_at": s.fulfilled_at.isoformat().replace("+00:00", "Z")}


@dataclass(slots=True)
class Planned:
    """One line of a return: what was asked (`index` in the request) and what the rules decided."""

    index: int
    order_line_id: str
    quantity: int
    condition: str | None = None
    reason: str | None = None
    sku: str = ""
    parts: list[Part] = field(default_factory=list)
    refund: int = 0
    tax: int = 0
    chargebacks: list[dict] = field(default_factory=list)  # [{location, quantity, amount}]


def taken_by(sources: Iterable[Sequence[dict]]) -> dict[str, int]:
    """Units per fulfillment id that stored return lines (their `sources`) account for."""
    out: dict[str, int] = defaultdict(int)
    for parts in sources:
        for p in parts:
            out[p["fulfillment_id"]] += int(p["quantity"])
    return dict(out)


# --------------------------------------------------------------------------- checks

def check_lines(lines: dict[str, Line], wanted: Sequence[Planned], *, field: str = "lines") -> None:
    """422 naming every line that is not of this order, or that appears twice with the same
    condition (the same order line twice with different conditions is two return lines)."""
    errors = []
    seen: dict[tuple[str, str | None], int] = {}
    for w in wanted:
        path = f"{field}[{w.index}].order_line_id"
        if w.order_line_id not in lines:
            errors.append({"field": path, "message": f"Order line {w.order_line_id!r} is not a line of this order."})
            continue
        key = (w.order_line_id, w.condition)
        if key in seen:
            errors.append({"field": path, "message": f"Also at {field}[{seen[key]}] with the same condition: "
                                                     f"give the line once with the sum of its units."})
        seen.setdefault(key, w.index)
    if errors:
        raise ApiError(422, "validation_error", errors[0]["message"], errors=errors)


def plan(lines: dict[str, Line], wanted: Sequence[Planned], *, now: datetime, days: int,
         field: str = "lines") -> list[Planned]:
    """Check quantities and the window for the wanted return lines and give each its parts.
    409 order_not_fulfilled when nothing of the order has been fulfilled; 409
    return_quantity_exceeded naming `lines[i].quantity` (with each line's figures) when more is
    asked than fulfilled − returned − authorized; 422 return_window_expired when the window of
    the units asked for has closed."""
    check_lines(lines, wanted, field=field)
    if not any(ln.quantity_fulfilled for ln in lines.values()):
        raise ApiError(409, "order_not_fulfilled",
                       "Nothing of this order has been shipped or collected yet: there is nothing to return "
                       "(cancel what is still open instead).")
    asked: dict[str, int] = defaultdict(int)
    for w in wanted:
        asked[w.order_line_id] += w.quantity
    over, late = [], []
    figures = {}
    for line_id, q in asked.items():
        ln = lines[line_id]
        within, expired, _ = ln.returnable(now, days)
        figures[line_id] = {"order_line_id": line_id, "sku": ln.sku, "quantity_fulfilled": ln.quantity_fulfilled,
                            "quantity_returned": ln.quantity_returned, "quantity_authorized": ln.authorized,
                            "returnable": within}
        if q > within + expired:
            over.append(line_id)
        elif q > within:
            late.append(line_id)
    wanted_at = defaultdict(list)
    for w in wanted:
        wanted_at[w.order_line_id].append(w.index)
    if over:
        errors = []
        for line_id in over:
            f = figures[line_id]
            held = (f" ({f['quantity_authorized']} held by an open return authorization)"
                    if f["quantity_authorized"] else "")
            msg = (f"{asked[line_id]} unit(s) of {f['sku']!r} (line {line_id}) asked for, {f['returnable']} "
                   f"returnable: {f['quantity_fulfilled']} fulfilled, {f['quantity_returned']} returned already{held}.")
            errors += [{"field": f"{field}[{i}].quantity", "message": msg} for i in wanted_at[line_id]]
        raise ApiError(409, "return_quantity_exceeded", errors[0]["message"], errors=errors,
                       returnable=[figures[x] for x in asked])
    if late:
        errors = []
        for line_id in late:
            ln = lines[line_id]
            within = figures[line_id]["returnable"]
            closed = [s.closes_at(days) for s, _ in ln.open_shipments() if s.closes_at(days) <= now]
            when = max(closed).isoformat().replace("+00:00", "Z") if closed else "?"
            msg = (f"The {days}-day return window of {ln.sku!r} (line {line_id}) closed on {when}"
                   + (f": only {within} unit(s) are still returnable." if within else "."))
            errors += [{"field": f"{field}[{i}].quantity", "message": msg} for i in wanted_at[line_id]]
        raise ApiError(422, "return_window_expired", errors[0]["message"], errors=errors,
                       return_window_days=days)
    out = []
    for w in wanted:
        ln = lines[w.order_line_id]
        w.sku = ln.sku
        w.parts = attribute(ln, w.quantity)
        out.append(w)
    return out


def attribute(ln: Line, quantity: int) -> list[Part]:
    """Take `quantity` units of the line from its shipments, newest first (and count them taken)."""
    parts = []
    need = quantity
    for s, left in ln.open_shipments():
        if need <= 0:
            break
        n = min(need, left)
        parts.append(Part(s, n))
        ln.taken[s.fulfillment_id] = ln.taken.get(s.fulfillment_id, 0) + n
        need -= n
    if need:  # plan() checked the figures; the shipments disagree with the line's counts
        raise ApiError(409, "return_quantity_exceeded",
                       f"Only {quantity - need} unit(s) of {ln.sku!r} can be traced to a fulfillment.",
                       errors=[{"field": "lines", "message": f"Line {ln.id}: not enough fulfilled units."}])
    return parts


def expires_at(planned: Iterable[Planned], days: int) -> datetime | None:
    """When an authorization of these lines runs out: the earliest window of the units it holds."""
    ends = [p.shipment.closes_at(days) for w in planned for p in w.parts]
    return min(ends) if ends else None


# --------------------------------------------------------------------------- money

def price(lines: dict[str, Line], planned: Sequence[Planned], receiving_location: str | None) -> tuple[int, int]:
    """Refund and tax of every planned line (and its charge-backs), counting on from the units of
    each order line returned so far. Returns (refund total, tax total)."""
    done = {line_id: ln.quantity_returned for line_id, ln in lines.items()}
    refund_total = tax_total = 0
    for w in planned:
        ln = lines[w.order_line_id]
        start = done[w.order_line_id]
        w.refund, w.tax = refund_for_units(ln.total, ln.tax_amount, ln.quantity, start, w.quantity)
        charged: dict[str, list[int]] = {}
        pos = start
        for part in w.parts:
            amount, _ = refund_for_units(ln.total, ln.tax_amount, ln.quantity, pos, part.quantity)
            pos += part.quantity
            s = part.shipment
            if s.kind == DROPSHIP and s.location != receiving_location:
                entry = charged.setdefault(s.location, [0, 0])
                entry[0] += part.quantity
                entry[1] += amount
        w.chargebacks = [{"location": loc, "quantity": q, "amount": a} for loc, (q, a) in charged.items()]
        done[w.order_line_id] = start + w.quantity
        refund_total += w.refund
        tax_total += w.tax
    return refund_total, tax_total


def parts_of(sources: Sequence[dict]) -> list[Part]:
    """Stored `sources` back into parts (an authorization completed later)."""
    out = []
    for s in sources:
        at = datetime.fromisoformat(s["fulfilled_at"].replace("Z", "+00:00"))
        out.append(Part(Shipment(s["fulfillment_id"], s["location"], s["kind"], int(s["quantity"]), at),
                        int(s["quantity"])))
    return out
