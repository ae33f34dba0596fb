"""Payments tests talk to Stripe through the real `stripe` library, pointed at a fake Stripe
server on loopback (tests/payments/fake_stripe.py).

`fake_stripe` (session): the running fake; STRIPE_API_BASE points the app at it.
`stripe_fake` (every test here, autouse): the same fake, emptied before the test.
"""
import os

import pytest

from tests.payments.fake_stripe import FakeStripe


@pytest.fixture(scope="session")
def fake_stripe():
    from app.core.settings import get_settings

    fake = FakeStripe().start()
    previous = os.environ.get("STRIPE_API_BASE")
    os.environ["STRIPE_API_BASE"] = fake.url
    get_settings.cache_clear()
    try:
        yield fake
    finally:
        fake.stop()
        if previous is None:
            os.environ.pop("STRIPE_API_BASE", None)
        else:
            os.environ["STRIPE_API_BASE"] = previous
        get_settings.cache_clear()


@pytest.fixture(autouse=True)
def stripe_fake(fake_stripe):
    fake_stripe.reset()
    yield fake_stripe
    if fake_stripe.errors:  # the fake itself broke (it answered 500 api_error)
        pytest.fail(f"fake Stripe raised: {fake_stripe.errors!r}")
