"""Catalog lookups other domains call (read-only): SKU spelling, SKU facts, a channel's variants.

`lookup_skus`, `get_sku`, `canonical_skus`, `canonical_sku`, `channel_variants`,
`existing_channels`. SKUs match in any spelling and answer with the stored one (see "SKU
spelling"). SKU facts are kept per (SKU, channel) until the catalog changes.
"""
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.tables import BC, CH, P, PC, V, cached
from app.core.cache import Cache
from app.core.db import is_postgres
from app.core.sql import chunks, in_param, where_in


# --------------------------------------------------------------------------- SKU spelling
#
# SKUs are unique case-insensitively (a unique index on lower(sku)) and stored as first
# spelled. Lookups match any spelling and answer with the stored one: the edges that take
# SKUs from clients (lookup_skus, the by-sku variant reads, the import) resolve them to the
# stored spelling once, so everything downstream compares exact stored SKUs.

def sku_key(sku: str) -> str:
    """The case-free key of a SKU. SKUs are ASCII; a non-ASCII string is left as it is, so it
    can never match one (Python and the databases fold non-ASCII letters differently)."""
    return sku.lower() if sku.isascii() else sku


def sku_lower():
    """lower(variants.sku), the expression the unique index ux_variants_sku_lower covers."""
    return func.lower(V.c.sku, type_=V.c.sku.type)


def canonical(given: Iterable[str], stored: Iterable[str]) -> dict[str, str]:
    """{given spelling: stored spelling} for the given SKUs that are among `stored` (for
    example the keys of lookup_skus's answer); the others are absent."""
    by_key = {sku_key(s): s for s in stored}
    return {g: by_key[sku_key(g)] for g in given if sku_key(g) in by_key}


async def canonical_skus(session: AsyncSession, skus: Iterable[str]) -> dict[str, str]:
    """{given spelling: stored spelling} for the SKUs that exist (one indexed query per 5,000)."""
    skus = list(skus)
    wanted = sorted({sku_key(s) for s in skus})
    found: list[str] = []
    for part in chunks(wanted):
        found += (await session.execute(select(V.c.sku).where(where_in(session, sku_lower(), part)))).scalars()
    return canonical(skus, found) if found else {}


async def canonical_sku(session: AsyncSession, sku: str) -> str:
    """The stored spelling of `sku`, or `sku` itself when no variant has it (filters on reads)."""
    return (await canonical_skus(session, [sku])).get(sku, sku)


# --------------------------------------------------------------------------- SKU facts

@dataclass(frozen=True, slots=True)
class SkuInfo:
    variant_id: str
    sku: str
    gtin: str | None
    title: str
    product_id: str
    product_title: str
    handle: str
    product_type: str
    status: str
    tax_class: str
    category: str | None
    is_bundle: bool
    track_inventory: bool
    weight_grams: int | None
    updated_at: datetime  # the product's: every variant change bumps it
    components: tuple[tuple[str, int], ...] = ()  # bundles: ((component sku, quantity), …)


def _sku_infos(rows: Iterable) -> dict[str, SkuInfo]:
    grouped: dict[str, list] = {}
    for r in rows:
        grouped.setdefault(r.sku, []).append(r)
    out = {}
    for sku, rs in grouped.items():
        r = rs[0]
        comps = tuple((x.component_sku, x.quantity) for x in rs if x.component_sku is not None)
        out[sku] = SkuInfo(
            variant_id=r.id, sku=r.sku, gtin=r.gtin, title=r.title, product_id=r.product_id,
            product_title=r.product_title, handle=r.handle, product_type=r.type, status=r.status,
            tax_class=r.tax_class, category=r.category, is_bundle=r.is_bundle, track_inventory=r.track_inventory,
            weight_grams=r.weight_grams, updated_at=r.p_updated_at, components=comps,
        )
    return out


def _info_stmt():
    return (
        select(V.c.id, V.c.product_id, V.c.sku, V.c.gtin, V.c.title, V.c.weight_grams, V.c.track_inventory,
               V.c.is_bundle, P.c.title.label("product_title"), P.c.handle, P.c.type, P.c.status, P.c.tax_class,
               P.c.category, P.c.updated_at.label("p_updated_at"), BC.c.component_sku, BC.c.quantity)
        .select_from(V.join(P, P.c.id == V.c.product_id).outerjoin(BC, BC.c.bundle_variant_id == V.c.id))
    )


