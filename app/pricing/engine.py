"""The quote engine: one pure function prices a basket for every channel.

No database, no I/O, no clock: `quote()` takes the price data, the promotions, the
context (channel, currency, customer group, coupons, *now*) and the lines, and returns
the priced basket. The service layer loads those inputs in a few set-based statements.

This module holds the engine's inputs and outputs, the promotions (which apply, what each takes
off, which combination is kept) and the quote. Beside it, as pure:
* `money.py`            the integer arithmetic: half-up division, exact allocation, tax, refunds;
* `resolution.py`       which price list prices a SKU (`applicable_lists`, `resolve_prices`);
* `promotion_rules.py`  a promotion's params (spellings, validation, defaults) and conflicts.

All amounts are integers in minor units; rates and percentages are basis points
(1900 = 19 %). Rounding is half-up, per line.

Each line's unit price is `resolution.resolve_prices`'s (the rules are in `resolution.py`); a
SKU without a price is reported (the API answers 422 `no_price`).

Promotions
----------
Eligible: active, valid at *now*, the channel in `channels` (empty = all), the customer's
group in `customer_groups` (empty = everyone), and, when a `coupon_code` is set, that code
in the quote's coupons. A line qualifies when its SKU is in `skus` or its category is (or is
below) one of `categories`; with neither set, every line qualifies.

| type | params | discount |
|---|---|---|
| buy_x_pay_y | {x, y} | qualifying units sorted by unit price (high to low, then SKU); in each full group of x, the cheapest x−y are free |
| tiered_percent | {tiers: [{min_quantity, percent_bp}]} | the tier reached by the total qualifying quantity, as a percentage of the qualifying amount |
| percent_off | {percent_bp, min_subtotal?} | percentage of the qualifying amount |
| amount_off | {amount, per: order\\|line\\|unit, min_subtotal?} | `order`: once, spread over the qualifying lines; `line`: on every qualifying line; `unit`: on every qualifying unit (never more than the amount left) |
| bundle_price | {items: [{sku, quantity}], amount} | each complete set in the basket costs `amount` instead of its items' prices |

`min_subtotal` compares with the qualifying amount before this promotion.

Choosing the combination: a promotion with `stackable: false` (exclusive) never shares a
line with another promotion; stackable ones combine freely. Every stackable promotion takes
part. Exclusive ones are tried one by one in order of their value alone (ties: higher
priority, then code): each is valued on the lines no exclusive promotion kept so far
discounts, the lines it discounts are closed to every other promotion, and it is kept when
the basket's whole discount grows. The kept promotions are applied in priority order (then
code), each to the amounts the previous ones left, so stacked discounts compound and a line
never goes below zero. Promotions that end up discounting nothing are not reported.

Allocation: every discount is allocated to lines exactly (largest remainder, ties by the
line's canonical order: SKU, quantity), so line discounts add up to the promotion's amount
and line totals add up to the quote's totals to the cent. Lines are processed in that
canonical order, so the order of the request's lines never changes any amount.

Tax, per line: gross channels (prices include tax): tax = round(total × rate / (10000 + rate)),
the line total is what the customer pays. Net channels: tax = round(total_net × rate / 10000),
the line total is net + tax. Quote totals are the sums of the line amounts.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from app.pricing.money import BP, allocate, allocate_bundle, allocate_capped, div_half_up, tax_of
from app.pricing.resolution import _valid, base_prices, resolve_prices

PROMOTION_TYPES = ("buy_x_pay_y", "tiered_percent", "percent_off", "amount_off", "bundle_price")


class PricingError(Exception):
    """A quote that cannot be priced: `code` and per-item `errors` [{field, message}]."""

    def __init__(self, code: str, detail: str, errors: list[dict] | None = None):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.errors = errors or []


# --------------------------------------------------------------------------- inputs

@dataclass(frozen=True, slots=True)
class Context:
    channel: str
    currency: str
    prices_include_tax: bool
    now: datetime
    customer_group: str | None = None
    coupon_codes: tuple[str, ...] = ()
    channel_price_lists: tuple[str, ...] = ()  # the channel's price_lists, in priority order


@dataclass(frozen=True, slots=True)
class PriceList:
    code: str
    currency: str
    channels: tuple[str, ...] = ()
    customer_group: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    priority: int = 0
    active: bool = True


@dataclass(frozen=True, slots=True)
class Price:
    price_list: str  # code
    sku: str
    amount: int
    min_quantity: int = 1


@dataclass(frozen=True, slots=True)
class Promotion:
    code: str
    type: str
    params: dict
    name: str = ""
    skus: frozenset[str] | None = None
    categories: tuple[str, ...] | None = None
    channels: tuple[str, ...] | None = None
    customer_groups: tuple[str, ...] | None = None
    coupon_code: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    priority: int = 0
    stackable: bool = True
    active: bool = True


@dataclass(frozen=True, slots=True)
class Item:
    """A line as the engine needs it: the catalog facts plus the resolved unit price and tax rate."""

    sku: str
    quantity: int
    unit_price: int
    tax_rate_bp: int = 0
    category: str | None = None
    components: tuple[tuple[str, int, int], ...] = ()  # bundles: (sku, quantity per bundle, weight)
    price_list: str | None = None  # the list that priced it (None: a price given from outside)


# --------------------------------------------------------------------------- outputs

@dataclass(slots=True)
class QuoteLine:
    sku: str
    quantity: int
    unit_price: int
    subtotal: int
    discounts: list[dict]
    discount_total: int
    total: int
    tax_rate_bp: int
    tax_amount: int
    components: list[dict] | None = None
    price_list: str | None = None

    def as_dict(self) -> dict:
        out = {
            "sku": self.sku, "quantity": self.quantity, "unit_price": self.unit_price, "price_list": self.price_list,
            "subtotal": self.subtotal, "discounts": self.discounts, "discount_total": self.discount_total,
            "total": self.total, "tax_rate_bp": self.tax_rate_bp, "tax_amount": self.tax_amount,
        }
        if self.components is not None:
            out["components"] = self.components
        return out


@dataclass(slots=True)
class QuoteResult:
    currency: str
    prices_include_tax: bool
    lines: list[QuoteLine]
    subtotal: int
    discount_total: int
    tax_total: int
    total: int
    promotions: list[dict] = field(default_factory=list)
    coupons: list[dict] = field(default_factory=list)  # what became of each coupon given (app/pricing/offers.py)

    def as_dict(self) -> dict:
        return {
            "currency": self.currency, "prices_include_tax": self.prices_include_tax,
            "lines": [ln.as_dict() for ln in self.lines], "subtotal": self.subtotal,
            "discount_total": self.discount_total, "tax_total": self.tax_total, "total": self.total,
            "promotions": self.promotions, "coupons": self.coupons,
        }



# --------------------------------------------------------------------------- promotions

def eligible(ctx: Context, promotions: Iterable[Promotion]) -> list[Promotion]:
    coupons = set(ctx.coupon_codes)
    return [
        p for p in promotions
        if p.active and _valid(ctx.now, p.valid_from, p.valid_to)
        and (not p.channels or ctx.channel in p.channels)
        and (not p.customer_groups or ctx.customer_group in p.customer_groups)
        and (p.coupon_code is None or p.coupon_code in coupons)
    ]


def _in_category(category: str | None, categories: tuple[str, ...]) -> bool:
    if category is None:
        return False
    return any(category == c or category.startswith(c + "/") for c in categories)


def qualifies(p: Promotion, item: Item) -> bool:
    if p.skus is None and p.categories is None:
        return True
    return (p.skus is not None and item.sku in p.skus) or (p.categories is not None and _in_category(item.category, p.categories))


def qualifying_lines(p: Promotion, items: Sequence[Item], scopes: Sequence[frozenset] | None = None
                     ) -> tuple[int, ...]:
    """The lines `p` may discount. `scopes` (from `category_scopes`) makes the category test a set
    intersection; the answer is the same as `qualifies` line by line."""
    if scopes is None:
        return tuple(i for i, it in enumerate(items) if qualifies(p, it))
    if p.skus is None and p.categories is None:
        return tuple(range(len(items)))
    skus = p.skus or ()
    cats = p.categories or ()
    return tuple(i for i, it in enumerate(items) if it.sku in skus or (cats and not scopes[i].isdisjoint(cats)))


def category_scopes(items: Sequence[Item]) -> list[frozenset]:
    """Per line, the categories it is in or below: "a/b/c" -> {"a", "a/b", "a/b/c"}."""
    out = []
    for it in items:
        c = it.category
        out.append(frozenset() if c is None else frozenset([c, *(c[:i] for i, ch in enumerate(c) if ch == "/")]))
    return out


def _qualifying(p: Promotion, items: Sequence[Item], left: Sequence[int], allowed: frozenset | None = None,
                qual: tuple[int, ...] | None = None) -> list[int]:
    if qual is None:
        qual = qualifying_lines(p, items)
    return [i for i in qual if left[i] > 0 and (allowed is None or i in allowed)]


def _proportional(amount: int, idx: list[int], left: Sequence[int], n: int) -> list[int]:
    out = [0] * n
    if amount <= 0 or not idx:
        return out
    if len(idx) == 1:
        out[idx[0]] = min(amount, left[idx[0]])
        return out
    caps = [left[i] for i in idx]
    amount = min(amount, sum(caps))
    # weights equal to the caps and amount <= their sum: no part can exceed its cap
    for i, part in zip(idx, allocate(amount, caps)):
        out[i] = part
    return out


def _percent(bp: int, idx: list[int], left: Sequence[int], n: int) -> list[int]:
    base = sum(left[i] for i in idx)
    return _proportional(div_half_up(base * min(bp, BP), BP), idx, left, n)


def _buy_x_pay_y(p: Promotion, items: Sequence[Item], left: Sequence[int], idx: list[int]) -> list[int]:
    x, y = p.params["x"], p.params["y"]
    n = len(items)
    out = [0] * n
    total_units = sum(items[i].quantity for i in idx)
    if total_units < x:
        return out
    # units high to low by what is left of their price; the cheapest x-y of every full group are free
    order = sorted(idx, key=lambda i: (-left[i] * BP // items[i].quantity, items[i].sku, i))
    groups = total_units // x
    free: dict[int, int] = {}
    pos = 0
    for i in order:
        q = items[i].quantity
        # positions pos .. pos+q-1; free positions within full groups have (pos % x) >= y
        start, end = pos, min(pos + q, groups * x)
        if start < end:
            k = _count_free(start, end, x, y)
            if k:
                free[i] = k
        pos += q
    for i, k in free.items():
        q = items[i].quantity
        out[i] = left[i] if k == q else min(left[i], div_half_up(left[i] * k, q))
    return out


def _count_free(start: int, end: int, x: int, y: int) -> int:
    """How many positions p in [start, end) have p % x >= y."""
    def upto(m: int) -> int:  # positions in [0, m)
        full, rest = divmod(m, x)
        return full * (x - y) + max(0, rest - y)
    return upto(end) - upto(start)


def _bundle_price(p: Promotion, items: Sequence[Item], left: Sequence[int], allowed: frozenset | None) -> list[int]:
    n = len(items)
    out = [0] * n
    want = {it["sku"]: it["quantity"] for it in p.params["items"]}
    by_sku: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        if it.sku in want and left[i] > 0 and (allowed is None or i in allowed):
            by_sku.setdefault(it.sku, []).append(i)
    if len(by_sku) < len(want):
        return out
    sets = min(sum(items[i].quantity for i in by_sku[s]) // q for s, q in want.items())
    if sets <= 0:
        return out
    # the value of the units that form the sets: per SKU, take units from its lines in order
    taken: list[tuple[int, int]] = []  # (line, value of its units in sets)
    for s, q in want.items():
        need = sets * q
        for i in by_sku[s]:
            if need <= 0:
                break
            use = min(need, items[i].quantity)
            taken.append((i, left[i] if use == items[i].quantity else div_half_up(left[i] * use, items[i].quantity)))
            need -= use
    regular = sum(v for _, v in taken)
    discount = regular - sets * p.params["amount"]
    if discount <= 0:
        return out
    idx = [i for i, _ in taken]
    values = [v for _, v in taken]
    for i, part in zip(idx, allocate_capped(discount, values, values)):
        out[i] += part
    return out


def discount_vector(p: Promotion, items: Sequence[Item], left: Sequence[int], allowed: frozenset | None = None,
                    qual: tuple[int, ...] | None = None) -> list[int]:
    """What promotion `p` takes off each line, given the amounts still left on the lines
    (only lines in `allowed`, when given; `qual`: p's qualifying lines, when known)."""
    n = len(items)
    if p.type == "bundle_price":
        return _bundle_price(p, items, left, allowed)
    idx = _qualifying(p, items, left, allowed, qual)
    if not idx:
        return [0] * n
    t, params = p.type, p.params
    if t in ("percent_off", "amount_off") and params.get("min_subtotal"):
        if sum(left[i] for i in idx) < params["min_subtotal"]:
            return [0] * n
    if t == "percent_off":
        return _percent(params["percent_bp"], idx, left, n)
    if t == "tiered_percent":
        qty = sum(items[i].quantity for i in idx)
        bp = 0
        for tier in params["tiers"]:
            if qty >= tier["min_quantity"]:
                bp = max(bp, tier["percent_bp"])
        return _percent(bp, idx, left, n) if bp else [0] * n
    if t == "amount_off":
        per = params.get("per", "order")
        amount = params["amount"]
        if per == "order":
            return _proportional(amount, idx, left, n)
        out = [0] * n
        for i in idx:
            out[i] = min(left[i], amount * (items[i].quantity if per == "unit" else 1))
        return out
    if t == "buy_x_pay_y":
        return _buy_x_pay_y(p, items, left, idx)
    raise ValueError(f"unknown promotion type {t!r}")


Plan = list[tuple[Promotion, frozenset, "list[int] | None"]]


def _run(plan: Plan, items: Sequence[Item], amounts: Sequence[int], quals: dict | None = None
         ) -> tuple[list[int], list[list[dict]], list[dict]]:
    """Apply a plan in priority order (then code): (amounts left, discounts per line, applied)."""
    left = list(amounts)
    per_line: list[list[dict]] = [[] for _ in items]
    applied: list[dict] = []
    for p, allowed, fixed in sorted(plan, key=lambda t: (-t[0].priority, t[0].code)):
        # an exclusive promotion's lines are untouched by the others, so its fixed discounts still fit
        vec = fixed if fixed is not None else discount_vector(p, items, left, allowed, quals.get(p.code) if quals else None)
        total = sum(vec)
        if total <= 0:
            continue
        for i, d in enumerate(vec):
            if d:
                left[i] -= d
                per_line[i].append({"promotion": p.code, "amount": d})
        applied.append({"code": p.code, "name": p.name, "type": p.type, "amount": total})
    return left, per_line, applied


def _reads(p: Promotion, items: Sequence[Item], quals: dict) -> tuple[int, ...]:
    """The lines whose amounts and openness `discount_vector` of `p` looks at."""
    if p.type == "bundle_price":
        want = {it["sku"] for it in p.params["items"]}
        return tuple(i for i, it in enumerate(items) if it.sku in want)
    return quals[p.code]


def _stack_run(stackable: Sequence[Promotion], items: Sequence[Item], amounts: Sequence[int], open_lines: frozenset,
               quals: dict, reads: dict, base: list | None = None, closed: frozenset = frozenset()
               ) -> tuple[int, list[list[int]]]:
    """The stackable promotions (in priority order) applied on `open_lines`: (whole discount,
    each one's discount vector). With `base` (the vectors of a run on `open_lines | closed`), a
    promotion that reads no closed line and no line whose amount left differs from that run's
    gives the same vector again, so it is reused instead of recomputed."""
    left = list(amounts)
    total = 0
    vecs: list[list[int]] = []
    dirty = set(closed)
    for k, p in enumerate(stackable):
        if base is not None and dirty.isdisjoint(reads[p.code]):
            vec = base[k]
        else:
            vec = discount_vector(p, items, left, open_lines, quals.get(p.code))
            if base is not None:
                old = base[k]
                dirty.update(i for i in reads[p.code] if vec[i] != old[i])
        vecs.append(vec)
        for i in reads[p.code]:  # a promotion discounts only lines it reads
            d = vec[i]
            if d:
                left[i] -= d
                total += d
    return total, vecs


def choose(promotions: Sequence[Promotion], items: Sequence[Item], amounts: Sequence[int],
           quals: dict[str, tuple[int, ...]] | None = None) -> Plan:
    """The combination to apply (see the module doc): [(promotion, lines it may discount, its
    fixed discounts if exclusive)]. All stackable promotions take part; exclusive ones are
    tried in order of their value alone (ties: priority, then code) and kept when the whole
    basket's discount grows. An exclusive promotion is valued on the lines no exclusive one
    taken before discounts, and the lines it discounts are closed to every other promotion.

    Exclusive promotions touch only their own lines and stackable ones only the open lines, so a
    plan's discount is the kept exclusives' fixed amounts plus what the stackable promotions take
    on the open lines: a trial costs one valuation of the candidate and one run of the stackables."""
    if quals is None:
        scopes = category_scopes(items)
        quals = {p.code: qualifying_lines(p, items, scopes) for p in promotions if p.type != "bundle_price"}
    valued = []
    for p in promotions:
        if p.type != "bundle_price" and not quals[p.code]:
            continue
        total = sum(discount_vector(p, items, amounts, None, quals.get(p.code)))
        if total > 0:
            valued.append((total, p))
    if not valued:
        return []
    valued.sort(key=lambda v: (-v[0], -v[1].priority, v[1].code))
    stackable = [p for _, p in valued if p.stackable]
    in_order = sorted(stackable, key=lambda p: (-p.priority, p.code))
    everything = frozenset(range(len(items)))
    open_lines = everything
    kept: Plan = []
    kept_total = 0
    reads = {p.code: _reads(p, items, quals) for p in in_order}
    best_total, base = _stack_run(in_order, items, amounts, everything, quals, reads)
    for _, p in valued:
        if p.stackable:
            continue
        vec = discount_vector(p, items, amounts, open_lines, quals.get(p.code))
        lines = frozenset(i for i, d in enumerate(vec) if d)
        if not lines:
            continue
        own = sum(vec)
        rest = open_lines - lines
        stacked, vecs = _stack_run(in_order, items, amounts, rest, quals, reads, base, lines)
        total = kept_total + own + stacked
        if total > best_total:
            kept.append((p, lines, vec))
            kept_total += own
            open_lines, base = rest, vecs
            best_total = total
    return kept + [(p, open_lines, None) for p in stackable]


# --------------------------------------------------------------------------- the quote

def price_items(items: Sequence[Item], promotions: Sequence[Promotion], ctx: Context) -> QuoteResult:
    """Apply the eligible promotions and taxes to priced items. Lines come back in input order."""
    n = len(items)
    order = sorted(range(n), key=lambda i: (items[i].sku, items[i].quantity, items[i].unit_price, i))
    canon = [items[i] for i in order]
    subtotals = [it.unit_price * it.quantity for it in canon]
    candidates = eligible(ctx, promotions)
    scopes = category_scopes(canon)
    quals = {p.code: qualifying_lines(p, canon, scopes) for p in candidates if p.type != "bundle_price"}
    plan = choose(candidates, canon, subtotals, quals) if candidates else []
    left, line_discounts, applied = _run(plan, canon, subtotals, quals)
    lines_canon: list[QuoteLine] = []
    for i, it in enumerate(canon):
        net_or_gross = left[i]
        tax = tax_of(net_or_gross, it.tax_rate_bp, ctx.prices_include_tax)
        total = net_or_gross if ctx.prices_include_tax else net_or_gross + tax
        line = QuoteLine(
            sku=it.sku, quantity=it.quantity, unit_price=it.unit_price, subtotal=subtotals[i],
            discounts=line_discounts[i], discount_total=subtotals[i] - left[i], total=total,
            tax_rate_bp=it.tax_rate_bp, tax_amount=tax, price_list=it.price_list,
        )
        if it.components:
            line.components = allocate_bundle(total, [(s, q * it.quantity, w * q) for s, q, w in it.components])
        lines_canon.append(line)
    lines: list[QuoteLine] = [None] * n  # type: ignore[list-item]
    for pos, i in enumerate(order):
        lines[i] = lines_canon[pos]
    subtotal = sum(subtotals)
    discount_total = subtotal - sum(left)
    tax_total = sum(ln.tax_amount for ln in lines)
    return QuoteResult(
        currency=ctx.currency, prices_include_tax=ctx.prices_include_tax, lines=lines, subtotal=subtotal,
        discount_total=discount_total, tax_total=tax_total, total=sum(ln.total for ln in lines), promotions=applied,
    )


@dataclass(frozen=True, slots=True)
class LineIn:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class SkuFacts:
    sku: str
    tax_class: str
    category: str | None = None
    components: tuple[tuple[str, int], ...] = ()  # bundles: (component sku, quantity)


def quote(ctx: Context, lines: Sequence[LineIn], facts: dict[str, SkuFacts], price_lists: Iterable[PriceList],
          prices: Iterable[Price], promotions: Sequence[Promotion], tax_rates: dict[str, int]) -> QuoteResult:
    """Price a basket. `facts` holds the catalog facts of every line SKU; `prices` may include
    the prices of bundle components (used to allocate bundle lines); `tax_rates` maps tax class
    to basis points for the channel's country. Raises PricingError for an unknown SKU, a SKU
    without a price or a tax class without a rate."""
    price_lists = list(price_lists)
    prices = list(prices)
    quantities: dict[str, int] = {}
    errors = []
    for i, ln in enumerate(lines):
        if ln.sku not in facts:
            errors.append({"field": f"lines[{i}].sku", "message": f"Unknown SKU {ln.sku!r} (or not sold in channel {ctx.channel!r})."})
        quantities[ln.sku] = quantities.get(ln.sku, 0) + ln.quantity
    if errors:
        raise PricingError("unknown_sku", errors[0]["message"], errors)
    resolved = resolve_prices(ctx, price_lists, prices, quantities)
    missing = [{"field": f"lines[{i}].sku", "message": f"No price for {ln.sku!r} in {ctx.currency} in channel {ctx.channel!r}."}
               for i, ln in enumerate(lines) if ln.sku not in resolved]
    if missing:
        raise PricingError("no_price", missing[0]["message"], missing)
    no_rate = [{"field": f"lines[{i}].sku", "message": f"No tax rate for tax class {facts[ln.sku].tax_class!r} of {ln.sku!r}."}
               for i, ln in enumerate(lines) if facts[ln.sku].tax_class not in tax_rates and facts[ln.sku].tax_class != "zero"]
    if no_rate:
        raise PricingError("no_tax_rate", no_rate[0]["message"], no_rate)
    comp_skus = {s for f in facts.values() for s, _ in f.components}
    comp_prices = base_prices(ctx, price_lists, prices, comp_skus) if comp_skus else {}
    items = []
    for ln in lines:
        f = facts[ln.sku]
        items.append(Item(
            sku=ln.sku, quantity=ln.quantity, unit_price=resolved[ln.sku][0],
            tax_rate_bp=tax_rates.get(f.tax_class, 0), category=f.category,
            components=tuple((s, q, comp_prices.get(s, 0)) for s, q in f.components), price_list=resolved[ln.sku][1],
        ))
    return price_items(items, promotions, ctx)
