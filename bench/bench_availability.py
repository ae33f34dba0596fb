"""Availability benchmark: 50 SKUs × 200 locations, GET /v1/availability for all 50 at once.

    .venv/bin/python bench/bench_availability.py --pg postgresql://postgres@127.0.0.1:5432

Builds 200 stores, 50 stocked SKUs (plus 5 bundles of them) and a channel fulfilled by every
store, then requests the availability of all 55 SKUs at all 200 locations (11,000 figures),
one client after the other, and prints wall p50/p99, the server's CPU per request and the SQL
statements one request runs (DESIGN.md target: p99 ≤ 20 ms).
"""
import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import app_client, run_with_database  # noqa: E402

LOCATIONS = 200
SKUS = [f"AV-{i:03d}" for i in range(50)]
BUNDLES = [f"AV-BOX-{i}" for i in range(5)]


async def load_stock(client, admin: dict, channel: str = "av-web", rng: random.Random | None = None) -> dict:
    """200 stores, 50 stocked SKUs and 5 bundles of them visible in `channel`, fulfilled by every store
    (the channel is created here, or its fulfillment locations set when it exists). Returns the
    query parameters of the all-SKUs availability request."""
    rng = rng or random.Random(3)
    codes = [f"av-store-{i:03d}" for i in range(LOCATIONS)]
    for i, code in enumerate(codes):
        r = await client.post("/v1/locations", headers=admin, json={
            "code": code, "name": f"Store {i}", "type": "store", "lat": 47 + rng.random() * 8, "lon": 6 + rng.random() * 9})
        assert r.status_code == 201, r.text
    r = await client.patch(f"/v1/channels/{channel}", headers=admin, json={"fulfillment_locations": codes})
    if r.status_code == 404:
        r = await client.post("/v1/channels", headers=admin, json={
            "code": channel, "name": "Bench", "type": "web", "currency": "EUR", "country": "DE", "fulfillment_locations": codes})
    assert r.status_code in (200, 201), r.text
    rows = [f'{{"sku": "{s}", "product_handle": "av-{s.lower()}", "product_title": "{s}", "status": "active", '
            f'"channels": ["{channel}"]}}' for s in SKUS]
    rows += [f'{{"sku": "{b}", "product_handle": "av-{b.lower()}", "product_title": "{b}", "status": "active", '
             f'"channels": ["{channel}"], "components": [{{"sku": "{SKUS[i]}", "quantity": 1}}, '
             f'{{"sku": "{SKUS[i + 10]}", "quantity": 2}}]}}' for i, b in enumerate(BUNDLES)]
    r = await client.post("/v1/catalog/import", content="\n".join(rows), headers=admin | {"Content-Type": "application/x-ndjson"})
    assert r.status_code == 200 and r.json()["failed"] == 0, r.text[:300]
    for code in codes:
        r = await client.put("/v1/inventory/levels", headers=admin, json={
            "location": code, "levels": [{"sku": s, "on_hand": rng.randint(0, 20), "safety_stock": rng.randint(0, 2)}
                                         for s in SKUS]})
        assert r.status_code == 200, r.text
    return {"skus": ",".join(SKUS + BUNDLES), "channel": channel, "near": "53.55,9.99"}


async def bench(database_url: str, runs: int) -> None:
    async with app_client(database_url) as (client, admin):
        params = await load_stock(client, admin)
        for _ in range(10):
            r = await client.get("/v1/availability", params=params, headers=admin)
            assert r.status_code == 200, r.text
        figures = sum(len(d["locations"]) for d in r.json()["data"])
        walls = []
        client.meter.reset()
        for _ in range(runs):
            t0 = time.perf_counter()
            r = await client.get("/v1/availability", params=params, headers=admin)
            walls.append(time.perf_counter() - t0)
        server = client.meter.seconds / client.meter.requests * 1000
        statements = await count_statements(lambda: client.get("/v1/availability", params=params, headers=admin))
        from app.core.db import sessionmaker
        from app.inventory import service
        async with sessionmaker()() as s:
            service_statements = await count_statements(lambda: service.availability(s, SKUS + BUNDLES))
        if "--parts" in sys.argv:
            from app.auth.principal import Principal
            from app.inventory import availability as av
            who = Principal(key_id="k", role="admin")
            async with sessionmaker()() as s:
                for label, fn in (("service.availability", lambda: service.availability(s, SKUS + BUNDLES)),
                                  ("availability.view", lambda: av.view(s, who, skus=SKUS + BUNDLES, channel="av-web",
                                                                        near=(53.55, 9.99), radius_km=None, location=None))):
                    ts = []
                    for _ in range(50):
                        t0 = time.perf_counter(); await fn(); ts.append(time.perf_counter() - t0)
                    ts.sort()
                    print(f"  {label}: p50 {ts[25] * 1000:.1f} ms, p99 {ts[-1] * 1000:.1f} ms")
        walls.sort()
        print(f"database: {database_url.split('@')[-1]}")
        print(f"GET /v1/availability, {len(SKUS)} SKUs + {len(BUNDLES)} bundles × {LOCATIONS} locations "
              f"({figures} location figures, sorted by distance): p50 {walls[len(walls) // 2] * 1000:.1f} ms, "
              f"p99 {walls[int(len(walls) * 0.99) - 1] * 1000:.1f} ms wall; server CPU {server:.1f} ms per request")
        print(f"SQL statements per request: {len(statements)} (API key, channel, catalog facts, stock read; "
              f"BEGIN/COMMIT not counted); service.availability alone: {len(service_statements)}")


async def count_statements(call) -> list[str]:
    """The SQL statements `call()` runs (transaction control left out)."""
    from app.core.db import sql_statements

    with sql_statements() as seen:
        await call()
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", help="PostgreSQL server URL: a scratch database is created and dropped")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--parts", action="store_true", help="also time the service and the view alone")
    args = parser.parse_args()
    run_with_database(args.pg, lambda url: bench(url, args.runs))


if __name__ == "__main__":
    main()
