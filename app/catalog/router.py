from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.auth.principal import ADMIN, Principal, require
from app.catalog import import_jobs, importer, service
from app.catalog.import_formats import content_kind
from app.catalog.import_rows import ImportOptions
from app.catalog.checks import check_gtins
from app.catalog.codes import text_problem
from app.catalog.schemas import (
    CategoryList, ProductArchivedOut, ProductCreate, ProductList, ProductOut, ProductType, ProductUpdate, Status,
    VariantCreate, VariantDetailOut, VariantUpdate,
)
from app.core import cache
from app.core.db import get_session
from app.core.errors import ApiError
from app.core.pagination import PageParams, page_params
from app.core.responses import created, json_response
from app.core.schemas import parse_timestamp
from app.pricing import shelf

# Catalog answers depend only on the catalog tables, the caller's visibility and (priced
# pages) the channel, price lists, promotions and prices: served from memory until one of them
# changes (app/core/cache.py), a priced page only until a list or promotion starts or ends.
cache.cache_responses("/v1/products", "catalog", "channels", "pricing", "prices")
cache.cache_responses("/v1/variants", "catalog", "channels", "pricing", "prices")
cache.cache_responses("/v1/categories", "catalog")

router = APIRouter(tags=["catalog"])
Session = Annotated[AsyncSession, Depends(get_session)]
READER = require("storefront", "pos", "marketplace")  # + admin; dropshippers have no catalog access

# Product and variant reads are where catalog and pricing meet: the catalog renders what the key
# may see, pricing adds each variant's price in the key's channel (app/pricing/shelf.py).
PRICE_CHANNEL = Query(max_length=100, description=(
    "Admin: price the variants in this channel (`price`, `compare_at_price`). Channel-bound keys are "
    "always priced in their own channel; another channel is not found."))
LIST_CHANNEL = Query(max_length=100, description=(
    "Only products visible in this channel (code). Admin: also prices the variants in it (`price`, "
    "`compare_at_price`); channel-bound keys are always priced in their own channel."))
CUSTOMER_GROUP = Query(max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-/]*$", description=(
    "Show this customer group's prices (admin with `channel`, POS and storefront keys; marketplace keys: 403)."))


async def _priced(request: Request, session: AsyncSession, who: Principal, channel: str | None,
                  customer_group: str | None, products: list[dict] | None = None, variant: dict | None = None) -> None:
    """Adds the prices of `who`'s channel (or an admin's `channel`) to rendered products or a
    variant, and tells the response cache until when the answer holds."""
    priced = await shelf.shelf_for(session, who, channel, customer_group)
    if priced is None:
        return
    if products is not None:
        until = await shelf.price_products(session, priced, products)
    else:
        until = await shelf.price_variant(session, priced, who, variant)
    if until is not None:
        request.state.cache_until = until


def _own_channel(who: Principal, channel: str | None) -> str | None:
    """A bound key naming a channel for a single read: its own or not found."""
    if channel is not None and not who.is_admin:
        who.channel_or_404(channel, "Channel")
    return _text("channel", channel) or None


def _text(name: str, value: str | None) -> str | None:
    if value is not None:
        problem = text_problem(value)
        if problem:
            raise ApiError(422, "validation_error", f"{name}: {problem}", errors=[{"field": name, "message": problem}])
    return value


@router.post("/v1/products", status_code=201, response_model=ProductOut, summary="Create a product with its variants")
async def create_product(body: ProductCreate, session: Session, _: Principal = Depends(ADMIN)):
    product = await service.create_product(session, body)
    return created(product, version=product["version"])


@router.get("/v1/products", response_model=ProductList,
            summary="Search and filter products (channel keys see their channel's active products, priced)")
async def list_products(
    request: Request,
    session: Session,
    page: PageParams = Depends(page_params),
    q: Annotated[str | None, Query(max_length=200, description="Substring of title, SKU or GTIN (case-insensitive)")] = None,
    category: Annotated[str | None, Query(max_length=200, description="A category and everything below it")] = None,
    status: Annotated[Status | None, Query()] = None,
    channel: Annotated[str | None, LIST_CHANNEL] = None,
    type: Annotated[ProductType | None, Query()] = None,
    updated_since: Annotated[str | None, Query(max_length=40, description="RFC 3339; products changed at or after")] = None,
    customer_group: Annotated[str | None, CUSTOMER_GROUP] = None,
    who: Principal = Depends(READER),
):
    channel = _text("channel", channel) or None
    result = await service.list_products(
        session, who, page, q=_text("q", q) or None, category=_text("category", category) or None, status=status,
        channel=channel, type=type, updated_since=parse_timestamp("updated_since", updated_since),
    )
    await _priced(request, session, who, channel, customer_group, products=result["data"])
    return json_response(result)


