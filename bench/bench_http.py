"""HTTP benchmark: the API under uvicorn, driven by wrk, against a bare FastAPI endpoint.

    .venv/bin/python bench/bench_http.py --pg postgresql://postgres@127.0.0.1:5432 [--duration 10] [--connections 50] [--workers 1,2]

Loads a scratch database (bench_quote's 300 SKUs as 60 products of 5 variants, a price list and
50 promotions; bench_availability's 50 SKUs + 5 bundles stocked at 200 stores; all in one web
channel), a storefront key bound to that channel and an admin key. Then, per worker count,
starts the app and bench/baseline_app.py under `uvicorn --workers N` on free loopback ports and
runs each scenario with wrk: a warm-up, then --duration seconds. Prints per scenario
requests/s, p50/p99 latency, the server's CPU per request (utime + stime of the whole uvicorn
process tree, from /proc, over the run ÷ requests wrk completed; PostgreSQL's own CPU is not in
it, but when PostgreSQL runs on this machine its backends' CPU for the scratch database is shown
apart, as DB ms/req) and the throughput relative to the bare FastAPI endpoint (DESIGN.md,
"Performance targets"). wrk shares the machine's cores with the server: compare ratios within a
run, not absolute figures. Responses slower than 10 s count as wrk timeouts (errors).
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import bench_availability  # noqa: E402
import bench_quote  # noqa: E402
from common import ROOT, app_client, free_port, new_api_key, pg_backends_cpu, process_tree_cpu, run_with_database  # noqa: E402

CHANNEL = "bench-web"
JSON = {"Content-Type": "application/json"}
DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH_RESULT {"requests": %.0f, "duration_us": %.0f, "bytes": %.0f, "p50_us": %.0f, '
    .. '"p99_us": %.0f, "non2xx": %.0f, "connect": %.0f, "read": %.0f, "write": %.0f, "timeout": %.0f}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass
class Scenario:
    name: str
    server: str  # "app" or "baseline"
    path: str
    method: str = "GET"
    headers: dict = field(default_factory=dict)
    bodies: list[str] = field(default_factory=list)  # POST bodies, sent in turn
    connections: int | None = None  # None: --connections

    def lua(self) -> str:
        """The wrk script: method, headers, bodies (rotated by request() when several), and a
        done() that prints the figures as one JSON line."""
        out = [f'wrk.method = "{self.method}"'] + [f'wrk.headers["{k}"] = "{v}"' for k, v in self.headers.items()]
        if len(self.bodies) == 1:
            out.append(f"wrk.body = [==[{self.bodies[0]}]==]")
        elif self.bodies:
            out.append("local bodies = {" + ", ".join(f"[==[{b}]==]" for b in self.bodies) + "}")
            out.append("local i = 0")
            out.append("request = function() i = i % #bodies + 1; return wrk.format(nil, nil, nil, bodies[i]) end")
        return "\n".join(out) + DONE_LUA


def scenarios(key: str, quote_bodies: list[str], availability_query: str) -> list[Scenario]:
    auth = {"Authorization": f"Bearer {key}"}
    return [
        Scenario("baseline GET (bare FastAPI, 2 KB JSON)", "baseline", "/bench"),
        Scenario("GET /healthz", "app", "/healthz"),
        Scenario("GET /v1/channels/{code}", "app", f"/v1/channels/{CHANNEL}", headers=auth),
        Scenario("GET /v1/products?limit=10", "app", "/v1/products?limit=10", headers=auth),
        Scenario("POST /v1/pricing/quote, 10 lines", "app", "/v1/pricing/quote", "POST", auth | JSON, quote_bodies),
        Scenario("GET /v1/availability 55 SKUs x 200 (1 conn)", "app", "/v1/availability?" + availability_query,
                 headers=auth, connections=1),
    ] + checkout_scenarios(auth)


def checkout_scenarios(auth: dict) -> list[Scenario]:
    """HOOK: CHECKOUT. When POST /v1/checkout exists, return its scenario here, e.g.
    Scenario("POST /v1/checkout, 3 lines, ship", "app", "/v1/checkout", "POST", auth | JSON, bodies, 100)
    (DESIGN.md: ≥ 700 orders/s, p99 < 50 ms at 100 clients). Build the bodies in load(); stock
    enough for the whole run, and if every request needs its own Idempotency-Key, set it in the
    Lua request() of Scenario.lua (e.g. wrk.format(nil, nil, {["Idempotency-Key"] = ...}, body))."""
    return []


async def load(database_url: str) -> dict:
    """Migrate and load the bench data through the in-process app; return the keys and request bodies."""
    import random

    async with app_client(database_url) as (client, admin):
        await bench_quote.load_pricing(client, admin, CHANNEL, variants_per_product=5)
        availability = await bench_availability.load_stock(client, admin, CHANNEL)
        storefront = await new_api_key(name="bench-storefront", role="storefront", channel=CHANNEL)
    rng = random.Random(11)
    bodies = [json.dumps({"channel": CHANNEL, "lines": [{"sku": s, "quantity": q} for s, q in bench_quote.basket(rng, 10)]})
              for _ in range(20)]
    return {"storefront": storefront, "quote_bodies": bodies,
            "availability_query": urlencode(availability, safe=",")}


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        raise SystemExit("wrk is missing: install it with `sudo apt-get install wrk` (Debian package wrk)")
    print("installing wrk with apt-get ...", flush=True)
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=600, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, timeout=600, env=env)


@contextmanager
def serve(target: str, workers: int, env: dict, app_dir: Path | None = None, log=None) -> Iterator[tuple[str, int]]:
    """uvicorn serving `target` on a free loopback port: (base URL, pid of the uvicorn process),
    imported from `app_dir` (default: this checkout), its process group ended on exit. Its output
    goes to `log` (a file the caller keeps, e.g. to show after a failure) or to a temporary file."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port), "--workers",
           str(workers), "--log-level", "warning", "--no-access-log"] + (["--app-dir", str(app_dir)] if app_dir else [])
    own_log = log is None
    if own_log:
        log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, cwd=app_dir or ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise SystemExit(f"{target} did not start (exit code {proc.returncode}):\n{log.read().decode()[-3000:]}")
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        if workers > 1:
            time.sleep(3)  # /healthz answered from the first worker up; let the others finish starting
        yield base, proc.pid
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # its own process group: uvicorn and its workers
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if own_log:
            log.close()


