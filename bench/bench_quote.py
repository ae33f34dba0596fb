"""Quote benchmark: 10-line and 100-line baskets against 50 active promotions.

    .venv/bin/python bench/bench_quote.py --pg postgresql://postgres@127.0.0.1:5432

Prints
1. the engine alone (app.pricing.engine.quote, pure Python): CPU time per quote
   (time.process_time over many runs) — the DESIGN.md target is ≤ 2 ms for 10 lines;
2. the whole request POST /v1/pricing/quote through the in-process ASGI app (auth, rate
   limit, validation, 4 SQL statements on the database, JSON): wall and CPU time per request,
   one client after the other.
"""
import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import app_client, run_with_database  # noqa: E402

SKUS = [f"QB-{i:04d}" for i in range(300)]
CATEGORIES = ["fashion/tees", "fashion/jeans", "grocery/wine", "grocery/coffee", "home"]


def promotions_spec(rng: random.Random) -> list[dict]:
    """50 active promotions of every type, on overlapping SKU sets and categories."""
    out = []
    for i in range(50):
        kind = ["buy_x_pay_y", "tiered_percent", "percent_off", "amount_off", "bundle_price"][i % 5]
        p = {"code": f"qb-promo-{i:02d}", "name": f"Promotion {i}", "type": kind, "priority": i % 7,
             "stackable": i % 3 != 0}
        if kind == "buy_x_pay_y":
            p["params"] = {"x": 3, "y": 2}
        elif kind == "tiered_percent":
            p["params"] = {"tiers": [{"min_quantity": 3, "percent_bp": 300}, {"min_quantity": 6, "percent_bp": 800}]}
        elif kind == "percent_off":
            p["params"] = {"percent_bp": 500 + 100 * (i % 5)}
        elif kind == "amount_off":
            p["params"] = {"amount": 200, "per": "unit"}
        else:
            a, b = rng.sample(SKUS[:100], 2)
            p["params"] = {"items": [{"sku": a, "quantity": 1}, {"sku": b, "quantity": 1}], "amount": 1500}
        if kind != "bundle_price":
            if i % 2:
                p["skus"] = rng.sample(SKUS[:150], 30)
            else:
                p["categories"] = [CATEGORIES[i % len(CATEGORIES)]]
        if not p["stackable"]:
            p["priority"] = 100 + i  # exclusive ones each on their own priority (no conflicts)
        out.append(p)
    return out


def promotions_sparse(rng: random.Random) -> list[dict]:
    """50 active promotions as a retailer runs them: each on its own group of six products."""
    out = promotions_spec(rng)
    for i, p in enumerate(out):
        p.pop("categories", None)
        group = SKUS[6 * i:6 * i + 6]
        if p["type"] == "bundle_price":
            p["params"]["items"] = [{"sku": group[0], "quantity": 1}, {"sku": group[1], "quantity": 1}]
        else:
            p["skus"] = group
    return out


def engine_inputs(rng: random.Random, spec=promotions_spec):
    from app.pricing import engine, promotion_rules

    ctx = engine.Context("bench-web", "EUR", True, datetime.now(UTC))
    facts = {s: engine.SkuFacts(s, "standard", CATEGORIES[i % len(CATEGORIES)]) for i, s in enumerate(SKUS)}
    lists = [engine.PriceList("bench-retail", "EUR", ("bench-web",))]
    prices = [engine.Price("bench-retail", s, 500 + 37 * i) for i, s in enumerate(SKUS)]
    promos = []
    for p in spec(rng):
        promos.append(engine.Promotion(
            code=p["code"], type=p["type"], name=p["name"],
            params=promotion_rules.normalize_params(p["type"], p["params"]),
            skus=frozenset(p["skus"]) if p.get("skus") else None,
            categories=tuple(p["categories"]) if p.get("categories") else None,
            priority=p["priority"], stackable=p["stackable"]))
    return ctx, facts, lists, prices, promos, {"standard": 1900, "reduced": 700}


def basket(rng: random.Random, n: int, pool: list[str] = SKUS[:150]) -> list[tuple[str, int]]:
    return [(s, rng.randint(1, 4)) for s in rng.sample(pool, n)]


