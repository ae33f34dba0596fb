"""/v1/carts, /v1/orders and /v1/customers/{id}/orders: thin; the rules are in carts.py,
checkout.py and views.py, who may do what in dependencies.py."""
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal, require
from app.core.concurrency import if_match_version
from app.core.db import get_session
from app.core.errors import ApiError
from app.core.idempotency import mark_secret
from app.core.pagination import PageParams, page_params
from app.core.responses import created, json_response
from app.core.schemas import parse_timestamp
from app.customers import audit, service as customers
from app.orders import carts, checkout, views
from app.orders.dependencies import CART_ROLES, ORDER_READERS, ORDER_WRITERS
from app.orders.schemas import CartCreate, CartOut, CartStatus, CartUpdate, CheckoutIn, OrderCreate, OrderList, OrderOut
from app.orders.states import OrderStatus

router = APIRouter(tags=["orders"])
Session = Annotated[AsyncSession, Depends(get_session)]
CartId = Annotated[str, Path(max_length=64, description="Cart id (`cart_…`)")]
OrderRef = Annotated[str, Path(max_length=64, description="Order id (`ord_…`) or number (`WEB-000123`)")]
CUSTOMER_ORDER_READERS = require("storefront", "pos")


def _created_since(value: str | None):
    return parse_timestamp("created_since", value)


# --------------------------------------------------------------------------- carts

@router.post("/v1/carts", status_code=201, response_model=CartOut, summary="Create a cart (priced)",
             description="Priced by the quote engine (the numbers of POST /v1/pricing/quote); each line shows its "
                         "`availability` for the chosen fulfillment method. Bound keys create carts in their channel.")
async def create_cart(body: CartCreate, session: Session, who: Principal = Depends(CART_ROLES)):
    cart = await carts.create_cart(session, who, body)
    return created(cart, version=cart["version"])


@router.get("/v1/carts", response_model=dict, summary="List carts (unpriced summaries)",
            description="Bound keys see the carts they created in their channel. GET /v1/carts/{id} prices one.")
async def list_carts(session: Session, page: PageParams = Depends(page_params),
                     status: Annotated[CartStatus | None, Query()] = None, who: Principal = Depends(CART_ROLES)):
    return json_response(await carts.list_carts(session, who, page, status=status.value if status else None))


@router.get("/v1/carts/{cart_id}", response_model=CartOut, summary="Get a cart (priced)")
async def get_cart(cart_id: CartId, session: Session, who: Principal = Depends(CART_ROLES)):
    cart = await carts.get_cart(session, who, cart_id)
    return json_response(cart, version=cart["version"])


@router.patch("/v1/carts/{cart_id}", response_model=CartOut, summary="Change a cart (If-Match supported)",
              description="The fields given replace the cart's (`lines` replaces every line). A checked-out cart "
                          "answers 409 cart_completed.")
async def update_cart(cart_id: CartId, body: CartUpdate, request: Request, session: Session,
                      who: Principal = Depends(CART_ROLES)):
    cart = await carts.update_cart(session, who, cart_id, body, if_match_version(request))
    return json_response(cart, version=cart["version"])


@router.post("/v1/carts/{cart_id}/checkout", status_code=201, response_model=OrderOut,
             summary="Check a cart out: the order, atomically",
             description="Re-prices, sources, reserves the stock per fulfillment and writes the order in one "
                         "transaction. `409 insufficient_stock` lists every short SKU (pickup/reserve: with "
                         "`alternatives`), `409 cart_completed` names the order of a cart checked out before. "
                         "Payment `stripe`: a PaymentIntent (manual capture) for the total, the order "
                         "`pending_payment` with its stock allocated and `payment.client_secret` for Stripe.js "
                         "(not shown on an Idempotency-Key replay: POST /v1/orders/{id}/payment-session); "
                         "`503 payment_provider_unavailable` when Stripe is not configured or unreachable. "
                         "`external`: paid elsewhere (payment_status paid); `store_credit`: the customer's "
                         "balance (`409 insufficient_store_credit`); `none`: unpaid (pay at pickup).")
