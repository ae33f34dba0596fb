"""What orders hold of other domains' keys (app/core/references.py): SKUs in order lines and in
open carts, and the promotions that discounted an order (`orders.promotions`)."""
from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import is_postgres
from app.core.sql import chunks, where_in
from app.orders.models import OrderLine

OL = OrderLine.__table__

# The values of one key of the objects in a JSON array column, among the wanted ones.
_JSON_KEYS = {
    True: "SELECT DISTINCT e.value ->> '{key}' FROM {table} t, jsonb_array_elements(t.{column}) e "
          "WHERE {where} jsonb_typeof(t.{column}) = 'array' AND e.value ->> '{key}' = ANY(:keys)",
    False: "SELECT DISTINCT json_extract(e.value, '$.{key}') FROM {table} t, json_each(t.{column}) e "
           "WHERE {where} json_type(t.{column}) = 'array' AND json_extract(e.value, '$.{key}') IN :keys",
}


async def _json_keys(session: AsyncSession, table: str, column: str, key: str, keys: list[str],
                     where: str = "") -> set[str]:
    """Which of `keys` appear as `key` in the objects of the JSON array `table.column` (a scan:
    only deletes ask)."""
    pg = is_postgres(session)
    stmt = text(_JSON_KEYS[pg].format(table=table, column=column, key=key, where=f"{where} AND" if where else ""))
    if not pg:
        stmt = stmt.bindparams(bindparam("keys", expanding=True))
    found: set[str] = set()
    for part in chunks(keys):
        found |= {v for v in (await session.execute(stmt, {"keys": list(part)})).scalars() if v is not None}
    return found


async def _skus(session: AsyncSession, skus: list[str]) -> dict[str, set[str]]:
    ordered: set[str] = set()
    for part in chunks(skus):
        ordered |= set((await session.execute(
            select(OL.c.sku).where(where_in(session, OL.c.sku, part)).distinct())).scalars())
    in_carts = await _json_keys(session, "carts", "lines", "sku", skus, where="t.status = 'open'")
    return {"orders": ordered, "carts": in_carts}


async def _promotions(session: AsyncSession, codes: list[str]) -> dict[str, set[str]]:
    return {"orders": await _json_keys(session, "orders", "promotions", "code", codes)}


REFERENCES = {"sku": _skus, "promotion": _promotions}
