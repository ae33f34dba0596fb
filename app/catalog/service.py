"""Catalog rules: products, variants, bundles, channel visibility, lookups.

Reads are Core selects with a constant number of statements (a page of products,
then all their variants + bundle components in one query and all their channels in
another). Writes validate first, then insert/update in one transaction together
with the `product.created` / `product.updated` outbox event; a unique violation
raced in by a concurrent writer is diagnosed again and answered with a 409.

Functions other domains call (read-only): `lookup_skus`, `get_sku`, `canonical_skus`,
`channel_variants`. SKUs match in any spelling and answer with the stored one (see "SKU spelling").
"""
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from fastapi import Request
from sqlalchemy import Integer, bindparam, delete, exists, func, insert, literal_column, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.catalog.codes import gtin_forms, like_pattern, like_prefix, slugify
from app.catalog.models import BundleComponent, Product, ProductChannel, Variant
from app.catalog.schemas import ProductCreate, ProductUpdate, VariantCreate, VariantIn, VariantUpdate
from app.channels.models import Channel
from app.core import clock
from app.core.concurrency import check_version
from app.core.cache import Cache
from app.core.sql import chunks, in_param, where_in
from app.core.db import is_postgres
from app.core.errors import ApiError
from app.core.ids import new_id
from app.core.pagination import PageParams, page_result
from app.core.responses import dumps
from app.events.service import emit

P = Product.__table__
V = Variant.__table__
PC = ProductChannel.__table__
BC = BundleComponent.__table__
CH = Channel.__table__

PRODUCT_COLS = (P.c.id, P.c.handle, P.c.type, P.c.title, P.c.description, P.c.status, P.c.category,
                P.c.attributes, P.c.tax_class, P.c.version, P.c.created_at, P.c.updated_at)
VARIANT_COLS = (V.c.id, V.c.product_id, V.c.sku, V.c.gtin, V.c.title, V.c.options, V.c.attributes,
                V.c.weight_grams, V.c.track_inventory, V.c.is_bundle, V.c.position, V.c.created_at, V.c.updated_at)


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


# --------------------------------------------------------------------------- rendering

def render_variant(v: Any, components: list[dict] | None = None) -> dict:
    out = {
        "id": v.id, "sku": v.sku, "gtin": v.gtin, "title": v.title, "options": v.options or {},
        "attributes": v.attributes or {}, "weight_grams": v.weight_grams, "track_inventory": v.track_inventory,
    }
    if v.is_bundle:
        out["components"] = components or []
    return out


def render_product(p: Any, channels: list[str], variants: list[dict]) -> dict:
    return {
        "id": p.id, "object": "product", "handle": p.handle, "type": p.type, "title": p.title,
        "description": p.description, "status": p.status, "category": p.category,
        "attributes": p.attributes or {}, "tax_class": p.tax_class, "channels": channels,
        "variants": variants, "version": p.version, "created_at": p.created_at, "updated_at": p.updated_at,
    }


def render_variant_detail(row: Any, components: list[dict] | None = None) -> dict:
    out = {"id": row.id, "object": "variant"}
    out.update(render_variant(row, components))
    out.update({
        "product_id": row.product_id, "product_title": row.product_title, "handle": row.handle,
        "status": row.status, "tax_class": row.tax_class, "category": row.category, "type": row.type,
        "version": row.version, "created_at": row.created_at, "updated_at": row.updated_at,
    })
    return out


def event_data(rendered: dict) -> dict:
    """The rendered product as plain JSON (timestamps as RFC 3339 strings) for the outbox."""
    return orjson.loads(dumps(rendered))


# --------------------------------------------------------------------------- visibility

def visibility(who: Principal | None) -> list:
    """WHERE clauses limiting products to what the key may see (admin: everything).

    storefront / marketplace / pos: active products visible in the key's channel (a POS
    key's pos channel); dropshipper keys: nothing.
    """
    return _vis_clauses(_vis_kind(who), who.channel if who is not None else None)


def _vis_kind(who: Principal | None) -> str:
    if who is None or who.is_admin:
        return "all"
    return "channel" if who.channel is not None else "none"  # every catalog reader's key has a channel


