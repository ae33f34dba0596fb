"""Catalog reads: products and variants as the API renders them, within what the key may see.

A constant number of statements whatever the page size: a page of products (with their
channel codes), then all their variants + bundle components in one query; the POS scan is
one indexed query. Statements are built once per shape (app/catalog/tables.py).
"""
from collections import defaultdict
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Integer, bindparam, exists, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.catalog.codes import gtin_forms, like_pattern, like_prefix
from app.catalog.lookups import sku_key, sku_lower
from app.catalog.tables import BC, P, PC, PRODUCT_COLS, V, VARIANT_COLS, cached
from app.core.db import is_postgres
from app.core.errors import ApiError
from app.core.pagination import PageParams, page_result
from app.core.responses import dumps
from app.core.sql import in_param


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
    stmt = cached(("variants", pg), lambda: _variants_stmt(pg))
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


async def product_row(session: AsyncSession, ref: str, who: Principal | None = None, *, for_update: bool = False):
    """By id or handle (with `channels_csv` unless for_update); 404 outside the key's visibility."""
    if len(ref) > 200:
        raise ApiError(404, "not_found", "Product was not found.")
    pg, by_id, kind = is_postgres(session), ref.startswith("prod_"), _vis_kind(who)
    stmt = cached(("product", pg, by_id, kind, for_update), lambda: _product_stmt(pg, by_id, kind, for_update))
    params = {"ref": ref}
    if kind == "channel":
        params["vis_channel"] = who.channel
    row = (await session.execute(stmt, params)).first()
    if row is None:
        raise ApiError(404, "not_found", f"Product {ref!r} was not found.")
    return row


async def get_product(session: AsyncSession, ref: str, who: Principal | None = None) -> dict:
    """By id or handle; outside the key's visibility -> 404. Two queries."""
    p = await product_row(session, ref, who)
    variants = await _children(session, [p.id])
    return render_product(p, visible_channels(who, _split_channels(p.channels_csv)), variants.get(p.id, []))


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
    stmt = cached(("list", pg, kind, shape), lambda: _list_stmt(pg, kind, shape))
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
        stmt = cached(("variant", pg, kind, by), lambda: _variant_detail_stmt(kind, by, pg))
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
