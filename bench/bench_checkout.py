"""Checkout benchmark (issue 11): orders/s and p50/p99 on PostgreSQL at 1, 10 and 100 clients with
1-, 3- and 10-line baskets, server (uvicorn --workers N) and load generator (wrk) on this machine.

    .venv/bin/python bench/bench_checkout.py --pg postgresql://postgres@127.0.0.1:5432 \\
        [--duration 5] [--warmup 2] [--workers 1,2] [--baskets 1,3,10] [--connections 1,10,100] \\
        [--flows checkout,order] [--paced 25,50,100] [--profile] [--profile-only] [--skus 200]

Data (scratch database, loaded through the in-process app): a web channel `ck-web` fulfilled by
1 warehouse and 20 stores (all ship-capable; sourcing picks the warehouse: one location covers
the basket and it has the best priority, the 20 stores are recorded as rejected), 200 SKUs
(40 products × 5 sizes; --skus for more) stocked 1,000,000 units each at the warehouse and a few
dozen units of 100 SKUs at every store, a price list, a tax rate, 5 promotions (percent, 3-for-2,
amount off, tiers, a bundle price), and a storefront key bound to the channel. Every order is
what a shop sends: POST /v1/carts {channel, lines, fulfillment: {method: ship, address: {…, lat,
lon}}} then POST /v1/carts/{id}/checkout {payment: {provider: none}}, with the storefront key.

Two measurements per (workers, basket, connections):
- `checkout`: the checkout request alone, the figure to hold against the goal (≥ 700 orders/s,
  p99 < 50 ms at 100 clients). Carts are created beforehand through the API (httpx, 16 at a
  time, against the same server) and wrk's Lua script walks that list, each cart checked out
  once (each wrk thread takes every n-th id). The pool is topped up before each cell for the
  rate expected (2.5 × the order-flow rate just measured, or what earlier cells reached); a cell
  that ran out of carts is measured again with a bigger pool. Not POST /v1/orders: that is the
  POS / marketplace path, without the cart.
- `order`: cart + checkout as one order flow: wrk with one thread per connection, each
  connection creating a cart and checking it out in turn; orders/s counts checkouts answered
  201, p50/p99 are per order (cart request sent → order answered, timed in the Lua script with
  clock_gettime through LuaJIT's ffi), and the cart / checkout request p50s are shown apart.
wrk is a closed loop (each client sends its next request when the last is answered), so at N
clients the mean latency is N ÷ rate. --paced adds checkout cells where the clients pause between
requests (wrk delay(), exponential pauses) to offer a fixed rate: latency below saturation.
Every measured answer must be 201: anything else is counted, sampled and printed with the
server log's tail, and the script exits non-zero at the end (a 409 insufficient_stock would mean
the stock setup is too small).

Per cell: orders/s, p50/p99, the server's CPU per order (utime + stime of the uvicorn process
tree, from /proc), the PostgreSQL backends' CPU per order (bench/common.pg_backends_cpu: the
scratch database's backends; the WAL writer, checkpointer and autovacuum are not in it), wrk's
own CPU per order (the three share this machine's cores, so on C cores the sum bounds the rate
at about C × 1000 / (sum ms) orders/s), the cores everything else on the machine used meanwhile
(/proc/stat: a shared machine), and what the database's backends were doing (pg_stat_activity
every 50 ms: on CPU, waiting for a row lock, waiting on WAL/IO, idle in a transaction the app
holds open). The SQL statements of one cart creation and of one checkout are counted once
in-process (app.core.db.sql_statements around one request through the ASGI app, caches warm).
DB_POOL_SIZE per worker is capped so that the workers' pools (pool_size + as much overflow) and
LISTEN connections stay within --max-db-connections on the shared server.

The in-process app and every server run a copy of app/ and migrations/ taken when the script
starts, so edits made to the working tree during a run do not reach it halfway.

--profile: (1) in-process, one 3-line checkout at a time, the CPU of each step (the checkout's
functions wrapped in this process only: pricing, sourcing plan, allocation, events, rendering,
the rest) and the Python CPU of one SQL statement through the app's AsyncSession vs bare asyncpg;
(2) py-spy (`py-spy record --format raw --nonblocking`; pip-installed into the venv when
missing) on the one uvicorn worker for --profile-seconds under --profile-connections connections
of 3-line checkouts, while the backends' wait events are sampled: where the worker's CPU goes (by
package, by function self time, inclusive time of the app's functions) and what the backends were
doing.
"""
import argparse
import asyncio
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import bench_http  # noqa: E402
from bench_http import ensure_wrk  # noqa: E402
from common import ROOT, app_client, new_api_key, pg_backends_cpu, process_tree_cpu, run_with_database  # noqa: E402

CHANNEL = "ck-web"
WAREHOUSE = "ck-wh"
STORES = [f"ck-store-{i:02d}" for i in range(20)]
SKUS = [f"CK-{i:04d}" for i in range(200)]
SIZES = ("XS", "S", "M", "L", "XL")
CATEGORIES = ["fashion/tees", "fashion/jeans", "home", "grocery/coffee", "toys"]
CITIES = [  # shipping destinations: (city, postal code, lat, lon)
    ("Hamburg", "20354", 53.553, 9.9925), ("Berlin", "10117", 52.52, 13.405), ("München", "80331", 48.137, 11.575),
    ("Köln", "50667", 50.938, 6.96), ("Frankfurt am Main", "60311", 50.11, 8.682), ("Stuttgart", "70173", 48.776, 9.18),
    ("Leipzig", "04109", 51.34, 12.375), ("Bremen", "28195", 53.075, 8.807)]
CHECKOUT_BODY = '{"payment":{"provider":"none"}}'
BODIES_PER_BASKET = 64
CART_CONCURRENCY = 16

# ----------------------------------------------------------------------------------- wrk scripts

# Every script prints one line `BENCH_RESULT {json}` from done(); threads report through thread:get.
LUA_COMMON = r"""
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
bad = 0
samples = ""
local function note_bad(status, body)
  bad = bad + 1
  if #samples < 1500 then samples = samples .. status .. " " .. string.sub(body or "", 1, 300) .. "\n" end
end
local function json_string(s)
  return '"' .. s:gsub('\\', '\\\\'):gsub('"', '\\"'):gsub('\n', '\\n'):gsub('[%c]', ' ') .. '"'
end
local function percentile(sorted, p)
  if #sorted == 0 then return 0 end
  local i = math.max(1, math.ceil(#sorted * p / 100))
  return sorted[i]
end
"""