def _vis_clauses(kind: str, channel: Any = None) -> list:
    if kind == "all":
        return []
    if kind == "channel":
        return [P.c.status == "active", exists().where(PC.c.product_id == P.c.id, PC.c.channel_code == channel)]
    return [P.c.id.is_(None)]


def visible_channels(who: Principal | None, channels: list[str]) -> list[str]:
    """Bound keys are not told about the other channels a product is sold in."""
    if who is None or who.is_admin:
        return channels
    return [c for c in channels if c == who.channel]


# --------------------------------------------------------------------------- reads
#
# Hot paths (storefront lists, product pages, the POS scan) execute statements built once per
# shape and cached here, all values bound as parameters: building a select costs ~0.2 ms of
# CPU per request, a cached one is a dictionary lookup (SQLAlchemy memoizes its cache key).

_STMTS: dict[tuple, Any] = {}


def _cached(key: tuple, build):
    stmt = _STMTS.get(key)
    if stmt is None:
        stmt = _STMTS[key] = build()
    return stmt


def _channels_column(pg: bool):
    """The product's channel codes, comma-joined (codes cannot contain commas), as a column."""
    sep = literal_column("','")
    agg = func.string_agg(PC.c.channel_code, sep) if pg else func.group_concat(PC.c.channel_code, sep)
    return select(agg).where(PC.c.product_id == P.c.id).scalar_subquery().label("channels_csv")


def _split_channels(csv: str | None) -> list[str]:
    return sorted(csv.split(",")) if csv else []


def _variants_stmt(pg: bool):
    return (
        select(V.c.id, V.c.product_id, V.c.sku, V.c.gtin, V.c.title, V.c.options, V.c.attributes,
               V.c.weight_grams, V.c.track_inventory, V.c.is_bundle, BC.c.component_sku, BC.c.quantity)
        .select_from(V.outerjoin(BC, BC.c.bundle_variant_id == V.c.id))
        .where(in_param(pg, V.c.product_id, "ids"))
        .order_by(V.c.product_id, V.c.position, V.c.id, BC.c.component_sku)
    )


async def _children(session: AsyncSession, product_ids: list[str]) -> dict[str, list[dict]]:
    """Variants (with bundle components) of many products: one query."""
    variants: dict[str, list[dict]] = defaultdict(list)
    if not product_ids:
        return variants
    pg = is_postgres(session)
    stmt = _cached(("variants", pg), lambda: _variants_stmt(pg))
    last_id = None
    current: dict | None = None
    for r in (await session.execute(stmt, {"ids": product_ids})).all():
        if r.id != last_id:
            current = render_variant(r, [] if r.is_bundle else None)
            variants[r.product_id].append(current)
            last_id = r.id
        if r.component_sku is not None:
            current["components"].append({"sku": r.component_sku, "quantity": r.quantity})
    return variants


def _product_stmt(pg: bool, by_id: bool, kind: str, for_update: bool):
    if for_update:
        stmt = select(*PRODUCT_COLS)
    else:
        stmt = select(*PRODUCT_COLS, _channels_column(pg))
    stmt = stmt.where(P.c.id == bindparam("ref") if by_id else P.c.handle == bindparam("ref"),
                      *_vis_clauses(kind, bindparam("vis_channel")))
    return stmt.with_for_update() if for_update else stmt


async def _product_row(session: AsyncSession, ref: str, who: Principal | None = None, *, for_update: bool = False):
    """By id or handle (with `channels_csv` unless for_update); 404 outside the key's visibility."""
    if len(ref) > 200:
        raise ApiError(404, "not_found", "Product was not found.")
    pg, by_id, kind = is_postgres(session), ref.startswith("prod_"), _vis_kind(who)
    stmt = _cached(("product", pg, by_id, kind, for_update), lambda: _product_stmt(pg, by_id, kind, for_update))
    params = {"ref": ref}
    if kind == "channel":
        params["vis_channel"] = who.channel
    row = (await session.execute(stmt, params)).first()
    if row is None:
        raise ApiError(404, "not_found", f"Product {ref!r} was not found.")
    return row


async def get_product(session: AsyncSession, ref: str, who: Principal | None = None) -> dict:
    """By id or handle; outside the key's visibility -> 404. Two queries."""
    p = await _product_row(session, ref, who)
    variants = await _children(session, [p.id])
    return render_product(p, visible_channels(who, _split_channels(p.channels_csv)), variants.get(p.id, []))


