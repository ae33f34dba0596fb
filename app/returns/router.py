"""/v1/returns (API.md section 10): thin; the rules are in service.py and rules.py, the reads in views.py.

| endpoint                               | roles (admin always)          | scope                                   |
|----------------------------------------|-------------------------------|-----------------------------------------|
| POST /v1/returns                       | pos, storefront               | POS: any order, received at its store;  |
|                                        |                               | storefront: authorizations, its channel |
| GET  /v1/returns, /v1/returns/{ref}    | pos, storefront, marketplace  | views.scope                             |
| POST /v1/returns/{ref}/complete        | pos                           | any authorization, at its store         |
| POST /v1/returns/{ref}/cancel          | pos, storefront               | open authorizations (storefront: its    |
|                                        |                               | channel's)                              |
| GET  /v1/orders/{ref}/returnable       | pos, storefront, marketplace  | POS: any order; others: their channel's |

`{ref}` is a return id (`ret_…`) or an authorization code. Dropshipper keys get 403.
"""
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal, require
from app.core.concurrency import if_match_version
from app.core.db import get_session
from app.core.pagination import PageParams, page_params
from app.core.responses import created, json_response
from app.returns import service, views
from app.returns.schemas import ReturnableOut, ReturnCancel, ReturnComplete, ReturnCreate, ReturnList, ReturnOut
from app.returns.states import ReturnStatus

router = APIRouter(tags=["returns"])
Session = Annotated[AsyncSession, Depends(get_session)]
ReturnRef = Annotated[str, Path(max_length=64, description="Return id (`ret_…`) or authorization code")]
OrderRef = Annotated[str, Path(max_length=64, description="Order id (`ord_…`) or number (`WEB-000123`)")]

READERS = require("storefront", "pos", "marketplace")
CREATORS = require("storefront", "pos")
RECEIVERS = require("pos")
CANCELLERS = require("storefront", "pos")


@router.post("/v1/returns", status_code=201, response_model=ReturnOut, summary="Receive a return, or authorize one",
             description="POS keys receive goods at their store (`location` defaults to it) for an order of **any** "
                         "channel (id or number); admin at any active location with the returns capability. The "
                         "refund is what the customer paid for exactly those units (discounts allocated, tax as "
                         "charged); resellable units go back on hand (movement `return`), damaged ones are recorded. "
                         "Storefront keys (and admin with `status: authorized`) open an authorization for an order "
                         "of their channel: no refund, no stock, a `code` any store completes. Errors: 404 order, "
                         "422 an unknown line or location (naming the field), 409 `return_quantity_exceeded` "
                         "(with the returnable figures), 409 `order_not_fulfilled`, 422 `return_window_expired`, "
                         "422 `refund_method_not_allowed`, 409 `refund_exceeds_payment`, 502/503 from the payment "
                         "provider (nothing is written).")
async def create_return(body: ReturnCreate, session: Session, who: Principal = Depends(CREATORS)):
    answer = await service.create(session, who, body)
    return created(answer, version=answer["version"])


@router.get("/v1/returns", response_model=ReturnList, summary="List returns",
            description="Admin: every return. POS keys: those received at their store, of orders they see, and every "
                        "authorization (any store completes one: look it up with `code`). Storefront and marketplace "
                        "keys: their channel's.")
async def list_returns(
    session: Session,
    page: PageParams = Depends(page_params),
    order: Annotated[str | None, Query(max_length=64, description="Order id or number")] = None,
    location: Annotated[str | None, Query(max_length=100, description="Location code or id")] = None,
    status: Annotated[ReturnStatus | None, Query()] = None,
    code: Annotated[str | None, Query(max_length=40, description="Authorization code (case, spaces and dashes "
                                                                 "do not matter)")] = None,
    who: Principal = Depends(READERS),
):
    return json_response(await views.list_returns(session, who, page, order=order, location=location,
                                                  status=status.value if status else None, code=code))


@router.get("/v1/returns/{ref}", response_model=ReturnOut, summary="Get a return by id or authorization code")
async def get_return(ref: ReturnRef, session: Session, who: Principal = Depends(READERS)):
    answer = await views.get(session, ref, who)
    return json_response(answer, version=answer["version"])


@router.post("/v1/returns/{ref}/complete", response_model=ReturnOut,
             summary="Complete an authorization: the goods are received (refund and stock)",
             description="Any store's POS key (at its own store) or admin (at the location named here or in the "
                         "authorization). `lines` sets the condition the store found per line (default: as "
                         "authorized, else resellable). 409 `invalid_transition` when it is no longer open, 422 "
                         "`return_window_expired` when it ran out. If-Match supported.")
async def complete_return(ref: ReturnRef, request: Request, session: Session, body: ReturnComplete | None = None,
                          who: Principal = Depends(RECEIVERS)):
    answer = await service.complete(session, who, ref, body or ReturnComplete(), if_match_version(request))
    return json_response(answer, version=answer["version"])


@router.post("/v1/returns/{ref}/cancel", response_model=ReturnOut, summary="Cancel an open authorization",
             description="Its units may be returned or authorized again. 409 `invalid_transition` when it is "
                         "completed, cancelled or expired. If-Match supported.")
async def cancel_return(ref: ReturnRef, request: Request, session: Session, body: ReturnCancel | None = None,
                        who: Principal = Depends(CANCELLERS)):
    answer = await service.cancel(session, who, ref, body or ReturnCancel(), if_match_version(request))
    return json_response(answer, version=answer["version"])


@router.get("/v1/orders/{ref}/returnable", response_model=ReturnableOut,
            summary="What of an order may be returned now, and for how much",
            description="Per line: fulfilled, returned, held by open authorizations, returnable inside the return "
                        "window, past it, and the refund for every returnable unit. POS keys may ask about any "
                        "order (return in any store), storefront and marketplace keys about their channel's.")
async def returnable(ref: OrderRef, session: Session, who: Principal = Depends(READERS)):
    return json_response(await views.returnable(session, ref, who))
