"""/v1/customers: thin, the rules are in service.py.

Who may do what: admin everything; POS keys register customers, look them up (by email or
loyalty card at the till) and read any customer (a store serves every customer); storefront
keys register customers and read the ones registered in their own channel (any other: 404);
marketplace and dropshipper keys never see customer data (403). Only admin keys change a
customer (PATCH) for now. Non-admin keys look customers up, they do not browse: a list needs
`email=` or `loyalty_card=`.
"""
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import ADMIN, Principal, require
from app.channels.service import channel_row
from app.core.concurrency import if_match_version
from app.core.db import get_session
from app.core.errors import ApiError
from app.core.pagination import PageParams, page_params
from app.core.responses import created, json_response
from app.customers import service
from app.customers.schemas import CustomerCreate, CustomerList, CustomerOut, CustomerUpdate

router = APIRouter(prefix="/v1/customers", tags=["customers"])
Session = Annotated[AsyncSession, Depends(get_session)]
CUSTOMER_READERS = require("storefront", "pos")
Ref = Annotated[str, Path(description="Customer id (`cus_…`), email (any case) or loyalty card number")]


def visible_channel(who: Principal) -> str | None:
    """The channel a key's customer reads are limited to: a storefront key's own; None for the
    rest (admin and POS keys see every customer)."""
    if who.role == "storefront":
        return who.channel or ""  # a storefront key without a channel sees nobody
    return None


async def _registration_channel(session: AsyncSession, who: Principal, named: str | None) -> str | None:
    if who.is_admin:
        if named is None:
            return None
        row = await channel_row(session, named)
        if row is None:
            raise ApiError(422, "validation_error", f"Unknown channel {named!r}.",
                           errors=[{"field": "channel", "message": f"Unknown channel {named!r}."}])
        return row.code
    if named is not None:
        who.channel_or_404(named)
    return who.channel


@router.post("", status_code=201, response_model=CustomerOut, summary="Register a customer",
             description="Email unique whatever its case (`409 duplicate_email`), loyalty card unique "
                         "(`409 duplicate_loyalty_card`). The customer belongs to the channel it registers in.")
async def create_customer(body: CustomerCreate, session: Session, who: Principal = Depends(CUSTOMER_READERS)):
    channel = await _registration_channel(session, who, body.channel)
    customer = await service.create(session, body, channel=channel, api_key_id=who.key_id)
    return created(service.render(customer), version=customer.version)


@router.get("", response_model=CustomerList, summary="List or look up customers",
            description="Admin keys list and search; POS and storefront keys look up by `email` or `loyalty_card` "
                        "(a storefront key finds only customers of its channel).")
async def list_customers(
    session: Session,
    page: PageParams = Depends(page_params),
    email: Annotated[str | None, Query(min_length=1, max_length=320, description="Exact email, any case")] = None,
    loyalty_card: Annotated[str | None, Query(min_length=1, max_length=64, description="Loyalty card number (POS)")] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200, description="Part of name, email or phone")] = None,
    group: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    who: Principal = Depends(CUSTOMER_READERS),
):
    if not who.is_admin and email is None and loyalty_card is None:
        raise ApiError(403, "forbidden", f"The {who.role} role looks customers up by email= or loyalty_card=; "
                                         "only admin keys browse the customer list.")
    for name, value in (("email", email), ("loyalty_card", loyalty_card), ("q", q), ("group", group)):
        if value is not None and "\x00" in value:
            raise ApiError(422, "validation_error", f"{name}: NUL characters are not allowed.",
                           errors=[{"field": name, "message": "NUL characters are not allowed."}])
    result = await service.list_customers(session, page, email=email, loyalty_card=loyalty_card, q=q, group=group,
                                          channel=visible_channel(who))
    return json_response(result)


@router.get("/{ref}", response_model=CustomerOut, summary="Get a customer by id, email or loyalty card")
async def get_customer(ref: Ref, session: Session, who: Principal = Depends(CUSTOMER_READERS)):
    customer = await service.get_or_404(session, ref, channel=visible_channel(who))
    return json_response(service.render(customer), version=customer.version)


@router.patch("/{ref}", response_model=CustomerOut, summary="Update a customer (If-Match supported)")
async def update_customer(ref: Ref, body: CustomerUpdate, request: Request, session: Session,
                          _: Principal = Depends(ADMIN)):
    customer = await service.update(session, ref, body, expected_version=if_match_version(request))
    return json_response(service.render(customer), version=customer.version)
