"""Payments tests talk to Stripe through the real `stripe` library, pointed at a fake Stripe
server on loopback (tests/payments/fake_stripe.py).

`fake_stripe` (session): the running fake; STRIPE_API_BASE points the app at it.
`stripe_fake` (every test here, autouse): the same fake, emptied before the test.
"""
import pytest

from tests.helpers import settings_env
from tests.payments.fake_stripe import FakeStripe


@pytest.fixture(scope="session")
def fake_stripe():
    fake = FakeStripe().start()
    try:
        with settings_env(STRIPE_API_BASE=fake.url):
            yield fake
    finally:
        fake.stop()


@pytest.fixture(autouse=True)
def stripe_fake(fake_stripe):
    fake_stripe.reset()
    yield fake_stripe
    if fake_stripe.errors:  # the fake itself broke (it answered 500 api_error)
        pytest.fail(f"fake Stripe raised: {fake_stripe.errors!r}")
