"""Listing feed benchmark (issue 13): the whole feed of 50,000 variants over HTTP, then an
incremental pull after 1 % of the listings changed.

    # PostgreSQL (the figure in the README): a scratch database is created and dropped
    .venv/bin/python bench/bench_listings.py --pg postgresql://postgres@127.0.0.1:5432
    # SQLite: a scratch file
    .venv/bin/python bench/bench_listings.py --sqlite
    [--variants 50000] [--limit 1000]

Data: a marketplace channel `lf-market` selling from a warehouse and two stores (a third store
is not the channel's), a price list, a tax rate, a 10 % promotion on one category (all through
the in-process app), and 10,000 products × 5 sizes, visible in the channel, with a price each and
stock (some safety stock) at all four locations, inserted set-based with hour-old timestamps (the
import has its own benchmark, bench_catalog_import.py); then ANALYZE on PostgreSQL.

Then `uvicorn app.main:app` (one worker) serves a copy of app/ taken at start, and an httpx
client with a marketplace key pages through GET /v1/channels/lf-market/listings?limit=1000 from
the first page to the last, twice (the first walk fills the per-SKU caches of catalog facts and
prices; the second is the steady state), printing for each: seconds, pages/s, variants/s, MB,
the server's CPU (the uvicorn process, /proc) and PostgreSQL's backends' CPU for the scratch
database. Then 1 % of the variants change (half get a new price, half new stock at a store, over
HTTP) and the connector's incremental pull (`updated_since` = the `as_of` of the last walk) runs:
how many listings came back (must be exactly the changed ones) and how long it took.

The server runs with LISTINGS_WATERMARK_LAG_SECONDS=2 (the default is 60 s): `as_of` lies that
long before a walk began; with the default the pulls below would re-send a minute of changes
(the bench's own) and the bench would have to wait that long between its steps.
"""
import argparse
import asyncio
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from bench_http import serve  # noqa: E402
from common import ROOT, app_client, new_api_key, pg_backends_cpu, process_tree_cpu, run_with_database  # noqa: E402

CHANNEL = "lf-market"
LIST = "lf-retail"
SIZES = ["XS", "S", "M", "L", "XL"]
CATEGORIES = ["fashion/t-shirts", "fashion/hoodies", "home/kitchen", "grocery/coffee"]
LAG_SECONDS = 2.0
JSON = {"Content-Type": "application/json"}


def sku_of(p: int, size: str) -> str:
    return f"LF-{p:05d}-{size}"


