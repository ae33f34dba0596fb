"""Side by side with Medusa v2: the storefront product list with prices, on this machine.

    .venv/bin/python bench/bench_medusa.py --pg postgresql://postgres@127.0.0.1:5432 [--duration 5] [--rounds 5]
        [--connections 10,50] [--medusa-caching on|off] [--medusa-fields FIELDS] [--no-ours-uncached]
        [--dir /tmp/medusa-bench]

Medusa (pinned: MEDUSA_VERSION) is set up in a scratch folder outside the repository (--dir):
package.json, medusa-config.ts, tsconfig.json and a seed script are written there, `npm install`
runs when the installed @medusajs/medusa is not the pinned version (the npm cache and the folder
stay for the next run), then on a scratch database of its own `medusa db:migrate`, the seed
(`medusa exec`), `medusa build`, and the built server (.medusa/server) is started with
NODE_ENV=production as one Node process (`medusa start`, no --cluster). Caching as Medusa
documents it for v2.11+ (docs.medusajs.com/resources/infrastructure-modules/caching and
.../caching/providers/redis): the `caching` feature flag (MEDUSA_FF_CACHING=true) and the Caching
Module (`@medusajs/medusa/caching`) with the Redis Caching Module Provider
(`@medusajs/caching-redis`), on a redis-server started here on a free loopback port;
projectConfig.redisUrl points at it too (sessions). GET /store/products caches its query.graph
result through that module (`cache: {enable: true}` in its route). Medusa's per-request HTTP
log is switched off (LOG_LEVEL=info) as ours runs with --no-access-log.

Both sides hold the same data: 10 products x 5 variants, every variant priced in EUR (one region
or channel, one sales channel, a publishable / storefront key). Ours runs under one uvicorn worker
(bench_http.serve, the same settings as bench_http.py) on its own scratch database.

Measured: GET /store/products?limit=10&region_id=...&fields=*variants.calculated_price with the
x-publishable-api-key header, against our GET /v1/products?limit=10 with the storefront key
(`price` / `compare_at_price` per variant), and (unless --no-ours-uncached) ours once more as
"ours-miss": the same request with a query parameter of its own every time, which our API ignores
but which keeps our whole-response cache (app/core/cache.py) from answering, so the page is
rendered and priced each time. Every answer is checked first (200, 10 products, every variant
priced). After a warm-up each, wrk runs alternating rounds (per round and connection count: ours,
Medusa, ours-miss), --duration seconds each. Per round: requests/s, p50/p99, server CPU per
request (the server's process tree, from /proc), its PostgreSQL backends' CPU per request and,
for Medusa, the redis-server's; then per connection count the median over rounds of ours / Medusa
(throughput, and Medusa's CPU per request / ours). wrk shares the 2 cores with both
servers: compare the ratios of one run, not absolute figures. Everything started here (servers,
redis-server, both scratch databases) is stopped or dropped at the end.
"""
import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import bench_http  # noqa: E402
from common import _cpu, app_client, free_port, new_api_key, pg_backends_cpu, process_tree_cpu, run_with_database  # noqa: E402

MEDUSA_VERSION = "2.21.2"
CHANNEL = "bench-web"
SIZES = ("XS", "S", "M", "L", "XL")
PRODUCTS = 10

