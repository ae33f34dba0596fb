"""What the catalog itself holds of its SKUs: bundles that contain them as components
(app/core/references.py)."""
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.tables import BC
from app.core.sql import chunks, where_in


async def _skus(session: AsyncSession, skus: list[str]) -> dict[str, set[str]]:
    found: set[str] = set()
    for part in chunks(skus):
        found |= set((await session.execute(
            select(BC.c.component_sku).where(where_in(session, BC.c.component_sku, part)).distinct())).scalars())
    return {"bundles": found}


REFERENCES = {"sku": _skus}
