"""Helpers of the events tests: endpoints through the API, the worker run in-process, the
event stream polled to its end."""
import asyncio
import hashlib
import hmac
import time

from sqlalchemy import func, select

from app.core.db import sessionmaker
from app.events import delivery
from app.events.models import Event
from tests.events.conftest import track


async def create_endpoint(client, headers, url: str, events: list[str], **extra) -> dict:
    r = await client.post("/v1/webhook-endpoints", headers=headers, json={"url": url, "events": events, **extra})
    assert r.status_code == 201, r.text
    body = r.json()
    track(body["id"])
    return body


async def run_worker(*endpoint_ids: str) -> dict:
    """One round of the worker, sending only to these endpoints (other tests' endpoints wait).
    Every pending event is fanned out first, however many earlier tests left (a round's time
    budget could otherwise end before this test's event, on a loaded machine)."""
    while await delivery.fan_out() >= delivery.FANOUT_BATCH:
        pass
    return await delivery.run(list(endpoint_ids))


async def deliveries(client, headers, endpoint_id: str, **params) -> list[dict]:
    r = await client.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=headers,
                         params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    return r.json()["data"]


_blind: dict = {}


async def tail(client, headers=None) -> str:
    """The cursor at the end of the stream now. A cursor is a position in the one stream, the
    same for every key, so it is asked with a partner key of a location nothing happens at: one
    short page (its next_cursor is the settled horizon), from the last end it found."""
    if "h" not in _blind:
        from tests.conftest import auth, make_key
        from tests.helpers import create_location

        admin = auth(await make_key("admin"))
        loc = (await create_location(client, admin, "partner"))["code"]
        _blind["h"] = auth(await make_key("dropshipper", location=loc))
    params = {"limit": 1, **({"cursor": _blind["c"]} if "c" in _blind else {})}
    r = await client.get("/v1/events", headers=_blind["h"], params=params)
    if r.status_code == 410:  # a retention test deleted events after the last end found: go on from there
        params["cursor"] = r.json()["cursor"]
        r = await client.get("/v1/events", headers=_blind["h"], params=params)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [] and not r.json()["has_more"]
    _blind["c"] = r.json()["next_cursor"]
    return _blind["c"]


async def read_from(client, headers, cursor: str, *, type: str | None = None, until=None,
                    timeout: float = 15.0) -> tuple[list[dict], str]:
    """Every event after `cursor`, polling until `until(events)` holds (PostgreSQL holds back
    events behind a write transaction of this database still running)."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while True:
        params = {"limit": 500, "cursor": cursor, **({"type": type} if type else {})}
        r = await client.get("/v1/events", headers=headers, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += body["data"]
        cursor = body["next_cursor"]
        if body["has_more"]:
            continue
        if until is None or until(seen) or time.monotonic() > deadline:
            return seen, cursor
        await asyncio.sleep(0.1)


async def count_events() -> int:
    async with sessionmaker()() as s:
        return (await s.execute(select(func.count()).select_from(Event))).scalar_one()


def verify(secret: str, header: str, body: bytes) -> bool:
    """The receiver's check, written from the documented algorithm (not the app's code):
    t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>, any v1 may match."""
    parts = [p.split("=", 1) for p in header.split(",")]
    t = [v for k, v in parts if k == "t"][0]
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, v) for k, v in parts if k == "v1")
