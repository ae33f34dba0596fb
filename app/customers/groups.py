"""Customer groups: a free code per customer (`retail`, `b2b`, `loyalty`, …) that price lists and
promotions name (`customer_group`), so the quote engine prices a customer by their group.

One group carries a rule of its own: B2B customers (group `b2b`, or any group starting with
`b2b-`, e.g. `b2b-gastro`) may pay by invoice: `payment: {provider: "external", method:
"invoice"}` (app/payments/service.py asks `check_invoice`). Nobody else may buy on account.
"""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import ApiError
from app.customers import service

B2B = "b2b"


def is_b2b(group: str | None) -> bool:
    return group is not None and (group.lower() == B2B or group.lower().startswith(B2B + "-"))


async def check_invoice(session: AsyncSession, customer_id: str | None, field: str = "payment.method") -> None:
    """422 naming `field` unless the order's customer is in a B2B group."""
    if customer_id is None:
        raise ApiError(422, "invoice_not_allowed", "Paying by invoice needs a B2B customer: the order has no customer.",
                       errors=[{"field": field, "message": "Invoice only for customers in a B2B group."}])
    customer = await service.resolve_customer(session, customer_id)
    if customer is None or not is_b2b(customer.group):
        group = customer.group if customer is not None else None
        raise ApiError(422, "invoice_not_allowed",
                       f"Only customers in a B2B group (b2b, b2b-…) may pay by invoice; this customer's group is "
                       f"{group!r}.",
                       errors=[{"field": field, "message": "Invoice only for customers in a B2B group."}])
