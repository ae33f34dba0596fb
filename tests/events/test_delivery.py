"""The delivery worker against real loopback receivers: signatures, retries with backoff (the
clock moved, never slept), giving up and recovering, rotation overlap, redelivery, and two
workers sharing deliveries without sending one twice in one attempt."""
import asyncio
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
from datetime import timedelta

import orjson
import pytest

from app.core import clock
from app.core.db import unit_of_work
from app.core.settings import get_settings
from app.events import delivery
from app.events.service import emit_many
from tests.catalog.builders import create_product
from tests.conftest import DATABASE_URL, ROOT, uid
from tests.events.helpers import create_endpoint, deliveries, read_from, run_worker, tail, verify


def _seconds(iso: str):
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


async def test_a_delivery_is_signed_and_logged(client, admin, receivers):
    hook = receivers()
    ep = await create_endpoint(client, admin, hook.url, ["product.created"])
    other = await create_endpoint(client, admin, hook.url.replace("/hooks", "/orders"), ["order.created"])
    cursor = await tail(client, admin)
    product = await create_product(client, admin)
    done = await run_worker(ep["id"], other["id"])
    assert done.get("delivered") == 1, done
    assert len(hook.requests) == 1
    seen = hook.requests[0]
    assert seen.path == "/hooks"
    assert seen.headers["content-type"] == "application/json"
    assert verify(ep["secret"], seen.headers["webhook-signature"], seen.body)
    assert not verify(ep["secret"] + "x", seen.headers["webhook-signature"], seen.body)
    assert not verify(ep["secret"], seen.headers["webhook-signature"], seen.body + b" ")
    t = int(seen.headers["webhook-timestamp"])
    assert seen.headers["webhook-signature"].startswith(f"t={t},v1=")
    assert abs(t - clock.now().timestamp()) < 30
    body = orjson.loads(seen.body)
    assert set(body) == {"id", "type", "created_at", "data"}
    assert body["type"] == "product.created" and body["id"].startswith("evt_")
    assert body["data"]["id"] == product["id"] and body["data"]["title"] == product["title"]
    # the delivery log
    log = await deliveries(client, admin, ep["id"])
    assert len(log) == 1
    d = log[0]
    assert d["id"] == seen.headers["webhook-id"] and d["id"].startswith("whd_")
    assert d["event"] == body["id"] and d["event_type"] == "product.created"
    assert d["status"] == "delivered" and d["attempts"] == 1 and d["last_status_code"] == 200
    assert d["last_latency_ms"] >= 0 and d["next_attempt_at"] is None and d["delivered_at"]
    assert await deliveries(client, admin, other["id"]) == []  # not subscribed to products
    # the same event in the poller's stream, same envelope
    events, _ = await read_from(client, admin, cursor, type="product.created",
                                until=lambda evs: any(e["id"] == body["id"] for e in evs))
    assert body in events
    # a redelivery of a delivered one: sent again, same Webhook-Id
    r = await client.post(f"/v1/webhook-endpoints/{ep['id']}/deliveries/{d['id']}/redeliver", headers=admin)
    assert r.status_code == 202 and r.json()["status"] == "pending", r.text
    await run_worker(ep["id"])
    assert [s.headers["webhook-id"] for s in hook.requests] == [d["id"], d["id"]]
    assert (await deliveries(client, admin, ep["id"]))[0]["attempts"] == 2


async def test_fails_twice_then_succeeds_with_growing_gaps(client, admin, receivers, monkeypatch):
    monkeypatch.setattr(delivery, "RANDOM", lambda: 1.0)  # the jitter at its top: the schedule itself
    hook = receivers(script=[500, 503])
    ep = await create_endpoint(client, admin, hook.url, ["product.created"])
    await create_product(client, admin)
    await run_worker(ep["id"])
    gaps = []
    for attempt in (1, 2):
        [d] = await deliveries(client, admin, ep["id"])
        assert d["status"] == "pending" and d["attempts"] == attempt
        assert d["last_status_code"] == (500, 503)[attempt - 1] and d["last_error"].startswith("HTTP 5")
        due = _seconds(d["next_attempt_at"])
        gaps.append((due - _seconds(d["last_attempt_at"])).total_seconds())
        # not before it is due
        await run_worker(ep["id"])
        assert len(hook.requests) == attempt
        clock.advance(due - clock.now() + timedelta(seconds=1))
        await run_worker(ep["id"])
        assert len(hook.requests) == attempt + 1
    [d] = await deliveries(client, admin, ep["id"])
    assert d["status"] == "delivered" and d["attempts"] == 3 and d["last_status_code"] == 200
    # three times the same delivery, each signed, the gaps growing (30 s, then 120 s)
    assert len({s.headers["webhook-id"] for s in hook.requests}) == 1
    assert len({s.body for s in hook.requests}) == 1
    assert all(verify(ep["secret"], s.headers["webhook-signature"], s.body) for s in hook.requests)
    stamps = [int(s.headers["webhook-timestamp"]) for s in hook.requests]
    seen_gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert [round(g) for g in gaps] == [30, 120], gaps  # from the attempt's start: the call's time too
    assert 30 <= seen_gaps[0] <= 33 and 120 <= seen_gaps[1] <= 123, seen_gaps
    assert seen_gaps[1] > seen_gaps[0]


