"""What a quote's coupons did, and the price of one unit on product pages.

Pure like the engine (no database, no I/O, no clock) and built only on the engine's own
functions, so neither can tell a different story than a quote:

* `coupon_outcomes` says, per coupon given, whether it applied and, when not, why (`reason`,
  one of COUPON_REASONS, and a sentence for a shopper);
* `unit_prices` gives, per SKU, the price of ONE unit exactly as `engine.quote` prices a
  basket of that one unit without coupons: the price list's price (`list_amount`, the
  quote's `unit_price`) and what the unit costs after the promotions that already apply to
  that basket (`amount` = the line's subtotal less its discounts, in the channel's basis:
  tax included in a gross channel, net in a net one).
"""
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from app.pricing.engine import (
    Context, Item, Price, PriceList, Promotion, QuoteResult, discount_vector, eligible, price_items, qualifies,
    qualifying_lines,
)
from app.pricing.resolution import resolve_prices

# A coupon that can never apply in this context (the quote answers 422 invalid_coupon naming it):
CANNOT_APPLY = ("unknown", "not_yet_valid", "expired", "not_in_channel", "customer_group")
# A valid coupon that did not apply to this basket (the quote answers 200, `coupons[]` says why):
DID_NOT_APPLY = ("no_matching_items", "min_quantity", "min_subtotal", "not_combinable", "no_discount")
COUPON_REASONS = CANNOT_APPLY + DID_NOT_APPLY


# --------------------------------------------------------------------------- coupons

def coupon_problem(ctx: Context, promotions: Iterable[Promotion], code: str) -> tuple[str, str] | None:
    """Why coupon `code` cannot apply to any basket in this context: (reason, message), or None
    when it can. `promotions` are the active ones (an inactive coupon is unknown)."""
    mine = [p for p in promotions if p.coupon_code == code and p.active]
    if not mine:
        return "unknown", f"Coupon {code!r} is unknown."
    first = None
    for p in mine:
        if p.valid_from is not None and ctx.now < p.valid_from:
            problem = "not_yet_valid", f"Coupon {code!r} is valid from {p.valid_from.isoformat()}."
        elif p.valid_to is not None and ctx.now >= p.valid_to:
            problem = "expired", f"Coupon {code!r} expired at {p.valid_to.isoformat()}."
        elif p.channels and ctx.channel not in p.channels:
            problem = "not_in_channel", f"Coupon {code!r} is not valid in channel {ctx.channel!r}."
        elif p.customer_groups and ctx.customer_group not in p.customer_groups:
            problem = "customer_group", f"Coupon {code!r} is not valid for this customer."
        else:
            return None
        first = first or problem
    return first


def coupon_outcomes(ctx: Context, promotions: Sequence[Promotion], items: Sequence[Item],
                    result: QuoteResult) -> list[dict]:
    """Per coupon of `ctx.coupon_codes` (in that order): {code, applied: true} or {code,
    applied: false, reason, message}. `items` are the quote's lines as the engine priced them
    (in the order of `result.lines`)."""
    applied = {p["code"] for p in result.promotions}
    out = []
    for code in ctx.coupon_codes:
        mine = [p for p in promotions if p.coupon_code == code]
        if any(p.code in applied for p in mine):
            out.append({"code": code, "applied": True})
            continue
        problem = coupon_problem(ctx, mine, code)
        if problem is None:
            candidates = sorted(eligible(ctx, mine), key=lambda p: (-p.priority, p.code))
            problem = _why_not_applied(candidates[0], promotions, items, result)
        out.append({"code": code, "applied": False, "reason": problem[0], "message": problem[1]})
    return out


