"""GET /v1/events and /v1/webhook-endpoints (thin: the rules live in feed.py, endpoints.py,
deliveries.py; sending is the worker's, delivery.py)."""
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.auth.principal import ANY_ROLE, Principal, require
from app.core.db import get_session
from app.core.idempotency import mark_secret
from app.core.pagination import MAX_LIMIT, PageParams, encode_cursor, page_params
from app.core.responses import created, json_response
from app.events import deliveries, endpoints, feed
from app.events.schemas import DeliveryOut, EndpointCreate, EndpointOut, EndpointUpdate, EventPage, RotateIn
from app.events.scope import scope_for
from app.events.types import ENDPOINT_ROLES

router = APIRouter(tags=["events"])
Session = Annotated[AsyncSession, Depends(get_session)]
OWNERS = require(*ENDPOINT_ROLES)
EndpointId = Annotated[str, Path(max_length=40)]


@router.get("/v1/events", response_model=EventPage, summary="Poll the event stream (oldest first)",
            description="Every event the key may read, in commit-safe order: admin all; storefront and marketplace "
                        "keys their channel's (and stock at its locations); POS keys their channel's and their "
                        "store's; dropshipper keys the fulfillment events of their location, without customer "
                        "data. `type` takes one or more types, comma-separated (unknown ones: 422). "
                        "`next_cursor` is always given: poll again with it (`has_more` says whether to go on "
                        "at once). Events of transactions still running are held back until they end, so a "
                        "cursor never passes an event that commits later. Events are kept EVENTS_RETENTION_DAYS "
                        "(default 30): a cursor from before an event since deleted answers `410 cursor_expired` "
                        "with `cursor`, where to go on from after resynchronising.")
async def list_events(session: Session, who: Principal = Depends(ANY_ROLE),
                      type: Annotated[str | None, Query(max_length=2000, description="e.g. order.created,order.cancelled")] = None,
                      cursor: Annotated[str | None, Query(max_length=200, pattern=r"^[A-Za-z0-9_-]+$")] = None,
                      limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50):
    types = feed.parse_types(type)
    page = await feed.list_events(session, await scope_for(session, who), types=types, cursor=cursor, limit=limit)
    return json_response(page)


# --------------------------------------------------------------------------- endpoints

@router.post("/v1/webhook-endpoints", status_code=201, response_model=EndpointOut,
             summary="Subscribe a URL to events (the secret is shown once)",
             description="Admin, marketplace and dropshipper keys. `events`: types, or `[\"*\"]` for all the key "
                         "may read (unknown types 422; types outside the key's rights 403). The URL must be http(s) "
                         "and not this API itself, nor resolve to a link-local (cloud metadata) address, nor, unless "
                         "WEBHOOK_ALLOW_PRIVATE_URLS, to a loopback or private one (422 `url_not_allowed`; checked "
                         "again at every delivery). The answer carries `secret` (`whsec_…`) this once; a "
                         "replay of the request by its Idempotency-Key shows `secret: null`.")
async def create_endpoint(body: EndpointCreate, request: Request, session: Session, who: Principal = Depends(OWNERS)):
    row, secret = await endpoints.create(session, request, who, body)
    mark_secret(request, "secret")
    return created(endpoints.render(row, secret=secret), version=row.version)


@router.get("/v1/webhook-endpoints", response_model=dict, summary="List webhook endpoints (a key's own; admin all)")
async def list_endpoints(session: Session, page: PageParams = Depends(page_params), who: Principal = Depends(OWNERS)):
    rows = await endpoints.list_rows(session, who, page.after, page.limit)
    more = len(rows) > page.limit
    rows = rows[:page.limit]
    return json_response({"data": [endpoints.render(r) for r in rows],
                          "next_cursor": encode_cursor(rows[-1].id) if more and rows else None})


@router.get("/v1/webhook-endpoints/{endpoint_id}", response_model=EndpointOut, summary="Get a webhook endpoint")
async def get_endpoint(endpoint_id: EndpointId, session: Session, who: Principal = Depends(OWNERS)):
    row = await endpoints.get_row(session, who, endpoint_id)
    return json_response(endpoints.render(row), version=row.version)


@router.patch("/v1/webhook-endpoints/{endpoint_id}", response_model=EndpointOut,
              summary="Change url, events or active (If-Match supported)")
async def update_endpoint(endpoint_id: EndpointId, body: EndpointUpdate, request: Request, session: Session,
                          who: Principal = Depends(OWNERS)):
    row = await endpoints.update_endpoint(session, request, who, endpoint_id, body)
    return json_response(endpoints.render(row), version=row.version)


@router.delete("/v1/webhook-endpoints/{endpoint_id}", status_code=204,
               summary="Delete a webhook endpoint (its pending deliveries are dropped)")
async def delete_endpoint(endpoint_id: EndpointId, session: Session, who: Principal = Depends(OWNERS)):
    await endpoints.delete_endpoint(session, who, endpoint_id)
    return Response(status_code=204)


@router.post("/v1/webhook-endpoints/{endpoint_id}/rotate-secret", response_model=EndpointOut,
             summary="Rotate the signing secret (the new one is shown once)",
             description="During `overlap_seconds` (default 86400, 0 to 604800) deliveries carry two signatures, "
                         "`t=…,v1=<new>,v1=<old>`; after it only the new one.")
async def rotate_secret(endpoint_id: EndpointId, request: Request, session: Session, body: RotateIn | None = None,
                        who: Principal = Depends(OWNERS)):
    row, secret = await endpoints.rotate_secret(session, request, who, endpoint_id,
                                                (body or RotateIn()).overlap_seconds)
    mark_secret(request, "secret")
    return json_response(endpoints.render(row, secret=secret), version=row.version)


@router.get("/v1/webhook-endpoints/{endpoint_id}/deliveries", response_model=dict,
            summary="The endpoint's delivery log (newest first)")
async def list_deliveries(endpoint_id: EndpointId, session: Session, page: PageParams = Depends(page_params),
                          status: Annotated[str | None, Query(max_length=20)] = None,
                          event: Annotated[str | None, Query(max_length=40)] = None,
                          who: Principal = Depends(OWNERS)):
    row = await endpoints.get_row(session, who, endpoint_id)
    return json_response(await deliveries.list_deliveries(session, row.id, before=page.after, limit=page.limit,
                                                          status=status, event=event))


@router.post("/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver", status_code=202,
             response_model=DeliveryOut, summary="Send a delivery again (the worker sends it)")
async def redeliver(endpoint_id: EndpointId, delivery_id: Annotated[str, Path(max_length=40)], session: Session,
                    who: Principal = Depends(OWNERS)):
    row = await endpoints.get_row(session, who, endpoint_id)
    return json_response(await deliveries.redeliver(session, row.id, delivery_id), status=202)
