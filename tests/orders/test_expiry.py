"""Pickups and reservations not collected in time expire through the worker job: the stock
returns, the events are written, the order's status follows. The clock is moved, not waited for."""
from datetime import timedelta

import pytest

from app.core import clock
from app.core.db import unit_of_work
from app.orders import bulk_transitions
from app.orders.jobs import expire_fulfillments
from app.worker import JOBS
from tests.helpers import assert_problem
from tests.inventory.builders import ledger_matches
from tests.orders.fulfillment_world import World, at, events


@pytest.fixture
async def w(client, admin):
    yield await World().setup(client, admin, hold_days=2)
    clock.reset()


async def _ready(client, w, fid) -> str:
    r = await client.post(f"/v1/fulfillments/{fid}/ready", headers=w.pos_hh)
    assert r.status_code == 200, r.text
    return r.json()["pickup_code"]


def test_the_job_is_registered():
    assert any(job is expire_fulfillments and seconds == 30 for seconds, job in JOBS)


async def test_pickup_expires_after_the_hold(client, w):
    await w.stock(client, w.hh, **{w.a: 3})
    order = await w.place(client, {w.a: 2}, method="pickup", location=w.hh)
    f = at(order, w.hh)
    code = await _ready(client, w, f["id"])

    clock.advance(timedelta(days=2) - timedelta(minutes=1))
    await expire_fulfillments()
    assert at(await w.order(client, order["id"]), w.hh)["status"] == "ready"  # not yet

    clock.advance(timedelta(minutes=2))
    assert await expire_fulfillments() >= 1
    o = await w.order(client, order["id"])
    assert at(o, w.hh)["status"] == "expired"
    assert o["status"] == "cancelled" and o["lines"][0]["quantity_cancelled"] == 2
    lv = await w.level(client, w.a, w.hh)
    assert (lv["on_hand"], lv["reserved"], lv["available"]) == (3, 0, 3)
    assert await ledger_matches([w.a]) == []
    [ev] = await events("fulfillment.expired", id=f["id"])
    assert ev["previous_status"] == "ready" and ev["order_number"] == order["number"]
    assert await events("order.cancelled", id=order["id"])
    # too late to collect
    r = await client.post(f"/v1/fulfillments/{f['id']}/collect", headers=w.pos_hh, json={"pickup_code": code})
    assert assert_problem(r, 409, "invalid_transition")["current_status"] == "expired"
    # a second run finds nothing more of it
    await expire_fulfillments()
    assert len(await events("fulfillment.expired", id=f["id"])) == 1


async def test_reservation_expires_and_open_pickups_wait(client, w):
    await w.stock(client, w.hh, **{w.a: 5})
    res = await w.place(client, {w.a: 2}, method="reserve", location=w.hh)
    pick = await w.place(client, {w.a: 1}, method="pickup", location=w.hh)  # never readied: no hold yet
    taken = await w.place(client, {w.a: 1}, method="reserve", location=w.hh)
    r = await client.post(f"/v1/fulfillments/{at(taken, w.hh)['id']}/collect", headers=w.pos_hh,
                          json={"payment_reference": "till-1"})
    assert r.status_code == 200, r.text
    assert (await w.level(client, w.a, w.hh))["reserved"] == 3

    clock.advance(timedelta(days=3))
    await expire_fulfillments()
    assert at(await w.order(client, res["id"]), w.hh)["status"] == "expired"
    assert at(await w.order(client, pick["id"]), w.hh)["status"] == "open"
    assert at(await w.order(client, taken["id"]), w.hh)["status"] == "collected"
    lv = await w.level(client, w.a, w.hh)
    assert (lv["on_hand"], lv["reserved"]) == (4, 1)
    assert await ledger_matches([w.a]) == []
    assert (await events("fulfillment.expired", id=at(res, w.hh)["id"]))[0]["previous_status"] == "open"


async def test_many_expire_in_batches(client, w):
    await w.stock(client, w.hh, **{w.a: 7})
    orders = [await w.place(client, {w.a: 1}, method="reserve", location=w.hh) for _ in range(7)]
    clock.advance(timedelta(days=3))
    total = 0
    while True:  # small batches: every order in exactly one of them
        async with unit_of_work() as session:
            n, looked = await bulk_transitions.expire_due(session, limit=3)
        total += n
        if looked < 3:
            break
    assert total >= 7
    for o in orders:
        assert (await w.order(client, o["id"]))["status"] == "cancelled"
    assert (await w.level(client, w.a, w.hh))["reserved"] == 0
    assert await ledger_matches([w.a]) == []


async def test_one_bad_order_does_not_hold_up_the_others(client, w, monkeypatch):
    await w.stock(client, w.hh, **{w.a: 3})
    bad = await w.place(client, {w.a: 1}, method="reserve", location=w.hh)
    good = await w.place(client, {w.a: 1}, method="reserve", location=w.hh)
    real = bulk_transitions.rederive

    async def broken(session, order):
        if order.id == bad["id"]:
            raise RuntimeError("boom")
        return await real(session, order)

    monkeypatch.setattr(bulk_transitions, "rederive", broken)
    clock.advance(timedelta(days=3))
    await expire_fulfillments()
    assert at(await w.order(client, good["id"]), w.hh)["status"] == "expired"
    assert at(await w.order(client, bad["id"]), w.hh)["status"] == "open"  # rolled back, tried again next run
    assert (await w.level(client, w.a, w.hh))["reserved"] == 1
    monkeypatch.setattr(bulk_transitions, "rederive", real)
    await expire_fulfillments()
    assert at(await w.order(client, bad["id"]), w.hh)["status"] == "expired"
    assert await ledger_matches([w.a]) == []
