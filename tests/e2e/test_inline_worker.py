"""scripts/dev.sh serves with INLINE_WORKER=true: the app must start, serve and stop with it."""
import os
import socket
import subprocess
import sys
import time

import httpx

from tests.conftest import DATABASE_URL, ROOT


def test_app_serves_with_inline_worker(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "server.log", "wb")
    env = dict(os.environ, DATABASE_URL=DATABASE_URL, INLINE_WORKER="true")
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        ok = False
        while time.time() < deadline and proc.poll() is None:
            try:
                ok = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
                if ok:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        assert ok, (tmp_path / "server.log").read_text()
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()
    text = (tmp_path / "server.log").read_text()
    assert "Traceback" not in text, text
    assert "Application startup complete" in text
