"""Reports benchmark: the sales report over 1 million order lines on PostgreSQL, per group_by.

    .venv/bin/python bench/bench_reports.py [--pg postgresql://postgres@127.0.0.1:5432] [--lines 1000000]
        [--runs 3]
    DATABASE_URL=postgresql+asyncpg://…/db .venv/bin/python bench/bench_reports.py --pg ''   # measure again

Builds a scratch database (migrated like production), then generates the data set-based with
INSERT … SELECT generate_series (no row loop anywhere; foreign keys unchecked and secondary
indexes built after, while generating):
- 5 channels (web-de, app-de, pos-de, amazon-de in EUR; web-ch in CHF), 1 warehouse and 20
  stores, 5,000 products with one variant each, visible in every channel, priced, stocked at
  every location (105,000 stock levels), 100,000 customers (half consent to personalization);
- `--lines` order lines over lines/2.5 orders spread evenly over the year before now, 1 to 4
  lines each: 50 % web, 15 % app, 20 % POS sales at the 20 stores, 10 % marketplace, 5 % CHF;
  60 % by a known customer; 30 % of the online ones with a source and campaign; 10 % with a
  coupon; 3 % cancelled, 1 % waiting for payment; one fulfillment per order (5 % of orders split
  over two locations, 1 % of orders with a line split over two fulfillments); 4 % of orders with
  a returned unit; 50,000 carts with a source (earlier online touches for attribution).
Then, through the in-process app (real routing, auth and JSON):
- GET /v1/reports/sales for every group_by over the whole year (group_by=location over the last
  92 days, its limit), `--runs` times after a warm-up: median and best wall ms, groups on the
  first page (limit 500);
- the PostgreSQL CPU of each report statement over the whole year run in one backend without
  parallel workers (read from /proc; the work itself, less sensitive to what else the machine
  does than wall time);
- the customers report over the year, the inventory report (all locations; one store) and
  recommendations for 25 products with a customer.
Wall times depend on the machine's load: the load average is printed with them.
"""
import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import app_client, run_with_database  # noqa: E402

SKUS = 5_000
STORES = 20
CUSTOMERS = 100_000
CARTS = 50_000
COUNTED = ("orders", "order_lines", "fulfillments", "fulfillment_lines", "carts", "stock_levels")
BULK_TABLES = ("orders", "order_lines", "fulfillments", "fulfillment_lines", "carts", "customers", "stock_levels")

# :lines and :orders are bound; every statement is one INSERT … SELECT.
CHANNEL = """CASE WHEN i % 20 < 10 THEN 'web-de' WHEN i % 20 < 13 THEN 'app-de' WHEN i % 20 < 17 THEN 'pos-de'
                WHEN i % 20 < 19 THEN 'amazon-de' ELSE 'web-ch' END"""
STATUS = """CASE WHEN i % 33 = 0 THEN 'cancelled' WHEN i % 97 = 1 THEN 'pending_payment'
               WHEN i % 20 BETWEEN 13 AND 16 THEN 'fulfilled' WHEN i % 7 = 0 THEN 'confirmed' ELSE 'fulfilled' END"""
COUPON = "(i % 10 = 3 AND i % 20 NOT IN (17, 18))"
# order i at :now - 365 days + i * (365 days / orders) (:now one instant for the whole data set: its lines carry
# the same created_at); its store (POS sales, pickups) and currency, from its channel `ch`
CREATED = ":now::timestamptz - interval '365 days' + i * (interval '365 days' / :orders)"
STORE = "CASE WHEN ch = 'pos-de' OR i % 20 = 2 THEN 'st-' || lpad((1 + (i / 20) % 20)::text, 2, '0') END"
CURRENCY = "CASE WHEN ch = 'web-ch' THEN 'CHF' ELSE 'EUR' END"

