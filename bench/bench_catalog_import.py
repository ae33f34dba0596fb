"""Catalog import benchmark: 50,000 variants (10,000 products × 5 sizes) as NDJSON.

    # PostgreSQL (the figure in the README): a scratch database is created and dropped
    .venv/bin/python bench/bench_catalog_import.py --pg postgresql://postgres@127.0.0.1:5432
    # or any database URL (it is migrated first; use an empty one)
    DATABASE_URL=sqlite+aiosqlite:////tmp/bench.db .venv/bin/python bench/bench_catalog_import.py

It drives the real endpoint (POST /v1/catalog/import through the ASGI app with all
middleware, in-process, no network) and prints, for
1. the first import (everything created),
2. the same file again (everything unchanged: no writes, no events),
3. a file where every 10th variant's title changes and every 5th product is archived,
the seconds and variants per second. Target (DESIGN.md): ≤ 10 s for the first import.
"""
import argparse
import asyncio
import os
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = ["XS", "S", "M", "L", "XL"]
COLOURS = ["black", "white", "navy", "grey", "red", "green", "sand", "blue"]
CATEGORIES = ["fashion/t-shirts", "fashion/hoodies", "fashion/jeans", "grocery/wine", "grocery/cheese", "home/kitchen"]


def generate(products: int, run: str, variant_title=None, status=None) -> bytes:
    import orjson

    from app.catalog.codes import make_gtin

    lines = []
    n = 0
    for p in range(products):
        handle = f"bench-{run}-{p:05d}"
        colour = COLOURS[p % len(COLOURS)]
        for i, size in enumerate(SIZES):
            row = {
                "sku": f"B{run}-{p:05d}-{size}".upper(), "product_handle": handle,
                "gtin": make_gtin(f"21{run_digits(run)}{n:07d}"),
                "options": {"size": size, "colour": colour}, "weight_grams": 150 + 10 * i,
                "attributes": {"fit": "regular"},
            }
            if i == 0:  # product fields once per product
                row.update({"product_title": f"Bench product {p}", "status": (status or (lambda _: "active"))(p),
                            "category": CATEGORIES[p % len(CATEGORIES)], "tax_class": "standard",
                            "channels": ["bench-web"], "product_attributes": {"brand": "Bench", "line": p % 50}})
            if variant_title is not None:
                title = variant_title(n)
                if title:
                    row["title"] = title
            lines.append(orjson.dumps(row))
            n += 1
    return b"\n".join(lines) + b"\n"


def run_digits(run: str) -> str:
    return str(int(run, 16) % 1000).zfill(3)


async def bench(database_url: str, products: int) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("RATE_LIMIT", "1000000/minute")
    import httpx

    from app.auth.service import create_api_key
    from app.cli import run_migrations
    from app.core.db import dispose_engine, sessionmaker

    await asyncio.to_thread(run_migrations, database_url)
    from app.main import app

    async with sessionmaker()() as session:
        _, secret = await create_api_key(session, name="bench", role="admin")
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/x-ndjson"}
    transport = httpx.ASGITransport(app=app)
    run = secrets.token_hex(2)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as client:
        r = await client.get("/v1/channels/bench-web", headers=headers)
        if r.status_code == 404:
            r = await client.post("/v1/channels", headers=headers | {"Content-Type": "application/json"},
                                  json={"code": "bench-web", "name": "Bench", "type": "web", "currency": "EUR", "country": "DE"})
            assert r.status_code == 201, r.text
        first = generate(products, run)
        variants = products * len(SIZES)
        print(f"database: {database_url.split('@')[-1]}")
        print(f"file: {variants} variants, {products} products, {len(first) / 1e6:.1f} MB NDJSON")

        async def timed(label: str, body: bytes, expect: dict) -> None:
            t0 = time.perf_counter()
            r = await client.post("/v1/catalog/import", content=body, headers=headers)
            dt = time.perf_counter() - t0
            assert r.status_code == 200, r.text[:500]
            result = r.json()
            for k, v in expect.items():
                assert result[k] == v, (k, result)
            print(f"{label:<44} {dt:6.2f} s  {variants / dt:9,.0f} variants/s   "
                  f"(created {result['created']}, updated {result['updated']}, unchanged {result['unchanged']}, "
                  f"failed {result['failed']})")

        await timed("1. first import (all created)", first, {"created": variants, "failed": 0})
        await timed("2. same file again (all unchanged)", first, {"unchanged": variants, "failed": 0})
        changed = generate(products, run, variant_title=lambda n: f"Variant {n} v2" if n % 10 == 0 else None,
                           status=lambda p: "archived" if p % 5 == 0 else "active")
        await timed("3. 10% titles + 20% products changed", changed, {"failed": 0})
    await dispose_engine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", help="PostgreSQL server URL: run against a scratch database created and dropped here")
    parser.add_argument("--products", type=int, default=10_000, help="products (× 5 sizes = variants)")
    args = parser.parse_args()
    if args.pg:
        import asyncpg

        base = args.pg.rstrip("/")
        name = f"uc_bench_{secrets.token_hex(3)}"

        async def admin_sql(sql: str) -> None:
            conn = await asyncpg.connect(base + "/postgres")
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
        try:
            url = base.replace("postgresql://", "postgresql+asyncpg://") + "/" + name
            asyncio.run(bench(url, args.products))
        finally:
            asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        url = os.environ.get("DATABASE_URL")
        if not url:
            parser.error("set DATABASE_URL or pass --pg")
        asyncio.run(bench(url, args.products))


if __name__ == "__main__":
    main()