async def _render_one(session: AsyncSession, pid: str) -> dict:
    """The full product (admin view) for events and write responses."""
    return await get_product(session, pid)


def _list_stmt(pg: bool, kind: str, shape: tuple):
    q, category, status, channel, type_, since, after = shape
    stmt = select(*PRODUCT_COLS, _channels_column(pg)).where(*_vis_clauses(kind, bindparam("vis_channel")))
    if q:
        pat = bindparam("q")
        stmt = stmt.where(or_(
            func.lower(P.c.title).like(pat, escape="\\"),
            exists().where(V.c.product_id == P.c.id,
                           or_(func.lower(V.c.sku).like(pat, escape="\\"), V.c.gtin.like(pat, escape="\\"))),
        ))
    if category:
        # a category matches itself and everything below it: "fashion" finds "fashion/t-shirts"
        stmt = stmt.where(or_(P.c.category == bindparam("category"),
                              P.c.category.like(bindparam("category_below"), escape="\\")))
    if status:
        stmt = stmt.where(P.c.status == bindparam("status"))
    if channel:
        stmt = stmt.where(exists().where(PC.c.product_id == P.c.id, PC.c.channel_code == bindparam("channel")))
    if type_:
        stmt = stmt.where(P.c.type == bindparam("type"))
    if since:
        stmt = stmt.where(P.c.updated_at >= bindparam("since", type_=P.c.updated_at.type))
    if after:
        stmt = stmt.where(P.c.id > bindparam("after"))
    return stmt.order_by(P.c.id).limit(bindparam("lim", type_=Integer))


async def list_products(
    session: AsyncSession, who: Principal, page: PageParams, *, q: str | None = None, category: str | None = None,
    status: str | None = None, channel: str | None = None, type: str | None = None,
    updated_since: datetime | None = None,
) -> dict:
    """A page of products with their variants: two queries, whatever the page size."""
    if channel and not who.is_admin and who.channel is not None and channel != who.channel:
        return {"data": [], "next_cursor": None}  # a bound key asking about another channel: nothing to see
    pg, kind = is_postgres(session), _vis_kind(who)
    shape = (bool(q), bool(category), bool(status), bool(channel), bool(type), updated_since is not None, bool(page.after))
    stmt = _cached(("list", pg, kind, shape), lambda: _list_stmt(pg, kind, shape))
    params: dict[str, Any] = {"lim": page.limit + 1}
    if kind == "channel":
        params["vis_channel"] = who.channel
    if q:
        params["q"] = like_pattern(q.lower())
    if category:
        params["category"] = category
        params["category_below"] = like_prefix(category + "/")
    if status:
        params["status"] = status
    if channel:
        params["channel"] = channel
    if type:
        params["type"] = type
    if updated_since is not None:
        params["since"] = updated_since
    if page.after:
        params["after"] = page.after
    rows = (await session.execute(stmt, params)).all()
    variants = await _children(session, [r.id for r in rows[: page.limit]])
    return page_result(
        list(rows), page,
        lambda p: render_product(p, visible_channels(who, _split_channels(p.channels_csv)), variants.get(p.id, [])),
    )


async def list_categories(session: AsyncSession, who: Principal) -> dict:
    rows = await session.execute(
        select(P.c.category, func.count()).where(P.c.category.is_not(None), *visibility(who))
        .group_by(P.c.category).order_by(P.c.category)
    )
    return {"data": [{"category": c, "products": n} for c, n in rows.all()], "next_cursor": None}


def _variant_detail_stmt(kind: str = "all", by: str | None = None, pg: bool = False):
    stmt = (
        select(*VARIANT_COLS, P.c.title.label("product_title"), P.c.handle, P.c.status, P.c.tax_class,
               P.c.category, P.c.type, P.c.version, BC.c.component_sku, BC.c.quantity)
        .select_from(V.join(P, P.c.id == V.c.product_id).outerjoin(BC, BC.c.bundle_variant_id == V.c.id))
        .where(*_vis_clauses(kind, bindparam("vis_channel")))
        .order_by(BC.c.component_sku)
    )
    if by == "gtins":
        return stmt.where(in_param(pg, V.c.gtin, "value"))
    if by == "sku":  # any spelling (the caller passes sku_key(value))
        return stmt.where(sku_lower() == bindparam("value"))
    if by is not None:
        return stmt.where(getattr(V.c, by) == bindparam("value"))
    return stmt


