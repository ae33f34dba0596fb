"""Event retention (app/events/retention.py): events older than EVENTS_RETENTION_DAYS that are fully
delivered go, with the delivery-log rows of that age, in bounded batches; an event whose delivery
still retries stays; a poller whose cursor lies before a deleted event gets 410 cursor_expired
(never a silent gap), one that kept polling goes on. The clock is moved, nothing waits."""
from datetime import timedelta

from sqlalchemy import select

from app.core import clock
from app.core.db import sessionmaker, unit_of_work
from app.events import retention
from app.events.models import Event, WebhookDelivery
from app.events.service import emit
from app.worker import JOBS, _load_jobs
from tests.conftest import uid
from tests.events.helpers import create_endpoint, deliveries, read_from, run_worker, tail
from tests.helpers import assert_problem


async def _kept(ids: list[str]) -> set[str]:
    async with sessionmaker()() as s:
        return set((await s.execute(select(Event.id).where(Event.id.in_(ids)))).scalars())


async def _log(ids: list[str]) -> set[str]:
    async with sessionmaker()() as s:
        return set((await s.execute(select(WebhookDelivery.id).where(WebhookDelivery.id.in_(ids)))).scalars())


async def test_old_delivered_events_go_and_expired_cursors_are_410(client, admin, receivers):
    ok, failing = receivers(), receivers(default=500)
    ep_ok = await create_endpoint(client, admin, ok.url, ["order.created"])
    ep_failing = await create_endpoint(client, admin, failing.url, ["order.cancelled"])
    before = await tail(client, admin)
    channel = uid("ret")
    async with unit_of_work() as session:
        a = await emit(session, "order.created", {"n": "a"}, channel=channel)      # delivered
        b = await emit(session, "order.cancelled", {"n": "b"}, channel=channel)    # its delivery retries
        c = await emit(session, "order.confirmed", {"n": "c"}, channel=channel)    # nobody subscribes
    async with unit_of_work() as session:  # the newest transaction's events always stay
        z = await emit(session, "order.confirmed", {"n": "z"}, channel=channel)
    await run_worker(ep_ok["id"], ep_failing["id"])
    [da] = await deliveries(client, admin, ep_ok["id"])
    [db] = await deliveries(client, admin, ep_failing["id"])
    assert (da["status"], db["status"]) == ("delivered", "pending")
    _, caught_up = await read_from(client, admin, before, until=lambda evs: z in {e["id"] for e in evs})

    # younger than the retention: nothing of theirs goes
    await retention.purge()
    assert await _kept([a, b, c, z]) == {a, b, c, z}
    assert await _log([da["id"], db["id"]]) == {da["id"], db["id"]}

    clock.advance(timedelta(days=31))
    cutoff = retention.cutoff()
    assert await retention.delete_deliveries(cutoff, batch=1) == 1  # bounded: one batch, one row
    assert await retention.delete_events(cutoff, batch=1) == 1
    done = await retention.purge(batch=50)
    assert done["events"] >= 1
    assert await _kept([a, b, c, z]) == {b, z}  # b waits for its delivery
    assert await _log([da["id"], db["id"]]) == {db["id"]}
    assert await deliveries(client, admin, ep_ok["id"]) == []

    # a poller from before the deleted events: told, not skipped silently
    r = await client.get("/v1/events", headers=admin, params={"cursor": before})
    body = assert_problem(r, 410, "cursor_expired")
    assert body["errors"][0]["field"] == "cursor" and "30 days" in body["detail"]
    restart = body["cursor"]
    r = await client.get("/v1/events", headers=admin, params={"cursor": restart})
    assert r.status_code == 200, r.text
    # one that had read to the end goes on; so does one without a cursor
    r = await client.get("/v1/events", headers=admin, params={"cursor": caught_up})
    assert r.status_code == 200, r.text
    assert (await client.get("/v1/events", headers=admin, params={"limit": 1})).status_code == 200

    # once nothing will be sent for it any more, b goes too
    assert (await client.delete(f"/v1/webhook-endpoints/{ep_failing['id']}", headers=admin)).status_code == 204
    await retention.purge()
    assert await _kept([b, z]) == {z}
    # and the stream goes on where it was: a new event comes after every cursor handed out
    async with unit_of_work() as session:
        d = await emit(session, "order.created", {"n": "d"}, channel=channel)
    seen, _ = await read_from(client, admin, caught_up, until=lambda evs: d in {e["id"] for e in evs})
    assert [e["id"] for e in seen if e["data"].get("n") == "d"] == [d]


def test_the_worker_runs_it():
    _load_jobs()
    assert retention.purge_old_events in [job for _, job in JOBS]