GENERATE = [
    # --- reference data
    """INSERT INTO locations (id, code, name, type, can_ship, can_pickup, can_return, priority, active, version,
                              created_at, updated_at)
       SELECT 'loc_bench_' || lpad(i::text, 3, '0'), CASE WHEN i = 0 THEN 'wh-1' ELSE 'st-' || lpad(i::text, 2, '0') END,
              'Location ' || i, CASE WHEN i = 0 THEN 'warehouse' ELSE 'store' END, true, i > 0, i > 0,
              CASE WHEN i = 0 THEN 10 ELSE 100 END, true, 1, now(), now()
       FROM generate_series(0, 20) i""",
    """INSERT INTO channels (id, code, name, type, currency, country, prices_include_tax, price_lists,
                             fulfillment_locations, return_window_days, pickup_hold_days, sourcing_strategy,
                             max_splits, payment_timeout_minutes, version, created_at, updated_at)
       SELECT 'ch_bench_' || c.code, c.code, c.code, c.type, c.currency, c.country, true,
              CASE WHEN c.currency = 'EUR' THEN '["retail-eur"]' ELSE '["retail-chf"]' END::jsonb,
              CASE WHEN c.type = 'pos' THEN (SELECT jsonb_agg(code ORDER BY code) FROM locations WHERE type = 'store')
                   ELSE (SELECT jsonb_agg(code ORDER BY code) FROM locations) END,
              30, 3, 'default', 3, 60, 1, now(), now()
       FROM (VALUES ('web-de', 'web', 'EUR', 'DE'), ('app-de', 'app', 'EUR', 'DE'), ('pos-de', 'pos', 'EUR', 'DE'),
                    ('amazon-de', 'marketplace', 'EUR', 'DE'), ('web-ch', 'web', 'CHF', 'CH')) AS c(code, type, currency, country)""",
    """INSERT INTO products (id, handle, type, title, status, category, attributes, tax_class, version, created_at, updated_at)
       SELECT 'prod_bench_' || lpad(i::text, 5, '0'), 'p-' || i, 'standard', 'Product ' || i,
              CASE WHEN i % 20 = 19 THEN 'archived' ELSE 'active' END, 'cat-' || (i % 50), '{}'::jsonb, 'standard', 1,
              now(), now()
       FROM generate_series(0, :skus - 1) i""",
    """INSERT INTO variants (id, product_id, sku, title, options, attributes, track_inventory, is_bundle, position,
                             created_at, updated_at)
       SELECT 'var_bench_' || lpad(i::text, 5, '0'), 'prod_bench_' || lpad(i::text, 5, '0'), 'SKU-' || lpad(i::text, 5, '0'),
              'Variant ' || i, '{}'::jsonb, '{}'::jsonb, true, false, 0, now(), now()
       FROM generate_series(0, :skus - 1) i""",
    """INSERT INTO product_channels (product_id, channel_code)
       SELECT p.id, c.code FROM products p CROSS JOIN channels c""",
    """INSERT INTO price_lists (id, code, name, currency, channels, priority, active, version, created_at, updated_at)
       VALUES ('pl_bench_eur', 'retail-eur', 'Retail EUR', 'EUR', '["web-de", "app-de", "pos-de", "amazon-de"]', 0, true, 1, now(), now()),
              ('pl_bench_chf', 'retail-chf', 'Retail CHF', 'CHF', '["web-ch"]', 0, true, 1, now(), now())""",
    """INSERT INTO prices (price_list_id, sku, min_quantity, amount, updated_at)
       SELECT pl, 'SKU-' || lpad(i::text, 5, '0'), 1, (500 + (i % 100) * 100) * CASE WHEN pl = 'pl_bench_chf' THEN 11 ELSE 10 END / 10, now()
       FROM generate_series(0, :skus - 1) i CROSS JOIN (VALUES ('pl_bench_eur'), ('pl_bench_chf')) AS l(pl)""",
    """INSERT INTO stock_levels (id, sku, location_id, on_hand, reserved, safety_stock, updated_at)
       SELECT 'sl_bench_' || i || '_' || l.id, 'SKU-' || lpad(i::text, 5, '0'), l.id, (i * 7 + length(l.id)) % 40,
              0, (i % 3), now()
       FROM generate_series(0, :skus - 1) i CROSS JOIN locations l""",
    """INSERT INTO customers (id, email, email_lower, name, addresses, consents, version, created_at, updated_at)
       SELECT 'cus_bench_' || lpad(i::text, 6, '0'), 'c' || i || '@example.com', 'c' || i || '@example.com',
              'Customer ' || i, '[]'::jsonb,
              jsonb_build_object('marketing', false, 'personalization', i % 2 = 0), 1, now(), now()
       FROM generate_series(0, :customers - 1) i""",
    # --- order lines first (foreign keys are not checked while generating), then their orders with the
    # lines' totals and what they sold (the figures app/orders/reporting.py keeps); each line carries its order's
    # created_at, channel, currency, store and coupon flag (reporting.py too). Order i: 1 + i % 4 lines (2.5
    # on average); line k sells the SKU (b + 13 k) % SKUS where b depends on i: products 13 apart are bought
    # together (the co-purchase structure)
    """INSERT INTO order_lines (id, order_id, position, sku, title, quantity, unit_price, subtotal, discounts,
                                discount_total, total, tax_rate_bp, tax_amount, quantity_fulfilled, quantity_cancelled,
                                quantity_returned, order_created_at, order_channel, order_currency, order_location,
                                order_coupon)
       SELECT 'ol_bench_' || lpad(i::text, 9, '0') || '_' || k, 'ord_bench_' || lpad(i::text, 9, '0'), k,
              'SKU-' || lpad(s::text, 5, '0'), 'Variant ' || s, q, p, q * p, '[]'::jsonb, d, q * p - d, 1900,
              ((q * p - d) * 1900 + 5950) / 11900,
              CASE WHEN st = 'fulfilled' THEN q - c ELSE 0 END, c,
              CASE WHEN st = 'fulfilled' AND i % 25 = 11 AND k = 0 THEN 1 ELSE 0 END,
              {created}, ch, {currency}, {store}, coupon
       FROM (SELECT i, k, s, q, p, st, ch, coupon, CASE WHEN coupon THEN q * p / 10 ELSE 0 END AS d,
                    CASE WHEN st = 'cancelled' THEN q WHEN i % 50 = 4 AND k = 0 AND q > 1 THEN 1 ELSE 0 END AS c
             FROM (SELECT i, k, (i * 2654435761 % :skus + 13 * k) % :skus AS s, 1 + (i + k) % 3 AS q,
                          500 + (((i * 2654435761 % :skus + 13 * k) % :skus) % 100) * 100 AS p,
                          {status} AS st, {coupon} AS coupon, {channel} AS ch
                   FROM generate_series(0::bigint, :orders - 1) i CROSS JOIN LATERAL generate_series(0, (i % 4)::int) k
                  ) x) y""",
    """INSERT INTO orders (id, number, channel, external_id, customer_id, status, payment_status, payment_provider,
                           amount_authorized, amount_captured, amount_refunded, multicapture, price_source, currency,
                           prices_include_tax, subtotal, discount_total, tax_total, total, coupon_codes, promotions,
                           fulfillment_method, location, source, campaign, live_units, live_total,
                           live_discount_total, returned_units, returned_total, version, created_at, updated_at)
       SELECT 'ord_bench_' || lpad(i::text, 9, '0'), 'B-' || i, ch, CASE WHEN ch = 'amazon-de' THEN 'AMZ-' || i END,
              CASE WHEN i % 5 < 3 THEN 'cus_bench_' || lpad((i * 7919 % :customers)::text, 6, '0') END,
              {status}, 'paid', 'external', 0, 0, 0, false, 'quote', {currency},
              true, t.subtotal, t.discount, t.tax, t.total,
              CASE WHEN {coupon} THEN '["SUMMER"]' ELSE '[]' END::jsonb, '[]'::jsonb,
              CASE WHEN ch = 'pos-de' OR i % 20 = 2 THEN 'pickup' ELSE 'ship' END, {store},
              CASE WHEN ch IN ('web-de', 'app-de', 'web-ch') AND i % 10 < 3
                   THEN (ARRAY['newsletter', 'google', 'instagram', 'affiliate'])[1 + (i / 10) % 4] END,
              CASE WHEN ch IN ('web-de', 'app-de', 'web-ch') AND i % 10 < 3 THEN 'spring-' || ((i / 40) % 3) END,
              t.live_units, t.live_total, t.live_discount_total, t.returned_units, t.returned_total,
              1, {created}, {created}
       FROM (SELECT substr(order_id, 11)::bigint AS i, sum(subtotal) AS subtotal, sum(discount_total) AS discount,
                    sum(tax_amount) AS tax, sum(total) AS total,
                    -- what each order sold (app/orders/reporting.py)
                    sum(quantity - quantity_cancelled) AS live_units,
                    sum(total * (quantity - quantity_cancelled) / quantity) AS live_total,
                    sum(discount_total * (quantity - quantity_cancelled) / quantity) AS live_discount_total,
                    sum(quantity_returned) AS returned_units,
                    sum(total * quantity_returned / quantity) AS returned_total
             FROM order_lines GROUP BY order_id) t
       CROSS JOIN LATERAL (SELECT {channel} AS ch) c""",
    # one fulfillment per order at its store (POS, pickup) or the warehouse (every 10th shipped order: a store);
    # orders with i % 20 = 5 also get a second fulfillment at a store for their lines after the first
    """INSERT INTO fulfillments (id, order_id, location_id, location, method, kind, status, sourcing, pickup_attempts,
                                 version, created_at, updated_at)
       SELECT 'ful_bench_' || lpad(o.i::text, 9, '0') || '_' || o.n, o.id, l.id, l.code, o.fulfillment_method,
              o.fulfillment_method,
              CASE WHEN o.status = 'cancelled' THEN 'cancelled' WHEN o.status = 'fulfilled'
                   THEN CASE WHEN o.fulfillment_method = 'pickup' THEN 'collected' ELSE 'shipped' END ELSE 'open' END,
              '{}'::jsonb, 0, 1, o.created_at, o.created_at
       FROM (SELECT o.*, substr(o.id, 11)::bigint AS i, n,
                    CASE WHEN o.location IS NOT NULL THEN o.location
                         WHEN n = 1 OR substr(o.id, 11)::bigint % 10 = 6 THEN 'st-' || lpad((1 + (substr(o.id, 11)::bigint / 7) % 20)::text, 2, '0')
                         ELSE 'wh-1' END AS loc
             FROM orders o CROSS JOIN LATERAL generate_series(0, CASE WHEN substr(o.id, 11)::bigint % 20 = 5 THEN 1 ELSE 0 END) n
             WHERE o.id LIKE 'ord_bench_%') o JOIN locations l ON l.code = o.loc""",
    # each line at fulfillment 0 (split orders: lines after the first at fulfillment 1); lines of orders with
    # i % 100 = 7 and 2+ units: one unit at a second fulfillment (a line served by two locations)
    """INSERT INTO fulfillment_lines (fulfillment_id, order_line_id, sku, quantity)
       SELECT 'ful_bench_' || lpad(i::text, 9, '0') || '_' || CASE WHEN i % 20 = 5 AND position > 0 THEN 1 ELSE 0 END,
              l.id, l.sku, l.quantity - l.quantity_cancelled - CASE WHEN i % 100 = 7 AND l.quantity - l.quantity_cancelled > 1 THEN 1 ELSE 0 END
       FROM (SELECT ol.*, substr(ol.order_id, 11)::bigint AS i FROM order_lines ol) l
       WHERE l.quantity > l.quantity_cancelled""",
    """INSERT INTO fulfillments (id, order_id, location_id, location, method, kind, status, sourcing, pickup_attempts,
                                 version, created_at, updated_at)
       SELECT 'ful_bench_' || lpad(substr(o.id, 11), 9, '0') || '_s', o.id, 'loc_bench_020', 'st-20', 'ship', 'ship',
              CASE WHEN o.status = 'fulfilled' THEN 'shipped' ELSE 'open' END, '{}'::jsonb, 0, 1, o.created_at, o.created_at
       FROM orders o WHERE o.id LIKE 'ord_bench_%' AND substr(o.id, 11)::bigint % 100 = 7 AND o.status <> 'cancelled'
         AND o.fulfillment_method = 'ship'""",
    """INSERT INTO fulfillment_lines (fulfillment_id, order_line_id, sku, quantity)
       SELECT f.id, l.id, l.sku, 1 FROM fulfillments f JOIN order_lines l ON l.order_id = f.order_id
       WHERE f.id LIKE '%\\_s' AND l.quantity - l.quantity_cancelled > 1""",
    # carts with a source by known customers: earlier online touches
    """INSERT INTO carts (id, channel, customer_id, coupon_codes, lines, fulfillment, status, version, source, campaign,
                          created_at, updated_at)
       SELECT 'cart_bench_' || lpad(i::text, 7, '0'), 'web-de', 'cus_bench_' || lpad(((i * 104729) % :customers)::text, 6, '0'),
              '[]'::jsonb, '[]'::jsonb, '{"method": "ship"}'::jsonb, 'open', 1,
              (ARRAY['newsletter', 'google', 'instagram', 'affiliate'])[1 + i % 4], 'cart-' || (i % 5),
              now() - interval '365 days' + i * (interval '365 days' / :carts), now()
       FROM generate_series(0::bigint, :carts - 1) i""",
]


