from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.auth.principal import ADMIN, Principal, require
from app.catalog import importer, service
from app.catalog.codes import text_problem
from app.catalog.schemas import (
    CategoryList, ImportResult, ProductCreate, ProductList, ProductOut, ProductType, ProductUpdate, Status,
    VariantCreate, VariantDetailOut, VariantUpdate,
)
from app.core import cache
from app.core.db import get_session
from app.core.errors import ApiError
from app.core.pagination import PageParams, page_params
from app.core.responses import created, json_response

# Catalog answers depend only on the catalog tables and the caller's visibility: served from
# memory until a catalog write commits (app/core/cache.py).
cache.cache_responses("/v1/products", "catalog")
cache.cache_responses("/v1/variants", "catalog")
cache.cache_responses("/v1/categories", "catalog")

router = APIRouter(tags=["catalog"])
Session = Annotated[AsyncSession, Depends(get_session)]
READER = require("storefront", "pos", "marketplace")  # + admin; dropshippers have no catalog access


def _text(name: str, value: str | None) -> str | None:
    if value is not None:
        problem = text_problem(value)
        if problem:
            raise ApiError(422, "validation_error", f"{name}: {problem}", errors=[{"field": name, "message": problem}])
    return value


def _timestamp(name: str, value: str | None) -> datetime | None:
    """RFC 3339 (a date alone, or a time without offset, is taken as UTC)."""
    if value is None:
        return None
    raw = value.strip()
    day, sep, time = raw.partition("T")
    if sep:  # an unencoded '+' of the offset arrives as a space
        raw = day + "T" + time.replace(" ", "+")
    try:
        ts = datetime.fromisoformat(raw.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, "validation_error", f"{name} must be an RFC 3339 timestamp like 2026-01-31T12:00:00Z.",
                       errors=[{"field": name, "message": "Not an RFC 3339 timestamp."}]) from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


@router.post("/v1/products", status_code=201, response_model=ProductOut, summary="Create a product with its variants")
async def create_product(body: ProductCreate, session: Session, _: Principal = Depends(ADMIN)):
    product = await service.create_product(session, body)
    return created(product, version=product["version"])


@router.get("/v1/products", response_model=ProductList,
            summary="Search and filter products (channel keys see their channel's active products)")
async def list_products(
    session: Session,
    page: PageParams = Depends(page_params),
    q: Annotated[str | None, Query(max_length=200, description="Substring of title, SKU or GTIN (case-insensitive)")] = None,
    category: Annotated[str | None, Query(max_length=200, description="A category and everything below it")] = None,
    status: Annotated[Status | None, Query()] = None,
    channel: Annotated[str | None, Query(max_length=100, description="Visible in this channel (code)")] = None,
    type: Annotated[ProductType | None, Query()] = None,
    updated_since: Annotated[str | None, Query(max_length=40, description="RFC 3339; products changed at or after")] = None,
    who: Principal = Depends(READER),
):
    result = await service.list_products(
        session, who, page, q=_text("q", q) or None, category=_text("category", category) or None, status=status,
        channel=_text("channel", channel) or None, type=type, updated_since=_timestamp("updated_since", updated_since),
    )
    return json_response(result)


@router.get("/v1/products/{ref}", response_model=ProductOut, summary="Get a product by id or handle")
async def get_product(ref: str, session: Session, who: Principal = Depends(READER)):
    product = await service.get_product(session, ref, who)
    return json_response(product, version=product["version"])


@router.patch("/v1/products/{ref}", response_model=ProductOut, summary="Update a product (If-Match supported)")
async def update_product(ref: str, body: ProductUpdate, request: Request, session: Session, _: Principal = Depends(ADMIN)):
    product = await service.update_product(session, request, ref, body)
    return json_response(product, version=product["version"])


@router.post("/v1/products/{ref}/variants", status_code=201, response_model=VariantDetailOut,
             summary="Add a variant to a standard product (If-Match: the product's version)")