PACKAGE_JSON = {
    "name": "medusa-bench", "version": "0.0.1", "private": True,
    "dependencies": {"@medusajs/medusa": MEDUSA_VERSION, "@medusajs/framework": MEDUSA_VERSION,
                     "@medusajs/cli": MEDUSA_VERSION, "@medusajs/caching-redis": MEDUSA_VERSION},
    "devDependencies": {"@swc/core": "^1.7.28", "@types/node": "^20.0.0", "ts-node": "^10.9.2",
                        "typescript": "^5.6.2"},
    "engines": {"node": ">=20"},
}
MEDUSA_CONFIG = """import { defineConfig } from "@medusajs/framework/utils"

// Written by bench/bench_medusa.py. Caching as documented for Medusa >= 2.11: the `caching`
// feature flag and the Caching Module with the Redis Caching Module Provider
// (docs.medusajs.com/resources/infrastructure-modules/caching, .../caching/providers/redis).
const caching = process.env.MEDUSA_FF_CACHING === "true"

module.exports = defineConfig({
  projectConfig: {
    databaseUrl: process.env.DATABASE_URL,
    redisUrl: process.env.REDIS_URL,
    workerMode: "shared",
    http: {
      storeCors: "*",
      adminCors: "*",
      authCors: "*",
      jwtSecret: process.env.JWT_SECRET || "bench-jwt-secret",
      cookieSecret: process.env.COOKIE_SECRET || "bench-cookie-secret",
    },
  },
  admin: { disable: true },
  featureFlags: { caching },
  modules: caching
    ? [
        {
          resolve: "@medusajs/medusa/caching",
          options: {
            providers: [
              {
                resolve: "@medusajs/caching-redis",
                id: "caching-redis",
                is_default: true,
                options: { redisUrl: process.env.CACHE_REDIS_URL },
              },
            ],
          },
        },
      ]
    : [],
})
"""
TSCONFIG = {
    "compilerOptions": {
        "target": "ES2021", "esModuleInterop": True, "module": "Node16", "moduleResolution": "Node16",
        "emitDecoratorMetadata": True, "experimentalDecorators": True, "skipLibCheck": True,
        "skipDefaultLibCheck": True, "declaration": False, "sourceMap": False, "inlineSourceMap": True,
        "outDir": "./.medusa/server", "rootDir": "./", "jsx": "react-jsx",
        "forceConsistentCasingInFileNames": True, "resolveJsonModule": True, "checkJs": False,
        "strictNullChecks": True,
    },
    "ts-node": {"swc": True},
    "include": ["**/*", ".medusa/types/*"],
    "exclude": ["node_modules", ".medusa/server", ".medusa/admin", ".cache"],
}
SEED_TS = """import { ExecArgs } from "@medusajs/framework/types"
import { Modules, ProductStatus } from "@medusajs/framework/utils"
import {
  createApiKeysWorkflow,
  createProductsWorkflow,
  createRegionsWorkflow,
  createSalesChannelsWorkflow,
  createStoresWorkflow,
  linkSalesChannelsToApiKeyWorkflow,
  updateStoresWorkflow,
} from "@medusajs/medusa/core-flows"
import { writeFileSync } from "fs"

// Written by bench/bench_medusa.py: PRODUCTS products x 5 variants, each variant priced in EUR
// (the same amounts as ours, in major units), one region (EUR, Germany), one sales channel and a
// publishable API key bound to it.
const SIZES = ["XS", "S", "M", "L", "XL"]

export default async function benchSeed({ container }: ExecArgs) {
  const storeModule = container.resolve(Modules.STORE)
  let [store] = await storeModule.listStores()
  if (!store) {
    const { result } = await createStoresWorkflow(container).run({
      input: { stores: [{ name: "Bench store", supported_currencies: [{ currency_code: "eur", is_default: true }] }] },
    })
    store = result[0]
  }
  const { result: channels } = await createSalesChannelsWorkflow(container).run({
    input: { salesChannelsData: [{ name: "Bench web" }] },
  })
  const channel = channels[0]
  await updateStoresWorkflow(container).run({
    input: {
      selector: { id: store.id },
      update: {
        supported_currencies: [{ currency_code: "eur", is_default: true }],
        default_sales_channel_id: channel.id,
      },
    },
  })
  const { result: regions } = await createRegionsWorkflow(container).run({
    input: { regions: [{ name: "Europe", currency_code: "eur", countries: ["de"] }] },
  })
  const { result: keys } = await createApiKeysWorkflow(container).run({
    input: { api_keys: [{ title: "Bench storefront", type: "publishable", created_by: "" }] },
  })
  await linkSalesChannelsToApiKeyWorkflow(container).run({ input: { id: keys[0].id, add: [channel.id] } })
  await createProductsWorkflow(container).run({
    input: {
      products: Array.from({ length: PRODUCTS }, (_, p) => ({
        title: `Bench ${p}`,
        handle: `bench-${p}`,
        status: ProductStatus.PUBLISHED,
        options: [{ title: "Size", values: SIZES }],
        variants: SIZES.map((size, v) => ({
          title: size,
          sku: `MB-${p}-${size}`,
          options: { Size: size },
          manage_inventory: false,
          prices: [{ amount: (500 + 37 * (5 * p + v)) / 100, currency_code: "eur" }],
        })),
        sales_channels: [{ id: channel.id }],
      })),
    },
  })
  const out = { region_id: regions[0].id, publishable_key: keys[0].token, sales_channel_id: channel.id }
  writeFileSync(process.env.BENCH_SEED_OUT as string, JSON.stringify(out))
}
""".replace("PRODUCTS", str(PRODUCTS))


