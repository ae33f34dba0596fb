"""The README's curl examples run as pasted: every ```bash block that talks to `$API`, in the order
of the README, in one bash session with `set -euo pipefail` (every curl that is not meant to fail
uses `-f`, so an error answer stops it), against a live server with the demo data — twice, so a
second run collides with nothing the first one made. A block whose first line is
`# (not run by the README test)` is an install or ops block (Two commands, Operations) and is left
out; so is a block that does not talk to `$API`."""
import asyncio
import os
import re
import subprocess

import httpx
import pytest

from tests.conftest import BACKEND, ROOT
from tests.e2e.test_cli import cli

SECTION = "## Walkthrough (curl)"
NOT_RUN = "# (not run by the README test)"
MARKER = "@@README block {i}: {section}@@"


def bash_blocks() -> list[tuple[str, str]]:
    """Every ```bash block of the README with the `## ` section it is in, in order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"^```bash\n(.*?)^```$", readme, re.S | re.M):
        headings = re.findall(r"^## (.+)$", readme[:m.start()], re.M)
        out.append((headings[-1] if headings else "", m.group(1)))
    return out


def runs(block: str) -> bool:
    return "$API" in block and not block.startswith(NOT_RUN)


def run_blocks() -> list[tuple[str, str]]:
    return [(section, block) for section, block in bash_blocks() if runs(block)]


def walkthrough() -> str:
    """The bash block of the README's walkthrough section."""
    blocks = [b for section, b in bash_blocks() if "## " + section == SECTION]
    assert len(blocks) == 1, "the walkthrough section holds one bash block"
    return blocks[0]


