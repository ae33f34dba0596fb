"""What inventory holds of the catalog's SKUs: stock levels and the movement ledger
(app/core/references.py). A SKU with either has a stock history that must keep its product."""
from sqlalchemy import select, union
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.sql import chunks, where_in
from app.inventory.models import StockLevel, StockMovement

L = StockLevel.__table__
M = StockMovement.__table__


async def _skus(session: AsyncSession, skus: list[str]) -> dict[str, set[str]]:
    found: set[str] = set()
    for part in chunks(skus):
        stmt = union(select(L.c.sku).where(where_in(session, L.c.sku, part)),
                     select(M.c.sku).where(where_in(session, M.c.sku, part)))
        found |= set((await session.execute(stmt)).scalars())
    return {"stock": found}


REFERENCES = {"sku": _skus}