def run(cmd: list[str], cwd: Path, env: dict, timeout: float, what: str) -> str:
    """Runs a setup command; on failure stops the benchmark with the command and its output's tail."""
    started = time.monotonic()
    try:
        out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise SystemExit(f"{what}: `{' '.join(cmd)}` did not finish in {timeout:.0f} s:\n{(e.stdout or '')[-3000:]}")
    if out.returncode:
        raise SystemExit(f"{what}: `{' '.join(cmd)}` (in {cwd}) exited {out.returncode}:\n"
                         f"{(out.stdout + out.stderr)[-4000:]}")
    print(f"  {what}: {time.monotonic() - started:.0f} s", flush=True)
    return out.stdout


def write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def installed_version(project: Path, package: str) -> str | None:
    try:
        return json.loads((project / "node_modules" / package / "package.json").read_text())["version"]
    except (FileNotFoundError, KeyError, ValueError):
        return None


def setup_medusa(project: Path, env: dict) -> None:
    """The Medusa project in `project`: files written, packages installed (pinned version)."""
    if not shutil.which("node") or not shutil.which("npm"):
        raise SystemExit("node and npm are needed for the Medusa side (Node.js >= 20)")
    project.mkdir(parents=True, exist_ok=True)
    write_if_changed(project / "package.json", json.dumps(PACKAGE_JSON, indent=2) + "\n")
    write_if_changed(project / "tsconfig.json", json.dumps(TSCONFIG, indent=2) + "\n")
    write_if_changed(project / "medusa-config.ts", MEDUSA_CONFIG)
    write_if_changed(project / "src" / "scripts" / "bench-seed.ts", SEED_TS)
    wanted = {p: v for p, v in PACKAGE_JSON["dependencies"].items()}
    if any(installed_version(project, p) != v for p, v in wanted.items()):
        print(f"npm install in {project} (Medusa {MEDUSA_VERSION}; a few minutes the first time) ...", flush=True)
        run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], project, env, 1800, "npm install")
    for p, v in wanted.items():
        if installed_version(project, p) != v:
            raise SystemExit(f"{p}: {installed_version(project, p)} installed in {project}, not {v}")


def medusa_cli(project: Path) -> list[str]:
    return ["node", str(project / "node_modules" / "@medusajs" / "cli" / "cli.js")]


def wait_http(url: str, proc: subprocess.Popen, log: Path, seconds: float, what: str) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start (exit code {proc.returncode}); its output ({log}):\n"
                             f"{log.read_text(errors='replace')[-4000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)


def start(stack: ExitStack, cmd: list[str], cwd: Path, env: dict, log: Path) -> subprocess.Popen:
    """A process in its own process group, ended (TERM, then KILL) when `stack` closes."""
    out = open(log, "wb")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def stop() -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        out.close()

    stack.callback(stop)
    return proc


def redis_stats(port: int) -> dict[str, int]:
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "info", "stats"], capture_output=True,
                         text=True, timeout=10).stdout
    return {k: int(v) for k, v in (line.strip().split(":", 1) for line in out.splitlines() if ":" in line)
            if k in ("keyspace_hits", "keyspace_misses", "total_commands_processed")}


