"""A dead receiver never slows the API: the worker runs inside the API process here
(INLINE_WORKER=true, the harder case), its deliveries hang on a black hole until the timeout,
and the API's requests are timed before and while they hang."""
import asyncio
import statistics
import time

import httpx
from sqlalchemy import func, select

from app.core.db import sessionmaker, unit_of_work
from app.events.models import WebhookDelivery
from app.events.service import emit_many
from tests.conftest import Server, auth, uid
from tests.events.conftest import track

TIMEOUT = 4  # WEBHOOK_TIMEOUT_SECONDS of the server: a request that waited for a delivery takes that long


async def _in_flight(endpoint_id: str) -> int:
    async with sessionmaker()() as s:
        return (await s.execute(select(func.count()).select_from(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "delivering"))).scalar_one()


async def _timed(http: httpx.AsyncClient, n: int) -> list[float]:
    """n rounds of a cheap read and a write (a location created): seconds each."""
    out = []
    for _ in range(n):
        for method, path, body in (("GET", "/v1/locations?limit=1", None),
                                   ("POST", "/v1/locations", {"code": uid("lat"), "name": "Latency", "type": "store"})):
            t = time.perf_counter()
            r = await http.request(method, path, json=body)
            out.append(time.perf_counter() - t)
            assert r.status_code in (200, 201), r.text
    return out


async def test_a_dead_receiver_does_not_slow_requests(admin_secret, black_hole):
    server = Server(env={"INLINE_WORKER": "true", "WEBHOOK_TIMEOUT_SECONDS": str(TIMEOUT)}).start()
    try:
        async with httpx.AsyncClient(base_url=server.base, headers=auth(admin_secret), timeout=60) as http:
            await _timed(http, 3)  # warm up
            before = await _timed(http, 15)
            r = await http.post("/v1/webhook-endpoints", json={"url": black_hole.url, "events": ["order.created"]})
            assert r.status_code == 201, r.text
            ep = track(r.json()["id"])
            async with unit_of_work() as session:
                await emit_many(session, [{"type": "order.created", "data": {"n": i}, "channel": uid("lat")}
                                          for i in range(200)])
            deadline = time.monotonic() + 30
            while await _in_flight(ep) == 0:  # the server's worker has claimed deliveries: they hang now
                assert time.monotonic() < deadline, "the inline worker never started delivering"
                await asyncio.sleep(0.1)
            during = await _timed(http, 15)
            still = await _in_flight(ep)
    finally:
        server.stop()
    print(f"\nrequest latency before: median {statistics.median(before) * 1000:.1f} ms, max {max(before) * 1000:.1f} ms; "
          f"while deliveries hang: median {statistics.median(during) * 1000:.1f} ms, max {max(during) * 1000:.1f} ms "
          f"({still} deliveries in flight at the end)")
    assert still > 0  # the measurement happened while deliveries were hanging
    assert max(during) < TIMEOUT / 2, during  # no request waited for a delivery
    assert statistics.median(during) < 4 * statistics.median(before) + 0.05, (before, during)
