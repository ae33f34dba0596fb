"""The payment provider protocol, and the providers wired in one place (PROVIDERS).

Orders never talk to a payment service directly: checkout asks the provider named in the
request to `start` a payment, and every later money movement (capture when goods leave, void
or refund when units are cancelled, the refund of a return) is a payment operation that
service.run_operation hands to the order's provider. A new way to pay (SEPA, PayPal, invoice)
is one class here, not a change to orders.

    start(amount, currency, key, metadata, multicapture) -> Started   at checkout
    capture(reference, amount, final, key) -> Intent | None           goods left
    void(reference, key) -> Intent | None                             release the authorization
    refund(reference, amount, key, metadata) -> str | None            money back: the refund's id
    retrieve(reference) -> Intent                                     the provider's truth (webhooks)

`external` is a payment taken elsewhere (the POS's cash drawer or card terminal, the
marketplace, an invoice): paid at once, refunds are recorded (paid out at the till or by the
marketplace), there is nothing to capture or void. Store credit is a balance of ours
(app/payments/store_credit.py), spent and credited in the caller's transaction.

Errors every provider raises: ProviderUnavailable (not configured, unreachable, down: 503
payment_provider_unavailable, retry), PaymentDeclined (the card said no: 402 payment_declined),
ProviderRejected (the provider refused the request: 502 payment_provider_error).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from app.core.errors import ApiError


class ProviderError(Exception):
    status = 502
    code = "payment_provider_error"

    def __init__(self, detail: str, *, decline_code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.decline_code = decline_code

    def problem(self, provider: str) -> ApiError:
        extra: dict[str, Any] = {"provider": provider}
        if self.decline_code:
            extra["decline_code"] = self.decline_code
        headers = {"Retry-After": "5"} if self.status == 503 else None
        return ApiError(self.status, self.code, self.detail, headers=headers, **extra)


class ProviderUnavailable(ProviderError):
    status = 503
    code = "payment_provider_unavailable"


class PaymentDeclined(ProviderError):
    status = 402
    code = "payment_declined"


class ProviderRejected(ProviderError):
    status = 502
    code = "payment_provider_error"


@dataclass(frozen=True, slots=True)
class Intent:
    """What the provider holds for an order (Stripe: the PaymentIntent, re-read)."""

    reference: str
    status: str  # requires_payment_method | requires_capture | succeeded | canceled | processing | …
    amount: int
    amount_capturable: int
    amount_received: int
    currency: str
    capture_before: datetime | None = None
    multicapture: bool = False
    client_secret: str | None = None


@dataclass(frozen=True, slots=True)
class Started:
    """A payment begun at checkout: `pending` until the provider confirms it (webhook), else paid."""

    payment_status: str  # unpaid (waiting for the shopper) | paid
    reference: str | None
    client_secret: str | None = None


class Provider(Protocol):
    name: str
    confirms_later: bool  # the order waits in pending_payment until a webhook confirms it

    async def start(self, amount: int, currency: str, *, key: str, metadata: dict[str, str],
                    multicapture: bool, reference: str | None) -> Started: ...

    async def capture(self, reference: str, amount: int, *, final: bool, multicapture: bool,
                      key: str) -> Intent | None: ...

    async def void(self, reference: str, *, key: str) -> Intent | None: ...

    async def refund(self, reference: str, amount: int, *, key: str, metadata: dict[str, str]) -> str | None: ...

    async def retrieve(self, reference: str) -> Intent: ...


class External:
    """Paid elsewhere (till, card terminal, marketplace): recorded, never called."""

    name = "external"
    confirms_later = False

    async def start(self, amount, currency, *, key, metadata, multicapture, reference):
        return Started("paid", reference)

    async def capture(self, reference, amount, *, final, multicapture, key):
        return None

    async def void(self, reference, *, key):
        return None

    async def refund(self, reference, amount, *, key, metadata):
        return None  # paid out at the till (or by the marketplace); the operation records it

    async def retrieve(self, reference):
        raise ProviderRejected("An external payment has nothing to re-read.")


def provider(name: str) -> Provider:
    """The provider wired under `name` (PROVIDERS)."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ProviderRejected(f"No payment provider {name!r} is wired.") from None


from app.payments.stripe_provider import StripeProvider  # noqa: E402 - it implements the protocol above

PROVIDERS: dict[str, Provider] = {"stripe": StripeProvider(), "external": External()}
