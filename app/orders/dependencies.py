"""Who may touch carts and orders, and loading them within the key's scope (404 outside it).

| role        | carts                                   | POST /v1/orders          | read orders                  |
|-------------|-----------------------------------------|--------------------------|------------------------------|
| admin       | every cart                              | sales and imports        | every order                  |
| storefront  | its channel's carts that it created     | 403                      | its channel's                |
| pos         | its channel's carts that it created     | sales at its store       | its store's (views.py)       |
| marketplace | its channel's carts that it created     | imports in its channel   | its channel's                |
| dropshipper | 403                                     | 403                      | 403 (works on fulfillments)  |
"""
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal, require
from app.core.errors import ApiError
from app.orders.models import Cart

CART = Cart.__table__

CART_ROLES = require("storefront", "pos", "marketplace")
ORDER_WRITERS = require("pos", "marketplace")
ORDER_READERS = require("storefront", "pos", "marketplace")


def cart_scope(who: Principal | None) -> list:
    """WHERE clauses over `carts` for the carts `who` may see (empty: every cart)."""
    if who is None or who.is_admin:
        return []
    return [CART.c.channel == who.channel, CART.c.api_key_id == who.key_id]


def cart_not_found(ref: str) -> ApiError:
    return ApiError(404, "not_found", f"Cart {ref!r} was not found.")


async def visible_cart(session: AsyncSession, ref: str, who: Principal | None, *, for_update: bool = False) -> Any:
    """The carts row within `who`'s scope, or 404."""
    stmt = select(CART).where(CART.c.id == ref, *cart_scope(who))
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    if row is None:
        raise cart_not_found(ref)
    return row


def bound_channel(who: Principal, named: str | None) -> str:
    """The channel a request works in: the one named (admin: required) or the key's own; a bound
    key naming another channel gets 404."""
    code = named or who.channel
    if code is None:
        raise ApiError(422, "validation_error", "channel is required for this API key.",
                       errors=[{"field": "channel", "message": "Required."}])
    if not who.is_admin:
        who.channel_or_404(code, "Channel")
    return code
