"""Who still refers to a key another domain owns, asked before that key is deleted.

Dependencies run one way (core ← catalog ← inventory, pricing ← orders …), so the catalog cannot
look into stock levels or orders to learn whether a SKU may go, nor pricing into orders for a
promotion code. Instead every domain that keeps such keys says so in a `references` module,
wired here in one list (as the seeders in app/seed.py and the jobs in app/worker.py are):

    REFERENCES = {"sku": finder, "promotion": finder}   # kind -> finder
    async def finder(session, keys: list[str]) -> dict[str, set[str]]   # {what holds them: keys held}

Kinds: `sku` (stored spellings, as every table keeps them) and `promotion` (promotion codes).
Finders read in the caller's transaction and write nothing.
"""
import importlib
from collections.abc import Awaitable, Callable, Iterable

from sqlalchemy.ext.asyncio import AsyncSession

Finder = Callable[[AsyncSession, list[str]], Awaitable[dict[str, set[str]]]]

# The modules that hold other domains' keys, in dependency order (the order answers list them in).
HOLDERS = (
    "app.catalog.references",    # sku: bundles that contain the SKU as a component
    "app.inventory.references",  # sku: stock levels and the movement ledger
    "app.pricing.references",    # sku: prices, promotions naming the SKU
    "app.orders.references",     # sku: order lines, open carts; promotion: orders it discounted
)

_loaded: list[dict[str, Finder]] | None = None


def _finders() -> list[dict[str, Finder]]:
    global _loaded
    if _loaded is None:  # imported on first use: the holders sit above core
        _loaded = [importlib.import_module(name).REFERENCES for name in HOLDERS]
    return _loaded


async def held(session: AsyncSession, kind: str, keys: Iterable[str]) -> dict[str, list[str]]:
    """{what holds some of `keys` ("orders", "stock", "prices" …): the keys it holds, sorted};
    empty when nothing refers to any of them."""
    keys = sorted(set(keys))
    out: dict[str, list[str]] = {}
    if not keys:
        return out
    for finders in _finders():
        finder = finders.get(kind)
        if finder is None:
            continue
        for what, found in (await finder(session, keys)).items():
            if found:
                out[what] = sorted(set(out.get(what, [])) | set(found))
    return out