CHECKOUT_LUA = LUA_COMMON + r"""
local ids_file = "@IDS@"
local nthreads = @THREADS@
local headers = {["Authorization"] = "Bearer @KEY@", ["Content-Type"] = "application/json"}
local body = '@BODY@'
local ids = {}
local pos = 0
local mean_delay = @DELAY@  -- ms between a connection's answer and its next request (0: none)
wrapped = 0
if mean_delay > 0 then
  -- paced: exponential pauses (a Poisson-like stream per connection), so the connections do not
  -- fall into step; the rate offered is about connections × 1000 / mean_delay per second
  function delay() return math.floor(-math.log(1 - math.random()) * mean_delay) end
end
function init(args)
  math.randomseed(1000 + tid)
  local i = 0
  for line in io.lines(ids_file) do
    if i % nthreads == tid then ids[#ids + 1] = line end
    i = i + 1
  end
end
function request()
  pos = pos + 1
  if pos > #ids then pos = 1; wrapped = wrapped + 1 end
  return wrk.format("POST", "/v1/carts/" .. ids[pos] .. "/checkout", headers, body)
end
function response(status, hdrs, resp)
  if status ~= 201 then note_bad(status, resp) end
end
function done(summary, latency, requests)
  local w, b, s = 0, 0, ""
  for _, t in ipairs(threads) do
    w = w + t:get("wrapped"); b = b + t:get("bad"); s = s .. t:get("samples")
  end
  local e = summary.errors
  io.write(string.format('BENCH_RESULT {"requests": %.0f, "duration_us": %.0f, "p50_us": %.0f, "p99_us": %.0f, '
    .. '"orders": %.0f, "bad": %.0f, "wrapped": %.0f, "socket_errors": %.0f, "timeouts": %.0f, "samples": %s}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), summary.requests - b, b, w,
    e.connect + e.read + e.write, e.timeout, json_string(s)))
end
"""

ORDER_LUA = LUA_COMMON + r"""
local ffi = require("ffi")
ffi.cdef[[
struct bench_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk_id, struct bench_timespec *tp);
]]
local ts = ffi.new("struct bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end
local headers = {["Authorization"] = "Bearer @KEY@", ["Content-Type"] = "application/json"}
local checkout_body = '@BODY@'
local bodies = {@BODIES@}
local i = 0
local cart = nil
local t_order, t_req = 0, 0
orders = 0
order_us, cart_us, checkout_us = {}, {}, {}
function init(args) i = tid % #bodies end
function request()
  t_req = now_us()
  if cart then
    return wrk.format("POST", "/v1/carts/" .. cart .. "/checkout", headers, checkout_body)
  end
  i = i % #bodies + 1
  t_order = t_req
  return wrk.format("POST", "/v1/carts", headers, bodies[i])
end
function response(status, hdrs, resp)
  local t = now_us()
  if cart then
    cart = nil
    if status == 201 then
      orders = orders + 1
      order_us[#order_us + 1] = t - t_order
      checkout_us[#checkout_us + 1] = t - t_req
    else note_bad(status, resp) end
  elseif status == 201 then
    cart = string.match(resp, '"id":%s*"(cart_[^"]+)"')
    cart_us[#cart_us + 1] = t - t_req
    if not cart then note_bad(status, "no cart id in " .. resp) end
  else note_bad(status, resp) end
end
function done(summary, latency, requests)
  local o, b, s = 0, 0, ""
  local all = {order = {}, cart = {}, checkout = {}}
  for _, t in ipairs(threads) do
    o = o + t:get("orders"); b = b + t:get("bad"); s = s .. t:get("samples")
    for _, name in ipairs({"order", "cart", "checkout"}) do
      for _, v in ipairs(t:get(name .. "_us")) do table.insert(all[name], v) end
    end
  end
  for _, v in pairs(all) do table.sort(v) end
  local e = summary.errors
  io.write(string.format('BENCH_RESULT {"requests": %.0f, "duration_us": %.0f, "p50_us": %.0f, "p99_us": %.0f, '
    .. '"orders": %.0f, "bad": %.0f, "wrapped": 0, "cart_p50_us": %.0f, "checkout_p50_us": %.0f, '
    .. '"checkout_p99_us": %.0f, "socket_errors": %.0f, "timeouts": %.0f, "samples": %s}\n',
    summary.requests, summary.duration, percentile(all.order, 50), percentile(all.order, 99), o, b,
    percentile(all.cart, 50), percentile(all.checkout, 50), percentile(all.checkout, 99),
    e.connect + e.read + e.write, e.timeout, json_string(s)))
end
"""


CODE: list[Path] = [ROOT]  # where the servers import the app from: a snapshot taken at start (see main)
SERVER_LOG: list[Path] = []  # the running server's log (warnings, tracebacks), shown when a cell fails


@contextmanager
def serve(target: str, workers: int, env: dict):
    """bench_http.serve from the code snapshot, with the server's output kept in a file until
    the server stops, for the error report (server_log)."""
    with tempfile.NamedTemporaryFile(prefix="bench_checkout_server_", suffix=".log") as log:
        SERVER_LOG.append(Path(log.name))
        try:
            with bench_http.serve(target, workers, env, app_dir=CODE[-1], log=log) as served:
                yield served
        finally:
            SERVER_LOG.pop()


def server_log(chars: int = 4000) -> str:
    if not SERVER_LOG or not SERVER_LOG[-1].exists():
        return "(no server log)"
    return SERVER_LOG[-1].read_text(errors="replace")[-chars:]


def lua_quote(s: str) -> str:
    return "[==[" + s + "]==]"


def checkout_script(key: str, ids_file: Path, threads: int, delay_ms: float = 0) -> str:
    return (CHECKOUT_LUA.replace("@IDS@", str(ids_file)).replace("@THREADS@", str(threads))
            .replace("@DELAY@", f"{delay_ms:.3f}")
            .replace("@KEY@", key).replace("@BODY@", CHECKOUT_BODY))


def order_script(key: str, bodies: list[str]) -> str:
    return (ORDER_LUA.replace("@KEY@", key).replace("@BODY@", CHECKOUT_BODY)
            .replace("@BODIES@", ", ".join(lua_quote(b) for b in bodies)))