def _curls(block: str) -> list[str]:
    """Each curl command, its continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [m.group(0) for m in re.finditer(r"curl [^\n]*", joined)]


def test_which_blocks_run():
    sections = [s for s, _ in run_blocks()]
    assert sections[0] == SECTION[3:]  # the walkthrough sets up the session the others continue
    for name in ("Catalog", "Pricing", "Inventory", "Customers", "Orders"):
        assert any(s.startswith(name) for s in sections), (name, sections)
    skipped = [s for s, b in bash_blocks() if b.startswith(NOT_RUN)]
    assert any(s.startswith("Two commands") for s in skipped) and any(s.startswith("Operations") for s in skipped)


def test_the_blocks_are_pasteable_as_they_are():
    for section, block in run_blocks():
        assert "…" not in block and "..." not in block, (section, "no placeholders: every value is real or computed")
        # needs no jq (not on every machine): python3 one-liners (`field`, `show`) instead
        assert not re.search(r"(^|\||\$\(|;|&&)\s*jq\b", block, re.M), (section, "calls jq")
        for curl in _curls(block):
            # an error answer must stop the run, unless the command prints the status it expects
            assert re.search(r" -[a-zA-Z]*f", curl) or "%{http_code}" in curl, (section, curl)
    # creates use codes that cannot collide with the demo data or an earlier run
    block = walkthrough()
    assert "insta-de" not in block and "$(date +%s)" in block and "RUN=" in block
    assert len(_curls(block)) >= 8


def _script() -> str:
    parts = ["set -euo pipefail"]
    for i, (section, block) in enumerate(run_blocks()):
        parts.append(f"echo '{MARKER.format(i=i, section=section)}'")
        parts.append(block)
    return "\n".join(parts) + "\n"


def _run(script: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _outputs(out: str) -> dict[str, str]:
    """The output of each block, by the start of its section's name."""
    parts = re.split(r"^@@README block \d+: (.*)@@$", out, flags=re.M)
    return {parts[i].split(" ")[0]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


# Twice on SQLite (again, and with a key the block makes itself), once on PostgreSQL: the same
# blocks, and two minutes less for the suite.
@pytest.mark.parametrize("key_given", [True, False] if BACKEND == "sqlite" else [True],
                         ids=["with-KEY", "KEY-made-by-the-block"] if BACKEND == "sqlite" else ["with-KEY"])
async def test_the_readme_runs_against_the_demo(live_server, admin_secret, key_given):
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("the blocks call .venv/bin/python (a key, the worker), which scripts/test.sh creates")
    await asyncio.to_thread(cli, "seed-demo")  # the demo retailer the README reads (idempotent)
    env = {k: v for k, v in os.environ.items() if k not in ("KEY", "PORT", "RUN")}
    env["API"] = live_server
    if key_given:
        env["KEY"] = admin_secret
    # DATABASE_URL (the test database) is inherited: a key the block makes is the live server's
    proc = await asyncio.to_thread(_run, _script(), env)
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out[-4000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert "curl:" not in proc.stderr, proc.stderr  # curl -sS reports every failure there
    parts = _outputs(out)
    assert set(parts) >= {"Walkthrough", "Catalog", "Pricing", "Inventory", "Customers", "Orders"}, list(parts)

    # the walkthrough
    walk = parts["Walkthrough"]
    assert '"web-de"' in walk and '"st-hamburg"' in walk  # the demo's channels and stores
    assert len(re.findall(r"^idempotent-replayed: true", walk, re.I | re.M)) == 1  # the second create only
    assert walk.rstrip().splitlines()[-1] == "412" and "version_conflict" in walk
    code = re.findall(r'"code":"(insta-[0-9]+-[0-9]+)"', walk)[-1]  # the PATCH's (the list may show earlier runs')
    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Bearer {admin_secret}"}) as c:
        r = await c.get(f"/v1/channels/{code}")
        assert r.status_code == 200
        # created once, changed once: the stale PATCH changed nothing
        assert (r.json()["version"], r.json()["return_window_days"]) == (2, 14)
    created = re.findall(r'\{"id":"(ch_[^"]+)","object":"channel","code":"' + code + '"', walk)
    assert len(created) >= 2 and len(set(created)) == 1  # the replay is the first answer: one channel

    # the catalog: a misread barcode is 422 invalid_gtin; a sample deleted (204), one with stock archived
    cat = parts["Catalog"]
    assert '"code":"invalid_gtin"' in cat and "\n422\n" in cat
    assert re.search(r"^204$", cat, re.M)
    assert '{"status": "archived", "deleted": false, "referenced_by": {"stock": ["SAMPLE-2-' in cat
    # pricing: the tier and "3 für 2" in the quote, gone once the promotion ended; lists in use are kept
    pricing = parts["Pricing"]
    run = re.search(r'"code":"launch-([0-9]+-[0-9]+)"', pricing).group(1)
    assert f'"price_list":"launch-{run}"' in pricing and f'"promotion":"3fuer2-tee-{run}"' in pricing
    assert re.search(r'^\{"promotions": \["willkommen10"\], "total": [0-9]+\}$', pricing, re.M), pricing
    # the ended promotion deleted (204), retail-eur kept (409: the demo channels name it), this run's list deleted
    assert re.search(r'^204\n\{"type":[^\n]*"code":"price_list_in_use"[^\n]*\n409\n204$', pricing.rstrip(), re.M), pricing
    # customers: found at the till by card and by email, priced with the loyalty list
    customers = parts["Customers"]
    card = re.search(r'"loyalty_card":"(LC-[0-9]+-[0-9]+)"', customers).group(1)
    assert customers.count(f'"loyalty_card":"{card}"') >= 4  # created, by card, by email, changed
    assert '"price_list":"loyalty-eur"' in customers
    # orders: the expected refusals, each once, and the flows through to the end
    orders = parts["Orders"]
    for refusal in ("insufficient_stock", "cart_completed", "duplicate_external_id", "invalid_pickup_code"):
        assert f'"code":"{refusal}"' in orders, refusal
    assert re.search(r'"code":"validation_error".*fulfillment\.address', orders), orders
    assert '"status": "collected"' in orders and '"status": "shipped"' in orders
    assert '"replaces": "ful_' in orders and '"status": "cancelled"' in orders
