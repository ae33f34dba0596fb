"""/v1/payments/stripe/webhook, /v1/orders/{id}/payment-session, /v1/orders/{id}/payments and
/v1/customers/{id}/store-credit: thin; the rules are in service.py, webhook.py, store_credit.py."""
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import ADMIN, Principal, require
from app.core.db import get_session
from app.core.errors import ApiError
from app.core.idempotency import mark_secret
from app.core.responses import created, json_response
from app.core.schemas import Currency, Input, Int
from app.customers import audit, service as customers
from app.orders import views
from app.orders.dependencies import ORDER_READERS
from app.payments import service, store_credit, webhook

router = APIRouter(tags=["payments"])
Session = Annotated[AsyncSession, Depends(get_session)]
OrderRef = Annotated[str, Path(max_length=64, description="Order id (`ord_…`) or number")]
CREDIT_READERS = require("pos")


@router.post("/v1/payments/stripe/webhook", summary="Stripe webhook (signed by Stripe)",
             description="Public (no API key): verified by `Stripe-Signature`. Each event id is handled once; the "
                         "PaymentIntent is re-read from Stripe. `400 invalid_signature`, `503` while Stripe cannot be "
                         "reached (Stripe retries).")
async def stripe_webhook(request: Request, session: Session):
    result = await webhook.receive(session, await request.body(), request.headers.get("stripe-signature"))
    return json_response(result)


@router.post("/v1/orders/{ref}/payment-session", summary="The PaymentIntent's client_secret again",
             description="For an order waiting for its Stripe payment (`pending_payment`): the `client_secret` to "
                         "confirm it with Stripe.js, e.g. after a checkout answer was lost (a replayed checkout "
                         "never shows the secret). `409` when the order does not wait for a Stripe payment.")
async def payment_session(ref: OrderRef, request: Request, session: Session, who: Principal = Depends(ORDER_READERS)):
    order = await views.order_row(session, ref, who)
    secret = await service.client_secret(order)
    mark_secret(request, "client_secret")
    return json_response({"order": order.id, "payment_reference": order.payment_reference, "client_secret": secret})


@router.get("/v1/orders/{ref}/payments", summary="An order's payment operations",
            description="Captures, voids and refunds with their provider, amount, status and reference.")
async def order_payments(ref: OrderRef, session: Session, who: Principal = Depends(ORDER_READERS)):
    order = await views.order_row(session, ref, who)
    return json_response({"data": await service.operations(session, order.id), "next_cursor": None})


class StoreCreditIn(Input):
    amount: Annotated[Int, Field(ge=-10**9, le=10**9)]  # a goodwill credit or a correction
    currency: Currency
    note: Annotated[str, Field(min_length=1, max_length=200)]


async def _customer(session: AsyncSession, ref: str) -> str:
    row = await customers.resolve_customer(session, ref)
    if row is None:
        raise ApiError(404, "not_found", f"Customer {ref!r} was not found.")
    return row.id


def _render_balance(customer_id: str, balances: dict[str, int], entries) -> dict:
    return {"customer": customer_id,
            "balances": [{"amount": v, "currency": k} for k, v in sorted(balances.items())],
            "entries": [store_credit.render_entry(e) for e in entries]}


@router.get("/v1/customers/{ref}/store-credit", summary="A customer's store credit",
            description="Balance per currency and the latest entries (refunds credited, checkouts spent). POS and admin.")
async def get_store_credit(ref: Annotated[str, Path(max_length=320)], request: Request, session: Session,
                           who: Principal = Depends(CREDIT_READERS)):
    customer_id = await _customer(session, ref)
    await audit.record(session, audit.actor(who, request), audit.AuditAction.store_credit_read, [customer_id])
    return json_response(_render_balance(customer_id, await store_credit.balances(session, customer_id),
                                         await store_credit.entries(session, customer_id)))


@router.post("/v1/customers/{ref}/store-credit", status_code=201, summary="Credit (or debit) store credit",
             description="Admin: a goodwill credit or a correction; never below zero (`409 insufficient_store_credit`).")
async def add_store_credit(ref: Annotated[str, Path(max_length=320)], body: StoreCreditIn, request: Request,
                           session: Session, who: Principal = Depends(ADMIN)):
    customer_id = await _customer(session, ref)
    if body.amount == 0:
        raise ApiError(422, "validation_error", "An entry moves money: amount may not be 0.",
                       errors=[{"field": "amount", "message": "Not 0."}])
    entry = await store_credit.add(session, customer_id, body.currency, body.amount, note=body.note,
                                   api_key_id=who.key_id)
    await audit.record(session, audit.actor(who, request), audit.AuditAction.store_credit_change, [customer_id],
                       {"currency": body.currency})
    return created({"id": entry["id"], "customer": customer_id, "amount": {"amount": body.amount, "currency": body.currency},
                    "balance": {"amount": entry["balance"], "currency": body.currency}})
