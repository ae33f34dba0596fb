"""What pricing holds of the catalog's SKUs (app/core/references.py): prices in any list, and
promotions that name the SKU (`skus`, a `bundle_price`'s items)."""
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.sql import chunks, where_in
from app.pricing.common import PE, PR


async def _skus(session: AsyncSession, skus: list[str]) -> dict[str, set[str]]:
    priced: set[str] = set()
    for part in chunks(skus):
        priced |= set((await session.execute(
            select(PE.c.sku).where(where_in(session, PE.c.sku, part)).distinct())).scalars())
    wanted = set(skus)
    named: set[str] = set()
    for listed, params in (await session.execute(select(PR.c.skus, PR.c.params))).all():  # a small table
        named |= wanted.intersection(listed or ())
        items = (params or {}).get("items") if isinstance(params, dict) else None
        named |= wanted.intersection(it.get("sku") for it in items or () if isinstance(it, dict))
    return {"prices": priced, "promotions": named}


REFERENCES = {"sku": _skus}