def _detail_from_rows(rows: list) -> dict | None:
    if not rows:
        return None
    first = rows[0]
    comps = [{"sku": r.component_sku, "quantity": r.quantity} for r in rows if r.component_sku is not None]
    return render_variant_detail(first, comps)


async def find_variant(session: AsyncSession, who: Principal | None, *, sku: str | None = None,
                       gtin: str | None = None, ref: str | None = None) -> dict:
    """The POS scan: one indexed query (variant ⋈ product ⟕ bundle components)."""
    pg, kind = is_postgres(session), _vis_kind(who)

    async def run(by: str, value: Any) -> list:
        stmt = _cached(("variant", pg, kind, by), lambda: _variant_detail_stmt(kind, by, pg))
        params = {"value": sku_key(value) if by == "sku" else value}
        if kind == "channel":
            params["vis_channel"] = who.channel
        return (await session.execute(stmt, params)).all()

    if sku is not None:
        rows = await run("sku", sku)
        what = f"SKU {sku!r}"
    elif gtin is not None:
        forms = gtin_forms(gtin)
        rows = await run("gtin", gtin) if len(forms) == 1 else await run("gtins", forms)
        what = f"GTIN {gtin!r}"
    else:
        assert ref is not None
        by_id = ref.startswith("var_")
        rows = await run("id" if by_id else "sku", ref)
        if not rows and by_id:  # a SKU may look like an id
            rows = await run("sku", ref)
        what = f"Variant {ref!r}"
    if rows and gtin is not None and len({r.id for r in rows}) > 1:  # legacy spellings of one code
        exact = [r for r in rows if r.gtin == gtin]
        first = (exact or rows)[0].id
        rows = [r for r in rows if r.id == first]
    detail = _detail_from_rows(rows)
    if detail is None:
        raise ApiError(404, "not_found", f"{what} was not found.")
    return detail


# --------------------------------------------------------------------------- for other domains

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
    stmt = _cached(("sku_infos", pg, channel is not None), lambda: _lookup_stmt(pg, channel is not None))
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


# --------------------------------------------------------------------------- write helpers

def conflict(code: str, what: str, items: list[tuple[str, str]]) -> ApiError:
    """409 naming every conflicting field path and value."""
    field, value = items[0]
    return ApiError(
        409, code, f"{what} {value!r} is already in use ({field}).",
        errors=[{"field": f, "message": f"{what} {v!r} is already in use.", "value": v} for f, v in items],
    )


async def existing_channels(session: AsyncSession, codes: Iterable[str]) -> set[str]:
    codes = list(set(codes))
    if not codes:
        return set()
    return set((await session.execute(select(CH.c.code).where(where_in(session, CH.c.code, codes)))).scalars())


async def _check_channels(session: AsyncSession, codes: list[str], field: str = "channels") -> None:
    found = await existing_channels(session, codes)
    missing = [(i, c) for i, c in enumerate(codes) if c not in found]
    if missing:
        raise ApiError(
            422, "validation_error", f"Unknown channel {missing[0][1]!r}.",
            errors=[{"field": f"{field}[{i}]", "message": f"Unknown channel {c!r}."} for i, c in missing],
        )


async def _free_handle(session: AsyncSession, base: str) -> str:
    taken = set((await session.execute(
        select(P.c.handle).where(or_(P.c.handle == base, P.c.handle.like(like_prefix(base + "-"), escape="\\")))
    )).scalars())
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


async def _sku_conflicts(session: AsyncSession, items: list[tuple[str, str]], *, exclude_variant: str | None = None) -> list[tuple[str, str]]:
    """items: (field path, sku) -> those already used by another variant."""
    if not items:
        return []
    stmt = select(V.c.sku).where(where_in(session, sku_lower(), sorted({sku_key(s) for _, s in items})))
    if exclude_variant:
        stmt = stmt.where(V.c.id != exclude_variant)
    used = {sku_key(s) for s in (await session.execute(stmt)).scalars()}
    return [(f, s) for f, s in items if sku_key(s) in used]