def bench_engine() -> None:
    from app.pricing import engine

    for label, spec, pool in (("dense: every promotion overlaps the basket", promotions_spec, SKUS[:150]),
                              ("sparse: each promotion on its own 6 products", promotions_sparse, SKUS)):
        rng = random.Random(7)
        ctx, facts, lists, prices, promos, tax = engine_inputs(rng, spec)
        print(label)
        for n, runs in ((10, 2000), (100, 200)):
            baskets = [[engine.LineIn(s, q) for s, q in basket(rng, n, pool)] for _ in range(20)]
            applied = [len(engine.quote(ctx, b, facts, lists, prices, promos, tax).promotions) for b in baskets]
            t0 = time.process_time()
            for i in range(runs):
                engine.quote(ctx, baskets[i % len(baskets)], facts, lists, prices, promos, tax)
            per = (time.process_time() - t0) / runs * 1000
            print(f"  engine, {n:3d} lines, 50 promotions ({statistics.mean(applied):4.1f} applied on average): "
                  f"{per:6.3f} ms CPU per quote")


SIZES = ("XS", "S", "M", "L", "XL")


async def load_pricing(client, admin: dict, channel: str = "bench-web", variants_per_product: int = 1) -> None:
    """A web channel, the 300 SKUs (`variants_per_product` to a product) visible in it, a price list,
    a tax rate and the 50 promotions of promotions_spec, through the API."""
    r = await client.post("/v1/channels", headers=admin, json={
        "code": channel, "name": "Bench", "type": "web", "currency": "EUR", "country": "DE"})
    assert r.status_code == 201, r.text
    n = variants_per_product
    rows = "\n".join(
        '{"sku": "%s", "product_handle": "qb-%s", "product_title": "Bench %s", "status": "active", '
        '"category": "%s", "channels": ["%s"]%s}' % (
            s, SKUS[i - i % n].lower(), SKUS[i - i % n], CATEGORIES[i // n % len(CATEGORIES)], channel,
            ', "options": {"size": "%s"}' % SIZES[i % n] if n > 1 else "")
        for i, s in enumerate(SKUS))
    r = await client.post("/v1/catalog/import", content=rows, headers=admin | {"Content-Type": "application/x-ndjson"})
    assert r.status_code == 200 and r.json()["failed"] == 0, r.text[:300]
    r = await client.post("/v1/price-lists", headers=admin, json={"code": "bench-retail", "currency": "EUR",
                                                                  "channels": [channel]})
    assert r.status_code == 201, r.text
    r = await client.put("/v1/price-lists/bench-retail/prices", headers=admin,
                         json=[{"sku": s, "amount": 500 + 37 * i} for i, s in enumerate(SKUS)])
    assert r.status_code == 200, r.text
    r = await client.post("/v1/tax-rates", headers=admin, json={"country": "DE", "tax_class": "standard", "rate_bp": 1900})
    assert r.status_code in (200, 201), r.text
    for p in promotions_spec(random.Random(7)):
        r = await client.post("/v1/promotions", headers=admin, json=p)
        assert r.status_code == 201, r.text


async def bench_http(database_url: str) -> None:
    rng = random.Random(11)
    async with app_client(database_url) as (client, admin):
        await load_pricing(client, admin)
        for n, runs in ((10, 300), (100, 100)):
            bodies = [{"channel": "bench-web", "lines": [{"sku": s, "quantity": q} for s, q in basket(rng, n)]}
                      for _ in range(20)]
            for b in bodies[:5]:  # warm up
                assert (await client.post("/v1/pricing/quote", json=b, headers=admin)).status_code == 200
            walls = []
            c0 = time.process_time()
            client.meter.reset()
            for i in range(runs):
                t0 = time.perf_counter()
                r = await client.post("/v1/pricing/quote", json=bodies[i % len(bodies)], headers=admin)
                walls.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
            cpu = (time.process_time() - c0) / runs * 1000
            server = client.meter.seconds / client.meter.requests * 1000
            walls.sort()
            print(f"POST /v1/pricing/quote, {n:3d} lines: server CPU {server:6.2f} ms per request "
                  f"(whole process incl. the test client: {cpu:6.2f} ms); wall p50 {walls[len(walls) // 2] * 1000:6.2f} ms, "
                  f"p99 {walls[int(len(walls) * 0.99) - 1] * 1000:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", help="PostgreSQL server URL: the HTTP part runs on a scratch database created and dropped here")
    parser.add_argument("--engine-only", action="store_true")
    args = parser.parse_args()
    bench_engine()
    if not args.engine_only:
        run_with_database(args.pg, bench_http)


if __name__ == "__main__":
    main()
