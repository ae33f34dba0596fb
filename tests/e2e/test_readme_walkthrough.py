"""The README's curl walkthrough runs as pasted: its bash block, run by bash against a live
server with the demo data, with `set -euo pipefail` (every curl that is not meant to fail uses
`-f`, so an error answer stops it)."""
import asyncio
import os
import re
import subprocess

import httpx
import pytest

from tests.conftest import ROOT
from tests.e2e.test_cli import cli

SECTION = "## Walkthrough (curl)"


def walkthrough() -> str:
    """The bash block of the README's walkthrough section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(SECTION + "\n")
    end = readme.find("\n## ", start + len(SECTION))
    section = readme[start:end if end != -1 else None]
    blocks = re.findall(r"^```bash\n(.*?)^```$", section, re.S | re.M)
    assert len(blocks) == 1, "the walkthrough section holds one bash block"
    return blocks[0]


def _curls(block: str) -> list[str]:
    """Each curl command, its continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [m.group(0) for m in re.finditer(r"curl [^\n]*", joined)]


def test_the_block_is_pasteable_as_it_is():
    block = walkthrough()
    assert "…" not in block and "..." not in block, "no placeholders: every value is real or computed"
    assert "jq" not in block.split(), "needs no jq (not on every machine)"
    curls = _curls(block)
    assert len(curls) >= 8
    for curl in curls:
        # an error answer must stop the run, unless the command prints the status it expects
        assert re.search(r" -[a-zA-Z]*f", curl) or "%{http_code}" in curl, curl
    # creates use codes that cannot collide with the demo data or an earlier run
    assert "insta-de" not in block and "$(date +%s)" in block


def _run(block: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    script = "set -euo pipefail\n" + block
    return subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("key_given", [True, False], ids=["with-KEY", "KEY-made-by-the-block"])
async def test_the_walkthrough_runs_against_the_demo(live_server, admin_secret, key_given):
    await asyncio.to_thread(cli, "seed-demo")  # the demo retailer the walkthrough reads (idempotent)
    env = {k: v for k, v in os.environ.items() if k not in ("KEY", "PORT")}
    env["API"] = live_server
    if key_given:
        env["KEY"] = admin_secret
    elif not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("the block makes its key with .venv/bin/python, which scripts/test.sh creates")
    # DATABASE_URL (the test database) is inherited: a key the block makes is the live server's
    proc = await asyncio.to_thread(_run, walkthrough(), env)
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert "curl:" not in proc.stderr, proc.stderr  # curl -sS reports every failure there

    assert '"web-de"' in out and '"st-hamburg"' in out  # the demo's channels and stores
    assert len(re.findall(r"^idempotent-replayed: true", out, re.I | re.M)) == 1  # the second create only
    assert out.rstrip().splitlines()[-1] == "412" and "version_conflict" in out

    code = re.findall(r'"code":"(insta-[0-9]+-[0-9]+)"', out)[-1]  # the PATCH's (the list may show earlier runs')
    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Bearer {admin_secret}"}) as c:
        r = await c.get(f"/v1/channels/{code}")
        assert r.status_code == 200
        # created once, changed once: the stale PATCH changed nothing
        assert (r.json()["version"], r.json()["return_window_days"]) == (2, 14)
    created = re.findall(r'\{"id":"(ch_[^"]+)","object":"channel","code":"' + code + '"', out)
    assert len(created) >= 2 and len(set(created)) == 1  # the replay is the first answer: one channel