async def _gtin_conflicts(session: AsyncSession, items: list[tuple[str, str]], *, exclude_variant: str | None = None) -> list[tuple[str, str]]:
    """items: (field path, gtin) -> those already used (in any GTIN-8/12/13/14 spelling) by another variant."""
    if not items:
        return []
    forms = {f: g for _, g in items for f in gtin_forms(g)}
    stmt = select(V.c.gtin).where(where_in(session, V.c.gtin, list(forms)))
    if exclude_variant:
        stmt = stmt.where(V.c.id != exclude_variant)
    used_by = {forms[g] for g in (await session.execute(stmt)).scalars()}
    return [(f, g) for f, g in items if g in used_by]


def _duplicates_in_request(items: list[tuple[str, str]], key=lambda v: v) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    dupes = []
    for field, value in items:
        k = key(value)
        if k in seen:
            dupes.append((field, value))
        else:
            seen[k] = field
    return dupes


def _gtin_key(g: str) -> str:
    return g.lstrip("0")


async def _check_unique(session: AsyncSession, skus: list[tuple[str, str]], gtins: list[tuple[str, str]],
                        *, exclude_variant: str | None = None) -> None:
    dup = _duplicates_in_request(skus, sku_key)
    if dup:
        raise conflict("duplicate_sku", "SKU", dup)
    dup = _duplicates_in_request(gtins, _gtin_key)
    if dup:
        raise conflict("duplicate_gtin", "GTIN", dup)
    used = await _sku_conflicts(session, skus, exclude_variant=exclude_variant)
    if used:
        raise conflict("duplicate_sku", "SKU", used)
    used = await _gtin_conflicts(session, gtins, exclude_variant=exclude_variant)
    if used:
        raise conflict("duplicate_gtin", "GTIN", used)


async def _resolve_components(session: AsyncSession, comps: list, field: str, own_sku: str) -> list[dict]:
    """Components -> rows for bundle_components (with the stored SKU spelling); 422 naming every bad one."""
    errors = []
    seen = set()
    own = sku_key(own_sku)
    for j, c in enumerate(comps):
        key = sku_key(c.sku)
        if key == own:
            errors.append({"field": f"{field}[{j}].sku", "message": "A bundle cannot contain itself."})
        elif key in seen:
            errors.append({"field": f"{field}[{j}].sku", "message": f"Component {c.sku!r} is listed twice."})
        seen.add(key)
    found = {}
    if seen:
        rows = await session.execute(select(V.c.id, V.c.sku, V.c.is_bundle).where(where_in(session, sku_lower(), sorted(seen))))
        found = {sku_key(r.sku): r for r in rows.all()}
    for j, c in enumerate(comps):
        if sku_key(c.sku) == own:
            continue
        r = found.get(sku_key(c.sku))
        if r is None:
            errors.append({"field": f"{field}[{j}].sku", "message": f"Unknown SKU {c.sku!r}."})
        elif r.is_bundle:
            errors.append({"field": f"{field}[{j}].sku", "message": f"{c.sku!r} is a bundle; bundles cannot contain bundles."})
    if errors:
        raise ApiError(422, "validation_error", errors[0]["message"], errors=errors)
    return [{"component_variant_id": found[sku_key(c.sku)].id, "component_sku": found[sku_key(c.sku)].sku,
             "quantity": c.quantity} for c in comps]


def _default_variant_title(v: VariantIn | dict, product_title: str) -> str:
    options = v.options if isinstance(v, VariantIn) else v.get("options") or {}
    title = v.title if isinstance(v, VariantIn) else v.get("title")
    if title:
        return title
    if options:
        return " / ".join(str(x) for x in options.values())[:500]
    return product_title