# orders whose figures are not the sums over their lines, or with a line that does not carry the order's values
DRIFT = """SELECT count(*) FROM orders o JOIN (
             SELECT order_id, sum(quantity - quantity_cancelled) AS u,
                    sum(total * (quantity - quantity_cancelled) / quantity) AS t,
                    sum(discount_total * (quantity - quantity_cancelled) / quantity) AS d, sum(quantity_returned) AS r,
                    sum(total * quantity_returned / quantity) AS rt,
                    count(DISTINCT (order_created_at, order_channel, order_currency, order_location, order_coupon))
                      AS copies,
                    min(order_created_at) AS created_at, min(order_channel) AS channel, min(order_currency) AS currency,
                    min(order_location) AS location, bool_and(order_coupon) AS coupon
             FROM order_lines GROUP BY order_id) l ON l.order_id = o.id
           WHERE (o.live_units, o.live_total, o.live_discount_total, o.returned_units, o.returned_total)
                 IS DISTINCT FROM (l.u, l.t, l.d, l.r, l.rt) OR l.copies <> 1
              OR (o.created_at, o.channel, o.currency, o.location, jsonb_array_length(o.coupon_codes) > 0)
                 IS DISTINCT FROM (l.created_at, l.channel, l.currency, l.location, l.coupon)"""