@router.get("/v1/products/{ref}", response_model=ProductOut, summary="Get a product by id or handle")
async def get_product(
    ref: str, request: Request, session: Session, channel: Annotated[str | None, PRICE_CHANNEL] = None,
    customer_group: Annotated[str | None, CUSTOMER_GROUP] = None, who: Principal = Depends(READER),
):
    channel = _own_channel(who, channel)
    product = await service.get_product(session, ref, who)
    await _priced(request, session, who, channel, customer_group, products=[product])
    return json_response(product, version=product["version"])


@router.patch("/v1/products/{ref}", response_model=ProductOut, summary="Update a product (If-Match supported)")
async def update_product(ref: str, body: ProductUpdate, request: Request, session: Session, _: Principal = Depends(ADMIN)):
    product = await service.update_product(session, request, ref, body)
    return json_response(product, version=product["version"])


@router.delete("/v1/products/{ref}", status_code=204, response_model=None,
               responses={200: {"model": ProductArchivedOut, "description": (
                   "Other records refer to the product (orders, carts, stock, prices, promotions, bundles): it was "
                   "archived instead of deleted (`deleted: false`, `referenced_by`).")}},
               summary="Delete a product, or archive it when other records refer to it (If-Match supported)",
               description="204: nothing referred to its SKUs, it is gone (product, variants, channel visibility). "
                           "200: it is referenced, so it was archived (`status: archived`, no longer sold or shown to "
                           "channel keys; history keeps it): the answer is the product with `deleted: false` and "
                           "`referenced_by` ({what: [sku…]}). Deleting an archived, referenced product again changes "
                           "nothing.")
async def delete_product(ref: str, request: Request, session: Session, _: Principal = Depends(ADMIN)):
    archived = await service.delete_product(session, request, _text("ref", ref))
    if archived is None:
        return Response(status_code=204)
    return json_response(archived, version=archived["version"])


@router.post("/v1/products/{ref}/variants", status_code=201, response_model=VariantDetailOut,
             summary="Add a variant to a standard product (If-Match: the product's version)")
async def add_variant(ref: str, body: VariantCreate, request: Request, session: Session, _: Principal = Depends(ADMIN)):
    variant = await service.add_variant(session, request, ref, body)
    return created(variant, version=variant["version"])


@router.get("/v1/categories", response_model=CategoryList, summary="Categories in use, with product counts")
async def list_categories(session: Session, who: Principal = Depends(READER)):
    return json_response(await service.list_categories(session, who))


@router.get("/v1/variants", response_model=VariantDetailOut, summary="Barcode / SKU lookup: one variant (POS scan)",
            description="Give exactly one of `sku` and `gtin` (neither or both: 422 validation_error). A `gtin` that is "
                        "not a GTIN-8/12/13/14 (digits, length, check digit) is `422 invalid_gtin`; a valid one, or a "
                        "SKU, that no visible variant has is `404 not_found`.")
async def lookup_variant(
    request: Request,
    session: Session,
    sku: Annotated[str | None, Query(max_length=100, description="Exactly one of sku and gtin")] = None,
    gtin: Annotated[str | None, Query(max_length=100, description=(
        "Exactly one of sku and gtin. GTIN-8/12/13/14 with its check digit; leading zeros may differ"))] = None,
    channel: Annotated[str | None, PRICE_CHANNEL] = None,
    customer_group: Annotated[str | None, CUSTOMER_GROUP] = None,
    who: Principal = Depends(READER),
):
    if (sku is None) == (gtin is None):
        raise ApiError(422, "validation_error", "Give exactly one of sku or gtin.",
                       errors=[{"field": "sku", "message": "Give exactly one of sku or gtin."}])
    if gtin is not None:
        check_gtins([("gtin", gtin)])
    channel = _own_channel(who, channel)
    variant = await service.find_variant(session, who, sku=_text("sku", sku), gtin=gtin)
    await _priced(request, session, who, channel, customer_group, variant=variant)
    return json_response(variant, version=variant["version"])