def _bundle_rules(ptype: str, variants: list[VariantIn], field_prefix: str = "variants") -> None:
    errors = []
    if ptype == "bundle":
        if len(variants) != 1:
            errors.append({"field": field_prefix, "message": "A bundle product has exactly one variant."})
        for i, v in enumerate(variants):
            if not v.components:
                errors.append({"field": f"{field_prefix}[{i}].components",
                               "message": "A bundle variant needs at least one component."})
            if not v.track_inventory:
                errors.append({"field": f"{field_prefix}[{i}].track_inventory",
                               "message": "A bundle's stock is derived from its components; it cannot be untracked."})
    else:
        for i, v in enumerate(variants):
            if v.components is not None:
                errors.append({"field": f"{field_prefix}[{i}].components",
                               "message": "Only bundle products have components (type: bundle)."})
    if errors:
        raise ApiError(422, "validation_error", errors[0]["message"], errors=errors)


async def _rediagnose(session: AsyncSession, fn) -> ApiError:
    """After an IntegrityError (its savepoint rolled back): find out which uniqueness rule lost the race."""
    try:
        await fn()
    except ApiError as exc:
        return exc
    return ApiError(409, "conflict", "The change conflicts with a concurrent change; retry.")


# --------------------------------------------------------------------------- create

async def create_product(session: AsyncSession, data: ProductCreate, *, _attempt: int = 0) -> dict:
    """Product + variants (+ bundle components, channels, event) in one transaction."""
    _bundle_rules(data.type, data.variants)
    skus = [(f"variants[{i}].sku", v.sku) for i, v in enumerate(data.variants)]
    gtins = [(f"variants[{i}].gtin", v.gtin) for i, v in enumerate(data.variants) if v.gtin]

    async def checks(handle: str | None):
        if handle is not None:
            taken = (await session.execute(select(P.c.id).where(P.c.handle == handle))).first()
            if taken:
                raise conflict("duplicate_handle", "Handle", [("handle", handle)])
        await _check_unique(session, skus, gtins)

    await _check_channels(session, data.channels)
    await checks(data.handle)
    comp_rows: list[dict] = []
    if data.type == "bundle":
        v0 = data.variants[0]
        comp_rows = await _resolve_components(session, v0.components, "variants[0].components", v0.sku)
    handle = data.handle or await _free_handle(session, slugify(data.title))

    now = clock.now()
    pid = new_id("prod")
    product = {
        "id": pid, "handle": handle, "type": data.type, "title": data.title, "description": data.description,
        "status": data.status, "category": data.category, "attributes": data.attributes,
        "tax_class": data.tax_class, "version": 1, "created_at": now, "updated_at": now,
    }
    variant_rows = []
    for i, v in enumerate(data.variants):
        variant_rows.append({
            "id": new_id("var"), "product_id": pid, "sku": v.sku, "gtin": v.gtin,
            "title": _default_variant_title(v, data.title), "options": v.options, "attributes": v.attributes,
            "weight_grams": v.weight_grams, "track_inventory": v.track_inventory,
            "is_bundle": data.type == "bundle", "position": i, "created_at": now, "updated_at": now,
        })
    for c in comp_rows:
        c["bundle_variant_id"] = variant_rows[0]["id"]

    comps_out = sorted(({"sku": c["component_sku"], "quantity": c["quantity"]} for c in comp_rows), key=lambda c: c["sku"])
    rendered = render_product(
        _Row(product), sorted(data.channels),
        [render_variant(_Row(v), comps_out if v["is_bundle"] else None) for v in variant_rows],
    )
    try:
        async with session.begin_nested():  # a lost race on a unique key rolls back to here
            await session.execute(insert(P).values(**product))
            await session.execute(insert(V), variant_rows)
            if data.channels:
                await session.execute(insert(PC), [{"product_id": pid, "channel_code": c} for c in data.channels])
            if comp_rows:
                await session.execute(insert(BC), comp_rows)
            await emit(session, "product.created", event_data(rendered))
    except IntegrityError:
        exc = await _rediagnose(session, lambda: checks(handle))
        if exc.code == "duplicate_handle" and data.handle is None and _attempt < 3:
            return await create_product(session, data, _attempt=_attempt + 1)  # the derived handle was raced
        raise exc from None
    return rendered


class _Row:
    """Attribute access to a dict (so render_* take dicts and result rows alike)."""

    __slots__ = ("_d",)

    def __init__(self, d: dict):
        self._d = d

    def __getattr__(self, name):
        try:
            return self._d[name]
        except KeyError:
            raise AttributeError(name) from None


