"""Pricing's public surface: price lists, prices, tax rates, promotions, quotes, shelf prices.

The rules live in one module per idea around the pure engine (`app/pricing/engine.py`);
other domains and the routers import from here.

* `app/pricing/engine.py`      the pure quote engine: its inputs and outputs, the promotions and
  `quote`; beside it, as pure, `money.py` (integer arithmetic, tax, refunds), `resolution.py`
  (which price list prices a SKU) and `promotion_rules.py` (a promotion's params, conflicts).
* `app/pricing/quotes.py`      `quote_basket`, the one function every channel prices through
  (carts, orders, POS sales, marketplace listings), and the POST /v1/pricing/quote use case.
* `app/pricing/shelf.py`       the price of one unit on product and variant pages, set-based
  for a whole page, the same number a one-unit quote gives.
* `app/pricing/reference.py`   what quotes read besides their lines (channel, price lists,
  promotions, tax rates, SKU prices), from caches every change drops at its commit.
* `app/pricing/price_lists.py`, `promotions.py`, `tax_rates.py`  the admin resources (lists and
  promotions are ended with `end_*`, deleted with `delete_*` when nothing depends on them).
* `app/pricing/references.py`  the SKUs pricing holds (prices, promotions), asked before a
  product is deleted (app/core/references.py).

Which price list prices a SKU (see `resolution.applicable_lists` and docs/pricing.md): among the
active, currently valid lists in the channel's currency that take part in the channel (name it
in their `channels`, or are named in the channel's `price_lists`) and whose `customer_group`
is empty or the customer's, the first with a price wins, ranked
1. lists for the customer's group before general lists;
2. then, inside each of those two sets, the channel's `price_lists` in their order, with the
   lists the channel does not name merged in by `priority`: such a list goes ahead of the first
   named list whose priority is lower than its own (so a sale list that names the channel wins
   without editing the channel, and a channel's own order is never changed);
3. lists the channel does not name, among themselves: higher `priority` first;
4. `code` (a stable tie-break).
"""
from app.pricing.price_lists import (
    MAX_PRICES_PER_PUT, create_price_list, delete_price_list, end_price_list, existing_price_list_codes,
    get_price_list, list_price_lists, list_prices, put_prices, render_price_list, update_price_list,
    visible_price_list,
)
from app.pricing.promotions import (
    create_promotion, delete_promotion, end_promotion, get_promotion, list_promotions, render_promotion, to_engine,
    update_promotion,
)
from app.pricing.quotes import customer_group_of, quote, quote_basket
from app.pricing.reference import ReferenceData, load_channel, reference_data
from app.pricing.tax_rates import get_tax_rate, list_tax_rates, put_tax_rate, render_tax_rate, update_tax_rate

__all__ = [
    "MAX_PRICES_PER_PUT", "ReferenceData", "create_price_list", "create_promotion", "customer_group_of",
    "delete_price_list", "delete_promotion", "end_price_list", "end_promotion", "existing_price_list_codes",
    "get_price_list", "get_promotion", "get_tax_rate", "list_price_lists", "list_prices",
    "list_promotions", "list_tax_rates", "load_channel", "put_prices", "put_tax_rate", "quote", "quote_basket",
    "reference_data", "render_price_list", "render_promotion", "render_tax_rate", "to_engine", "update_price_list",
    "update_promotion", "update_tax_rate", "visible_price_list",
]