def run_wrk(base: str, script: Path, seconds: int, connections: int, threads: int) -> dict:
    """wrk against `base` with `script`; its BENCH_RESULT plus wrk's own CPU seconds."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), base]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if out.returncode or line is None:
        raise SystemExit(f"wrk failed (exit {out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    result = json.loads(line.split(" ", 1)[1])
    result["wrk_cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


# ----------------------------------------------------------------------------------- data

def promotions() -> list[dict]:
    """A handful of active promotions, as a shop runs them."""
    return [
        {"code": "ck-tees-10", "name": "10% on tees", "type": "percent_off", "params": {"percent_bp": 1000},
         "categories": ["fashion/tees"], "priority": 1, "stackable": True},
        {"code": "ck-3for2", "name": "3 for 2", "type": "buy_x_pay_y", "params": {"x": 3, "y": 2},
         "skus": SKUS[40:60], "priority": 2, "stackable": True},
        {"code": "ck-2-off", "name": "2 EUR off", "type": "amount_off", "params": {"amount": 200, "per": "unit"},
         "skus": SKUS[100:120], "priority": 3, "stackable": True},
        {"code": "ck-home-tiers", "name": "Home: more for more", "type": "tiered_percent",
         "params": {"tiers": [{"min_quantity": 3, "percent_bp": 300}, {"min_quantity": 6, "percent_bp": 800}]},
         "categories": ["home"], "priority": 4, "stackable": True},
        {"code": "ck-duo", "name": "Duo price", "type": "bundle_price", "priority": 100, "stackable": False,
         "params": {"items": [{"sku": SKUS[0], "quantity": 1}, {"sku": SKUS[1], "quantity": 1}], "amount": 1500}},
    ]


def address(rng: random.Random) -> dict:
    city, postal, lat, lon = rng.choice(CITIES)
    return {"name": "Bench Buyer", "line1": f"Hauptstraße {rng.randint(1, 200)}", "postal_code": postal,
            "city": city, "country": "DE", "lat": lat, "lon": lon}


def cart_bodies(n_lines: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [json.dumps({"channel": CHANNEL,
                        "lines": [{"sku": s, "quantity": rng.randint(1, 3)} for s in rng.sample(SKUS, n_lines)],
                        "fulfillment": {"method": "ship", "address": address(rng)}}, separators=(",", ":"))
            for _ in range(BODIES_PER_BASKET)]


async def load(database_url: str, baskets: list[int], breakdown_orders: int = 0) -> dict:
    """Migrate and load through the in-process app; count one cart's and one checkout's statements."""
    from app.core.db import sql_statements

    rng = random.Random(11)
    async with app_client(database_url) as (client, admin):
        def ok(r, *codes):
            assert r.status_code in (codes or (200, 201)), f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:500]}"
            return r

        ok(await client.post("/v1/locations", headers=admin, json={
            "code": WAREHOUSE, "name": "Central warehouse", "type": "warehouse", "lat": 51.0, "lon": 10.0}))
        for i, code in enumerate(STORES):
            ok(await client.post("/v1/locations", headers=admin, json={
                "code": code, "name": f"Store {i}", "type": "store", "lat": 47.5 + rng.random() * 7,
                "lon": 6.5 + rng.random() * 8}))
        ok(await client.post("/v1/channels", headers=admin, json={
            "code": CHANNEL, "name": "Bench web shop", "type": "web", "currency": "EUR", "country": "DE",
            "fulfillment_locations": [WAREHOUSE] + STORES}))
        rows = "\n".join(json.dumps({
            "sku": s, "product_handle": f"ck-{i // 5:03d}", "product_title": f"Bench product {i // 5}",
            "status": "active", "category": CATEGORIES[i // 5 % len(CATEGORIES)], "channels": [CHANNEL],
            "options": {"size": SIZES[i % 5]}}) for i, s in enumerate(SKUS))
        r = ok(await client.post("/v1/catalog/import", content=rows,
                                 headers=admin | {"Content-Type": "application/x-ndjson"}))
        assert r.json()["failed"] == 0, r.text[:500]
        ok(await client.post("/v1/price-lists", headers=admin, json={"code": "ck-retail", "currency": "EUR",
                                                                     "channels": [CHANNEL]}))
        ok(await client.put("/v1/price-lists/ck-retail/prices", headers=admin,
                            json=[{"sku": s, "amount": 990 + 50 * (i % 40)} for i, s in enumerate(SKUS)]))
        ok(await client.post("/v1/tax-rates", headers=admin, json={"country": "DE", "tax_class": "standard",
                                                                   "rate_bp": 1900}))
        for p in promotions():
            ok(await client.post("/v1/promotions", headers=admin, json=p))
        ok(await client.put("/v1/inventory/levels", headers=admin, json={
            "location": WAREHOUSE, "levels": [{"sku": s, "on_hand": 1_000_000} for s in SKUS]}))
        for code in STORES:
            ok(await client.put("/v1/inventory/levels", headers=admin, json={
                "location": code, "levels": [{"sku": s, "on_hand": rng.randint(5, 60), "safety_stock": 1}
                                             for s in rng.sample(SKUS, 100)]}))
        storefront = await new_api_key(name="bench-storefront", role="storefront", channel=CHANNEL)
        sf = {"Authorization": f"Bearer {storefront}"}

        # one order of each basket size, its statements counted with caches warm
        warm = json.loads(cart_bodies(3, 1)[0])
        cart = ok(await client.post("/v1/carts", headers=sf, json=warm)).json()
        order = ok(await client.post(f"/v1/carts/{cart['id']}/checkout", headers=sf,
                                     json=json.loads(CHECKOUT_BODY))).json()
        sample = {"order": order["number"], "fulfillments": [(f["location"], f["sourcing"]["rule"],
                                                               len(f["sourcing"]["rejected"]))
                                                              for f in order["fulfillments"]],
                  "bytes": len(json.dumps(order))}
        statements = {}
        for n in baskets:
            body = json.loads(cart_bodies(n, 2)[0])
            with sql_statements() as cart_sql:
                cart = ok(await client.post("/v1/carts", headers=sf, json=body)).json()
            with sql_statements() as checkout_sql:
                ok(await client.post(f"/v1/carts/{cart['id']}/checkout", headers=sf, json=json.loads(CHECKOUT_BODY)))
            statements[n] = (len(cart_sql), len(checkout_sql), checkout_sql)
        breakdown = await inprocess_breakdown(client, sf, database_url, breakdown_orders) if breakdown_orders else None
    return {"storefront": storefront, "statements": statements, "sample": sample, "breakdown": breakdown}


# ----------------------------------------------------------------------------------- in-process breakdown

PHASES = [  # (module, attribute, label): wrapped in the bench process only, to time each step's CPU
    ("app.orders.checkout", "checkout_cart", "checkout_cart (the handler's work)"),
    ("app.orders.checkout", "load_channel", "channel (cached)"),
    ("app.orders.checkout", "place", "place (price, write, source, allocate, events)"),
    ("app.orders.checkout", "quote_basket", "re-price: pricing.service.quote_basket"),
    ("app.orders.sourcing.service", "sku_facts", "catalog facts: sourcing.sku_facts"),
    ("app.orders.numbers", "number_value", "order number expression"),
    ("app.orders.sourcing.service", "plan", "sourcing.plan (candidates, stock read, engine)"),
    ("app.orders.sourcing.service", "allocate", "sourcing.allocate (reserve, write fulfillments)"),
    ("app.inventory.service", "reserve_expanded", "inventory.reserve_expanded (in allocate)"),
    ("app.orders.checkout", "emit_many", "outbox events: emit_many"),
    ("app.orders.checkout", "render_order", "render_order (answer + event payload)"),
]


async def inprocess_breakdown(client, sf: dict, database_url: str, orders: int) -> dict:
    """CPU per step of a 3-line checkout through the in-process ASGI app, one request at a time
    (time.process_time around each wrapped function: nothing else runs meanwhile), and the
    Python CPU of one SQL statement through the app's AsyncSession vs bare asyncpg."""
    import importlib
    import inspect

    import asyncpg
    from sqlalchemy import select

    from app.core.db import sessionmaker
    from app.orders.dependencies import CART

    cpu: Counter = Counter()
    patched = []
    for module, attr, label in PHASES:
        mod = importlib.import_module(module)
        fn = getattr(mod, attr)
        if inspect.iscoroutinefunction(fn):
            async def wrapper(*a, __fn=fn, __label=label, **kw):
                t0 = time.process_time()
                try:
                    return await __fn(*a, **kw)
                finally:
                    cpu[__label] += time.process_time() - t0
        else:
            def wrapper(*a, __fn=fn, __label=label, **kw):
                t0 = time.process_time()
                try:
                    return __fn(*a, **kw)
                finally:
                    cpu[__label] += time.process_time() - t0
        setattr(mod, attr, wrapper)
        patched.append((mod, attr, fn))
    try:
        bodies = cart_bodies(3, 7)
        carts = []
        for i in range(orders + 20):
            r = await client.post("/v1/carts", headers=sf, json=json.loads(bodies[i % len(bodies)]))
            assert r.status_code == 201, r.text
            carts.append(r.json()["id"])
        for cid in carts[:20]:  # warm-up
            assert (await client.post(f"/v1/carts/{cid}/checkout", headers=sf, json={"payment": {"provider": "none"}})).status_code == 201
        cpu.clear()
        client.meter.reset()
        t0 = time.perf_counter()
        for cid in carts[20:]:
            r = await client.post(f"/v1/carts/{cid}/checkout", headers=sf, json={"payment": {"provider": "none"}})
            assert r.status_code == 201, r.text
        wall = (time.perf_counter() - t0) / orders
        request_cpu = client.meter.seconds / client.meter.requests
    finally:
        for mod, attr, fn in patched:
            setattr(mod, attr, fn)

    # one statement: the app's AsyncSession (SQLAlchemy Core through the ORM session) vs bare asyncpg
    runs = 2000
    async with sessionmaker()() as session:
        async with session.begin():
            stmt = lambda: select(CART.c.id, CART.c.status).where(CART.c.id == "cart_none")  # noqa: E731
            for _ in range(100):
                await session.execute(stmt())
            t0 = time.process_time()
            for _ in range(runs):
                (await session.execute(stmt())).first()
            sa = (time.process_time() - t0) / runs
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for _ in range(100):
            await conn.fetchrow("SELECT id, status FROM carts WHERE id = $1", "cart_none")
        t0 = time.process_time()
        for _ in range(runs):
            await conn.fetchrow("SELECT id, status FROM carts WHERE id = $1", "cart_none")
        raw = (time.process_time() - t0) / runs
    finally:
        await conn.close()
    return {"orders": orders, "request": request_cpu, "wall": wall,
            "phases": {label: cpu[label] / orders for _, _, label in PHASES}, "sa_statement": sa, "raw_statement": raw}