# --------------------------------------------------------------------------- update

async def _bump(session: AsyncSession, pid: str, values: dict | None = None) -> None:
    await session.execute(
        update(P).where(P.c.id == pid).values(version=P.c.version + 1, updated_at=clock.now(), **(values or {}))
    )


async def _emit_updated(session: AsyncSession, pid: str) -> dict:
    rendered = await _render_one(session, pid)
    await emit(session, "product.updated", event_data(rendered))
    return rendered


async def update_product(session: AsyncSession, request: Request, ref: str, data: ProductUpdate) -> dict:
    p = await _product_row(session, ref, for_update=True)
    check_version(request, p.version, data.version)
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    nulls = [f for f in ("handle", "title", "status", "attributes", "tax_class", "channels")
             if f in changes and changes[f] is None]
    if nulls:
        raise ApiError(422, "validation_error", f"{nulls[0]} may not be null.",
                       errors=[{"field": f, "message": "May not be null."} for f in nulls])
    new_channels = changes.pop("channels", None)
    values = {k: v for k, v in changes.items() if getattr(p, k) != v}
    channels_changed = False
    if new_channels is not None:
        await _check_channels(session, new_channels)
        current = set((await session.execute(select(PC.c.channel_code).where(PC.c.product_id == p.id))).scalars())
        channels_changed = current != set(new_channels)

    async def handle_check():
        if "handle" in values:
            taken = (await session.execute(select(P.c.id).where(P.c.handle == values["handle"], P.c.id != p.id))).first()
            if taken:
                raise conflict("duplicate_handle", "Handle", [("handle", values["handle"])])

    await handle_check()
    if not values and not channels_changed:
        return await get_product(session, p.id)
    try:
        async with session.begin_nested():
            await _bump(session, p.id, values)
            if channels_changed:
                await session.execute(delete(PC).where(PC.c.product_id == p.id))
                if new_channels:
                    await session.execute(insert(PC), [{"product_id": p.id, "channel_code": c} for c in new_channels])
            rendered = await _emit_updated(session, p.id)
    except IntegrityError:
        raise await _rediagnose(session, handle_check) from None
    return rendered


async def _variant_row(session: AsyncSession, ref: str, *, for_update: bool = False):
    """Variant by id or sku, with its product's id, type and version (product row locked)."""
    if len(ref) > 200:
        raise ApiError(404, "not_found", "Variant was not found.")
    stmt = select(*VARIANT_COLS, P.c.type, P.c.version, P.c.title.label("product_title")).join(P, P.c.id == V.c.product_id)
    by_id = stmt.where(V.c.id == ref)
    by_sku = stmt.where(sku_lower() == sku_key(ref))
    if for_update:
        by_id, by_sku = by_id.with_for_update(), by_sku.with_for_update()
    row = None
    if ref.startswith("var_"):
        row = (await session.execute(by_id)).first()
    if row is None:
        row = (await session.execute(by_sku)).first()
    if row is None:
        raise ApiError(404, "not_found", f"Variant {ref!r} was not found.")
    return row


async def add_variant(session: AsyncSession, request: Request, ref: str, data: VariantCreate) -> dict:
    p = await _product_row(session, ref, for_update=True)
    check_version(request, p.version, data.version)
    if p.type == "bundle":
        raise ApiError(422, "validation_error", "A bundle product has exactly one variant.",
                       errors=[{"field": "sku", "message": "A bundle product has exactly one variant."}])
    if data.components is not None:
        raise ApiError(422, "validation_error", "Only bundle products have components.",
                       errors=[{"field": "components", "message": "Only bundle products have components (type: bundle)."}])
    skus = [("sku", data.sku)]
    gtins = [("gtin", data.gtin)] if data.gtin else []

    async def checks():
        await _check_unique(session, skus, gtins)

    await checks()
    position = (await session.execute(select(func.max(V.c.position)).where(V.c.product_id == p.id))).scalar()
    now = clock.now()
    vid = new_id("var")
    try:
        async with session.begin_nested():
            await session.execute(insert(V).values(
                id=vid, product_id=p.id, sku=data.sku, gtin=data.gtin, title=_default_variant_title(data, p.title),
                options=data.options, attributes=data.attributes, weight_grams=data.weight_grams,
                track_inventory=data.track_inventory, is_bundle=False, position=(position or 0) + 1,
                created_at=now, updated_at=now,
            ))
            await _bump(session, p.id)
            await _emit_updated(session, p.id)
    except IntegrityError:
        raise await _rediagnose(session, checks) from None
    return await find_variant(session, None, ref=vid)