async def insert_catalog(database_url: str, products: int, locations: dict[str, str], list_id: str) -> list[str]:
    """Products (5 sizes each), their channel, prices and stock at every location, inserted
    set-based (executemany) with timestamps an hour old: the bench measures the feed, not the
    load (bench_catalog_import.py measures the import)."""
    from datetime import timedelta

    from sqlalchemy import insert

    from app.catalog.service import P, PC, V
    from app.core import clock
    from app.core.db import unit_of_work
    from app.core.ids import new_ids
    from app.inventory.service import SL
    from app.pricing.models import PriceEntry

    rng = random.Random(7)
    then = clock.now() - timedelta(hours=1)
    pids = new_ids("prod", products)
    vids = new_ids("var", products * len(SIZES))
    skus = [sku_of(p, s) for p in range(products) for s in SIZES]
    rows_p = [{"id": pid, "handle": f"lf-{p:05d}", "type": "standard", "title": f"Listing product {p}",
               "description": None, "status": "active", "category": CATEGORIES[p % len(CATEGORIES)], "attributes": {},
               "tax_class": "standard", "version": 1, "created_at": then, "updated_at": then}
              for p, pid in enumerate(pids)]
    rows_v = [{"id": vids[n], "product_id": pids[n // len(SIZES)], "sku": s, "gtin": f"23{n:011d}",
               "title": SIZES[n % len(SIZES)], "options": {"size": SIZES[n % len(SIZES)]}, "attributes": {},
               "weight_grams": 200, "track_inventory": True, "is_bundle": False, "position": n % len(SIZES),
               "created_at": then, "updated_at": then} for n, s in enumerate(skus)]
    rows_pc = [{"product_id": pid, "channel_code": CHANNEL} for pid in pids]
    rows_pe = [{"price_list_id": list_id, "sku": s, "min_quantity": 1, "amount": rng.randint(500, 9999),
                "updated_at": then} for s in skus]
    lvl_ids = new_ids("lvl", len(skus) * len(locations))
    rows_sl = [{"id": lvl_ids[i * len(skus) + n], "sku": s, "location_id": loc_id, "on_hand": rng.randint(0, 30),
                "reserved": 0, "safety_stock": rng.choice((0, 0, 1)), "updated_at": then}
               for i, loc_id in enumerate(locations.values()) for n, s in enumerate(skus)]
    async with unit_of_work() as session:
        for table, rows in ((P, rows_p), (V, rows_v), (PC, rows_pc), (PriceEntry.__table__, rows_pe), (SL, rows_sl)):
            for i in range(0, len(rows), 10_000):
                await session.execute(insert(table), rows[i:i + 10_000])
    return skus


async def load(database_url: str, products: int) -> dict:
    async with app_client(database_url) as (client, admin):
        async def ok(r):
            assert r.status_code in (200, 201), r.text[:500]
            return r.json()

        t0 = time.perf_counter()
        locations = {}
        for code, type_ in {"lf-wh": "warehouse", "lf-st1": "store", "lf-st2": "store", "lf-far": "store"}.items():
            loc = await ok(await client.post("/v1/locations", headers=admin,
                                             json={"code": code, "name": code, "type": type_}))
            locations[code] = loc["id"]
        await ok(await client.post("/v1/tax-rates", headers=admin, json={"country": "DE", "tax_class": "standard",
                                                                         "rate_bp": 1900}))
        price_list = await ok(await client.post("/v1/price-lists", headers=admin, json={"code": LIST, "currency": "EUR"}))
        await ok(await client.post("/v1/channels", headers=admin, json={
            "code": CHANNEL, "name": "Marketplace", "type": "marketplace", "currency": "EUR", "country": "DE",
            "price_lists": [LIST], "fulfillment_locations": ["lf-wh", "lf-st1", "lf-st2"]}))  # not lf-far
        await ok(await client.post("/v1/promotions", headers=admin, json={
            "code": "lf-tees-10", "name": "Tees -10 %", "type": "percent_off", "params": {"percent_bp": 1000},
            "categories": ["fashion/t-shirts"], "channels": [CHANNEL]}))
        skus = await insert_catalog(database_url, products, locations, price_list["id"])
        if database_url.startswith("postgresql"):
            from sqlalchemy import text

            from app.core.db import get_engine

            async with get_engine().connect() as conn:  # as autovacuum would soon
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("ANALYZE"))
        print(f"  loaded {len(skus)} variants, their prices and stock at {len(locations)} locations in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        marketplace = await new_api_key(name="bench-marketplace", role="marketplace", channel=CHANNEL)
        return {"admin": admin, "marketplace": {"Authorization": f"Bearer {marketplace}"}, "skus": skus}


async def walk(client, base: str, headers: dict, limit: int, **params) -> tuple[list[dict], str, int, int]:
    """Every page: (listings, as_of, pages, bytes)."""
    out, cursor, as_of, pages, size = [], None, None, 0, 0
    while True:
        q = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        r = await client.get(f"{base}/v1/channels/{CHANNEL}/listings", params=q, headers=headers)
        assert r.status_code == 200, r.text[:500]
        size += len(r.content)
        body = r.json()
        out += body["data"]
        pages += 1
        as_of = as_of or body["as_of"]
        cursor = body["next_cursor"]
        if cursor is None:
            return out, as_of, pages, size


async def timed_walk(label: str, client, base: str, pid: int, database: str | None, headers: dict, limit: int,
                     **params) -> tuple[list[dict], str, float]:
    cpu0, db0 = process_tree_cpu(pid), sum(pg_backends_cpu(database).values()) if database else 0.0
    t0 = time.perf_counter()
    listings, as_of, pages, size = await walk(client, base, headers, limit, **params)
    dt = time.perf_counter() - t0
    cpu = process_tree_cpu(pid) - cpu0
    db = (sum(pg_backends_cpu(database).values()) - db0) if database else None
    db_text = f", PostgreSQL CPU {db:5.2f} s" if db is not None else ""
    print(f"{label:<34} {len(listings):6d} listings {pages:3d} pages in {dt:6.2f} s: {pages / dt:6.1f} pages/s, "
          f"{len(listings) / dt:8,.0f} variants/s, {size / 1e6:5.1f} MB; server CPU {cpu:5.2f} s{db_text}",
          flush=True)
    return listings, as_of, dt


async def bench(database_url: str, products: int, limit: int, code: Path) -> None:
    import httpx

    print(f"database: {database_url.split('@')[-1]}", flush=True)
    data = await load(database_url, products)
    database = database_url.rsplit("/", 1)[-1] if database_url.startswith("postgresql") else None
    env = dict(os.environ, DATABASE_URL=database_url, RATE_LIMIT="100000000/minute",
               LISTINGS_WATERMARK_LAG_SECONDS=str(LAG_SECONDS), DB_POOL_SIZE="5")
    env.pop("INLINE_WORKER", None)
    with serve("app.main:app", 1, env, app_dir=code) as (base, pid):
        async with httpx.AsyncClient(timeout=120) as client:
            first, _, _ = await timed_walk("full walk 1 (caches cold)", client, base, pid, database,
                                           data["marketplace"], limit)
            assert len(first) == len(data["skus"]), (len(first), len(data["skus"]))
            assert len({x["sku"] for x in first}) == len(first)
            listings, as_of, _ = await timed_walk("full walk 2 (steady state)", client, base, pid, database,
                                                  data["marketplace"], limit)
            priced = sum(1 for x in listings if x["price"] is not None)
            promoted = sum(1 for x in listings if x["compare_at_price"] is not None)
            stocked = sum(x["available_to_sell"] for x in listings)
            print(f"  {priced} priced ({promoted} by the promotion), {stocked} units available to sell in all")

            rng = random.Random(5)
            changed = rng.sample(data["skus"], max(2, len(data["skus"]) // 100))
            half = len(changed) // 2
            t0 = time.perf_counter()
            r = await client.put(f"{base}/v1/price-lists/{LIST}/prices", headers=data["admin"] | JSON,
                                 json=[{"sku": s, "amount": rng.randint(500, 9999)} for s in changed[:half]])
            assert r.status_code == 200, r.text[:500]
            r = await client.put(f"{base}/v1/inventory/levels", headers=data["admin"] | JSON, json={  # never the loaded count
                "location": "lf-st1", "levels": [{"sku": s, "on_hand": rng.randint(31, 40)} for s in changed[half:]]})
            assert r.status_code == 200, r.text[:500]
            print(f"  changed {half} prices and {len(changed) - half} stock levels in "
                  f"{time.perf_counter() - t0:.2f} s (two requests)", flush=True)
            r = await client.put(f"{base}/v1/inventory/levels", headers=data["admin"] | JSON, json={
                "location": "lf-far", "levels": [{"sku": s, "on_hand": 99} for s in data["skus"][:500]]})
            assert r.status_code == 200, r.text[:500]  # not the channel's: nothing to re-send
            pulled, next_as_of, dt = await timed_walk("incremental pull (updated_since)", client, base, pid, database,
                                                      data["marketplace"], limit, updated_since=as_of)
            got = {x["sku"] for x in pulled}
            print(f"  came back: {len(got)} listings for {len(changed)} changed; exactly those: {got == set(changed)}; "
                  f"next as_of {next_as_of}")
            if got != set(changed):
                raise SystemExit(f"FAILED: {len(got - set(changed))} extra, {len(set(changed) - got)} missing")
            # the next pulls, nothing changed meanwhile: the first repeats what changed within the margin
            # before the last one began (as_of lies LAG_SECONDS before it), the one after is empty
            for label in ("next pull (repeats the margin)", "the pull after it"):
                await asyncio.sleep(LAG_SECONDS + 0.2)
                t0 = time.perf_counter()
                r = await client.get(f"{base}/v1/channels/{CHANNEL}/listings", headers=data["marketplace"],
                                     params={"limit": limit, "updated_since": next_as_of})
                assert r.status_code == 200, r.text[:500]
                print(f"  {label}: {len(r.json()['data'])} listings in {(time.perf_counter() - t0) * 1000:.0f} ms")
                next_as_of = r.json()["as_of"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", help="PostgreSQL server URL: run against a scratch database created and dropped here")
    parser.add_argument("--sqlite", action="store_true", help="run against a scratch SQLite file")
    parser.add_argument("--variants", type=int, default=50_000, help="variants (5 per product)")
    parser.add_argument("--limit", type=int, default=1000, help="page size")
    args = parser.parse_args()
    products = max(1, args.variants // len(SIZES))
    with tempfile.TemporaryDirectory(prefix="bench_listings_") as tmp:
        # others may edit the working tree meanwhile: the server runs a copy of app/ taken now
        code = Path(tmp) / "snapshot"
        code.mkdir()
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for name in ("app", "migrations"):
            shutil.copytree(ROOT / name, code / name, ignore=ignore)
        shutil.copy(ROOT / "alembic.ini", code / "alembic.ini")
        sys.path.insert(0, str(code))
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        print(f"code: a copy of app/ and migrations/ at {head or '?'} plus the working tree's changes", flush=True)
        if args.sqlite:
            url = f"sqlite+aiosqlite:///{tmp}/bench_{secrets.token_hex(3)}.db"
            asyncio.run(bench(url, products, args.limit, code))
        else:
            run_with_database(args.pg, lambda url: bench(url, products, args.limit, code))


if __name__ == "__main__":
    main()
