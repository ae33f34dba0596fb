"""The `price` and `stock` columns of a catalog import: a retailer's first load in one file.

This is the part of the import that reaches past the catalog: the import use case (app/imports/,
above catalog, pricing and inventory) calling the pricing and inventory services, which
themselves build on the catalog. The catalog's upsert (app/catalog/importer.py) only sees it
through its `Extras` protocol; nothing in app/catalog imports it.

* price: upserted into the price list named by the row's `price_list` or `?price_list=` (by
  code), through `pricing.put_prices` (one call per list and chunk: the list's version goes up
  once and one `price_list.updated` event is written). Prices equal to the stored ones are
  left alone, so importing the same file again changes nothing.
* stock: the on-hand count at the row's `location` or `?location=`, set through the
  inventory's one stock path (`adjust_expanded`, reason `count`): a ledger movement and an
  `inventory.level_changed` event per changed level, never a bare UPDATE. Equal counts write
  nothing.

Both are checked per row before the catalog writes, so a row that fails here (unknown price
list or location, a price with more decimals than the currency, stock on a bundle or on an
untracked variant) is not written at all.
"""
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from app.catalog.import_rows import ImportOptions, Row, minor_units
from app.core.sql import chunks, where_in
from app.inventory import service as inventory
from app.pricing import service as pricing
from app.pricing.models import PriceEntry, PriceList
from app.pricing.schemas import PriceIn

PE = PriceEntry.__table__
PL = PriceList.__table__
# pricing.put_prices reads If-Match from a request; the import asserts no version
_NO_IF_MATCH = Request({"type": "http", "method": "PUT", "path": "/", "headers": []})


@dataclass(slots=True)
class StockAndPrices:
    options: ImportOptions
    reference: str  # the ledger movements' reference: the import job's id, or "catalog-import"
    prices: dict[int, tuple[str, int]] = field(default_factory=dict)  # row line -> (list code, amount)
    stock: dict[int, tuple[inventory.Loc, int]] = field(default_factory=dict)  # row line -> (location, on hand)

    async def check(self, session: AsyncSession, rows: list[tuple[Row, bool, bool]]) -> None:
        """rows: (row, is a bundle, tracks inventory) of the rows about to be written; fails
        the ones whose price or stock cannot be written."""
        priced = [(r, r.given.get("price_list") or self.options.price_list) for r, _, _ in rows if "price" in r.given]
        stocked = [(r, r.given.get("location") or self.options.location, b, t) for r, b, t in rows if "stock" in r.given]
        currencies = await pricing.existing_price_list_codes(session, sorted({c for _, c in priced if c}))
        for r, code in priced:
            if code is None:
                r.fail("price_list", "Give the price list of the price: a price_list column or ?price_list=<code>.")
            elif code not in currencies:
                r.fail("price_list", f"Unknown price list {code!r}.")
            else:
                amount = minor_units(r.given["price"], currencies[code])
                if isinstance(amount, str):
                    r.fail("price", amount)
                else:
                    self.prices[r.line] = (code, amount)
        locs = await inventory.locations_by_code(session, {c for _, c, _, _ in stocked if c})
        for r, code, is_bundle, tracked in stocked:
            if code is None:
                r.fail("location", "Give the location of the stock: a location column or ?location=<code>.")
            elif code not in locs:
                r.fail("location", f"Unknown location {code!r}.")
            elif is_bundle:
                r.fail("stock", f"{r.sku!r} is a bundle: its stock is its components'.")
            elif not tracked:
                r.fail("stock", f"{r.sku!r} is not stocked (track_inventory is false).")
            else:
                self.stock[r.line] = (locs[code], r.given["stock"])

    async def write(self, session: AsyncSession, rows: list[Row]) -> dict[str, int]:
        """After the catalog rows of `rows` are written (same transaction): their prices and stock."""
        by_list: dict[str, dict[str, int]] = {}
        ops: dict[tuple[str, str], tuple[str, int]] = {}
        locs: dict[str, inventory.Loc] = {}
        for r in rows:
            if r.line in self.prices:
                code, amount = self.prices[r.line]
                by_list.setdefault(code, {})[r.sku] = amount
            if r.line in self.stock:
                loc, on_hand = self.stock[r.line]
                ops[(r.sku, loc.id)] = ("set", on_hand)
                locs[loc.id] = loc
        prices_set = 0
        for code, wanted in by_list.items():
            stored = await _stored_prices(session, code, sorted(wanted))
            changed = [PriceIn(sku=s, amount=a) for s, a in wanted.items() if stored.get(s) != a]
            for part in chunks(changed, pricing.MAX_PRICES_PER_PUT):
                prices_set += (await pricing.put_prices(session, _NO_IF_MATCH, code, part, replace=False))["set"]
        stock_set = 0
        if ops:
            changes = await inventory.adjust_expanded(session, ops, reason="count", reference=self.reference, locs=locs)
            stock_set = len(changes)
        return {"prices_set": prices_set, "stock_set": stock_set}


async def _stored_prices(session: AsyncSession, code: str, skus: list[str]) -> dict[str, int]:
    """The single-unit prices of `skus` in the list `code`."""
    out: dict[str, int] = {}
    for part in chunks(skus):
        res = await session.execute(
            select(PE.c.sku, PE.c.amount).join(PL, PL.c.id == PE.c.price_list_id)
            .where(PL.c.code == code, PE.c.min_quantity == 1, where_in(session, PE.c.sku, part)))
        out.update(res.tuples().all())
    return out