async def update_variant(session: AsyncSession, request: Request, ref: str, data: VariantUpdate) -> dict:
    v = await _variant_row(session, ref, for_update=True)
    check_version(request, v.version, data.version)
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    nulls = [f for f in ("title", "options", "attributes", "track_inventory", "components")
             if f in changes and changes[f] is None]
    if nulls:
        raise ApiError(422, "validation_error", f"{nulls[0]} may not be null.",
                       errors=[{"field": f, "message": "May not be null."} for f in nulls])
    comps = changes.pop("components", None)
    if comps is not None and not v.is_bundle:
        raise ApiError(422, "validation_error", "Only bundle variants have components.",
                       errors=[{"field": "components", "message": "Only bundle products have components (type: bundle)."}])
    if v.is_bundle and changes.get("track_inventory") is False:
        raise ApiError(422, "validation_error", "A bundle's stock is derived from its components.",
                       errors=[{"field": "track_inventory", "message": "A bundle's stock is derived from its components; it cannot be untracked."}])
    values = {k: val for k, val in changes.items() if getattr(v, k) != val}

    async def checks():
        if values.get("gtin"):
            await _check_unique(session, [], [("gtin", values["gtin"])], exclude_variant=v.id)

    await checks()
    comps_changed = False
    comp_rows: list[dict] = []
    if comps is not None:
        comp_rows = await _resolve_components(session, data.components, "components", v.sku)
        current = {(r.component_sku, r.quantity) for r in (await session.execute(
            select(BC.c.component_sku, BC.c.quantity).where(BC.c.bundle_variant_id == v.id))).all()}
        comps_changed = current != {(c["component_sku"], c["quantity"]) for c in comp_rows}
    if not values and not comps_changed:
        return await find_variant(session, None, ref=v.id)
    now = clock.now()
    try:
        async with session.begin_nested():
            await session.execute(update(V).where(V.c.id == v.id).values(updated_at=now, **values))
            if comps_changed:
                await session.execute(delete(BC).where(BC.c.bundle_variant_id == v.id))
                await session.execute(insert(BC), [dict(c, bundle_variant_id=v.id) for c in comp_rows])
            await _bump(session, v.product_id)
            await _emit_updated(session, v.product_id)
    except IntegrityError:
        raise await _rediagnose(session, checks) from None
    return await find_variant(session, None, ref=v.id)


async def delete_variant(session: AsyncSession, request: Request, ref: str) -> None:
    v = await _variant_row(session, ref, for_update=True)
    check_version(request, v.version)
    bundles = list((await session.execute(
        select(V.c.sku).join(BC, BC.c.bundle_variant_id == V.c.id).where(BC.c.component_variant_id == v.id)
        .order_by(V.c.sku).limit(20)
    )).scalars())
    if bundles:
        raise ApiError(409, "variant_in_bundle",
                       f"Variant {v.sku!r} is a component of bundle(s) {', '.join(bundles)}; remove it from them first.",
                       errors=[{"field": "sku", "message": f"Used by bundle {b!r}.", "value": b} for b in bundles])
    others = (await session.execute(
        select(func.count()).select_from(V).where(V.c.product_id == v.product_id, V.c.id != v.id))).scalar()
    if not others:
        raise ApiError(409, "last_variant",
                       f"Variant {v.sku!r} is the only variant of its product; archive the product instead.",
                       errors=[{"field": "sku", "message": "The only variant of its product."}])
    try:
        async with session.begin_nested():
            await session.execute(delete(BC).where(BC.c.bundle_variant_id == v.id))
            await session.execute(delete(V).where(V.c.id == v.id))
            await _bump(session, v.product_id)
            await _emit_updated(session, v.product_id)
    except IntegrityError:
        raise ApiError(409, "variant_in_use", f"Variant {v.sku!r} is referenced by other records; it cannot be deleted.") from None