def print_breakdown(b: dict, statements: int) -> None:
    ph = b["phases"]
    total = b["request"]
    print(f"\n=== in-process, one 3-line checkout at a time ({b['orders']} checkouts through the ASGI app, no HTTP "
          f"server; default asyncio loop): CPU per checkout request {total * 1000:.2f} ms, wall {b['wall'] * 1000:.2f} ms ===")
    handler = ph["checkout_cart (the handler's work)"]
    place = ph["place (price, write, source, allocate, events)"]
    inner = ["re-price: pricing.service.quote_basket", "catalog facts: sourcing.sku_facts", "order number expression",
             "sourcing.plan (candidates, stock read, engine)", "sourcing.allocate (reserve, write fulfillments)",
             "outbox events: emit_many", "render_order (answer + event payload)"]
    rows = [("middleware, routing, body validation, COMMIT, JSON answer (outside the handler)", total - handler),
            ("checkout_cart outside place: claim the cart (UPDATE … RETURNING), channel, spec", handler - place)]
    rows += [("  " + label, ph[label]) for label in inner]
    rows.append(("  ...of which inventory.reserve_expanded", ph["inventory.reserve_expanded (in allocate)"]))
    rows.append(("  place, the rest: insert order + lines, savepoint, bookkeeping", place - sum(ph[x] for x in inner)))
    for label, v in rows:
        print(f"  {v * 1000:7.3f} ms  {v / total:6.1%}  {label}")
    print(f"one SQL statement (SELECT by primary key, 2 columns): {b['sa_statement'] * 1000:.3f} ms Python CPU through "
          f"the app's AsyncSession, {b['raw_statement'] * 1000:.3f} ms through bare asyncpg; a checkout runs "
          f"{statements} statements + BEGIN, SAVEPOINT, RELEASE, COMMIT")


# ----------------------------------------------------------------------------------- cart pool

class CartPool:
    """Open carts per basket size, created through the API; what a cell checked out is dropped."""

    def __init__(self, key: str, conn, baskets: list[int]):
        self.key, self.conn = key, conn
        self.open: dict[int, list[str]] = {n: [] for n in baskets}
        self.bodies = {n: cart_bodies(n, 100 + n) for n in baskets}
        self.created = 0
        self.seconds = 0.0

    async def refresh(self, n: int) -> None:
        ids = self.open[n]
        if ids:
            still = {r["id"] for r in await self.conn.fetch(
                "SELECT id FROM carts WHERE id = ANY($1::text[]) AND status = 'open'", ids)}
            self.open[n] = [i for i in ids if i in still]

    async def top_up(self, base: str, n: int, want: int) -> None:
        import httpx

        await self.refresh(n)
        missing = want - len(self.open[n])
        if missing <= 0:
            return
        t0 = time.monotonic()
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        bodies = self.bodies[n]
        todo = iter(range(missing))
        made: list[str] = []
        failures: list[str] = []

        async def worker(client):
            for i in todo:
                r = await client.post("/v1/carts", content=bodies[i % len(bodies)], headers=headers)
                if r.status_code != 201:
                    failures.append(f"{r.status_code} {r.text[:300]}")
                    return
                made.append(r.json()["id"])

        limits = httpx.Limits(max_connections=CART_CONCURRENCY, max_keepalive_connections=CART_CONCURRENCY)
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
            await asyncio.wait_for(asyncio.gather(*(worker(client) for _ in range(CART_CONCURRENCY))),
                                   timeout=60 + missing / 20)
        if failures:
            raise SystemExit(f"creating carts failed: {failures[0]}\nserver log (tail):\n{server_log()}")
        self.open[n] += made
        self.created += len(made)
        self.seconds += time.monotonic() - t0

    def write(self, n: int, path: Path) -> None:
        path.write_text("\n".join(self.open[n]) + "\n")


