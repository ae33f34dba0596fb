from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.auth.principal import ADMIN, Principal, require
from app.core.db import get_session
from app.core.transaction import read_only_post
from app.core.pagination import PageParams, page_params
from app.core.responses import created, json_response
from app.pricing import service
from app.pricing.schemas import (
    PriceIn, PriceListCreate, PriceListList, PriceListOut, PriceListUpdate, PriceListWritten, PriceRowList, PromotionCreate, PromotionOut, PromotionType, PromotionUpdate,
    QuoteOut, QuoteRequest, TaxRateCreate, TaxRateOut, TaxRateUpdate,
)

read_only_post("/v1/pricing/quote")  # prices, writes nothing

router = APIRouter(tags=["pricing"])
Session = Annotated[AsyncSession, Depends(get_session)]
QUOTER = require("storefront", "pos", "marketplace")
LIST_READER = require("storefront", "pos")  # + admin: a bound key reads its channel's lists, read-only


@router.post("/v1/price-lists", status_code=201, response_model=PriceListWritten,
             summary="Create a price list (warnings: where lists a channel names still rank ahead of it)")
async def create_price_list(body: PriceListCreate, session: Session, _: Principal = Depends(ADMIN)):
    pl = await service.create_price_list(session, body)
    return created(pl, version=pl["version"])


@router.get("/v1/price-lists", response_model=PriceListList,
            summary="List price lists; with channel: those taking part in it, in resolution order",
            description="Admin: every list, a page at a time; with `channel`, the lists that take part in that channel "
                        "(they name it, or it names them), all of them, in the order a quote tries them. Storefront and "
                        "POS keys: their channel's active lists in that order (another channel: 404).")
async def list_price_lists(session: Session, page: PageParams = Depends(page_params),
                           channel: Annotated[str | None, Query(max_length=100)] = None,
                           who: Principal = Depends(LIST_READER)):
    return json_response(await service.list_price_lists(session, who, page, channel))


@router.get("/v1/price-lists/{ref}", response_model=PriceListOut,
            summary="Get a price list by code or id (storefront and POS keys: their channel's lists)")
async def get_price_list(ref: str, session: Session, who: Principal = Depends(LIST_READER)):
    pl = service.render_price_list(await service.visible_price_list(session, who, ref))
    return json_response(pl, version=pl["version"])


@router.patch("/v1/price-lists/{ref}", response_model=PriceListWritten,
              summary="Update a price list (If-Match supported; warnings as on create)")
async def update_price_list(ref: str, body: PriceListUpdate, request: Request, session: Session,
                            _: Principal = Depends(ADMIN)):
    pl = await service.update_price_list(session, request, ref, body)
    return json_response(pl, version=pl["version"])


@router.post("/v1/price-lists/{ref}/end", response_model=PriceListOut,
             summary="End a price list now (valid_to = now; If-Match supported)",
             description="It stops pricing at once (quotes, carts, product pages) and stays for the record. One not "
                         "yet started gets the empty window now..now. An ended list answers unchanged.")
async def end_price_list(ref: str, request: Request, session: Session, _: Principal = Depends(ADMIN)):
    pl = await service.end_price_list(session, request, ref)
    return json_response(pl, version=pl["version"])


@router.delete("/v1/price-lists/{ref}", status_code=204,
               summary="Delete a price list and its prices (409 price_list_in_use while channels name it)",
               description="A list that channels name in their `price_lists` is `409 price_list_in_use`, naming them "
                           "(`channels`): PATCH those channels first, or end the list instead (POST …/end).")
async def delete_price_list(ref: str, request: Request, session: Session, _: Principal = Depends(ADMIN)):
    await service.delete_price_list(session, request, ref)
    return Response(status_code=204)


@router.put("/v1/price-lists/{ref}/prices",
            summary="Set prices [{sku, amount, min_quantity}] (upsert; amount null removes; ?replace=true replaces all)")
async def put_prices(ref: str, request: Request, session: Session,
                     body: Annotated[list[PriceIn], Body(max_length=service.MAX_PRICES_PER_PUT)],
                     replace: Annotated[bool, Query(description="Drop every price not in the body")] = False,
                     _: Principal = Depends(ADMIN)):
    result = await service.put_prices(session, request, ref, body, replace)
    return json_response(result, version=result["version"])


