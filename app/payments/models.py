"""Payments: the operations done with a provider for an order, Stripe's webhook events seen,
and store credit.

An order carries its payment summary itself (orders.payment_provider / payment_reference /
payment_status and the amounts authorized, captured and refunded), so an order answer needs no
join. Every money movement after checkout is a `payment_operations` row: written in the same
transaction as the change that makes it due (goods left, units cancelled, a return), with a
deterministic idempotency key, and carried out with the provider after that transaction
committed (service.run_operation), so no provider call ever happens while stock is locked and a
crash at any point repeats the call with the same key rather than doubling it.
"""
from datetime import datetime

from sqlalchemy import BigInteger, Index
from sqlmodel import Field, SQLModel

from app.core.models import id_field, ts_field


class PaymentOperation(SQLModel, table=True):
    __tablename__ = "payment_operations"
    __table_args__ = (Index("ix_payment_operations_due", "status", "next_attempt_at"),)

    id: str = id_field()  # pop_<ulid>
    order_id: str = Field(max_length=40, foreign_key="orders.id", index=True)
    provider: str = Field(max_length=20)  # stripe | external | store_credit | cash
    kind: str = Field(max_length=10)  # capture | void | refund
    amount: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    final: bool = False  # capture: the last one (releases what is left of the authorization)
    reason: str = Field(max_length=30)  # fulfilled | unfulfillable | cancelled | return | payment_failed
    status: str = Field(max_length=12)  # pending | running | succeeded | failed
    idempotency_key: str = Field(max_length=120, unique=True)  # sent to the provider
    reference: str | None = Field(default=None, max_length=200)  # the provider's id (re_…) or the till's
    return_id: str | None = Field(default=None, max_length=40, index=True)
    location: str | None = Field(default=None, max_length=100)  # where a refund was paid out (cash)
    attempts: int = 0
    next_attempt_at: datetime | None = ts_field(nullable=True)
    error: str | None = Field(default=None, max_length=500)
    api_key_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class StripeEvent(SQLModel, table=True):
    """Each Stripe event id once: a redelivered event is answered without doing anything again."""

    __tablename__ = "stripe_events"

    id: str = Field(primary_key=True, max_length=255)  # evt_…
    type: str = Field(max_length=100)
    payment_intent: str | None = Field(default=None, max_length=255)
    order_id: str | None = Field(default=None, max_length=40)
    outcome: str = Field(max_length=40)
    received_at: datetime = ts_field()


class StoreCreditEntry(SQLModel, table=True):
    """The store-credit ledger of a customer: + credited (a refund), − spent (a checkout)."""

    __tablename__ = "store_credit_entries"
    __table_args__ = (Index("ix_store_credit_customer", "customer_id", "currency"),)

    id: str = id_field()  # scr_<ulid>
    customer_id: str = Field(max_length=40)
    currency: str = Field(max_length=3)
    amount: int = Field(sa_type=BigInteger)
    order_id: str | None = Field(default=None, max_length=40)
    return_id: str | None = Field(default=None, max_length=40)
    note: str | None = Field(default=None, max_length=200)
    api_key_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = ts_field()