def check(base: str, sc: Scenario) -> tuple[int, dict | list]:
    """One request first: the scenario must answer 200, or the benchmark stops here."""
    import httpx

    r = httpx.request(sc.method, base + sc.path, headers=sc.headers, content=sc.bodies[0] if sc.bodies else None,
                      timeout=30)
    if r.status_code != 200:
        raise SystemExit(f"{sc.name}: {sc.method} {sc.path[:80]} answered {r.status_code}, not 200:\n{r.text[:2000]}")
    return len(r.content), r.json()


def run_wrk(base: str, sc: Scenario, seconds: float, connections: int, script: Path) -> dict:
    cmd = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
           "-s", str(script), base + sc.path]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if out.returncode or line is None:
        raise SystemExit(f"wrk failed for {sc.name} (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")
    result = json.loads(line.split(" ", 1)[1])
    result["errors"] = {k: int(result[k]) for k in ("non2xx", "connect", "read", "write", "timeout") if result[k]}
    if result["errors"]:
        print(f"\n!! {sc.name}: wrk reports errors {result['errors']}; its output:\n{out.stdout}", flush=True)
    return result


def bench_workers(n: int, args, data: dict, env: dict, tmp: Path, database: str) -> dict[str, dict]:
    results: dict[str, dict] = {}
    warmup = min(2, args.duration)
    with ExitStack() as stack:
        bases = {"baseline": stack.enter_context(serve("baseline_app:app", n, env, app_dir=BENCH)),
                 "app": stack.enter_context(serve("app.main:app", n, env))}
        for i, sc in enumerate(scenarios(data["storefront"], data["quote_bodies"], data["availability_query"])):
            base, pid = bases[sc.server]
            _, body = check(base, sc)
            if sc.path.startswith("/v1/products") and n == args.workers[0]:
                print(f"  products page: {len(body['data'])} products, variants "
                      f"{sorted({len(p['variants']) for p in body['data']})}")
            if sc.path.startswith("/v1/availability") and n == args.workers[0]:
                print(f"  availability: {len(body['data'])} SKUs, "
                      f"{sum(len(d['locations']) for d in body['data'])} location figures")
            script = tmp / f"s{i}.lua"
            script.write_text(sc.lua())
            conns = sc.connections or args.connections
            run_wrk(base, sc, warmup, conns, script)
            cpu0, db0 = process_tree_cpu(pid), pg_backends_cpu(database)
            r = run_wrk(base, sc, args.duration, conns, script)
            cpu = process_tree_cpu(pid) - cpu0
            db = pg_backends_cpu(database)
            db_cpu = sum(t - db0.get(p, 0.0) for p, t in db.items()) if db or db0 else None
            requests = max(1, int(r["requests"]))
            results[sc.name] = {"conns": conns, "rps": r["requests"] / (r["duration_us"] / 1e6),
                                "p50": r["p50_us"] / 1000, "p99": r["p99_us"] / 1000, "cpu": cpu * 1000 / requests,
                                "db": None if db_cpu is None else db_cpu * 1000 / requests,
                                "kb": r["bytes"] / requests / 1024, "errors": r["errors"]}
    return results