async def generate(database_url: str, lines: int) -> dict:
    """The data set, set-based; returns the row counts."""
    import asyncpg

    orders = int(lines / 2.5)
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("SET session_replication_role = replica")  # no foreign-key triggers while generating
        # secondary indexes are dropped while the rows go in and built again after (a sort each)
        indexes = await conn.fetch(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'public' AND i.tablename = ANY($1) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)", list(BULK_TABLES))
        for ix in indexes:
            await conn.execute(f'DROP INDEX "{ix["indexname"]}"')
        values = {"{created}": CREATED, "{store}": STORE, "{currency}": CURRENCY,  # (these contain :now, :orders)
                  ":skus": SKUS, ":customers": CUSTOMERS, ":carts": CARTS, ":orders": orders,
                  ":now": f"'{datetime.now(UTC).isoformat()}'", "{status}": STATUS, "{coupon}": COUPON,
                  "{channel}": CHANNEL}
        for sql in GENERATE:
            for name, value in values.items():
                sql = sql.replace(name, str(value))
            await conn.execute(sql)
        await conn.execute("SET maintenance_work_mem = '256MB'")
        for ix in indexes:
            await conn.execute(ix["indexdef"])
        await conn.execute("SET session_replication_role = DEFAULT")
        drift = await conn.fetchval(DRIFT)
        assert drift == 0, f"{drift} orders whose figures or lines are not what app/orders/reporting.py keeps"
        await conn.execute("VACUUM ANALYZE")
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in COUNTED}
    finally:
        await conn.close()


