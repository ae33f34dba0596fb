"""/v1/reports/* and /v1/products/{ref}/recommendations: thin; the rules are in sales.py,
customers_report.py, inventory_report.py, recommendations.py (definitions in their docstrings).

| endpoint                                | roles (admin always)            | scope                                  |
|-----------------------------------------|---------------------------------|----------------------------------------|
| GET /v1/reports/sales                   | storefront, marketplace, pos    | their channel's orders; POS: its store's |
| GET /v1/reports/customers               | admin                           | every channel (counts only)            |
| GET /v1/reports/inventory               | pos                             | POS: its store only (another: 404)     |
| GET /v1/products/{ref}/recommendations  | storefront, marketplace, pos    | the key's channel (admin: `channel`)   |

Dropshipper keys get 403 everywhere here.
"""
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import ADMIN, Principal, require
from app.core.db import get_session, is_postgres
from app.core.responses import json_response
from app.reports import customers_report, inventory_report, recommendations, sales
from app.reports.attribution import DEFAULT_DAYS as ATTRIBUTION_DAYS
from app.reports.attribution import MAX_DAYS as MAX_ATTRIBUTION_DAYS
from app.reports.period import period
from app.reports.schemas import CustomersReport, GroupBy, InventoryReport, Recommendations, SalesReport
from app.reports.tuning import report_settings

router = APIRouter(tags=["reports"])
Session = Annotated[AsyncSession, Depends(get_session)]
SALES_READERS = require("storefront", "marketplace", "pos")
STOCK_READERS = require("pos")
RECOMMENDERS = require("storefront", "marketplace", "pos")

From = Annotated[str | None, Query(alias="from", max_length=40, description="Date (YYYY-MM-DD: that day's start in "
                                   "`tz`) or RFC 3339 timestamp; inclusive. Default: 30 days before `to`.")]
To = Annotated[str | None, Query(max_length=40, description="Date (the end of that day in `tz`) or RFC 3339 "
                                 "timestamp; exclusive. Default: now.")]
Tz = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_+\-/]+$",
                                 description="IANA time zone for dates and days (default UTC)")]
CODE = r"^[A-Za-z0-9][A-Za-z0-9._:\-/]*$"  # a channel or location code (or id)
Limit = Annotated[int, Query(ge=1, le=500, description="Groups / items per page (max 500)")]
Cursor = Annotated[str | None, Query(max_length=1000, pattern=r"^[A-Za-z0-9_-]+$",
                                     description="`next_cursor` of the previous page")]


@router.get("/v1/reports/sales", response_model=SalesReport, summary="Sales per channel, location, day, SKU or source",
            description="Per group (and currency): orders, units, revenue, discounts, returns (units, refunded), "
                        "return rate and coupon redemption rate, over the orders created in [from, to) that are "
                        "not cancelled or waiting for payment. Revenue is what was charged for the units not "
                        "cancelled (tax included as charged), before returns. `group_by=day` spans at most 366 "
                        "days, `location` 92, the others 731; groups are paged by key (`limit`, `cursor`). `source` credits an "
                        "in-store sale by a known customer to their latest online touch with a source within "
                        "`attribution_days`. Storefront and marketplace keys see their channel, POS keys their "
                        "store's orders. Unknown `group_by`, bad dates, an inverted or too long period: 422 "
                        "naming the field.")