async def lookup_skus(session: AsyncSession, skus: Iterable[str], *, channel: str | None = None) -> dict[str, SkuInfo]:
    """Facts about many SKUs in one query per 5,000. Unknown SKUs are absent from the result.

    SKUs match in any spelling; the result is keyed by the stored spelling (`canonical(skus,
    result)` maps the given spellings to it). With `channel`, only SKUs of active products
    visible in that channel are returned (what a storefront/marketplace of that channel may sell).
    """
    wanted = sorted({sku_key(s) for s in skus})
    out: dict[str, SkuInfo] = {}
    conn = await session.connection()  # Core rows: no ORM unit of work in the way
    missing = []
    for key in wanted:  # facts change only with the catalog: kept per (spelling key, channel)
        hit = _sku_facts.get((key, channel), conn)
        if hit is None:
            missing.append(key)
        elif hit is not _NOT_FOUND:
            out[hit.sku] = hit
    if not missing:
        return out
    generation = _sku_facts.generation
    pg = is_postgres(session)
    stmt = cached(("sku_infos", pg, channel is not None), lambda: _lookup_stmt(pg, channel is not None))
    found: dict[str, SkuInfo] = {}
    for part in chunks(missing):
        params = {"keys": part, "channel": channel} if channel is not None else {"keys": part}
        found.update(_sku_infos((await conn.execute(stmt, params)).all()))
    by_key = {sku_key(s): info for s, info in found.items()}
    for key in missing:
        _sku_facts.put((key, channel), by_key.get(key, _NOT_FOUND), generation, conn)
    out.update(found)
    return out


_sku_facts = Cache("catalog", max_entries=200_000)  # (sku key, channel) -> SkuInfo | _NOT_FOUND
_NOT_FOUND = object()


def _lookup_stmt(pg: bool, in_channel: bool):
    """Built once per shape (SQLite: an expanding IN; PostgreSQL: = ANY(array), one parameter)."""
    stmt = _info_stmt().where(in_param(pg, sku_lower(), "keys")).order_by(V.c.sku, BC.c.component_sku)
    if in_channel:
        stmt = stmt.where(P.c.status == "active",
                          exists().where(PC.c.product_id == P.c.id, PC.c.channel_code == bindparam("channel")))
    return stmt


async def get_sku(session: AsyncSession, sku: str, *, channel: str | None = None) -> SkuInfo | None:
    """One SKU's facts (any spelling; `.sku` is the stored one), or None."""
    found = await lookup_skus(session, [sku], channel=channel)
    return next(iter(found.values()), None)


async def channel_variants(
    session: AsyncSession, channel: str, *, updated_since: datetime | None = None,
    after_variant_id: str | None = None, limit: int = 50,
) -> list[SkuInfo]:
    """Variants of active products visible in `channel`, by variant id (keyset: pass the last
    `variant_id` as `after_variant_id`), optionally only products updated since a time."""
    ids = select(V.c.id).join(P, P.c.id == V.c.product_id).where(
        P.c.status == "active", exists().where(PC.c.product_id == P.c.id, PC.c.channel_code == channel))
    if updated_since is not None:
        ids = ids.where(P.c.updated_at >= updated_since)
    if after_variant_id is not None:
        ids = ids.where(V.c.id > after_variant_id)
    ids = ids.order_by(V.c.id).limit(limit)
    page_ids = list((await session.execute(ids)).scalars())
    if not page_ids:
        return []
    infos = _sku_infos((await session.execute(
        _info_stmt().where(where_in(session, V.c.id, page_ids)).order_by(V.c.id, BC.c.component_sku))).all())
    return sorted(infos.values(), key=lambda i: i.variant_id)


async def existing_channels(session: AsyncSession, codes: Iterable[str]) -> set[str]:
    codes = list(set(codes))
    if not codes:
        return set()
    return set((await session.execute(select(CH.c.code).where(where_in(session, CH.c.code, codes)))).scalars())
