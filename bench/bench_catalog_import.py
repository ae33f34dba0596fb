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
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import app_client, run_with_database  # noqa: E402

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
    async with app_client(database_url) as (client, admin):
        await _bench(client, admin | {"Content-Type": "application/x-ndjson"}, database_url, products)


async def _bench(client, headers: dict, database_url: str, products: int) -> None:
    run = secrets.token_hex(2)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", help="PostgreSQL server URL: run against a scratch database created and dropped here")
    parser.add_argument("--products", type=int, default=10_000, help="products (× 5 sizes = variants)")
    args = parser.parse_args()
    run_with_database(args.pg, lambda url: bench(url, args.products))

if __name__ == "__main__":
    main()