async def sales_report(
    session: Session,
    from_: From = None,
    to: To = None,
    tz: Tz = None,
    group_by: Annotated[GroupBy, Query(description="channel | location | day | sku | source | campaign | "
                                                   "currency")] = GroupBy.channel,
    channel: Annotated[str | None, Query(max_length=100, pattern=CODE, description="Only this channel's orders")] = None,
    attribution_days: Annotated[int, Query(ge=0, le=MAX_ATTRIBUTION_DAYS, description="group_by=source|campaign: "
                                           "how far back an online touch credits an in-store sale (0: off)")
                                ] = ATTRIBUTION_DAYS,
    limit: Limit = 100,
    cursor: Cursor = None,
    who: Principal = Depends(SALES_READERS),
):
    p = period(from_, to, tz, max_days=sales.max_days(group_by.value),
               why=f" with group_by={group_by.value}" if group_by.value in sales.MAX_DAYS_BY else "")
    async with report_settings(session, is_postgres(session), parallel=group_by.value not in sales.ALONE):
        answer = await sales.report(session, who, group_by=group_by.value, period=p, channel=channel,
                                    attribution_days=attribution_days, limit=limit, cursor=cursor)
    return json_response(answer)


@router.get("/v1/reports/customers", response_model=CustomersReport, summary="Repeat buyers and cross-channel buyers",
            description="Over the sales of [from, to) (at most 731 days): buyers, repeat buyers (2+ orders), "
                        "returning buyers (bought before too), cross-channel buyers (2+ channels), online-and-store "
                        "buyers, their rates (basis points), orders without a customer, and per channel its buyers "
                        "and repeat buyers. Counts only. Admin keys.")
async def customers_report_(session: Session, from_: From = None, to: To = None, tz: Tz = None,
                            _: Principal = Depends(ADMIN)):
    p = period(from_, to, tz, max_days=customers_report.MAX_DAYS)
    async with report_settings(session, is_postgres(session)):
        answer = await customers_report.report(session, p)
    return json_response(answer)


@router.get("/v1/reports/inventory", response_model=InventoryReport, summary="Stock value and low stock",
            description="Stock value at list price (no cost price is kept): on_hand × the one-unit price of the "
                        "channel's price lists for everyone, in the quote engine's order (`channel=`, else a POS "
                        "key's, else the location's own channel, POS first); SKUs without a price are counted "
                        "in `unpriced`. Items at or below safety stock (free stock ≤ safety_stock), paged by "
                        "location and SKU. One location or all (admin); a POS key sees its store only.")
async def inventory_report_(
    session: Session,
    location: Annotated[str | None, Query(max_length=100, pattern=CODE, description="Location code or id (default: "
                                                                                   "all; a POS key: its store)")] = None,
    channel: Annotated[str | None, Query(max_length=100, pattern=CODE, description="Whose prices value the stock")
                       ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    who: Principal = Depends(STOCK_READERS),
):
    async with report_settings(session, is_postgres(session)):
        answer = await inventory_report.report(session, who, location=location, channel=channel, limit=limit,
                                               cursor=cursor)
    return json_response(answer)


@router.get("/v1/products/{ref}/recommendations", response_model=Recommendations,
            summary="Bought together: complementary products, available where the shopper is",
            description="Products bought together with this one in the latest 1,000 orders that contain it, across "
                        "every channel, that are active in the channel and available in its locations (or at "
                        "`location`). With `customer=`, personalised (their purchases left out, their categories "
                        "ranked up) only while that customer consents to `personalization`, read at this request; "
                        "otherwise exactly the anonymous answer. Bound keys: their channel (another: 404); admin: "
                        "`channel` is required. Marketplace keys may not name a customer (403).")
async def product_recommendations(
    ref: Annotated[str, Path(max_length=200, description="Product id (`prod_…`) or handle")],
    session: Session,
    channel: Annotated[str | None, Query(max_length=100, pattern=CODE, description="The shopper's channel (admin: "
                                                                                  "required)")] = None,
    location: Annotated[str | None, Query(max_length=100, pattern=CODE, description="Only what this store has")] = None,
    customer: Annotated[str | None, Query(max_length=320, description="Customer id, email or loyalty card")] = None,
    limit: Annotated[int, Query(ge=1, le=recommendations.MAX_LIMIT)] = 10,
    who: Principal = Depends(RECOMMENDERS),
):
    return json_response(await recommendations.recommend(session, who, ref, channel=channel, location=location,
                                                         customer=customer, limit=limit))