async def load_ours(database_url: str) -> str:
    """Our side of the same data, through the API: a web channel (EUR, DE), 10 products x 5
    variants visible in it, a price list with a EUR price per variant, a tax rate; returns a
    storefront key bound to the channel."""
    async with app_client(database_url) as (client, admin):
        r = await client.post("/v1/channels", headers=admin, json={
            "code": CHANNEL, "name": "Bench", "type": "web", "currency": "EUR", "country": "DE"})
        assert r.status_code == 201, r.text
        skus = [(p, size) for p in range(PRODUCTS) for size in SIZES]
        rows = "\n".join(json.dumps({
            "sku": f"MB-{p}-{size}", "product_handle": f"bench-{p}", "product_title": f"Bench {p}",
            "status": "active", "category": "fashion/tees", "channels": [CHANNEL], "options": {"size": size}})
            for p, size in skus)
        r = await client.post("/v1/catalog/import", content=rows,
                              headers=admin | {"Content-Type": "application/x-ndjson"})
        assert r.status_code == 200 and r.json()["failed"] == 0, r.text[:300]
        r = await client.post("/v1/price-lists", headers=admin,
                              json={"code": "bench-retail", "currency": "EUR", "channels": [CHANNEL]})
        assert r.status_code == 201, r.text
        r = await client.put("/v1/price-lists/bench-retail/prices", headers=admin,
                             json=[{"sku": f"MB-{p}-{size}", "amount": 500 + 37 * i} for i, (p, size) in enumerate(skus)])
        assert r.status_code == 200, r.text
        r = await client.post("/v1/tax-rates", headers=admin,
                              json={"country": "DE", "tax_class": "standard", "rate_bp": 1900})
        assert r.status_code in (200, 201), r.text
        return await new_api_key(name="bench-storefront", role="storefront", channel=CHANNEL)


def check_ours(body: dict) -> str:
    products = body["data"]
    variants = [v for p in products for v in p["variants"]]
    if len(products) != PRODUCTS or any(v.get("price") is None for v in variants):
        raise SystemExit(f"ours: expected {PRODUCTS} products with every variant priced, got {len(products)} products, "
                         f"{sum(v.get('price') is None for v in variants)} of {len(variants)} variants unpriced")
    v = variants[0]
    return f"{len(products)} products, {len(variants)} variants, e.g. price {v['price']}, compare_at_price {v['compare_at_price']}"


def check_medusa(body: dict) -> str:
    products = body["products"]
    variants = [v for p in products for v in p["variants"]]
    unpriced = [v for v in variants if (v.get("calculated_price") or {}).get("calculated_amount") is None]
    if len(products) != PRODUCTS or unpriced:
        raise SystemExit(f"Medusa: expected {PRODUCTS} products with every variant priced, got {len(products)} "
                         f"products, {len(unpriced)} of {len(variants)} variants without calculated_price")
    c = variants[0]["calculated_price"]
    return (f"{len(products)} products, {len(variants)} variants, e.g. calculated_amount {c['calculated_amount']} "
            f"{c['currency_code']}, original_amount {c['original_amount']}")


# wrk: a query parameter of its own on every request (unknown to the API, which ignores it), so
# that our whole-response cache never answers and every request renders and prices the page.
MISS_LUA = r"""
local threads = 0
setup = function(thread) threads = threads + 1; thread:set("tid", threads) end
local n = 0
request = function() n = n + 1; return wrk.format(nil, wrk.path .. "&nocache=" .. tid .. "-" .. n) end
"""


