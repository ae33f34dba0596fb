"""Webhook delivery throughput: events delivered per second by one and by two worker processes
to a local receiver, on a scratch PostgreSQL database (or DATABASE_URL; SQLite: one worker).

    .venv/bin/python bench/bench_webhooks.py --pg postgresql://postgres@127.0.0.1:5432 [--events 500] [--workers 1,2]

Per run: N `order.created` events are written in one transaction; the workers (separate
processes running app.events.delivery: fan-out, claim with FOR UPDATE SKIP LOCKED, signed POST
with httpx, outcome recorded) start together and work until every event has reached the
receiver. Printed: seconds from the start signal to the last delivery, events/s, the workers'
CPU per delivery, and duplicates seen by the receiver (must be 0). The receiver (tests/events/
receiver.py, an asyncio HTTP server in this process's own thread) answers 200 at once.
"""
import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

from common import ROOT, app_client, run_with_database  # noqa: E402  (sets sys.path)

os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_URLS", "true")  # the receiver listens on 127.0.0.1

WORKER = """
import asyncio, json, sys, time
from app.events import delivery
from app.core.db import dispose_engine, get_engine

async def left(endpoint):
    from sqlalchemy import func, select
    from app.core.db import unit_of_work
    from app.events.models import Event, WebhookDelivery as D
    async with unit_of_work() as session:
        due = (await session.execute(select(func.count()).select_from(D).where(
            D.endpoint_id == endpoint, D.status.in_(("pending", "delivering"))))).scalar_one()
        fresh = (await session.execute(select(func.count()).select_from(Event).where(~Event.delivered))).scalar_one()
    return due + fresh

async def main():
    get_engine()
    await delivery.claim(0, ["none"])  # warm: modules, a connection, compiled statements
    async with delivery.new_client():
        pass
    import app.channels.service  # noqa: F401
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    cpu = time.process_time()
    done = {}
    while True:  # like the worker's loop, but ends once nothing is left for this endpoint
        out = await delivery.run(sys.argv[1:2], concurrency=int(sys.argv[2]))
        for k, v in out.items():
            done[k] = done.get(k, 0) + v
        if not any(out.values()) and not await left(sys.argv[1]):
            break
        if not any(out.values()):
            await asyncio.sleep(0.02)  # another worker holds what is left
    await dispose_engine()
    print(json.dumps({**done, "cpu": time.process_time() - cpu}), flush=True)

if len(sys.argv) > 3 and sys.argv[3] == "profile":
    import cProfile
    cProfile.run("asyncio.run(main())", "/tmp/bench_webhooks.prof")
else:
    asyncio.run(main())
"""


async def scenario(client, admin, url: str, database_url: str, events: int, workers: int, receiver,
                   concurrency: int) -> dict:
    from app.core.db import unit_of_work
    from app.events.service import emit_many

    r = await client.post("/v1/webhook-endpoints", headers=admin, json={"url": url, "events": ["order.created"]})
    assert r.status_code == 201, r.text
    endpoint = r.json()["id"]
    async with unit_of_work() as session:
        await emit_many(session, [{"type": "order.created", "data": {"n": i, "total": {"amount": 1999, "currency": "EUR"}},
                                   "channel": "bench"} for i in range(events)])
    receiver.requests.clear()
    receiver.count = 0
    env = dict(os.environ, DATABASE_URL=database_url, PYTHONPATH=str(ROOT))
    extra = ["profile"] if os.environ.get("BENCH_PROFILE") else []
    procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", WORKER, endpoint, str(concurrency), *extra,
                                                  cwd=ROOT, env=env,
                                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
             for _ in range(workers)]
    for p in procs:
        assert (await p.stdout.readline()).strip() == b"ready"
    t0 = time.perf_counter()
    for p in procs:
        p.stdin.write(b"go\n")
        await p.stdin.drain()
    while receiver.count < events:
        await asyncio.sleep(0.005)
        if time.perf_counter() - t0 > 300:
            raise SystemExit(f"only {receiver.count} of {events} delivered after 300 s")
    seconds = time.perf_counter() - t0
    results = []
    for p in procs:
        out, _ = await p.communicate()
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    ids = [s.headers["webhook-id"] for s in receiver.requests]
    await client.delete(f"/v1/webhook-endpoints/{endpoint}", headers=admin)
    return {"workers": workers, "events": events, "seconds": seconds, "per_second": events / seconds,
            "duplicates": len(ids) - len(set(ids)), "cpu_ms": 1000 * sum(r["cpu"] for r in results) / events,
            "shares": [r.get("delivered", 0) for r in results]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", help="PostgreSQL server URL (a scratch database is made); else DATABASE_URL")
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--concurrency", type=int, default=None, help="requests in flight per worker "
                                                                       "(default: the worker's CONCURRENCY)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.events.receiver import Receiver

    async def run(database_url: str) -> None:
        receiver = Receiver().start()
        try:
            async with app_client(database_url) as (client, admin):
                counts = [int(n) for n in args.workers.split(",")]
                if database_url.startswith("sqlite") and counts != [1]:
                    print("SQLite: one worker only")
                    counts = [1]
                print(f"{'workers':>7} {'events':>7} {'seconds':>8} {'events/s':>9} {'worker CPU/event':>17} "
                      f"{'duplicates':>10}  per worker")
                failed = False
                for n in counts:
                    from app.events import delivery

                    res = await scenario(client, admin, receiver.url, database_url, args.events, n, receiver,
                                         args.concurrency or delivery.CONCURRENCY)
                    print(f"{res['workers']:>7} {res['events']:>7} {res['seconds']:>8.2f} {res['per_second']:>9.0f} "
                          f"{res['cpu_ms']:>14.2f} ms {res['duplicates']:>10}  {res['shares']}")
                    failed |= res["duplicates"] > 0
                if failed:
                    raise SystemExit("a delivery reached the receiver twice")
        finally:
            receiver.stop()

    run_with_database(args.pg, run)


if __name__ == "__main__":
    main()