# ----------------------------------------------------------------------------------- cells

def machine_busy() -> float:
    """CPU seconds all processes of this machine have used so far (/proc/stat: every state but idle
    and iowait), to tell how much of the machine other work took during a cell."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


async def measure(base: str, pid: int, database: str, script: Path, seconds: int, conns: int, threads: int,
                  conn) -> dict:
    stop = asyncio.Event()
    waits = asyncio.create_task(sample_pg_waits(conn, database, stop, 0.05))
    cpu0, db0, all0 = process_tree_cpu(pid), pg_backends_cpu(database), machine_busy()
    try:
        r = await asyncio.to_thread(run_wrk, base, script, seconds, conns, threads)
    finally:
        stop.set()
        seen = await waits
    everything = machine_busy() - all0
    cpu = process_tree_cpu(pid) - cpu0
    db = pg_backends_cpu(database)
    db_cpu = sum(t - db0.get(p, 0.0) for p, t in db.items()) if db or db0 else None
    orders = max(1, int(r["orders"]))
    secs = r["duration_us"] / 1e6
    return {"rps": r["orders"] / secs, "orders": int(r["orders"]), "p50": r["p50_us"] / 1000,
            "p99": r["p99_us"] / 1000, "cpu": cpu * 1000 / orders,
            "db": None if db_cpu is None else db_cpu * 1000 / orders, "wrk": r["wrk_cpu"] * 1000 / orders,
            "bad": int(r["bad"]), "wrapped": int(r["wrapped"]), "socket": int(r["socket_errors"]),
            "timeouts": int(r["timeouts"]), "samples": r["samples"],
            "cart_p50": r.get("cart_p50_us", 0) / 1000, "co_p50": r.get("checkout_p50_us", 0) / 1000,
            "co_p99": r.get("checkout_p99_us", 0) / 1000, "busy": (cpu / secs, (db_cpu or 0) / secs,
                                                                    r["wrk_cpu"] / secs),
            "pg": wait_classes(seen),
            "others": max(0.0, everything - cpu - (db_cpu or 0) - r["wrk_cpu"]) / secs}


def report_bad(label: str, r: dict) -> None:
    if r["bad"] or r["socket"] or r["timeouts"] or r["wrapped"]:
        print(f"\n!! {label}: {r['bad']} answers not 201, {r['socket']} socket errors, {r['timeouts']} timeouts, "
              f"ran out of carts {r['wrapped']}× ; samples:\n{r['samples'][:1500]}", flush=True)
        if r["bad"] or r["socket"]:
            print(f"server log (tail):\n{server_log()}", flush=True)


async def order_cell(base, pid, database, key, bodies, args, tmp, conns, pool) -> dict:
    script = tmp / f"order-{conns}.lua"
    script.write_text(order_script(key, bodies))
    if args.warmup:
        run_wrk(base, script, args.warmup, conns, conns)
    return await measure(base, pid, database, script, args.duration, conns, conns, pool.conn)


async def checkout_cell(base, pid, database, key, pool: CartPool, n, args, tmp, conns, expect_rate,
                        offered: float = 0) -> dict:
    """The checkout request alone over pre-made carts; `offered` > 0: paced at about that many
    checkouts per second in all (each connection pausing between its requests)."""
    ids = tmp / f"carts-{n}.txt"
    script = tmp / f"checkout-{n}-{conns}-{offered:.0f}.lua"
    threads = min(2, conns)
    script.write_text(checkout_script(key, ids, threads, conns * 1000 / offered if offered else 0))
    rate = expect_rate
    for attempt in range(3):
        if args.warmup:
            await pool.top_up(base, n, math.ceil(rate * args.warmup * 1.2) + 50 * threads)
            pool.write(n, ids)
            await settle(run_wrk(base, script, args.warmup, conns, threads)["p99_us"] / 1e6)
        await pool.top_up(base, n, math.ceil(rate * args.duration * 1.2) + 50 * threads)
        pool.write(n, ids)
        r = await measure(base, pid, database, script, args.duration, conns, threads, pool.conn)
        await settle(r["p99"] / 1000)
        await pool.refresh(n)
        if not r["wrapped"]:
            return r
        print(f"   ran out of carts at {r['rps']:.0f} orders/s (pool for {rate:.0f}/s): measuring again", flush=True)
        rate = max(rate * 2, r["rps"] * 2)
    return r


async def settle(p99_seconds: float) -> None:
    """wrk stops with requests in flight: let the server finish them before the pool is refreshed
    (else a cart checked out just after the refresh would be offered again: 409 cart_completed)."""
    await asyncio.sleep(min(5.0, max(0.3, 3 * p99_seconds)))


def pool_size_per_worker(args, workers: int) -> int:
    """pool_size + max_overflow (= pool_size) + 1 LISTEN connection per worker within the budget."""
    return max(2, min(args.db_pool_size, (args.max_db_connections // workers - 1) // 2))


def server_env(args, database_url: str, workers: int) -> dict:
    return os.environ | {"DATABASE_URL": database_url, "RATE_LIMIT": "1000000000/minute", "INLINE_WORKER": "false",
                         "DB_POOL_SIZE": str(pool_size_per_worker(args, workers))}


# ----------------------------------------------------------------------------------- profile

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
GROUPS = [("app/", None), ("asyncpg", "asyncpg (driver, protocol)"), ("sqlalchemy", "SQLAlchemy (core/ORM)"),
          ("pydantic", "pydantic (validation, serialization)"), ("fastapi", "FastAPI / Starlette"),
          ("starlette", "FastAPI / Starlette"), ("uvicorn", "uvicorn / httptools"), ("httptools", "uvicorn / httptools"),
          ("asyncio", "asyncio / uvloop (event loop)"), ("uvloop", "asyncio / uvloop (event loop)"),
          ("orjson", "JSON"), ("json/", "JSON"), ("limits", "rate limiter (limits)"), ("anyio", "anyio")]


def frame_group(file: str) -> str:
    for needle, name in GROUPS:
        if needle in file:
            if name is None:  # app/<package>/…
                parts = file[file.index("app/"):].split("/")
                return "app." + parts[1].removesuffix(".py") if len(parts) > 2 else "app (" + parts[1] + ")"
            return name
    if file == "(native)":
        return "native code (greenlet switch, C extensions)"
    return "other (stdlib, prometheus_client, …)"


def parse_raw(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        frames_txt, _, count = line.rpartition(" ")
        try:
            n = int(count)
        except ValueError:
            continue
        frames = []
        for f in frames_txt.split(";"):
            m = FRAME.match(f.strip())
            if m:
                frames.append((m["func"], m["file"]))
            elif not f.startswith(("process ", "thread ")):
                frames.append((f.strip() or "(native code, no Python frame)", "(native)"))
        stacks.append((frames, n))
    return stacks


def summarize_profile(path: Path, rate: int, seconds: float) -> None:
    stacks = parse_raw(path)
    total = sum(n for _, n in stacks)
    if not total:
        print("py-spy recorded no samples")
        return
    print(f"\npy-spy: {total} samples at {rate}/s over {seconds:.0f} s: {total / rate / seconds:.0%} of the samples "
          f"found the worker running (py-spy leaves idle samples out). Stacks are cut where asyncio resumes a "
          f"task and where SQLAlchemy switches into its greenlet, so the SQL work is not charged to the app "
          f"function that issued it: read the package split (self time) first.")
    by_group, self_fn, incl_app, incl_lib = Counter(), Counter(), Counter(), Counter()
    for frames, n in stacks:
        if not frames:
            continue
        func, file = frames[-1]
        by_group[frame_group(file)] += n
        self_fn[f"{func} ({short(file)})"] += n
        seen = set()
        for func, file in frames:
            if "app/" in file:
                key = f"{func} ({short(file)})"
                if key not in seen:
                    seen.add(key)
                    incl_app[key] += n
        groups = {frame_group(file) for _, file in frames}
        for g in groups:
            incl_lib[g] += n
    print("\nwhere the worker's CPU goes, by the package of the innermost frame (self time):")
    for g, n in by_group.most_common():
        print(f"  {n / total:6.1%}  {g}")
    print("\nsamples with the package anywhere on the stack (inclusive):")
    for g, n in incl_lib.most_common(14):
        print(f"  {n / total:6.1%}  {g}")
    print("\ntop functions by self time:")
    for f, n in self_fn.most_common(25):
        print(f"  {n / total:6.1%}  {f}")
    print("\napp functions by inclusive time (the call tree of a request):")
    for f, n in incl_app.most_common(40):
        print(f"  {n / total:6.1%}  {f}")


def short(file: str) -> str:
    for marker in ("site-packages/", "/snapshot/", str(ROOT) + "/", "lib/python3"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


async def sample_pg_waits(conn, database: str, stop: asyncio.Event, every: float = 0.01) -> Counter:
    """What the scratch database's client backends are doing, sampled from pg_stat_activity
    every `every` seconds until `stop` (one connection, one small query per sample)."""
    seen: Counter = Counter()
    while not stop.is_set():
        rows = await conn.fetch(
            "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'", database)
        for r in rows:
            if r["state"] == "active":
                what = f"active: {r['wait_event_type']}:{r['wait_event']}" if r["wait_event_type"] else "active: on CPU"
            elif r["state"] == "idle in transaction":
                what = "idle in transaction (waiting for the app)"
            else:
                what = str(r["state"])
            seen[what] += 1
        seen["_samples"] += 1
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass
    return seen


def wait_classes(seen: Counter) -> dict:
    """Average number of backends per class over the samples: on CPU, waiting for a row/tuple
    lock, waiting on WAL/IO, idle in a transaction (the app holds it open), other waits."""
    n = max(1, seen.get("_samples", 0))
    out = Counter()
    for what, c in seen.items():
        if what == "_samples":
            continue
        if what == "active: on CPU":
            out["cpu"] += c
        elif what.startswith("active: Lock:"):
            out["lock"] += c
        elif what.startswith(("active: IO:", "active: LWLock:WAL")):
            out["io"] += c
        elif what.startswith("idle in transaction"):
            out["idle_tx"] += c
        elif what.startswith("active:"):
            out["other"] += c
    return {k: out[k] / n for k in ("cpu", "lock", "io", "idle_tx", "other")}


def worker_pid(pid: int) -> int:
    """The uvicorn process serving requests: with --workers 1 the parent itself."""
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(c) for c in (task / "children").read_text().split()]
    serving = [k for k in kids if b"uvicorn" in Path(f"/proc/{k}/cmdline").read_bytes() or
               b"multiprocessing" in Path(f"/proc/{k}/cmdline").read_bytes()]
    return serving[0] if serving else pid


async def profile(args, database_url, data, pool: CartPool, tmp: Path, conn) -> None:
    pyspy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not pyspy:
        print("installing py-spy into the venv (pip) ...", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True, timeout=600)
        pyspy = str(Path(sys.executable).parent / "py-spy")
    database = database_url.rsplit("/", 1)[-1]
    n, conns, secs = 3, args.profile_connections, args.profile_seconds
    env = server_env(args, database_url, 1)
    with serve("app.main:app", 1, env) as (base, pid):
        target = worker_pid(pid)
        ids = tmp / "carts-profile.txt"
        script = tmp / "checkout-profile.lua"
        script.write_text(checkout_script(data["storefront"], ids, min(2, conns)))
        await pool.top_up(base, n, 1000)
        pool.write(n, ids)
        await settle(run_wrk(base, script, 2, conns, min(2, conns))["p99_us"] / 1e6)  # warm-up
        # pool for the profiled run: what 1 worker reached, generously
        await pool.top_up(base, n, int(args.profile_rate * (secs + 4)))
        pool.write(n, ids)
        raw = tmp / "profile.raw"
        spy = subprocess.Popen([pyspy, "record", "--pid", str(target), "--duration", str(secs), "--rate",
                                str(args.profile_sample_rate), "--format", "raw", "--nonblocking", "--output",
                                str(raw)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            await asyncio.sleep(0.5)
            stop = asyncio.Event()
            waits_task = asyncio.create_task(sample_pg_waits(conn, database, stop))
            cpu0 = process_tree_cpu(pid)
            wrk = await asyncio.to_thread(run_wrk, base, script, secs - 1, conns, min(2, conns))
            cpu = process_tree_cpu(pid) - cpu0
            stop.set()
            waits = await waits_task
            out, _ = await asyncio.to_thread(spy.communicate, timeout=secs + 60)
        finally:
            if spy.poll() is None:
                os.killpg(spy.pid, signal.SIGTERM)
                spy.wait(timeout=10)
        await pool.refresh(n)
    secs_run = wrk["duration_us"] / 1e6
    print(f"\n=== profile: 1 worker, {conns} connections, {n}-line checkouts, {secs_run:.0f} s ===")
    print(f"{wrk['orders'] / secs_run:.0f} orders/s, p50 {wrk['p50_us'] / 1000:.1f} ms, p99 {wrk['p99_us'] / 1000:.1f} ms, "
          f"server CPU {cpu * 1000 / max(1, wrk['orders']):.2f} ms/order (under py-spy --nonblocking), "
          f"{wrk['bad']} not 201")
    if wrk["bad"] or wrk["wrapped"]:
        print(f"!! profile run: {wrk['bad']} not 201, ran out of carts {wrk['wrapped']}×: {wrk['samples'][:600]}")
    if not raw.exists():
        print(f"py-spy wrote nothing:\n{out.decode(errors='replace')[-2000:]}")
        return
    summarize_profile(raw, args.profile_sample_rate, secs)
    samples = waits.pop("_samples", 1)
    total = sum(waits.values()) or 1
    print(f"\nPostgreSQL backends of the scratch database, sampled {samples}× from pg_stat_activity "
          f"(average {total / samples:.1f} connections):")
    for what, c in waits.most_common():
        print(f"  {c / total:6.1%}  {what}  (≈ {c / samples:.1f} backends)")
    if args.keep_profile:
        dest = Path(args.keep_profile)
        shutil.copy(raw, dest)
        print(f"raw py-spy stacks kept in {dest} (collapsed format: feed to flamegraph.pl or speedscope)")


# ----------------------------------------------------------------------------------- main

def print_tables(results: dict, args) -> None:
    print(f"\nwrk {args.duration} s per cell after a {args.warmup} s warm-up, on {os.cpu_count()} cores shared by "
          f"uvicorn, PostgreSQL and wrk.\n  checkout = the checkout request alone (carts made beforehand); order = cart "
          f"+ checkout, latency per order, and each request's own p50 (cart, checkout) and the checkout's p99.\n"
          f"  CPU ms per order: server (uvicorn process tree), PG (the database's backends), wrk; cores = all three "
          f"busy ÷ wall time; other = cores busy with anything else on the machine meanwhile (other sessions' "
          f"work, this script, PostgreSQL's background processes).\n  PG backends = average number, sampled every 50 ms: on CPU / waiting for a lock / "
          f"waiting on WAL or IO / idle in a transaction the app holds open.")
    print(f"{'workers':>7} {'flow':<9}{'lines':>5}{'conns':>6}{'orders/s':>9}{'p50 ms':>8}{'p99 ms':>8}"
          f"{'server':>8}{'PG':>7}{'wrk':>6}{'cores':>6}{'other':>6}  {'PG backends':>18}  {'cart/co p50, co p99':>19}  not-201")
    for (w, flow, n, c), r in results.items():
        db = r["db"] or 0
        split = f"{r['cart_p50']:.1f}/{r['co_p50']:.1f}, {r['co_p99']:.0f}" if flow == "order" else ""
        pg = r["pg"]
        backends = f"{pg['cpu']:.1f}/{pg['lock']:.1f}/{pg['io']:.1f}/{pg['idle_tx']:.1f}"
        errors = r["bad"] + r["socket"] + r["timeouts"]
        print(f"{w:>7} {flow:<9}{n:>5}{c:>6}{r['rps']:>9.0f}{r['p50']:>8.1f}{r['p99']:>8.1f}{r['cpu']:>8.2f}"
              f"{db:>7.2f}{r['wrk']:>6.2f}{sum(r['busy']):>6.2f}{r['others']:>6.2f}  {backends:>18}  {split:>19}  {errors or '-'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", help="PostgreSQL server URL: a scratch database is created and dropped")
    parser.add_argument("--duration", type=int, default=5, help="seconds measured per cell")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each cell (0: none)")
    parser.add_argument("--workers", default="1,2", help="uvicorn worker counts")
    parser.add_argument("--baskets", default="1,3,10", help="lines per basket")
    parser.add_argument("--connections", default="1,10,100", help="wrk connections (concurrent clients)")
    parser.add_argument("--flows", default="checkout,order", help="checkout (alone), order (cart + checkout)")
    parser.add_argument("--paced", default="", help="offered checkout rates (orders/s, comma-separated): after the "
                        "matrix, with the last worker count, 3-line baskets and the most connections, each connection "
                        "pausing between requests (wrk delay()) so that about this rate is offered: latency at a rate "
                        "below saturation (a closed loop of N clients without pauses has mean latency N ÷ rate)")
    parser.add_argument("--skus", type=int, default=200, help="SKUs in the catalog (≥ 200): fewer means hotter "
                        "stock rows at the warehouse, every order locks one row per line there")
    parser.add_argument("--db-pool-size", type=int, default=20, help="DB_POOL_SIZE per worker, at most")
    parser.add_argument("--max-db-connections", type=int, default=60,
                        help="connections the workers may open in all (pool + overflow + LISTEN); shared server")
    parser.add_argument("--profile", action="store_true", help="also profile one worker with py-spy")
    parser.add_argument("--profile-only", action="store_true", help="only the profile")
    parser.add_argument("--profile-seconds", type=int, default=10)
    parser.add_argument("--profile-connections", type=int, default=10)
    parser.add_argument("--profile-sample-rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--profile-rate", type=int, default=400, help="orders/s to make carts for while profiling")
    parser.add_argument("--breakdown-orders", type=int, default=300,
                        help="--profile: in-process checkouts timed step by step")
    parser.add_argument("--keep-profile", help="copy py-spy's raw stacks to this file")
    args = parser.parse_args()
    SKUS[:] = [f"CK-{i:04d}" for i in range(max(200, args.skus))]
    workers = [int(x) for x in args.workers.split(",")]
    baskets = [int(x) for x in args.baskets.split(",")]
    connections = [int(x) for x in args.connections.split(",")]
    flows = [x.strip() for x in args.flows.split(",")]
    paced = [float(x) for x in args.paced.split(",")] if args.paced else []
    assert set(flows) <= {"checkout", "order"}, flows
    ensure_wrk()

    async def run(database_url: str) -> None:
        import asyncpg

        started = time.monotonic()
        database = database_url.rsplit("/", 1)[-1]
        print(f"loading bench data into {database} ...", flush=True)
        data = await load(database_url, sorted(set(baskets) | {3}),
                          args.breakdown_orders if (args.profile or args.profile_only) else 0)
        print(f"  loaded in {time.monotonic() - started:.0f} s; a 3-line order: {data['sample']['order']}, "
              f"fulfillments (location, rule, candidates rejected) {data['sample']['fulfillments']}, "
              f"{data['sample']['bytes']} bytes of JSON")
        for n, (cart_n, checkout_n, _) in data["statements"].items():
            print(f"  SQL statements, {n:2d}-line basket: cart creation {cart_n}, checkout {checkout_n}")
        conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
        pool = CartPool(data["storefront"], conn, sorted(set(baskets) | {3}))
        results: dict = {}
        load0 = os.getloadavg()[0]
        try:
            with tempfile.TemporaryDirectory() as tmpdir:
                tmp = Path(tmpdir)
                for w in ([] if args.profile_only else workers):
                    print(f"\n--- uvicorn --workers {w}, DB_POOL_SIZE {pool_size_per_worker(args, w)} per worker",
                          flush=True)
                    with serve("app.main:app", w, server_env(args, database_url, w)) as (base, pid):
                        for n in baskets:
                            bodies = cart_bodies(n, 200 + n)
                            best = 0.0
                            for c in connections:
                                flow_rate = None
                                if "order" in flows:
                                    r = await order_cell(base, pid, database, data["storefront"], bodies, args, tmp, c, pool)
                                    results[(w, "order", n, c)] = r
                                    flow_rate = r["rps"]
                                    report_bad(f"{w} workers, order, {n} lines, {c} conns", r)
                                    print(f"  order     {n:2d} lines {c:3d} conns: {r['rps']:6.0f} orders/s, "
                                          f"p50 {r['p50']:6.1f} ms, p99 {r['p99']:6.1f} ms", flush=True)
                                if "checkout" in flows:
                                    expect = max(2.5 * (flow_rate or 0), best * min(c, 3), 150)
                                    r = await checkout_cell(base, pid, database, data["storefront"], pool, n, args,
                                                            tmp, c, expect)
                                    results[(w, "checkout", n, c)] = r
                                    best = max(best, r["rps"])
                                    report_bad(f"{w} workers, checkout, {n} lines, {c} conns", r)
                                    print(f"  checkout  {n:2d} lines {c:3d} conns: {r['rps']:6.0f} orders/s, "
                                          f"p50 {r['p50']:6.1f} ms, p99 {r['p99']:6.1f} ms", flush=True)
                        if paced and w == workers[-1]:
                            n, c = (3 if 3 in baskets else baskets[0]), max(connections)
                            for rate in paced:
                                r = await checkout_cell(base, pid, database, data["storefront"], pool, n, args, tmp,
                                                        c, rate, offered=rate)
                                results[(w, f"paced{rate:g}", n, c)] = r
                                report_bad(f"{w} workers, checkout paced at {rate:g}/s, {n} lines, {c} conns", r)
                                print(f"  checkout  {n:2d} lines {c:3d} conns, paced at {rate:g}/s: {r['rps']:6.0f} "
                                      f"orders/s, p50 {r['p50']:6.1f} ms, p99 {r['p99']:6.1f} ms", flush=True)
                if args.profile or args.profile_only:
                    await profile(args, database_url, data, pool, tmp, conn)
        finally:
            await conn.close()
        if data["breakdown"]:
            print_breakdown(data["breakdown"], data["statements"][3][1])
        if results:
            print_tables(results, args)
            print(f"\ncarts made beforehand for the checkout cells: {pool.created} in {pool.seconds:.0f} s; "
                  f"load average {load0:.1f} before, {os.getloadavg()[0]:.1f} after; "
                  f"total {time.monotonic() - started:.0f} s")
            at_goal = [(k, r) for k, r in results.items() if k[1] == "checkout" and k[3] == 100]
            if at_goal:
                (w, _, n, c), r = max(at_goal, key=lambda kr: kr[1]["rps"])
                met = r["rps"] >= 700 and r["p99"] < 50
                print(f"goal ≥ 700 orders/s with p99 < 50 ms at 100 clients: best checkout cell {r['rps']:.0f} orders/s, "
                      f"p99 {r['p99']:.1f} ms ({w} workers, {n} lines): {'met' if met else 'NOT met'}")
                spent = r["cpu"] + (r["db"] or 0) + r["wrk"]
                print("  a closed loop (wrk: every client sends its next order as soon as the last is answered) "
                      "has mean latency = clients ÷ rate: 100 clients at 700 orders/s wait 143 ms on average, so "
                      "p99 < 50 ms at 100 such clients needs ≥ 2,000 orders/s; the paced rows offer a fixed rate "
                      "from 100 clients that pause between orders")
                print(f"  CPU per order there: server {r['cpu']:.2f} + PostgreSQL {r['db'] or 0:.2f} + wrk "
                      f"{r['wrk']:.2f} = {spent:.2f} ms; {os.cpu_count()} cores bound the rate at "
                      f"≈ {os.cpu_count() * 1000 / spent:.0f} orders/s; 700 orders/s allows "
                      f"{os.cpu_count() * 1000 / 700:.2f} ms per order in all")
        biggest = max(data["statements"])
        print(f"\nSQL statements of one checkout ({biggest} lines) in order (BEGIN, SAVEPOINT, RELEASE, COMMIT not listed):")
        for s in data["statements"][biggest][2]:
            print("  " + " ".join(s.split())[:150])
        failed = [f"{k}: {r['bad']} not 201, {r['socket']} socket errors, {r['timeouts']} timeouts"
                  for k, r in results.items() if r["bad"] or r["socket"] or r["timeouts"]]
        if failed:
            raise SystemExit("FAILED, cells with errors:\n  " + "\n  ".join(failed))

    # Others may edit the working tree while this runs (a server started later would import a
    # half-made change, or models ahead of the database's migrations): the in-process app and
    # every server run a copy of app/ and migrations/ taken now.
    with tempfile.TemporaryDirectory(prefix="bench_checkout_") as snap:
        code = Path(snap) / "snapshot"
        code.mkdir()
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for name in ("app", "migrations"):
            shutil.copytree(ROOT / name, code / name, ignore=ignore)
        shutil.copy(ROOT / "alembic.ini", code / "alembic.ini")
        sys.path.insert(0, str(code))
        CODE.append(code)
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "app", "migrations"],
                               capture_output=True, text=True).stdout.splitlines()
        print(f"code: a copy of app/ and migrations/ at {head or '?'} with {len(dirty)} uncommitted changes "
              f"in app/ and migrations/ (the working tree as it is now)", flush=True)
        run_with_database(args.pg, run)


if __name__ == "__main__":
    main()
