"""Demo stock: the warehouse holds most, each store a little (Hamburg a lot of T-shirts,
München none of the gift box's cheese), the wine partner ships wine. The jeans are a store
range (Hamburg and Berlin only, none in the warehouse), so a web order of jeans ships from a
store. Every unit arrives through a `receipt` movement, so the ledger adds up from the start.
Idempotent."""
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.service import lookup_skus
from app.inventory import service
from app.inventory.models import StockLevel

STOCK = {  # location -> sku prefix or sku -> (on_hand, safety_stock)
    "wh-central": {"TS-": (40, 2), "HOOD-": (15, 1), "WINE-RIES-075": (60, 6),
                   "CHEESE-GOUDA": (25, 2), "COFFEE-ESP-1KG": (30, 2), "CHOC-DARK-100": (80, 5)},
    "st-hamburg": {"TS-BLK-": (6, 1), "TS-WHT-": (4, 1), "HOOD-": (2, 0), "JEANS-": (2, 0), "WINE-RIES-075": (8, 1),
                   "CHEESE-GOUDA": (5, 1), "CHOC-DARK-100": (12, 2), "COFFEE-ESP-1KG": (6, 1)},
    "st-berlin": {"TS-BLK-": (3, 0), "JEANS-": (2, 0), "WINE-RIES-075": (4, 0), "CHEESE-GOUDA": (2, 0),
                  "CHOC-DARK-100": (6, 1)},
    "st-munich": {"TS-WHT-": (2, 0), "WINE-RIES-075": (3, 0), "CHOC-DARK-100": (4, 0)},
    "pt-weinhaus": {"WINE-RIES-075": (120, 0)},
}


def _match(sku: str, table: dict) -> tuple[int, int] | None:
    for key, value in table.items():
        if sku == key or (key.endswith("-") and sku.startswith(key)):
            return value
    return None


async def seed_demo(session: AsyncSession) -> list[str]:
    from app.catalog.seed import SEED_SKUS

    if (await session.execute(select(StockLevel.id).where(StockLevel.sku.in_(SEED_SKUS)).limit(1))).first():
        return []
    locs = await service.locations_by_code(session, STOCK)
    facts = await lookup_skus(session, SEED_SKUS)
    ops, safety = {}, {}
    for code, table in STOCK.items():
        if code not in locs:
            continue
        for sku in SEED_SKUS:
            info = facts.get(sku)
            if info is None or info.is_bundle:
                continue
            value = _match(sku, table)
            if value:
                ops[(sku, locs[code].id)] = ("set", value[0])
                safety[(sku, locs[code].id)] = value[1]
    if not ops:
        return []
    await service.adjust_expanded(session, ops, reason="receipt", reference="seed-demo", safety=safety, locs=locs)
    await session.flush()
    return [f"stock {len(ops)} levels"]
