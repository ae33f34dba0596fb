"""Fulfillment endpoints (API.md section 8): the work queue, the status changes, order cancel.

| endpoint                               | roles (admin always)   | scope (another location: 404) |
|----------------------------------------|------------------------|-------------------------------|
| GET  /v1/fulfillments, /{id}           | pos, dropshipper       | their location's              |
| POST /v1/fulfillments/{id}/ship        | pos, dropshipper       | their location's              |
| POST /v1/fulfillments/{id}/ready       | pos                    | its store's                   |
| POST /v1/fulfillments/{id}/collect     | pos                    | its store's                   |
| POST /v1/fulfillments/{id}/decline     | pos, dropshipper       | their location's              |
| POST /v1/fulfillments/{id}/cancel      | admin                  |                               |
| POST /v1/orders/{id}/cancel            | admin                  |                               |

Storefront and marketplace keys get 403 on all of them. Every POST takes If-Match (a stale
one: 412 version_conflict) and answers with an ETag.
"""
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import ADMIN, Principal, require
from app.core.concurrency import if_match_version
from app.core.db import get_session, request_db
from app.core.pagination import PageParams, page_params
from app.core.responses import json_response
from app.orders import bulk_transitions, fulfillments, work_queue
from app.orders.fulfillment_schemas import (
    CancelIn, CollectIn, DeclineIn, DeclineOut, ShipIn, WorkItemOut, WorkQueueOut,
)
from app.orders.schemas import OrderOut
from app.orders.states import FulfillmentMethod, FulfillmentStatus

router = APIRouter(tags=["fulfillments"])
Session = Annotated[AsyncSession, Depends(get_session)]

WORKERS = require("pos", "dropshipper")
STORE = require("pos")


def _answer(done: fulfillments.Target, who: Principal):
    """The changed fulfillment, rendered from what the change read and wrote (no read-back)."""
    return json_response(work_queue.render(done.row, done.lines, done.order, who), version=done.row.version)


@router.get("/v1/fulfillments", response_model=WorkQueueOut,
            summary="Work queue: fulfillments of a location (POS: its store; dropshipper: its location), oldest first")
async def list_fulfillments(
    session: Session,
    page: PageParams = Depends(page_params),
    location: Annotated[str | None, Query(max_length=100, description="Location code or id")] = None,
    status: Annotated[FulfillmentStatus | None, Query()] = None,
    method: Annotated[FulfillmentMethod | None, Query()] = None,
    order: Annotated[str | None, Query(max_length=100, description="Order id or number")] = None,
    who: Principal = Depends(WORKERS),
):
    return json_response(await work_queue.list_queue(session, who, page, location=location, status=status,
                                                     method=method, order=order))


@router.get("/v1/fulfillments/{fid}", response_model=WorkItemOut, summary="Get a fulfillment")
async def get_fulfillment(fid: str, session: Session, who: Principal = Depends(WORKERS)):
    item = await work_queue.get_one(session, fid, who)
    return json_response(item, version=item["version"])


@router.post("/v1/fulfillments/{fid}/ship", response_model=WorkItemOut,
             summary="Ship: open -> shipped with carrier and tracking number; the stock leaves on hand")
async def ship(fid: str, body: ShipIn, request: Request, session: Session, who: Principal = Depends(WORKERS)):
    done = await fulfillments.ship(session, fid, who, expected_version=if_match_version(request),
                                     carrier=body.carrier, tracking_number=body.tracking_number)
    return _answer(done, who)


@router.post("/v1/fulfillments/{fid}/ready", response_model=WorkItemOut,
             summary="Pickup ready: open -> ready, a pickup code issued (on a ready pickup: a new code)")
async def ready(fid: str, request: Request, session: Session, who: Principal = Depends(STORE)):
    done = await fulfillments.ready(session, fid, who, expected_version=if_match_version(request))
    return _answer(done, who)


@router.post("/v1/fulfillments/{fid}/collect", response_model=WorkItemOut,
             summary="Hand over: a ready pickup against its code, or a reservation paid at the till")
async def collect(fid: str, body: CollectIn, request: Request, session: Session, who: Principal = Depends(STORE)):
    try:
        done = await fulfillments.collect(session, fid, who, expected_version=if_match_version(request),
                                            pickup_code=body.pickup_code, payment_reference=body.payment_reference)
    except fulfillments.WrongPickupCode:
        request_db(request.scope).commit_on_error = True  # the wrong try stays counted
        raise
    return _answer(done, who)


@router.post("/v1/fulfillments/{fid}/decline", response_model=DeclineOut,
             summary="Decline: the location cannot serve it; its lines are re-sourced elsewhere at once")
async def decline(fid: str, body: DeclineIn, request: Request, session: Session, who: Principal = Depends(WORKERS)):
    lines = [(ln.sku, ln.quantity) for ln in body.lines] if body.lines else None
    out = await fulfillments.decline(session, fid, who, expected_version=if_match_version(request),
                                     reason=body.reason, lines=lines)
    item = work_queue.render(out.row, out.lines, out.order, who)
    item["resourced"] = await work_queue.new_ones(session, [r["id"] for r in out.resourced], who)
    item["kept"] = await work_queue.new_ones(session, [r["id"] for r in out.kept], who)
    item["unfulfillable"] = out.unfulfillable
    return json_response(item, version=out.row.version)


@router.post("/v1/fulfillments/{fid}/cancel", response_model=WorkItemOut,
             summary="Cancel a fulfillment that has not left: its stock is released")
async def cancel(fid: str, request: Request, session: Session, body: CancelIn | None = None,
                 who: Principal = Depends(ADMIN)):
    done = await fulfillments.cancel(session, fid, who, expected_version=if_match_version(request),
                                       reason=body.reason if body is not None else None)
    return _answer(done, who)


@router.post("/v1/orders/{ref}/cancel", response_model=OrderOut,
             summary="Cancel an order: every fulfillment not shipped or collected is cancelled, its stock released")
async def cancel_order(ref: str, request: Request, session: Session, body: CancelIn | None = None,
                       who: Principal = Depends(ADMIN)):
    order = await bulk_transitions.cancel_order(session, ref, who, expected_version=if_match_version(request),
                                            reason=body.reason if body is not None else None)
    return json_response(order, version=order["version"])