def test_backoff_is_exponential_with_full_jitter():
    for attempt, ceiling in ((1, 30), (2, 120), (3, 480), (6, 8 * 3600), (20, 8 * 3600)):
        samples = [delivery.backoff(attempt).total_seconds() for _ in range(2000)]
        assert all(1 <= s <= ceiling for s in samples), attempt
        assert ceiling * 0.4 < statistics.mean(samples) < ceiling * 0.6  # uniform over [0, ceiling]
        assert min(samples) < ceiling * 0.1 and max(samples) > ceiling * 0.9


async def test_gives_up_marks_the_endpoint_failing_and_a_success_restores_it(client, admin, receivers, monkeypatch):
    monkeypatch.setattr(get_settings(), "webhook_max_attempts", 2)
    hook = receivers(default=500)
    ep = await create_endpoint(client, admin, hook.url, ["product.created"])
    watcher = await create_endpoint(client, admin, hook.url.replace("/hooks", "/ops"), ["webhook_endpoint.failing"])
    cursor = await tail(client, admin)
    await create_product(client, admin)
    await run_worker(ep["id"])
    clock.advance(timedelta(hours=1))
    await run_worker(ep["id"])
    [d] = await deliveries(client, admin, ep["id"])
    assert d["status"] == "failed" and d["attempts"] == 2 and d["max_attempts"] == 2 and d["next_attempt_at"] is None
    r = await client.get(f"/v1/webhook-endpoints/{ep['id']}", headers=admin)
    assert r.json()["status"] == "failing" and r.json()["active"] is True and r.json()["failing_since"]
    events, _ = await read_from(client, admin, cursor, type="webhook_endpoint.failing",
                                until=lambda evs: any(e["data"]["id"] == ep["id"] for e in evs))
    [failing] = [e for e in events if e["data"]["id"] == ep["id"]]
    assert failing["data"]["delivery"] == d["id"] and failing["data"]["secret"] is None
    assert ep["secret"] not in json.dumps(failing)
    # the ops endpoint hears about it (it gets 500 too, but it was told)
    await run_worker(watcher["id"])
    assert any(orjson.loads(s.body)["type"] == "webhook_endpoint.failing" for s in hook.requests if s.path == "/ops")
    # the receiver is fixed; a redelivery succeeds and the endpoint is active again
    hook.default = 200
    r = await client.post(f"/v1/webhook-endpoints/{ep['id']}/deliveries/{d['id']}/redeliver", headers=admin)
    assert r.status_code == 202 and r.json()["max_attempts"] == 3
    await run_worker(ep["id"])
    [d] = await deliveries(client, admin, ep["id"])
    assert d["status"] == "delivered" and d["attempts"] == 3
    assert (await client.get(f"/v1/webhook-endpoints/{ep['id']}", headers=admin)).json()["status"] == "active"
    assert (await deliveries(client, admin, ep["id"], status="failed")) == []


async def test_rotation_signs_with_both_secrets_during_the_overlap(client, admin, receivers):
    hook = receivers()
    ep = await create_endpoint(client, admin, hook.url, ["product.created"])
    r = await client.post(f"/v1/webhook-endpoints/{ep['id']}/rotate-secret", headers=admin,
                          json={"overlap_seconds": 600})
    new = r.json()["secret"]
    await create_product(client, admin)
    await run_worker(ep["id"])
    seen = hook.requests[-1]
    header = seen.headers["webhook-signature"]
    assert header.count("v1=") == 2
    assert verify(new, header, seen.body) and verify(ep["secret"], header, seen.body)
    t = seen.headers["webhook-timestamp"]
    assert header.split(",") == [f"t={t}",  # the new secret's signature first, then the old one's
                                 "v1=" + hmac.new(new.encode(), f"{t}.".encode() + seen.body, hashlib.sha256).hexdigest(),
                                 "v1=" + hmac.new(ep["secret"].encode(), f"{t}.".encode() + seen.body,
                                                  hashlib.sha256).hexdigest()]
    clock.advance(timedelta(seconds=601))  # the overlap is over: the new secret alone
    await create_product(client, admin)
    await run_worker(ep["id"])
    seen = hook.requests[-1]
    header = seen.headers["webhook-signature"]
    assert header.count("v1=") == 1
    assert verify(new, header, seen.body) and not verify(ep["secret"], header, seen.body)
    r = await client.get(f"/v1/webhook-endpoints/{ep['id']}", headers=admin)
    assert r.json()["secret_rotation"] is None


