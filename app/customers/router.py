"""/v1/customers: thin; the rules are in service.py, consents.py, merge.py, privacy.py, audit.py.

Who may do what (a customer "visible" to a storefront key: registered in its channel, or with
an order there; any other answers 404):

| endpoint                         | admin | storefront              | pos                     | marketplace, dropshipper |
|----------------------------------|-------|-------------------------|-------------------------|--------------------------|
| POST /v1/customers               | yes   | in its channel          | in its channel          | 403                      |
| GET  /v1/customers               | list  | lookup by email or card | lookup by email or card | 403                      |
| GET  /v1/customers/{ref}         | yes   | visible                 | any (a store serves all)| 403                      |
| PATCH /v1/customers/{ref}        | yes   | visible, not `group`    | any, not `group`        | 403                      |
| GET  …/{ref}/consents            | yes   | visible                 | any                     | 403                      |
| GET  …/{ref}/export              | yes   | visible (self-service)  | 403                     | 403                      |
| POST …/{ref}/merge, DELETE …/{ref}, GET …/{ref}/audit | yes | 403        | 403                     | 403                      |

`group` prices the customer (price lists, promotions, invoice for B2B): only admin keys set it.
Every read and change of a customer's data by a key is written to its audit trail (audit.py).
"""
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import ADMIN, Principal, require
from app.channels.service import channel_row
from app.core.concurrency import if_match_version
from app.core.db import get_session
from app.core.errors import ApiError
from app.core.pagination import PageParams, page_params
from app.core.responses import created, json_response
from app.customers import audit, consents, merge, privacy, service
from app.customers.audit import AuditAction
from app.customers.schemas import (AuditList, ConsentList, CustomerCreate, CustomerExport, CustomerList, CustomerOut,
                                   CustomerUpdate, MergeIn)

router = APIRouter(prefix="/v1/customers", tags=["customers"])
Session = Annotated[AsyncSession, Depends(get_session)]
CUSTOMER_READERS = require("storefront", "pos")
EXPORTERS = require("storefront")
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
                         "(`409 duplicate_loyalty_card`). The customer belongs to the channel it registers in; "
                         "the consents given are the first entries of its consent history.")
async def create_customer(body: CustomerCreate, request: Request, session: Session,
                          who: Principal = Depends(CUSTOMER_READERS)):
    channel = await _registration_channel(session, who, body.channel)
    customer = await service.create(session, body, channel=channel, api_key_id=who.key_id)
    await audit.record(session, audit.actor(who, request), AuditAction.create, [customer.id])
    return created(service.render(customer), version=customer.version)


@router.get("", response_model=CustomerList, summary="List or look up customers",
            description="Admin keys list and search (active customers); POS and storefront keys look up by `email` "
                        "or `loyalty_card` (a storefront key finds only the customers it may see). A merged record's "
                        "email or card finds the customer it was merged into.")
