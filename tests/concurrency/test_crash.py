"""kill -9 between commit points: a retry with the same Idempotency-Key replays a change that
committed and runs anew one that did not, and no key ever produces two effects.

The server is a real uvicorn process. `UC_TEST_CRASH_POINTS=1` lets a request carrying
`X-Test-Crash: before_commit|after_commit` kill its own process at that point (the header is
not part of the request's fingerprint, so the retry without it is the same request)."""
import asyncio
import random
import time

import httpx
import pytest
from sqlalchemy import func, select

from app.core.db import sessionmaker
from app.inventory.models import Reservation, ReservationItem, StockLevel, StockMovement
from tests.conftest import Server, auth, make_key, uid
from tests.inventory.builders import World, ledger_matches, level, put_levels

CRASHABLE = {"UC_TEST_CRASH_POINTS": "1"}


@pytest.fixture
async def world(client, admin):
    return await World().setup(client, admin)


async def _movements(reference: str) -> int:
    async with sessionmaker()() as s:
        return (await s.execute(select(func.count()).select_from(StockMovement)
                                .where(StockMovement.reference == reference))).scalar_one()


@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
async def test_a_retry_after_kill_9_replays_or_runs_once(client, admin, admin_secret, world, point):
    w = world
    await put_levels(client, admin, w.hh, **{w.a: 10})
    key, ref = uid("idem"), uid("adj")
    body = {"location": w.hh, "sku": w.a, "delta": 3, "reason": "receipt", "reference": ref}
    headers = auth(admin_secret) | {"Idempotency-Key": key}
    server = Server(env=CRASHABLE).start()
    try:
        with pytest.raises(httpx.TransportError):  # the process died mid-request: no answer at all
            httpx.post(server.base + "/v1/inventory/adjustments", json=body,
                       headers=headers | {"X-Test-Crash": point}, timeout=30)
        server.proc.wait(10)
        assert server.proc.returncode == -9
        committed = point == "after_commit"
        assert await _movements(ref) == (1 if committed else 0)  # the crash split nothing
        assert (await level(client, admin, w.a, w.hh))["on_hand"] == (13 if committed else 10)

        server.start()  # a fresh process: nothing in memory survived
        retry = httpx.post(server.base + "/v1/inventory/adjustments", json=body, headers=headers, timeout=30)
        assert retry.status_code == 201, retry.text
        assert ("idempotent-replayed" in retry.headers) == committed
        again = httpx.post(server.base + "/v1/inventory/adjustments", json=body, headers=headers, timeout=30)
        assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
        assert again.content == retry.content
    finally:
        server.stop()
    assert await _movements(ref) == 1  # one effect for one key
    assert (await level(client, admin, w.a, w.hh))["on_hand"] == 13
    assert await ledger_matches([w.a]) == []


async def test_kill_9_storm_keeps_every_invariant(client, admin, world, backend):
    """Clients adjust and reserve with a fresh Idempotency-Key each, the server is killed with
    kill -9 while they run, a new one starts, and every client retries what got no answer with
    the same key. Afterwards: the ledger equals on_hand, nothing is negative, reserved equals the
    active holds, and every key produced exactly one effect (or none, for a 409)."""
    w = world
    locs, skus = [w.hh, w.be], [w.a, w.b]
    for loc in locs:
        await put_levels(client, admin, loc, **{s: 8 for s in skus})
    h = auth(await make_key("admin"))
    server = Server().start()
    rng = random.Random(9)
    ops = []
    for i in range(96):
        key = uid("storm")
        if rng.random() < 0.5:
            ops.append(("adjust", key, "/v1/inventory/adjustments", {
                "location": rng.choice(locs), "sku": rng.choice(skus), "delta": rng.choice([1, 2, 3]),  # receipts: holds must never exceed on_hand
                "reason": "correction", "reference": key}))
        else:
            ops.append(("reserve", key, "/v1/reservations", {
                "sku": rng.choice(skus + [w.box]), "location": rng.choice(locs), "quantity": rng.randint(1, 3),
                "ttl_seconds": 3600, "reference": key}))
    answers: dict[str, int] = {}
    lost = 0

    async def client_loop(http: httpx.AsyncClient, mine: list) -> None:
        nonlocal lost
        for kind, key, path, body in mine:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # retried with the same key until answered
                try:
                    r = await http.post(path, json=body, headers=h | {"Idempotency-Key": key})
                except httpx.TransportError:
                    lost += 1
                    await asyncio.sleep(0.05)
                    continue
                if r.status_code == 503 or r.status_code == 409 and r.json()["code"] == "idempotency_key_in_use":
                    await asyncio.sleep(0.05)
                    continue
                answers[key] = r.status_code
                break

    async def killer() -> None:
        await asyncio.sleep(0.4)
        server.kill()
        await asyncio.to_thread(server.start)

    try:
        async with httpx.AsyncClient(base_url=server.base, timeout=30, limits=httpx.Limits(max_connections=16)) as http:
            await asyncio.gather(killer(), *(client_loop(http, ops[i::16]) for i in range(16)))
    finally:
        server.stop()

    assert lost > 0, "the server was not killed while requests were in flight"
    assert len(answers) == len(ops)
    assert set(answers.values()) <= {201, 409}, answers
    for kind, key, _, body in ops:
        async with sessionmaker()() as s:
            if kind == "adjust":
                n = (await s.execute(select(func.count()).select_from(StockMovement)
                                     .where(StockMovement.reference == key))).scalar_one()
            else:
                n = (await s.execute(select(func.count()).select_from(Reservation)
                                     .where(Reservation.reference == key))).scalar_one()
        assert n == (1 if answers[key] == 201 else 0), (kind, key, answers[key], n)
    assert await ledger_matches(skus) == []
    async with sessionmaker()() as s:
        levels = (await s.execute(select(StockLevel).where(StockLevel.sku.in_(skus)))).scalars().all()
        held = dict(((r.sku, r.location_id), r.q) for r in (await s.execute(
            select(ReservationItem.sku, ReservationItem.location_id, func.sum(ReservationItem.quantity).label("q"))
            .where(ReservationItem.active.is_(True), ReservationItem.sku.in_(skus))
            .group_by(ReservationItem.sku, ReservationItem.location_id))).all())
    for lv in levels:
        assert lv.on_hand >= 0 and lv.reserved >= 0 and lv.reserved <= lv.on_hand - lv.safety_stock, lv
        assert lv.reserved == held.get((lv.sku, lv.location_id), 0), lv