# --------------------------------------------------------------------------- measuring

GROUP_BYS = ("channel", "day", "location", "sku", "source", "campaign", "currency")


async def timed_get(client, path: str, params: dict, headers: dict, runs: int) -> tuple[list[float], dict]:
    """One warm-up, then `runs` timed requests: (wall times in ms, the last answer)."""
    r = await client.get(path, params=params, headers=headers)
    assert r.status_code == 200, r.text[:500]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = await client.get(path, params=params, headers=headers)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, r.text[:500]
    return times, r.json()


def _cpu_of(pid: int) -> float:
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def serial_cpu(database_url: str, periods: dict[str, dict], runs: int) -> dict[str, float]:
    """PostgreSQL CPU (ms) of each group_by's statement (over `periods[group_by]`) run without
    parallel workers in one backend: the work itself, whatever else the machine is doing (empty
    when PostgreSQL is not local)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.auth.principal import Principal
    from app.core.db import new_session, set_autocommit
    from app.reports import sales
    from app.reports.period import period
    from app.reports.tuning import report_settings

    engine = create_async_engine(database_url)
    out: dict[str, float] = {}
    try:
        async with engine.connect() as conn:
            await set_autocommit(conn, True)
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            if not Path(f"/proc/{pid}/stat").exists():
                return {}
            await conn.execute(text("SET max_parallel_workers_per_gather = 0"))
            session = new_session(conn)
            who = Principal(key_id="bench", role="admin")
            for group_by in GROUP_BYS:
                params = periods[group_by]
                p = period(params["from"], params["to"], None, max_days=sales.max_days(group_by))
                spent = []
                for _ in range(runs + 1):
                    before = _cpu_of(pid)
                    async with report_settings(session, True):
                        await sales.report(session, who, group_by=group_by, period=p, channel=None,
                                           attribution_days=30, limit=500, cursor=None)
                    spent.append((_cpu_of(pid) - before) * 1000)
                out[group_by] = statistics.median(spent[1:])
    finally:
        await engine.dispose()
    return out


async def existing(database_url: str) -> dict | None:
    """The row counts of a data set generated before (DATABASE_URL without --pg), or None."""
    import asyncpg

    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        if not await conn.fetchval("SELECT count(*) FROM orders WHERE id LIKE 'ord\\_bench\\_%'"):
            return None
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in COUNTED}
    finally:
        await conn.close()


async def count_lines(database_url: str, since: str) -> int:
    import asyncpg
    from datetime import datetime

    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return await conn.fetchval("SELECT count(*) FROM order_lines l JOIN orders o ON o.id = l.order_id "
                                   "WHERE o.created_at >= $1", datetime.fromisoformat(since.replace("Z", "+00:00")))
    finally:
        await conn.close()


async def bench(database_url: str, lines: int, runs: int) -> None:
    import os

    os.environ["DATABASE_URL"] = database_url
    t0 = time.perf_counter()
    from app.cli import run_migrations

    await asyncio.to_thread(run_migrations, database_url)
    counts = await existing(database_url)
    if counts is None:
        counts = await generate(database_url, lines)
        print(f"generated in {time.perf_counter() - t0:.1f} s: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    else:
        print("the data set is there already: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    print(f"load average now: {os.getloadavg()[0]:.2f} (2 cores)")
    async with app_client(database_url) as (client, admin):
        from datetime import UTC, datetime, timedelta

        now = datetime.now(UTC)

        def last(days: int) -> dict:
            return {"from": (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "to": (now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}

        year, quarter = last(366), last(92)
        quarter_lines = await count_lines(database_url, quarter["from"])
        print(f"\nGET /v1/reports/sales, {runs} runs after a warm-up, wall ms through the in-process app (first page, "
              f"limit 500):")
        print(f"  {'group_by':10} {'period':26} {'median':>8} {'best':>8} {'groups':>7}")
        for group_by in GROUP_BYS:
            # location is limited to 92 days (it joins four tables); the others run over the whole year
            params, span = ((quarter, f"92 days, {quarter_lines:,} lines") if group_by == "location"
                            else (year, f"366 days, {counts['order_lines']:,} lines"))
            times, body = await timed_get(client, "/v1/reports/sales", {**params, "group_by": group_by, "limit": 500},
                                          admin, runs)
            print(f"  {group_by:10} {span:26} {statistics.median(times):8.0f} {min(times):8.0f} {len(body['data']):7d}")
        cpu = await serial_cpu(database_url, {g: quarter if g == "location" else year for g in GROUP_BYS},
                               max(1, runs // 2))
        if cpu:
            print("\nPostgreSQL CPU of each report statement (same periods) run serially in one backend, no parallel "
                  "workers, median ms:")
            print("  " + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items()))

        print("\nother reports, wall ms (median / best):")
        cases = [("customers, a year", "/v1/reports/customers", year),
                 ("inventory, all 21 locations", "/v1/reports/inventory", {"channel": "web-de"}),
                 ("inventory, one store", "/v1/reports/inventory", {"location": "st-01"})]
        for name, path, params in cases:
            times, _ = await timed_get(client, path, params, admin, runs)
            print(f"  {name:32} {statistics.median(times):6.0f} / {min(times):6.0f}")
        # recommendations: 25 products across the catalog, for a customer (half of them consent)
        times = []
        for i in range(0, SKUS, SKUS // 25):
            pid = f"prod_bench_{i:05d}"
            t, body = await timed_get(client, f"/v1/products/{pid}/recommendations",
                                      {"channel": "web-de", "customer": f"cus_bench_{i:06d}"}, admin, 2)
            times += t
        times.sort()
        print(f"  {'recommendations, 25 products':32} {statistics.median(times):6.0f} / {times[0]:6.0f}"
              f"  (p90 {times[int(len(times) * 0.9)]:.0f}; with a consenting customer half the time)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432",
                        help="PostgreSQL server URL: a scratch database is created and dropped here; --pg '' uses "
                             "$DATABASE_URL as it is (a data set generated before is measured again)")
    parser.add_argument("--lines", type=int, default=1_000_000, help="order lines to generate")
    parser.add_argument("--runs", type=int, default=3, help="timed requests per report after a warm-up")
    args = parser.parse_args()
    run_with_database(args.pg, lambda url: bench(url, args.lines, args.runs))


if __name__ == "__main__":
    main()
