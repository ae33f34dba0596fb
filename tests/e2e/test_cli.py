"""The operator commands of API.md section 14, run as an operator would (subprocesses)."""
import subprocess
import sys

import httpx

from tests.conftest import DATABASE_URL, ROOT


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ, DATABASE_URL=DATABASE_URL)
    proc = subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_migrate_seed_create_key_and_serve(live_server):
    assert "latest migration" in cli("migrate").stdout
    first = cli("seed-demo").stdout
    assert "seeded" in first
    second = cli("seed-demo").stdout  # idempotent
    assert "nothing new" in second
    out = cli("create-api-key", "--role", "admin", "--name", "ops").stdout
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("uc_")
    r = httpx.get(live_server + "/v1/channels?limit=500", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 200
    codes = {c["code"] for c in r.json()["data"]}
    assert {"web-de", "app-de", "pos-de", "amazon-de"} <= codes
    out = cli("create-api-key", "--role", "pos", "--name", "till 1", "--location", "st-hamburg", "--channel", "pos-de").stdout
    pos_secret = out.strip().splitlines()[-1]
    r = httpx.get(live_server + "/v1/api-keys", headers={"Authorization": f"Bearer {pos_secret}"})
    assert r.status_code == 403
    bad = cli("create-api-key", "--role", "pos", "--name", "x", "--location", "wh-central", "--channel", "pos-de", check=False)
    assert bad.returncode != 0 and "store" in bad.stderr
    bad = cli("create-api-key", "--role", "pos", "--name", "x", "--location", "st-hamburg", check=False)
    assert bad.returncode != 0 and "channel" in bad.stderr  # a POS key needs its pos channel


def test_worker_once():
    out = cli("worker", "--once").stdout
    assert "purge_idempotency_keys" in out and "expire_reservations" in out
