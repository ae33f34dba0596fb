"""Catalog writes: products, variants, bundle components and channel visibility.

Writes validate first (app/catalog/checks.py), then insert/update in the caller's transaction
together with the `product.created` / `product.updated` outbox event; a unique violation raced
in by a concurrent writer is diagnosed again and answered with a 409. Nothing here commits.
"""
from fastapi import Request
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.checks import (
    bundle_rules, check_channels, check_gtins, check_unique, conflict, default_variant_title, free_handle, rediagnose,
    resolve_components,
)
from app.catalog.codes import slugify
from app.catalog.lookups import sku_key, sku_lower
from app.catalog.reads import product_row, event_data, find_variant, get_product, render_product, render_variant
from app.catalog.schemas import ProductCreate, ProductUpdate, VariantCreate, VariantUpdate
from app.catalog.tables import BC, P, PC, V, VARIANT_COLS
from app.core import clock
from app.core.concurrency import check_version
from app.core.errors import ApiError
from app.core.ids import new_id
from app.events.service import emit


# --------------------------------------------------------------------------- create

async def create_product(session: AsyncSession, data: ProductCreate, *, _attempt: int = 0) -> dict:
    """Product + variants (+ bundle components, channels, event) in one transaction."""
    skus = [(f"variants[{i}].sku", v.sku) for i, v in enumerate(data.variants)]
    gtins = [(f"variants[{i}].gtin", v.gtin) for i, v in enumerate(data.variants) if v.gtin]
    check_gtins(gtins)
    bundle_rules(data.type, data.variants)

    async def checks(handle: str | None):
        if handle is not None:
            taken = (await session.execute(select(P.c.id).where(P.c.handle == handle))).first()
            if taken:
                raise conflict("duplicate_handle", "Handle", [("handle", handle)])
        await check_unique(session, skus, gtins)

    await check_channels(session, data.channels)
    await checks(data.handle)
    comp_rows: list[dict] = []
    if data.type == "bundle":
        v0 = data.variants[0]
        comp_rows = await resolve_components(session, v0.components, "variants[0].components", v0.sku)
    handle = data.handle or await free_handle(session, slugify(data.title))

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
            "title": default_variant_title(v, data.title), "options": v.options, "attributes": v.attributes,
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
        exc = await rediagnose(session, lambda: checks(handle))
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

async def bump(session: AsyncSession, pid: str, values: dict | None = None) -> None:
    await session.execute(
        update(P).where(P.c.id == pid).values(version=P.c.version + 1, updated_at=clock.now(), **(values or {}))
    )


async def _render_one(session: AsyncSession, pid: str) -> dict:
    """The full product (admin view) for events and write responses."""
    return await get_product(session, pid)


async def emit_updated(session: AsyncSession, pid: str) -> dict:
    rendered = await _render_one(session, pid)
    await emit(session, "product.updated", event_data(rendered))
    return rendered


async def update_product(session: AsyncSession, request: Request, ref: str, data: ProductUpdate) -> dict:
    p = await product_row(session, ref, for_update=True)
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
        await check_channels(session, new_channels)
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
            await bump(session, p.id, values)
            if channels_changed:
                await session.execute(delete(PC).where(PC.c.product_id == p.id))
                if new_channels:
                    await session.execute(insert(PC), [{"product_id": p.id, "channel_code": c} for c in new_channels])
            rendered = await emit_updated(session, p.id)
    except IntegrityError:
        raise await rediagnose(session, handle_check) from None
    return rendered


async def variant_row(session: AsyncSession, ref: str, *, for_update: bool = False):
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
    if data.gtin:
        check_gtins([("gtin", data.gtin)])
    p = await product_row(session, ref, for_update=True)
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
        await check_unique(session, skus, gtins)

    await checks()
    position = (await session.execute(select(func.max(V.c.position)).where(V.c.product_id == p.id))).scalar()
    now = clock.now()
    vid = new_id("var")
    try:
        async with session.begin_nested():
            await session.execute(insert(V).values(
                id=vid, product_id=p.id, sku=data.sku, gtin=data.gtin, title=default_variant_title(data, p.title),
                options=data.options, attributes=data.attributes, weight_grams=data.weight_grams,
                track_inventory=data.track_inventory, is_bundle=False, position=(position or 0) + 1,
                created_at=now, updated_at=now,
            ))
            await bump(session, p.id)
            await emit_updated(session, p.id)
    except IntegrityError:
        raise await rediagnose(session, checks) from None
    return await find_variant(session, None, ref=vid)


async def update_variant(session: AsyncSession, request: Request, ref: str, data: VariantUpdate) -> dict:
    if data.gtin:
        check_gtins([("gtin", data.gtin)])
    v = await variant_row(session, ref, for_update=True)
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
            await check_unique(session, [], [("gtin", values["gtin"])], exclude_variant=v.id)

    await checks()
    comps_changed = False
    comp_rows: list[dict] = []
    if comps is not None:
        comp_rows = await resolve_components(session, data.components, "components", v.sku)
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
            await bump(session, v.product_id)
            await emit_updated(session, v.product_id)
    except IntegrityError:
        raise await rediagnose(session, checks) from None
    return await find_variant(session, None, ref=v.id)