def _why_not_applied(p: Promotion, promotions: Sequence[Promotion], items: Sequence[Item],
                     result: QuoteResult) -> tuple[str, str]:
    code = p.coupon_code
    amounts = [it.unit_price * it.quantity for it in items]
    if p.type == "bundle_price":
        have: dict[str, int] = {}
        for it in items:
            have[it.sku] = have.get(it.sku, 0) + it.quantity
        missing = [f"{x['quantity']} × {x['sku']}" for x in p.params["items"] if have.get(x["sku"], 0) < x["quantity"]]
        if missing:
            return "no_matching_items", f"Coupon {code!r} needs {', '.join(missing)} in the basket."
        if not sum(discount_vector(p, items, amounts)):
            return "no_discount", f"Coupon {code!r} gives no discount on this basket."
        return "not_combinable", (f"Coupon {code!r} cannot be combined with a promotion that gives this basket "
                                  "a bigger discount.")
    qual = qualifying_lines(p, items)
    if not qual:
        return "no_matching_items", f"No item in the basket qualifies for coupon {code!r}."
    units = sum(items[i].quantity for i in qual)
    need = None
    if p.type == "buy_x_pay_y":
        need = p.params["x"]
    elif p.type == "tiered_percent":
        need = min(t["min_quantity"] for t in p.params["tiers"])
    if need is not None and units < need:
        return "min_quantity", f"Coupon {code!r} needs {need} qualifying items; the basket has {units}."
    minimum = p.params.get("min_subtotal") if p.type in ("percent_off", "amount_off") else None
    if minimum:
        # a stackable coupon sees what the promotions applied before it left; an exclusive one the list prices
        left = sum(_left_before(p, i, promotions, result) if p.stackable else amounts[i] for i in qual)
        if left < minimum:
            return "min_subtotal", (f"Coupon {code!r} needs qualifying items worth at least {minimum} "
                                    f"(minor units of {result.currency}); the basket has {left}.")
    if not sum(discount_vector(p, items, amounts, None, qual)):
        return "no_discount", f"Coupon {code!r} gives no discount on this basket."
    exclusive = {x.code for x in promotions if not x.stackable}
    open_lines = frozenset(i for i, ln in enumerate(result.lines)
                           if not any(d["promotion"] in exclusive for d in ln.discounts))
    if not p.stackable or not sum(discount_vector(p, items, amounts, open_lines, qual)):
        return "not_combinable", (f"Coupon {code!r} cannot be combined with a promotion that gives this basket "
                                  "a bigger discount.")
    return "no_discount", f"Coupon {code!r} gives no discount on what is left to pay."


def _left_before(p: Promotion, i: int, promotions: Sequence[Promotion], result: QuoteResult) -> int:
    """What line i had left when `p` came to it: promotions apply in priority order, then code."""
    order = {x.code: (-x.priority, x.code) for x in promotions}
    mine = (-p.priority, p.code)
    line = result.lines[i]
    return line.subtotal - sum(d["amount"] for d in line.discounts if order.get(d["promotion"], mine) < mine)


# --------------------------------------------------------------------------- one unit

@dataclass(frozen=True, slots=True)
class UnitPrice:
    amount: int  # what one unit costs: the one-unit quote's subtotal less its discounts
    list_amount: int  # the price list's price: the one-unit quote's unit_price
    price_list: str  # the list that priced it


def single_unit_promotions(ctx: Context, promotions: Iterable[Promotion]) -> list[Promotion]:
    """The promotions that may discount a basket of one unit in this context: eligible (no coupon
    is given on a product page) and of a kind one unit can reach. Leaving out the others changes
    nothing: the engine drops a promotion that gives nothing on its own."""
    out = []
    for p in eligible(ctx, promotions):
        if p.type == "buy_x_pay_y":
            continue  # x >= 2
        if p.type == "tiered_percent" and min(t["min_quantity"] for t in p.params["tiers"]) > 1:
            continue
        if p.type == "bundle_price" and not (len(p.params["items"]) == 1 and p.params["items"][0]["quantity"] == 1):
            continue
        out.append(p)
    return out


def unit_prices(ctx: Context, categories: Mapping[str, str | None], price_lists: Iterable[PriceList],
                prices: Iterable[Price], promotions: Iterable[Promotion]) -> dict[str, UnitPrice]:
    """One unit's price of each SKU of `categories` (sku -> its product's category), as a one-unit
    quote without coupons prices it (`ctx` has none). SKUs without a price are absent."""
    resolved = resolve_prices(ctx, price_lists, prices, dict.fromkeys(categories, 1))
    promos = single_unit_promotions(ctx, promotions)
    out = {}
    # one unit's discount depends only on its price and the promotions that qualify for it (sizes
    # of one product usually share both): each pair is priced once
    seen: dict[tuple, int] = {}
    for sku, (amount, code) in resolved.items():
        amount_now = amount
        if promos and amount > 0:
            item = Item(sku, 1, amount, 0, categories[sku], price_list=code)
            mine = [p for p in promos if (p.params["items"][0]["sku"] == sku if p.type == "bundle_price"
                                          else qualifies(p, item))]
            if mine:
                key = (amount, *(p.code for p in mine))
                amount_now = seen.get(key, -1)
                if amount_now < 0:
                    line = price_items([item], mine, ctx).lines[0]
                    amount_now = seen[key] = line.subtotal - line.discount_total
        out[sku] = UnitPrice(amount_now, amount, code)
    return out