async def checkout_cart(cart_id: CartId, body: CheckoutIn, request: Request, session: Session,
                        who: Principal = Depends(CART_ROLES)):
    order = await checkout.checkout_cart(session, who, cart_id, body, if_match_version(request))
    mark_secret(request, "payment.client_secret")
    return created(order, version=order["version"])


# --------------------------------------------------------------------------- orders

@router.post("/v1/orders", status_code=201, response_model=OrderOut, summary="Create an order: POS sale or import",
             description="POS keys: a sale at their store, completed at once (stock leaves on_hand, one fulfillment "
                         "`collected`). Marketplace keys: an import with `external_id` (unique per channel: "
                         "`409 duplicate_external_id`), optionally with the marketplace's own `unit_price`s; "
                         "sourced like a checkout. Admin: a sale in a pos channel, else an import/back-office order.")
async def create_order(body: OrderCreate, request: Request, session: Session, who: Principal = Depends(ORDER_WRITERS)):
    order = await checkout.create_order(session, who, body)
    mark_secret(request, "payment.client_secret")
    return created(order, version=order["version"])


@router.get("/v1/orders", response_model=OrderList, summary="List orders",
            description="Storefront and marketplace keys see their channel's orders, POS keys their store's.")
async def list_orders(
    session: Session,
    page: PageParams = Depends(page_params),
    channel: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[OrderStatus | None, Query()] = None,
    customer: Annotated[str | None, Query(max_length=320, description="Customer id, email or loyalty card")] = None,
    created_since: Annotated[str | None, Query(max_length=40, description="RFC 3339")] = None,
    external_id: Annotated[str | None, Query(max_length=200, description="The marketplace's own order id")] = None,
    who: Principal = Depends(ORDER_READERS),
):
    since = _created_since(created_since)
    customer_id = None
    if customer is not None:
        customer_id = await _customer_id(session, customer, who, missing_ok=True)
    if customer is not None and customer_id is None:
        return json_response({"data": [], "next_cursor": None})
    result = await views.list_orders(session, who, page, channel=channel, status=status.value if status else None,
                                     customer_id=customer_id, created_since=since, external_id=external_id)
    return json_response(result)


@router.get("/v1/orders/{ref}", response_model=OrderOut, summary="Get an order by id or number",
            description="`fulfillments[].sourcing` explains why each location was chosen and why the others were not.")
async def get_order(ref: OrderRef, session: Session, who: Principal = Depends(ORDER_READERS)):
    order = await views.load_order(session, ref, who)
    return json_response(order, version=order["version"])


async def _customer_id(session: AsyncSession, ref: str, who: Principal, missing_ok: bool = False) -> str | None:
    """The id of the customer `ref` names (visible to `who`), else 404 (or None when missing_ok)."""
    row = await customers.resolve_customer(session, ref, channel=who.channel if who.role == "storefront" else None)
    if row is None:
        if missing_ok:
            return None
        raise ApiError(404, "not_found", f"Customer {ref!r} was not found.")
    return row.id


@router.get("/v1/customers/{ref}/orders", response_model=OrderList, summary="A customer's orders, every channel",
            description="Orders of every channel (web, app, POS, marketplace). Storefront keys: customers registered "
                        "in their channel; POS keys: any customer.")
async def customer_orders(ref: Annotated[str, Path(max_length=320)], request: Request, session: Session,
                          page: PageParams = Depends(page_params), who: Principal = Depends(CUSTOMER_ORDER_READERS)):
    customer_id = await _customer_id(session, ref, who)  # a storefront key: customers of its channel only
    await audit.record(session, audit.actor(who, request), audit.AuditAction.orders_read, [customer_id])
    return json_response(await views.list_orders(session, who, page, customer_id=customer_id, scoped=False))
