"""The catalog's public surface: products, variants, bundles, channel visibility, lookups.

The rules live in one module per idea; other domains and the routers import from here.

* `app/catalog/reads.py`   products and variants as the API renders them, within what the key
  may see (`list_products`, `get_product`, `find_variant`, `list_categories`, `visibility`):
  a constant number of statements whatever the page size.
* `app/catalog/lookups.py` for other domains (read-only): SKU spelling (`sku_key`,
  `canonical`, `canonical_skus`), SKU facts (`SkuInfo`, `lookup_skus`, `get_sku`),
  `channel_variants`, `existing_channels`. SKUs match in any spelling and answer with the
  stored one.
* `app/catalog/writes.py`  create and update products and variants (checks in
  `app/catalog/checks.py`), each with its outbox event, in the caller's transaction.
* `app/catalog/removal.py` delete products and variants; a product other records refer to
  (orders, carts, stock, prices, promotions, bundles: app/core/references.py) is archived instead.
* `app/catalog/tables.py`  the Core tables and the statements hot paths keep.
"""
from app.catalog.checks import check_channels, conflict
from app.catalog.lookups import (
    SkuInfo, canonical, canonical_sku, canonical_skus, channel_variants, existing_channels, get_sku, lookup_skus,
    sku_key, sku_lower,
)
from app.catalog.reads import (
    event_data, find_variant, get_product, list_categories, list_products, render_product, render_variant,
    render_variant_detail, visibility, visible_channels,
)
from app.catalog.removal import delete_product, delete_variant
from app.catalog.tables import BC, CH, P, PC, PRODUCT_COLS, V, VARIANT_COLS
from app.catalog.writes import add_variant, create_product, update_product, update_variant

__all__ = [
    "BC", "CH", "P", "PC", "PRODUCT_COLS", "V", "VARIANT_COLS", "SkuInfo", "add_variant", "canonical",
    "canonical_sku", "canonical_skus", "channel_variants", "check_channels", "conflict", "create_product",
    "delete_product", "delete_variant", "event_data", "existing_channels", "find_variant", "get_product", "get_sku", "list_categories",
    "list_products", "lookup_skus", "render_product", "render_variant", "render_variant_detail", "sku_key",
    "sku_lower", "update_product", "update_variant", "visibility", "visible_channels",
]