async def test_a_disabled_endpoint_gets_nothing_until_switched_on(client, admin, receivers):
    hook = receivers()
    ep = await create_endpoint(client, admin, hook.url, ["product.created"])
    await create_product(client, admin)
    while await delivery.fan_out():  # its delivery is written while the endpoint is on...
        pass
    r = await client.patch(f"/v1/webhook-endpoints/{ep['id']}", headers=admin, json={"active": False})
    assert r.status_code == 200
    await run_worker(ep["id"])
    assert hook.requests == []  # ...and waits while it is off
    await create_product(client, admin)  # while switched off: not fanned out to it at all
    await run_worker(ep["id"])
    await client.patch(f"/v1/webhook-endpoints/{ep['id']}", headers=admin, json={"active": True})
    await run_worker(ep["id"])
    assert len(hook.requests) == 1 and len(await deliveries(client, admin, ep["id"])) == 1


WORKER = """
import asyncio, json, sys
from app.events import delivery
from app.core.db import dispose_engine, get_engine

async def main():
    get_engine()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # both start together
    out = await delivery.deliver_due(sys.argv[1:], concurrency=16)
    await dispose_engine()
    print(json.dumps(out), flush=True)

asyncio.run(main())
"""


async def test_two_workers_never_send_one_delivery_twice(client, admin, receivers, backend):
    """Two worker processes, started at the same moment, claim from one pile of due deliveries
    (FOR UPDATE SKIP LOCKED): every delivery reaches the receiver exactly once. A long timeout, so
    a slow machine cannot turn an answer into a retry (a second attempt may legitimately repeat)."""
    if backend == "sqlite":
        pytest.skip("SQLite runs one worker (its writers are serialized); the claim is tested on PostgreSQL")
    hook = receivers(delay=0.005)
    ep = await create_endpoint(client, admin, hook.url, ["order.created"])
    channel = uid("wk")
    n = 300
    async with unit_of_work() as session:
        await emit_many(session, [{"type": "order.created", "data": {"n": i}, "channel": channel} for i in range(n)])
    while await delivery.fan_out():
        pass
    env = dict(os.environ, DATABASE_URL=DATABASE_URL, DB_POOL_SIZE="3", WEBHOOK_TIMEOUT_SECONDS="120")
    procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", WORKER, ep["id"], cwd=ROOT, env=env,
                                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                  stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        assert (await asyncio.wait_for(p.stdout.readline(), 60)).strip() == b"ready"
    for p in procs:
        p.stdin.write(b"go\n")
        await p.stdin.drain()
    results = []
    for p in procs:
        out, err = await asyncio.wait_for(p.communicate(), 300)
        assert p.returncode == 0, err.decode()
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    by_id = hook.by_id()
    assert len(by_id) == n, (len(by_id), results)
    assert all(len(v) == 1 for v in by_id.values()), [k for k, v in by_id.items() if len(v) > 1][:5]
    assert sorted(orjson.loads(v[0].body)["data"]["n"] for v in by_id.values()) == list(range(n))
    assert all(r.get("delivered", 0) > 0 for r in results), results  # both took a share
    assert sum(r.get("delivered", 0) for r in results) == n, results
    log = await deliveries(client, admin, ep["id"])
    assert len(log) == n and all(d["status"] == "delivered" and d["attempts"] == 1 for d in log)


async def test_a_claim_takes_no_more_than_asked(client, admin, black_hole):
    """(PostgreSQL once claimed every due row when the LIMITed, SKIP LOCKED subquery was an
    `id IN (…)`: each rescan of it skipped the rows just locked and found others.)"""
    ep = await create_endpoint(client, admin, black_hole.url, ["order.created"])
    async with unit_of_work() as session:
        await emit_many(session, [{"type": "order.created", "data": {"n": i}, "channel": uid("cl")} for i in range(60)])
    while await delivery.fan_out():
        pass
    for n in (1, 5, 16):
        jobs = await delivery.claim(n, [ep["id"]])
        assert len(jobs) == n
    log = await deliveries(client, admin, ep["id"], status="delivering")
    assert len(log) == 22 and all(d["attempts"] == 1 for d in log)
    assert len(await deliveries(client, admin, ep["id"], status="pending")) == 38