async def list_customers(
    request: Request,
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
    result, ids = await service.list_customers(session, page, email=email, loyalty_card=loyalty_card, q=q,
                                               group=group, channel=visible_channel(who))
    lookup = email is not None or loyalty_card is not None
    await audit.record(session, audit.actor(who, request), AuditAction.lookup if lookup else AuditAction.list, ids,
                       {"by": "email" if email is not None else "loyalty_card"} if lookup else None)
    return json_response(result)


@router.get("/{ref}", response_model=CustomerOut, summary="Get a customer by id, email or loyalty card",
            description="A merged record's id, email or card answers the customer it was merged into (see its `id`); "
                        "an erased customer answers `410 customer_erased`.")
async def get_customer(ref: Ref, request: Request, session: Session, who: Principal = Depends(CUSTOMER_READERS)):
    customer = await service.get_or_404(session, ref, channel=visible_channel(who))
    await audit.record(session, audit.actor(who, request), AuditAction.read, [customer.id])
    return json_response(service.render(customer), version=customer.version)


@router.patch("/{ref}", response_model=CustomerOut, summary="Update a customer (If-Match supported)",
              description="A change of `consents` is recorded in the consent history with the key's channel. "
                          "Only admin keys change `group` (`403` naming it).")
async def update_customer(ref: Ref, body: CustomerUpdate, request: Request, session: Session,
                          who: Principal = Depends(CUSTOMER_READERS)):
    if not who.is_admin and "group" in body.model_fields_set:
        raise ApiError(403, "forbidden", "Only admin keys change a customer's group (it decides prices and invoice "
                                         "payment).", errors=[{"field": "group", "message": "Admin only."}])
    customer, fields = await service.update(session, ref, body, expected_version=if_match_version(request),
                                            channel=visible_channel(who), consent_channel=who.channel,
                                            api_key_id=who.key_id)
    await audit.record(session, audit.actor(who, request), AuditAction.update, [customer.id], {"fields": fields})
    return json_response(service.render(customer), version=customer.version)


@router.delete("/{ref}", status_code=204, summary="Erase a customer's personal data (GDPR)",
               description="Blanks the customer's personal data everywhere it is stored: the customer (kept as an "
                           "anonymous record so orders keep their customer and totals), the email and shipping "
                           "address of its orders (the country stays), its carts' addresses, event payloads and "
                           "stored idempotent answers mentioning it. `409 customer_has_open_orders` while an order "
                           "still has to be paid or delivered; `410 customer_erased` when already erased.")
async def erase_customer(ref: Ref, request: Request, session: Session, who: Principal = Depends(ADMIN)):
    await privacy.erase(session, ref, actor=audit.actor(who, request), expected_version=if_match_version(request))
    return Response(status_code=204)


@router.get("/{ref}/consents", response_model=ConsentList, summary="A customer's consent history",
            description="Every grant and withdrawal per purpose (`marketing`, `personalization`), oldest first: when, "
                        "through which channel and with which API key. The current state is the customer's `consents`.")
async def consent_history(ref: Ref, request: Request, session: Session, page: PageParams = Depends(page_params),
                          who: Principal = Depends(CUSTOMER_READERS)):
    customer = await service.get_or_404(session, ref, channel=visible_channel(who))
    await audit.record(session, audit.actor(who, request), AuditAction.consents_read, [customer.id])
    return json_response(await consents.page(session, customer.id, page))


@router.post("/{ref}/merge", response_model=CustomerOut, summary="Merge another customer record into this one",
             description="The other record's orders, carts, consents (history kept; per purpose the latest decision "
                         "wins), addresses (deduplicated) and store credit move here; empty name, phone, group or "
                         "loyalty card are filled from it. The other record stays as a tombstone whose id, email and "
                         "card keep finding this customer. `422` naming `other` when it is unknown, erased or this "
                         "customer itself.")
async def merge_customers(ref: Ref, body: MergeIn, request: Request, session: Session, who: Principal = Depends(ADMIN)):
    customer = await merge.merge(session, ref, body.other, actor=audit.actor(who, request),
                                 expected_version=if_match_version(request))
    return json_response(service.render(customer), version=customer.version)


@router.get("/{ref}/export", response_model=CustomerExport, summary="Everything held on a customer (GDPR access)",
            description="Profile, merged records, consents with their history, addresses, orders (lines, "
                        "fulfillments, returns), returns, carts, store credit and the audit trail, as one JSON "
                        "document. Admin, and a storefront key for a customer it may see (self-service).")
async def export_customer(ref: Ref, request: Request, session: Session, who: Principal = Depends(EXPORTERS)):
    customer = await service.get_or_404(session, ref, channel=visible_channel(who))
    await audit.record(session, audit.actor(who, request), AuditAction.export, [customer.id])
    return json_response(await privacy.export(session, customer))


@router.get("/{ref}/audit", response_model=AuditList, summary="Who read or changed a customer's data",
            description="One entry per read or change by an API key (action, key, role, binding, request id), oldest "
                        "first; the records merged into this customer included. Admin only.")
async def customer_audit(ref: Ref, request: Request, session: Session, page: PageParams = Depends(page_params),
                         who: Principal = Depends(ADMIN)):
    customer = await service.find(session, ref)
    if customer is None:
        raise ApiError(404, "not_found", f"Customer {ref!r} was not found.")
    ids = [customer.id, *await service.merged_ids(session, customer.id)]
    await audit.record(session, audit.actor(who, request), AuditAction.audit_read, [customer.id])
    return json_response(await audit.page(session, ids, page))
