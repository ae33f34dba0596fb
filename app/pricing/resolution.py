"""Which price list prices a SKU: the lists that apply to a quote, their order, the price.

Pure like the engine (no database, no I/O, no clock). `engine.quote` prices its lines with
`resolve_prices`; product pages (`shelf.py`), the price-list admin (`price_lists.py`), channel
listings and reports rank lists with the same functions, so they never tell another story.

A price list applies to a quote when its currency is the channel's, it is active and valid
at *now* (`valid_from <= now < valid_to`), the channel is in its `channels` or the list is
named in the channel's `price_lists` (either is enough: `takes_part`), and its
`customer_group` is empty or the customer's. For each SKU the applicable lists are ranked
(`rank_lists`):
1. lists for the customer's group before general lists (loyalty prices beat retail);
2. inside each of those two sets, the lists named in the channel's `price_lists` keep that
   order, and each list the channel does not name is merged in by `priority`: it goes ahead
   of the first named list whose priority is lower than its own (so a sale list with a higher
   priority that names the channel wins without editing the channel; with equal priorities
   the channel's lists come first);
3. lists the channel does not name, among themselves: higher `priority` first;
4. `code` (a stable tie-break).
The first list that has a price for the SKU wins; inside it, the tier with the greatest
`min_quantity` not above the basket's total quantity of that SKU. No price -> the SKU
is absent (the quote reports it: the API answers 422 `no_price`).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the engine's dataclasses, in annotations only (the engine imports this module)
    from app.pricing.engine import Context, Price, PriceList


def _valid(now: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or start <= now) and (end is None or now < end)


def takes_part(pl: PriceList, channel: str, currency: str, channel_price_lists: Sequence[str]) -> bool:
    """A list takes part in a channel's resolution when it is in the channel's currency and names
    the channel in its `channels` or the channel names it in its `price_lists` (neither needs
    the other)."""
    return pl.currency == currency and (channel in pl.channels or pl.code in channel_price_lists)


def rank_lists(lists: Iterable[PriceList], channel_price_lists: Sequence[str]) -> list[PriceList]:
    """`lists` (all taking part in one channel) in resolution order (see the module doc):
    customer-group lists before general ones; inside each, the channel's `price_lists` in their
    order with the lists it does not name merged in by priority (such a list goes ahead of the
    first named list whose priority is lower than its own); those among themselves by priority,
    then code. Customer-group lists of different groups never meet in one quote: they are
    listed by group code."""
    position = {code: i for i, code in enumerate(channel_price_lists)}
    groups: dict[str | None, list[PriceList]] = {}
    for pl in lists:
        groups.setdefault(pl.customer_group, []).append(pl)
    out: list[PriceList] = []
    for group in sorted(groups, key=lambda g: (g is None, g or "")):
        members = groups[group]
        named = sorted((pl for pl in members if pl.code in position), key=lambda pl: position[pl.code])
        others = sorted((pl for pl in members if pl.code not in position), key=lambda pl: (-pl.priority, pl.code))
        i = 0
        for pl in named:
            while i < len(others) and others[i].priority > pl.priority:
                out.append(others[i])
                i += 1
            out.append(pl)
        out.extend(others[i:])
    return out


def applicable_lists(ctx: Context, lists: Iterable[PriceList]) -> list[PriceList]:
    """The price lists that apply to this quote, best first (see the module doc)."""
    return rank_lists(
        (pl for pl in lists
         if pl.active and _valid(ctx.now, pl.valid_from, pl.valid_to)
         and takes_part(pl, ctx.channel, ctx.currency, ctx.channel_price_lists)
         and (pl.customer_group is None or pl.customer_group == ctx.customer_group)),
        ctx.channel_price_lists)


def resolve_prices(ctx: Context, lists: Iterable[PriceList], prices: Iterable[Price],
                   quantities: dict[str, int]) -> dict[str, tuple[int, str]]:
    """{sku: (unit amount, price list code)} for every SKU of `quantities` that has a price;
    tiers by the basket's total quantity of the SKU. SKUs without a price are absent."""
    ranked = applicable_lists(ctx, lists)
    rank = {pl.code: i for i, pl in enumerate(ranked)}
    best: dict[str, tuple[int, int, int]] = {}  # sku -> (rank, -min_quantity, amount)
    for p in prices:
        r = rank.get(p.price_list)
        q = quantities.get(p.sku)
        if r is None or q is None or p.min_quantity > q:
            continue
        key = (r, -p.min_quantity, p.amount)
        cur = best.get(p.sku)
        if cur is None or key < cur:
            best[p.sku] = key
    return {sku: (amount, ranked[r].code) for sku, (r, _, amount) in best.items()}


def base_prices(ctx: Context, lists: Iterable[PriceList], prices: Iterable[Price], skus: Iterable[str]) -> dict[str, int]:
    """One unit's price of each SKU (for weights, e.g. a bundle's components)."""
    return {s: a for s, (a, _) in resolve_prices(ctx, lists, prices, {s: 1 for s in skus}).items()}
