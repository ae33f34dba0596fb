"""`bash scripts/dev.sh`: a port in use stops it at once with a clear message (it used to print a
fresh admin key and then hang for ever: the inline worker kept the process alive after uvicorn
failed to bind); PORT is honoured; and it serves the API and the docs on that port."""
import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import BACKEND, ROOT, _TMP

SCRIPT = ROOT / "scripts" / "dev.sh"


def _env(port, db_name: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", PYTHON=sys.executable,
               DATABASE_URL=f"sqlite+aiosqlite:///{_TMP}/{db_name}", **extra)
    env.pop("INLINE_WORKER", None)  # the script's default (true), as a developer gets it
    return env


def _busy_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def _dev_sh(env: dict[str, str], timeout: float = 30) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    proc = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return proc, time.monotonic() - started


def test_a_busy_port_stops_it_at_once():
    with _busy_port() as sock:
        port = sock.getsockname()[1]
        proc, took = _dev_sh(_env(port, "busy.db"))
    assert proc.returncode != 0
    assert took < 10, f"took {took:.1f} s"
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr and "in use" in proc.stderr, proc.stderr
    assert "PORT=8001 bash scripts/dev.sh" in proc.stderr
    # before anything else: nothing installed, migrated or seeded, no key printed
    assert "admin key" not in proc.stdout and "uc_" not in proc.stdout
    assert not os.path.exists(f"{_TMP}/busy.db")


def test_a_port_that_is_no_number_is_refused():
    proc, _ = _dev_sh(_env("80a", "bad-port.db"))
    assert proc.returncode != 0 and "PORT must be a port number" in proc.stderr, proc.stderr


def test_the_serve_step_never_starts_the_app_on_a_port_it_cannot_have():
    """The port may be taken between the first check and serving (the install, migrations and seed
    run in between), or `cli serve` may be run by hand on a busy port: it binds the socket before
    the app starts, so it exits at once rather than hang after the app's startup."""
    assert 'exec .venv/bin/python -m app.cli serve --host "$HOST" --port "$PORT"' in SCRIPT.read_text()
    with _busy_port() as sock:
        port = sock.getsockname()[1]
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--port", str(port)], cwd=ROOT,
                              env=_env(port, "serve.db", INLINE_WORKER="true"), capture_output=True, text=True,
                              timeout=30)
    assert proc.returncode == 1 and time.monotonic() - started < 10
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr and "PORT=8001" in proc.stderr


@pytest.mark.skipif(BACKEND != "sqlite", reason="dev.sh serves SQLite; the SQLite run covers it")
def test_it_serves_the_api_and_the_docs_on_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    log_path = f"{_TMP}/dev_sh_{port}.log"
    with open(log_path, "wb") as log:  # a file, not a pipe: an unread pipe blocks the server
        proc = subprocess.Popen(["bash", str(SCRIPT)], cwd=ROOT, env=_env(port, "dev.db"), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300  # the first run on a machine installs the project
        while True:
            assert proc.poll() is None, open(log_path).read()
            assert time.monotonic() < deadline, open(log_path).read()
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        out = open(log_path).read()
        key = re.search(r"admin key: (uc_\S+)", out).group(1)
        assert f"docs:      {base}/docs" in out
        r = httpx.get(base + "/v1/channels", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and "web-de" in {c["code"] for c in r.json()["data"]}  # the demo
        assert "/docs/assets/swagger-ui-bundle.js" in httpx.get(base + "/docs").text

        # a second one on the same port: stops at once, the first keeps serving
        again, took = _dev_sh(_env(port, "dev2.db"))
        assert again.returncode != 0 and took < 10 and "PORT=8001" in again.stderr
        assert httpx.get(base + "/healthz").status_code == 200
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
