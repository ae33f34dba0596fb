from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.auth.principal import ADMIN, Principal, require
from app.catalog import service
from app.catalog.checks import check_gtins
from app.catalog.codes import checked_text
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
    return checked_text("channel", channel) or None


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
    channel = checked_text("channel", channel) or None
    result = await service.list_products(
        session, who, page, q=checked_text("q", q) or None, category=checked_text("category", category) or None, status=status,
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
    archived = await service.delete_product(session, request, checked_text("ref", ref))
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
    variant = await service.find_variant(session, who, sku=checked_text("sku", sku), gtin=gtin)
    await _priced(request, session, who, channel, customer_group, variant=variant)
    return json_response(variant, version=variant["version"])


@router.get("/v1/variants/{ref:path}", response_model=VariantDetailOut, summary="Get a variant by id or SKU")
async def get_variant(
    ref: str, request: Request, session: Session, channel: Annotated[str | None, PRICE_CHANNEL] = None,
    customer_group: Annotated[str | None, CUSTOMER_GROUP] = None, who: Principal = Depends(READER),
):
    channel = _own_channel(who, channel)
    variant = await service.find_variant(session, who, ref=checked_text("ref", ref[:200]))
    await _priced(request, session, who, channel, customer_group, variant=variant)
    return json_response(variant, version=variant["version"])


@router.patch("/v1/variants/{ref:path}", response_model=VariantDetailOut,
              summary="Update a variant (If-Match: the product's version; the sku is fixed)")
async def update_variant(ref: str, body: VariantUpdate, request: Request, session: Session, _: Principal = Depends(ADMIN)):
    variant = await service.update_variant(session, request, checked_text("ref", ref), body)
    return json_response(variant, version=variant["version"])


@router.delete("/v1/variants/{ref:path}", status_code=204,
               summary="Delete a variant (not one a bundle contains or other records refer to; not a product's last)")
async def delete_variant(ref: str, request: Request, session: Session, _: Principal = Depends(ADMIN)):
    await service.delete_variant(session, request, checked_text("ref", ref))
    return Response(status_code=204)