async def add_variant(ref: str, body: VariantCreate, request: Request, session: Session, _: Principal = Depends(ADMIN)):
    variant = await service.add_variant(session, request, ref, body)
    return created(variant, version=variant["version"])


@router.get("/v1/categories", response_model=CategoryList, summary="Categories in use, with product counts")
async def list_categories(session: Session, who: Principal = Depends(READER)):
    return json_response(await service.list_categories(session, who))


@router.get("/v1/variants", response_model=VariantDetailOut, summary="Barcode / SKU lookup: one variant (POS scan)",
            description="Give exactly one of `sku` and `gtin` (neither or both: 422 validation_error).")
async def lookup_variant(
    session: Session,
    sku: Annotated[str | None, Query(max_length=100, description="Exactly one of sku and gtin")] = None,
    gtin: Annotated[str | None, Query(pattern=r"^[0-9]{1,14}$",
                                      description="Exactly one of sku and gtin. GTIN-8/12/13/14; leading zeros may differ")] = None,
    who: Principal = Depends(READER),
):
    if (sku is None) == (gtin is None):
        raise ApiError(422, "validation_error", "Give exactly one of sku or gtin.",
                       errors=[{"field": "sku", "message": "Give exactly one of sku or gtin."}])
    variant = await service.find_variant(session, who, sku=_text("sku", sku), gtin=gtin)
    return json_response(variant, version=variant["version"])


@router.get("/v1/variants/{ref:path}", response_model=VariantDetailOut, summary="Get a variant by id or SKU")
async def get_variant(ref: str, session: Session, who: Principal = Depends(READER)):
    variant = await service.find_variant(session, who, ref=_text("ref", ref[:200]))
    return json_response(variant, version=variant["version"])


@router.patch("/v1/variants/{ref:path}", response_model=VariantDetailOut,
              summary="Update a variant (If-Match: the product's version; the sku is fixed)")
async def update_variant(ref: str, body: VariantUpdate, request: Request, session: Session, _: Principal = Depends(ADMIN)):
    variant = await service.update_variant(session, request, _text("ref", ref), body)
    return json_response(variant, version=variant["version"])


@router.delete("/v1/variants/{ref:path}", status_code=204, summary="Delete a variant (not one used by a bundle)")
async def delete_variant(ref: str, request: Request, session: Session, _: Principal = Depends(ADMIN)):
    await service.delete_variant(session, request, _text("ref", ref))
    return Response(status_code=204)


IMPORT_BODY = {
    "required": True,
    "content": {
        "application/x-ndjson": {"schema": {"type": "string"}, "example":
            '{"sku": "TS-BLK-M", "product_handle": "organic-tee", "product_title": "Organic Tee", '
            '"options": {"size": "M", "colour": "black"}, "gtin": "4006381333931", "status": "active", '
            '"channels": ["web-de"]}\n'},
        "text/csv": {"schema": {"type": "string"}, "example":
            "sku,product_handle,product_title,option.size,option.colour,gtin,status,channels\n"
            "TS-BLK-M,organic-tee,Organic Tee,M,black,4006381333931,active,web-de|pos-de\n"},
    },
}


@router.post("/v1/catalog/import", response_model=ImportResult, openapi_extra={"requestBody": IMPORT_BODY},
             summary="Bulk upsert variants by sku from NDJSON or CSV (per-row errors; idempotent)")
async def import_catalog(request: Request, session: Session, _: Principal = Depends(ADMIN)):
    kind = importer.content_kind(request.headers.get("content-type"))
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > importer.MAX_BYTES:
        raise ApiError(413, "payload_too_large", f"An import is at most {importer.MAX_BYTES // (1024 * 1024)} MB; split the file.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > importer.MAX_BYTES:
            raise ApiError(413, "payload_too_large", f"An import is at most {importer.MAX_BYTES // (1024 * 1024)} MB; split the file.")
        chunks.append(chunk)
    result = await importer.run_import(session, b"".join(chunks), kind)
    return json_response(result)
