"""Fixtures of the events tests: real loopback receivers, endpoints removed after each test
(so no later run of the worker keeps calling a receiver that is gone), the clock put back."""
import pytest
from sqlalchemy import delete

from app.core import clock
from app.core.db import unit_of_work
from app.events.models import WebhookDelivery, WebhookEndpoint
from tests.events.receiver import BlackHole, Receiver

_created: list[str] = []


def track(endpoint_id: str) -> str:
    _created.append(endpoint_id)
    return endpoint_id


@pytest.fixture
def receivers():
    started: list = []

    def make(script: list[int] | None = None, default: int = 200, delay: float = 0.0) -> Receiver:
        r = Receiver(script, default, delay).start()
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()


@pytest.fixture
def black_hole():
    hole = BlackHole()
    yield hole
    hole.stop()


@pytest.fixture(autouse=True)
async def _clean_up():
    yield
    clock.reset()
    if _created:
        ids = list(_created)
        _created.clear()
        async with unit_of_work() as session:
            await session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id.in_(ids)))
            await session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id.in_(ids)))