@router.get("/v1/price-lists/{ref}/prices", response_model=PriceRowList,
            summary="The prices of a list, by sku and min_quantity (storefront and POS keys: their channel's lists)")
async def list_prices(ref: str, session: Session, page: PageParams = Depends(page_params),
                      sku: Annotated[str | None, Query(max_length=100)] = None, who: Principal = Depends(LIST_READER)):
    return json_response(await service.list_prices(session, who, ref, page, sku))


@router.post("/v1/tax-rates", status_code=201, response_model=TaxRateOut,
             summary="Set the rate of a country and tax class (201 created, 200 when it existed: changed in place)")
async def create_tax_rate(body: TaxRateCreate, session: Session, _: Principal = Depends(ADMIN)):
    t, new = await service.put_tax_rate(session, body)
    return created(t, version=t["version"]) if new else json_response(t, version=t["version"])


@router.get("/v1/tax-rates", summary="List tax rates")
async def list_tax_rates(session: Session, page: PageParams = Depends(page_params),
                         country: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$")] = None,
                         _: Principal = Depends(ADMIN)):
    return json_response(await service.list_tax_rates(session, page, country))


@router.get("/v1/tax-rates/{ref}", response_model=TaxRateOut, summary="Get a tax rate by id")
async def get_tax_rate(ref: str, session: Session, _: Principal = Depends(ADMIN)):
    t = await service.get_tax_rate(session, ref)
    return json_response(t, version=t["version"])


@router.patch("/v1/tax-rates/{ref}", response_model=TaxRateOut, summary="Change a tax rate (If-Match supported)")
async def update_tax_rate(ref: str, body: TaxRateUpdate, request: Request, session: Session,
                          _: Principal = Depends(ADMIN)):
    t = await service.update_tax_rate(session, request, ref, body)
    return json_response(t, version=t["version"])


@router.post("/v1/promotions", status_code=201, response_model=PromotionOut, summary="Create a promotion")
async def create_promotion(body: PromotionCreate, session: Session, _: Principal = Depends(ADMIN)):
    p = await service.create_promotion(session, body)
    return created(p, version=p["version"])


@router.get("/v1/promotions", summary="List promotions")
async def list_promotions(session: Session, page: PageParams = Depends(page_params),
                          active: bool | None = None, type: PromotionType | None = None,
                          _: Principal = Depends(ADMIN)):
    return json_response(await service.list_promotions(session, page, active, type))


@router.get("/v1/promotions/{ref}", response_model=PromotionOut, summary="Get a promotion by code or id")
async def get_promotion(ref: str, session: Session, _: Principal = Depends(ADMIN)):
    p = service.render_promotion(await service.get_promotion(session, ref))
    return json_response(p, version=p["version"])


@router.patch("/v1/promotions/{ref}", response_model=PromotionOut, summary="Update a promotion (If-Match supported)")
async def update_promotion(ref: str, body: PromotionUpdate, request: Request, session: Session,
                           _: Principal = Depends(ADMIN)):
    p = await service.update_promotion(session, request, ref, body)
    return json_response(p, version=p["version"])


@router.post("/v1/promotions/{ref}/end", response_model=PromotionOut,
             summary="End a promotion now (valid_to = now; If-Match supported)",
             description="Quotes, carts and product pages stop applying it at once; its coupon answers `expired`; "
                         "orders that used it keep it. One not yet started gets the empty window now..now. An ended "
                         "promotion answers unchanged.")
async def end_promotion(ref: str, request: Request, session: Session, _: Principal = Depends(ADMIN)):
    p = await service.end_promotion(session, request, ref)
    return json_response(p, version=p["version"])


@router.delete("/v1/promotions/{ref}", status_code=204,
               summary="Delete a promotion no order used (409 promotion_in_use: end it instead)")
async def delete_promotion(ref: str, request: Request, session: Session, _: Principal = Depends(ADMIN)):
    await service.delete_promotion(session, request, ref)
    return Response(status_code=204)


@router.post("/v1/pricing/quote", response_model=QuoteOut, summary="Price a basket: unit prices, discounts per promotion, tax, totals")
async def quote(body: QuoteRequest, session: Session, who: Principal = Depends(QUOTER)):
    return json_response(await service.quote(session, who, body))