@router.get("/v1/variants/{ref:path}", response_model=VariantDetailOut, summary="Get a variant by id or SKU")
async def get_variant(
    ref: str, request: Request, session: Session, channel: Annotated[str | None, PRICE_CHANNEL] = None,
    customer_group: Annotated[str | None, CUSTOMER_GROUP] = None, who: Principal = Depends(READER),
):
    channel = _own_channel(who, channel)
    variant = await service.find_variant(session, who, ref=_text("ref", ref[:200]))
    await _priced(request, session, who, channel, customer_group, variant=variant)
    return json_response(variant, version=variant["version"])


@router.patch("/v1/variants/{ref:path}", response_model=VariantDetailOut,
              summary="Update a variant (If-Match: the product's version; the sku is fixed)")
async def update_variant(ref: str, body: VariantUpdate, request: Request, session: Session, _: Principal = Depends(ADMIN)):
    variant = await service.update_variant(session, request, _text("ref", ref), body)
    return json_response(variant, version=variant["version"])


@router.delete("/v1/variants/{ref:path}", status_code=204,
               summary="Delete a variant (not one a bundle contains or other records refer to; not a product's last)")
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


IMPORT_DESCRIPTION = """
One variant a row, upserted by `sku`; idempotent; per-row errors without rejecting the good rows.

* **Formats**: NDJSON, our CSV (`option.<name>`, `attr.<name>`, `product_attr.<name>` columns;
  pipe-separated `channels` and `components`), and Shopify's product CSV export as it is
  (detected by its header: Handle, Title, Option1 Name/Value, Variant SKU, Variant Barcode,
  Variant Price, Variant Grams, Variant Inventory Qty, Status …; the rows of one Handle are one
  product). The answer's `format` says which was read.
* **Price and stock**: `price` (a decimal in the list's currency, "19.99") goes into the price
  list of the row's `price_list` or `?price_list=`; `stock` sets the on-hand count at the row's
  `location` or `?location=` (a `count` movement in the stock ledger). Shopify's Variant Price
  and Variant Inventory Qty are read when the query names the list and location.
* **Unknown columns** are not imported and are listed once in `unknown_columns`.
* **Size**: a file of at most IMPORT_INLINE_MAX_ROWS rows (default 5,000) is answered `200` with
  the counts. A larger one, or any with `Prefer: respond-async`, is answered `202 Accepted` with
  `Location: /v1/catalog/imports/{id}`: it runs in the background, chunk by chunk, each chunk
  committed on its own (poll for status, progress and errors). At most 50 MB and 200,000 rows.
"""


@router.post("/v1/catalog/import", response_model=import_jobs.ImportResult, openapi_extra={"requestBody": IMPORT_BODY},
             responses={202: {"model": import_jobs.ImportJobOut,
                              "description": "A large file, queued as a job: poll `Location` (GET /v1/catalog/imports/{id})."}},
             summary="Bulk upsert variants by sku from NDJSON, CSV or a Shopify export (per-row errors; idempotent)",
             description=IMPORT_DESCRIPTION)
async def import_catalog(
    request: Request, session: Session,
    price_list: Annotated[str | None, Query(max_length=100, description="Price list (code) of the `price` column")] = None,
    location: Annotated[str | None, Query(max_length=100, description="Location (code) of the `stock` column")] = None,
    who: Principal = Depends(ADMIN),
):
    kind = content_kind(request.headers.get("content-type"))
    too_large = ApiError(413, "payload_too_large", f"An import is at most {importer.MAX_BYTES // (1024 * 1024)} MB; split the file.")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > importer.MAX_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > importer.MAX_BYTES:
            raise too_large
        chunks.append(chunk)
    options = ImportOptions(price_list=_text("price_list", price_list) or None, location=_text("location", location) or None)
    force_job = "respond-async" in request.headers.get("prefer", "").lower()
    status, answer = await import_jobs.submit(session, b"".join(chunks), kind, options, api_key_id=who.key_id,
                                              force_job=force_job)
    if status == 202:
        return json_response(answer, 202, headers={"Location": f"/v1/catalog/imports/{answer['id']}", "Retry-After": "1"})
    return json_response(answer)


@router.get("/v1/catalog/imports/{import_id}", response_model=import_jobs.ImportJobOut,
            summary="A background catalog import: status, progress, per-row errors")
async def get_import(import_id: str, session: Session, _: Principal = Depends(ADMIN)):
    return json_response(await import_jobs.get(session, _text("import_id", import_id[:100])))
