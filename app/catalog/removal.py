"""Deleting products and variants, and archiving a product that other records still refer to.

`DELETE /v1/products/{ref}`:
* nothing refers to any of its SKUs: the product, its variants, its own bundle components and
  its channel visibility are deleted for good (204), with a `product.updated` event carrying the
  last state and `"deleted": true`;
* some record does (an order line or an open cart, a stock level or ledger movement, a price in
  any list, a promotion naming it, a bundle containing it, see app/core/references.py): the
  product is archived instead (`status: archived`, a version and a `product.updated` event like
  any change) and the answer is `200` with the archived product, `"deleted": false` and
  `referenced_by` ({what: [sku…]}). History stays readable, nothing is sold any more: storefront,
  marketplace and POS keys no longer see it, quotes answer `unknown_sku`. Deleting it again
  while referenced changes nothing.

`DELETE /v1/variants/{ref}` deletes one variant; one that a bundle contains is `409
variant_in_bundle`, one that other records refer to `409 variant_in_use` (with `referenced_by`:
archive its product, or leave it), the only variant of its product `409 last_variant`.

Both lock the product row first (If-Match: its version). A write of another domain that names
the SKU at the same moment on PostgreSQL (a price, a stock count) can still land after the check;
on SQLite writes are serialized. Nothing here commits.
"""
from fastapi import Request
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.reads import event_data, get_product, product_row
from app.catalog.tables import BC, P, PC, V
from app.catalog.writes import bump, emit_updated, variant_row
from app.core import references
from app.core.concurrency import check_version
from app.core.errors import ApiError
from app.core.sql import where_in
from app.events.service import emit


def _what(refs: dict[str, list[str]]) -> str:
    return ", ".join(refs)


async def delete_product(session: AsyncSession, request: Request, ref: str) -> dict | None:
    """None when deleted; the archived product (with `deleted: false`, `referenced_by`) when
    other records refer to it."""
    p = await product_row(session, ref, for_update=True)
    check_version(request, p.version)
    variants = (await session.execute(select(V.c.id, V.c.sku).where(V.c.product_id == p.id))).all()
    refs = await references.held(session, "sku", [v.sku for v in variants])
    if refs:
        if p.status != "archived":
            await bump(session, p.id, {"status": "archived"})
            product = await emit_updated(session, p.id)
        else:
            product = await get_product(session, p.id)
        return {**product, "deleted": False, "referenced_by": refs}
    last = await get_product(session, p.id)
    ids = [v.id for v in variants]
    try:
        async with session.begin_nested():  # a bundle made meanwhile with one of its variants: 409
            if ids:
                await session.execute(delete(BC).where(where_in(session, BC.c.bundle_variant_id, ids)))
                await session.execute(delete(V).where(V.c.product_id == p.id))
            await session.execute(delete(PC).where(PC.c.product_id == p.id))
            await session.execute(delete(P).where(P.c.id == p.id))
            await emit(session, "product.updated", {**event_data(last), "deleted": True})
    except IntegrityError:
        raise _in_use(f"Product {p.handle!r}") from None
    return None


def _in_use(what: str) -> ApiError:
    return ApiError(409, "conflict", f"{what} became referenced while it was being deleted; retry (a referenced "
                                     "product is archived instead).")


async def delete_variant(session: AsyncSession, request: Request, ref: str) -> None:
    v = await variant_row(session, ref, for_update=True)
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
                       f"Variant {v.sku!r} is the only variant of its product; delete or archive the product instead.",
                       errors=[{"field": "sku", "message": "The only variant of its product."}])
    refs = await references.held(session, "sku", [v.sku])
    if refs:
        raise ApiError(409, "variant_in_use",
                       f"Variant {v.sku!r} is referenced by {_what(refs)}; it cannot be deleted. Archive its product "
                       f"(DELETE /v1/products/{v.product_id} archives one that is referenced) or keep the variant.",
                       errors=[{"field": "sku", "message": f"Referenced by {what}."} for what in refs],
                       referenced_by=refs)
    try:
        async with session.begin_nested():  # (a bundle's only variant never gets here: last_variant)
            await session.execute(delete(V).where(V.c.id == v.id))
            await bump(session, v.product_id)
            await emit_updated(session, v.product_id)
    except IntegrityError:
        raise _in_use(f"Variant {v.sku!r}") from None