def settle(pids: list[int], seconds: float = 5) -> None:
    """Waits (at most `seconds`) until the servers are idle (under 5 % of a core over 0.2 s): a
    server still working through requests a finished wrk left behind would eat into the next run."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        before = sum(process_tree_cpu(p) for p in pids)
        time.sleep(0.2)
        if sum(process_tree_cpu(p) for p in pids) - before < 0.01:
            return


def measure(base: str, sc, pid: int, database: str, seconds: float, conns: int, script: Path,
            redis_pid: int | None = None, servers: list[int] = ()) -> dict:
    settle(list(servers))
    cpu0, db0 = process_tree_cpu(pid), pg_backends_cpu(database)
    r0 = _cpu(redis_pid) if redis_pid else 0.0
    load = os.getloadavg()[0]
    r = bench_http.run_wrk(base, sc, seconds, conns, script)
    cpu = process_tree_cpu(pid) - cpu0
    db = pg_backends_cpu(database)
    db_cpu = sum(t - db0.get(p, 0.0) for p, t in db.items()) if db or db0 else None
    requests = max(1, int(r["requests"]))
    return {"rps": r["requests"] / (r["duration_us"] / 1e6), "p50": r["p50_us"] / 1000, "p99": r["p99_us"] / 1000,
            "cpu": cpu * 1000 / requests, "db": None if db_cpu is None else db_cpu * 1000 / requests,
            "redis": (_cpu(redis_pid) - r0) * 1000 / requests if redis_pid else None,
            "kb": r["bytes"] / requests / 1024, "errors": r["errors"], "requests": requests, "load": load}


def fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432",
                        help="PostgreSQL server URL: a scratch database for each side, created and dropped here")
    parser.add_argument("--duration", type=float, default=5, help="seconds measured per round and side")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per connection count")
    parser.add_argument("--connections", default="10,50", help="wrk connection counts, comma-separated")
    parser.add_argument("--warmup", type=float, default=15,
                        help="seconds of warm-up per side and connection count (Node's JIT needs a while)")
    parser.add_argument("--medusa-caching", choices=("on", "off"), default="on",
                        help="Medusa's Caching Module with the Redis provider (on) or Medusa's default (off)")
    parser.add_argument("--medusa-fields", default="*variants.calculated_price",
                        help="the `fields` of Medusa's request (default: Medusa's default product fields plus the "
                             "variants' calculated prices, as its Next.js starter asks for them)")
    parser.add_argument("--no-ours-uncached", dest="ours_uncached", action="store_false",
                        help="skip the third side: ours with a whole-response cache miss on every request")
    parser.add_argument("--dir", default="/tmp/medusa-bench", help="the Medusa project folder (outside the repo)")
    args = parser.parse_args()
    args.connections = [int(c) for c in args.connections.split(",")]
    args.duration, args.warmup = max(1, round(args.duration)), max(1, round(args.warmup))
    project = Path(args.dir).resolve()
    if str(project).startswith(str(BENCH.parent)):
        raise SystemExit("--dir must be outside the repository")
    if not shutil.which("redis-server") or not shutil.which("redis-cli"):
        raise SystemExit("redis-server and redis-cli are needed (Debian package redis-server)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on TERM as on Ctrl-C
    bench_http.ensure_wrk()
    node_env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDUSA_", "DATABASE_URL", "REDIS_URL", "NODE_ENV"))}
    node_env |= {"NEXT_TELEMETRY_DISABLED": "1", "MEDUSA_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}

    t0 = time.monotonic()
    setup_medusa(project, node_env)
    versions = {
        "Medusa (@medusajs/medusa)": installed_version(project, "@medusajs/medusa"),
        "@medusajs/caching-redis": installed_version(project, "@medusajs/caching-redis"),
        "node": subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
        "redis-server": subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2],
        "wrk": (subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split() or ["?", "?"])[1],
    }

    async def bench(database_url: str) -> None:
        our_db = database_url.rsplit("/", 1)[-1]
        medusa_db = f"medusa_bench_{secrets.token_hex(3)}"
        pg = args.pg.rstrip("/")
        import asyncpg

        async def admin_sql(sql: str) -> None:
            conn = await asyncpg.connect(pg + "/postgres")
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        await admin_sql(f'CREATE DATABASE "{medusa_db}"')
        try:
            results, stats0, stats1, load0, load1, caching_logged = await side_by_side(medusa_db, database_url, our_db)
        finally:
            await admin_sql(f'DROP DATABASE IF EXISTS "{medusa_db}" WITH (FORCE)')
        report(results, stats0, stats1, load0, load1, caching_logged)

    async def side_by_side(medusa_db: str, database_url: str, our_db: str):
        pg = args.pg.rstrip("/")
        with tempfile.TemporaryDirectory() as tmp_name, ExitStack() as stack:
            tmp = Path(tmp_name)
            redis_port = free_port()
            redis = start(stack, ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no", "--dir", str(tmp)], tmp, node_env, tmp / "redis.log")
            for _ in range(50):
                if subprocess.run(["redis-cli", "-p", str(redis_port), "ping"], capture_output=True,
                                  text=True).stdout.strip() == "PONG":
                    break
                time.sleep(0.1)
            else:
                raise SystemExit(f"redis-server did not start:\n{(tmp / 'redis.log').read_text()}")
            redis_url = f"redis://127.0.0.1:{redis_port}"
            medusa_env = node_env | {
                "DATABASE_URL": pg.replace("postgresql://", "postgres://") + "/" + medusa_db,
                "REDIS_URL": redis_url, "CACHE_REDIS_URL": redis_url,
                "MEDUSA_FF_CACHING": "true" if args.medusa_caching == "on" else "false",
            }
            print(f"Medusa {MEDUSA_VERSION}: database {medusa_db}, redis-server on port {redis_port}", flush=True)
            cli = medusa_cli(project)
            run(cli + ["db:migrate"], project, medusa_env | {"NODE_ENV": "development"}, 900, "medusa db:migrate")
            seed_out = tmp / "medusa-seed.json"
            run(cli + ["exec", "./src/scripts/bench-seed.ts"], project,
                medusa_env | {"NODE_ENV": "development", "BENCH_SEED_OUT": str(seed_out)}, 600, "medusa exec bench-seed")
            seed = json.loads(seed_out.read_text())
            run(cli + ["build"], project, medusa_env, 900, "medusa build")
            server_dir = project / ".medusa" / "server"
            link = server_dir / "node_modules"  # the built server needs the same packages (docs: npm install there)
            if not link.exists():
                link.symlink_to(project / "node_modules")
            medusa_port = free_port()
            medusa = start(stack, cli + ["start", "--host", "127.0.0.1", "--port", str(medusa_port)], server_dir,
                           medusa_env | {"NODE_ENV": "production", "LOG_LEVEL": "info"}, tmp / "medusa.log")
            medusa_base = f"http://127.0.0.1:{medusa_port}"
            wait_http(medusa_base + "/health", medusa, tmp / "medusa.log", 180, "medusa start")
            log_text = (tmp / "medusa.log").read_text(errors="replace")
            caching_logged = "Redis cache connection established" in log_text

            print("loading our bench data ...", flush=True)
            key = await load_ours(database_url)
            env = os.environ | {"DATABASE_URL": database_url, "RATE_LIMIT": "1000000000/minute", "DB_POOL_SIZE": "10",
                                "INLINE_WORKER": "false"}
            ours_base, ours_pid = stack.enter_context(bench_http.serve("app.main:app", 1, env))
            print(f"  set up in {time.monotonic() - t0:.0f} s", flush=True)

            ours = bench_http.Scenario("ours GET /v1/products?limit=10", "app", "/v1/products?limit=10",
                                       headers={"Authorization": f"Bearer {key}"})
            medusa_sc = bench_http.Scenario(
                "Medusa GET /store/products?limit=10", "medusa",
                f"/store/products?limit=10&region_id={seed['region_id']}&fields={quote(args.medusa_fields, safe='*,+-.')}",
                headers={"x-publishable-api-key": seed["publishable_key"]})
            _, body = bench_http.check(ours_base, ours)
            print(f"ours:   GET {ours.path} (storefront key): {check_ours(body)}")
            _, body = bench_http.check(medusa_base, medusa_sc)
            print(f"Medusa: GET {medusa_sc.path.replace(seed['region_id'], '<region>')} (publishable key): "
                  f"{check_medusa(body)}")
            _, body = bench_http.check(ours_base, bench_http.Scenario("", "app", ours.path + "&nocache=check",
                                                                         headers=ours.headers))
            check_ours(body)
            scripts = {"ours": tmp / "ours.lua", "medusa": tmp / "medusa.lua", "ours-miss": tmp / "ours-miss.lua"}
            scripts["ours"].write_text(ours.lua())
            scripts["medusa"].write_text(medusa_sc.lua())
            scripts["ours-miss"].write_text(ours.lua() + MISS_LUA)
            sides = {"ours": (ours_base, ours, ours_pid, our_db, None),
                     "medusa": (medusa_base, medusa_sc, medusa.pid, medusa_db, redis.pid)}
            if args.ours_uncached:
                sides["ours-miss"] = (ours_base, ours, ours_pid, our_db, None)

            load0 = os.getloadavg()
            for conns in args.connections:  # warm-up (JIT, caches, pools) at every load
                for name, (base, sc, pid, db, _) in sides.items():
                    bench_http.run_wrk(base, sc, args.warmup, conns, scripts[name])
            stats0 = redis_stats(redis_port)
            results: dict[int, list[dict]] = {c: [] for c in args.connections}
            for rnd in range(args.rounds):
                for conns in args.connections:
                    row = {name: measure(base, sc, pid, db, args.duration, conns, scripts[name], rpid,
                                         [ours_pid, medusa.pid])
                           for name, (base, sc, pid, db, rpid) in sides.items()}
                    results[conns].append(row)
                    print(f"  round {rnd + 1}, {conns} connections: ours {row['ours']['rps']:.0f} req/s, "
                          f"Medusa {row['medusa']['rps']:.0f} req/s", flush=True)
            stats1 = redis_stats(redis_port)
            load1 = os.getloadavg()
        return results, stats0, stats1, load0, load1, caching_logged

    def report(results, stats0, stats1, load0, load1, caching_logged) -> None:
        measured = sum(r["medusa"]["requests"] for rows in results.values() for r in rows)
        uncached = args.ours_uncached
        print(f"\n=== storefront product list, 10 products x 5 variants with prices: ours vs Medusa {versions['Medusa (@medusajs/medusa)']} ===")
        print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
        print(f"Medusa: NODE_ENV=production, one Node process (medusa start, built server), Caching Module with "
              f"the Redis provider {'ON' if args.medusa_caching == 'on' else 'OFF (Medusa default)'}"
              + (f" (connected: {'yes' if caching_logged else 'NOT SEEN in its log'}); redis during the measured "
                 f"rounds: {(stats1['keyspace_hits'] - stats0['keyspace_hits']) / max(1, measured):.1f} cache hits "
                 f"and {(stats1['keyspace_misses'] - stats0['keyspace_misses']) / max(1, measured):.2f} misses "
                 f"per Medusa request" if args.medusa_caching == "on" else ""))
        print("ours: one uvicorn worker (bench_http.serve), storefront key, `price` / `compare_at_price` per variant"
              + ("; ours-miss: the same with a query parameter of its own on every request, so that the whole-"
                 "response cache never answers (the page is rendered and priced each time)" if uncached else ""))
        print(f"wrk {args.duration} s per round and side after a {args.warmup} s warm-up each, {args.rounds} rounds "
              f"alternating ours / Medusa, {os.cpu_count()} cores shared with wrk and whatever else runs; "
              f"load average (1/5/15 min) {'/'.join(f'{x:.1f}' for x in load0)} before, "
              f"{'/'.join(f'{x:.1f}' for x in load1)} after")
        print(f"\n{'round':>5}{'conns':>6}  {'side':<10}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>11}"
              f"{'DB ms/req':>10}{'redis ms/req':>13}{'KB/resp':>9}{'load1':>7}  errors")
        for conns, rows in results.items():
            for i, row in enumerate(rows):
                for name, r in row.items():
                    print(f"{i + 1:>5}{conns:>6}  {name:<10}{r['rps']:>8.0f}{r['p50']:>9.1f}{r['p99']:>9.1f}"
                          f"{r['cpu']:>11.3f}{fmt(r['db']):>10}{fmt(r['redis']):>13}{r['kb']:>9.1f}"
                          f"{r['load']:>7.1f}  {r['errors'] or '-'}")
        print(f"\n{'conns':>5}  {'req/s ratio (median; rounds)':<46}{'Medusa ÷ ours, CPU ms/req (median; rounds)'}")
        for side in ("ours", "ours-miss") if uncached else ("ours",):
            for conns, rows in results.items():
                tput = [r[side]["rps"] / r["medusa"]["rps"] for r in rows]
                cpu = [r["medusa"]["cpu"] / r[side]["cpu"] for r in rows]
                print(f"{conns:>5}  {side + ' ÷ Medusa: ' + f'{statistics.median(tput):.1f}x  (' + ', '.join(f'{x:.1f}' for x in tput) + ')':<46}"
                      f"{statistics.median(cpu):.1f}x  ({', '.join(f'{x:.1f}' for x in cpu)})")
        print("targets: issue 10 ≥ 5x, DESIGN.md ≥ 3x (throughput, Medusa v2 with its caching on)")
        failed = [f"{name}, {conns} connections, round {i + 1}: {r['errors']}" for conns, rows in results.items()
                  for i, row in enumerate(rows) for name, r in row.items() if r["errors"]]
        if failed:
            raise SystemExit("FAILED, rounds with errors:\n  " + "\n  ".join(failed))

    run_with_database(args.pg, bench)


if __name__ == "__main__":
    main()