def print_table(n: int, results: dict[str, dict]) -> None:
    first = next(iter(results.values()))
    base = first["rps"]
    print(f"\n=== uvicorn --workers {n} ===")
    print(f"{'scenario':<46}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>11}"
          f"{'DB ms/req':>10}{'x base':>8}{'KB/resp':>9}  errors")
    for name, r in results.items():
        db = "-" if r["db"] is None else f"{r['db']:.3f}"
        ratio = f"{r['rps'] / base:.2f}" if r["conns"] == first["conns"] else "-"  # same load only
        print(f"{name:<46}{r['conns']:>6}{r['rps']:>9.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['cpu']:>11.3f}"
              f"{db:>10}{ratio:>8}{r['kb']:>9.1f}  {r['errors'] or '-'}")
    cheap, health = results["GET /v1/channels/{code}"]["cpu"], results["GET /healthz"]["cpu"]
    print(f"cheap authenticated GET (/v1/channels/{{code}}): {cheap - health:.3f} ms CPU above /healthz (target ≤ 0.3)")
    print(f"product list ÷ bare FastAPI, throughput: {results['GET /v1/products?limit=10']['rps'] / base:.2f} "
          f"(target ≥ 0.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", help="PostgreSQL server URL: a scratch database is created and dropped")
    parser.add_argument("--duration", type=float, default=10, help="seconds measured per scenario (after a warm-up)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (availability: always 1)")
    parser.add_argument("--workers", default="1,2", help="uvicorn worker counts, comma-separated")
    parser.add_argument("--db-pool-size", type=int, default=10,
                        help="DB_POOL_SIZE per worker (overflow as much again; the PostgreSQL server is shared)")
    args = parser.parse_args()
    args.workers = [int(w) for w in args.workers.split(",")]
    args.duration = max(1, round(args.duration))
    ensure_wrk()

    async def run(database_url: str) -> None:
        started = time.monotonic()
        print(f"loading bench data into {database_url.rsplit('/', 1)[-1]} ...", flush=True)
        data = await load(database_url)
        print(f"  loaded in {time.monotonic() - started:.0f} s")
        env = os.environ | {"DATABASE_URL": database_url, "RATE_LIMIT": "1000000000/minute",
                            "DB_POOL_SIZE": str(args.db_pool_size), "INLINE_WORKER": "false"}
        with tempfile.TemporaryDirectory() as tmp:
            load0 = os.getloadavg()[0]
            database = database_url.rsplit("/", 1)[-1]
            by_workers = {n: bench_workers(n, args, data, env, Path(tmp), database) for n in args.workers}
        print(f"\nwrk {args.duration} s per scenario after a {min(2, args.duration)} s warm-up, "
              f"{args.connections} connections unless noted, on {os.cpu_count()} cores shared with wrk; "
              f"load average {load0:.1f} before, {os.getloadavg()[0]:.1f} after")
        for n, results in by_workers.items():
            print_table(n, results)
        one = by_workers.get(1)
        for n, results in by_workers.items():
            if one and n > 1:
                ratio = results["GET /v1/products?limit=10"]["rps"] / one["GET /v1/products?limit=10"]["rps"]
                print(f"\nproduct list throughput, {n} workers ÷ 1 worker: {ratio:.2f}")
        failed = [f"{name} ({n} workers): {r['errors']}" for n, res in by_workers.items()
                  for name, r in res.items() if r["errors"]]
        if failed:
            raise SystemExit("FAILED, scenarios with errors:\n  " + "\n  ".join(failed))

    run_with_database(args.pg, run)


if __name__ == "__main__":
    main()
