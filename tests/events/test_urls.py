"""Webhook URLs that may not be called: link-local (cloud metadata) addresses always; loopback and
private networks unless WEBHOOK_ALLOW_PRIVATE_URLS (the suite turns it on for its receivers on
127.0.0.1; here it is switched off). Checked when the URL is set (422 url_not_allowed naming
`url`) and again at every delivery, where the worker connects to the address it checked: a name
that resolved public when the endpoint was made and private now is never called.

No public name is ever looked up: IP literals, `localhost`, and names answered by a fake resolver."""
import pytest

from app.events import urls
from tests.events.helpers import create_endpoint, deliveries, run_worker
from tests.catalog.builders import create_product
from tests.helpers import assert_problem, settings_env

PUBLIC = "93.184.216.34"  # never connected to: endpoints with it are never delivered to here
PRIVATE_OFF = {"WEBHOOK_ALLOW_PRIVATE_URLS": "false"}
LOOPBACK_OR_PRIVATE = [
    "http://127.0.0.1:9/hooks", "http://127.9.9.9/hooks", "http://localhost:9/hooks", "http://LOCALHOST./hooks",
    "http://shop.localhost/hooks", "http://[::1]:9/hooks", "http://0.0.0.0:9/hooks", "http://[::ffff:127.0.0.1]/hooks",
    "http://2130706433:9/hooks",  # 127.0.0.1 written as one number: the resolver's answer counts, not the spelling
    "http://10.1.2.3/hooks", "https://172.16.5.4/hooks", "http://172.31.255.255/hooks", "http://192.168.1.10:8080/x",
    "http://[fd12:3456::1]/hooks", "http://100.64.0.1/hooks",
]
ALWAYS_REFUSED = ["http://169.254.169.254/latest/meta-data/", "http://169.254.1.1/hooks", "http://[fe80::1]/hooks",
                  "http://[fd00:ec2::254]/latest", "http://100.100.100.200/meta", "http://224.0.0.1/hooks"]


@pytest.fixture
def dns(monkeypatch):
    """A resolver answering from this dict (a name not in it: not found)."""
    answers: dict[str, list[str]] = {}
    asked: list[str] = []

    async def resolve(host: str, port: int, timeout: float) -> list[str]:
        asked.append(host)
        if host not in answers:
            raise OSError(f"{host}: not found")
        return list(answers[host])

    monkeypatch.setattr(urls, "resolve", resolve)
    answers["asked"] = asked  # type: ignore[assignment]
    return answers


def _refused(r, url: str) -> str:
    body = assert_problem(r, 422, "url_not_allowed")
    assert [e["field"] for e in body["errors"]] == ["url"], (url, body)
    return body["detail"]


@pytest.mark.parametrize("url", LOOPBACK_OR_PRIVATE + ALWAYS_REFUSED)
async def test_loopback_private_and_link_local_urls_are_refused_by_default(client, admin, url):
    with settings_env(**PRIVATE_OFF):
        detail = _refused(await client.post("/v1/webhook-endpoints", headers=admin,
                                            json={"url": url, "events": ["*"]}), url)
    assert any(word in detail for word in ("loopback", "private", "link-local", "metadata", "multicast")), detail
    if url in LOOPBACK_OR_PRIVATE:
        assert "WEBHOOK_ALLOW_PRIVATE_URLS" in detail


async def test_patch_is_checked_too_and_public_addresses_pass(client, admin):
    with settings_env(**PRIVATE_OFF):
        ep = await create_endpoint(client, admin, f"http://{PUBLIC}/hooks", ["order.created"])
        ep6 = await create_endpoint(client, admin, "https://[2606:4700::1111]/hooks", ["order.created"])
        for url in ("http://10.0.0.1/hooks", "http://localhost:8080/x", "http://169.254.169.254/"):
            _refused(await client.patch(f"/v1/webhook-endpoints/{ep['id']}", headers=admin, json={"url": url}), url)
    assert ep6["url"] == "https://[2606:4700::1111]/hooks"


async def test_with_private_urls_allowed_link_local_is_still_refused(client, admin):
    for url in ("http://127.0.0.1:9/hooks", "http://10.1.2.3/hooks", "http://[fd12::1]/hooks"):
        await create_endpoint(client, admin, url, ["order.created"])
    for url in ALWAYS_REFUSED:
        detail = _refused(await client.post("/v1/webhook-endpoints", headers=admin,
                                            json={"url": url, "events": ["*"]}), url)
        assert "WEBHOOK_ALLOW_PRIVATE_URLS" not in detail


async def test_names_are_judged_by_every_address_they_resolve_to(client, admin, dns):
    dns.update({"hooks.example.test": [PUBLIC, "2606:4700::1111"], "inside.example.test": ["10.0.0.7"],
                "mixed.example.test": [PUBLIC, "169.254.169.254"]})
    with settings_env(**PRIVATE_OFF):
        await create_endpoint(client, admin, "https://hooks.example.test/in", ["order.created"])
        detail = _refused(await client.post("/v1/webhook-endpoints", headers=admin, json={
            "url": "https://inside.example.test/in", "events": ["*"]}), "inside")
        assert "inside.example.test resolves to 10.0.0.7" in detail and "private" in detail
        detail = _refused(await client.post("/v1/webhook-endpoints", headers=admin, json={
            "url": "https://mixed.example.test/in", "events": ["*"]}), "mixed")
        assert "169.254.169.254" in detail
        # a name that does not resolve now is accepted: delivery checks again
        await create_endpoint(client, admin, "https://later.example.test/in", ["order.created"])
    # with private URLs allowed, names are not looked up when set (no DNS from the tests)
    dns["asked"].clear()
    await create_endpoint(client, admin, "https://inside.example.test:8443/in", ["order.created"])
    assert dns["asked"] == []


async def test_a_name_that_turns_private_after_creation_is_never_called(client, admin, receivers, dns):
    hook = receivers()
    dns["rebind.example.test"] = [PUBLIC]
    with settings_env(**PRIVATE_OFF):
        ep = await create_endpoint(client, admin, f"http://rebind.example.test:{hook.port}/hooks", ["product.created"])
        dns["rebind.example.test"] = ["127.0.0.1"]  # where the receiver really is
        await create_product(client, admin)
        done = await run_worker(ep["id"])
        assert done.get("failed") == 1, done
        assert hook.requests == []  # never called
        [d] = await deliveries(client, admin, ep["id"])
        assert d["status"] == "failed" and d["attempts"] == 1 and d["next_attempt_at"] is None
        assert d["last_status_code"] is None
        assert "rebind.example.test resolves to 127.0.0.1" in d["last_error"] and "loopback" in d["last_error"]
        r = await client.get(f"/v1/webhook-endpoints/{ep['id']}", headers=admin)
        assert r.json()["status"] == "failing"
        # a link-local answer is refused at delivery as well
        dns["rebind.example.test"] = ["169.254.169.254"]
        r = await client.post(f"/v1/webhook-endpoints/{ep['id']}/deliveries/{d['id']}/redeliver", headers=admin)
        assert r.status_code == 202, r.text
        await run_worker(ep["id"])
        [d] = await deliveries(client, admin, ep["id"])
        assert d["status"] == "failed" and "169.254.169.254" in d["last_error"] and hook.requests == []
    # allowed again, the worker connects to the address the guard resolved (the receiver)
    dns["rebind.example.test"] = ["127.0.0.1"]
    r = await client.post(f"/v1/webhook-endpoints/{ep['id']}/deliveries/{d['id']}/redeliver", headers=admin)
    assert r.status_code == 202, r.text
    await run_worker(ep["id"])
    [d] = await deliveries(client, admin, ep["id"])
    assert d["status"] == "delivered", d
    assert len(hook.requests) == 1 and hook.requests[0].headers["host"] == f"rebind.example.test:{hook.port}"


def test_refusal_rules():
    for address in ("127.0.0.1", "::1", "0.0.0.0", "10.0.0.1", "172.16.0.1", "192.168.0.1", "fc00::1", "fd00::1",
                    "100.64.0.1", "::ffff:10.0.0.1", "240.0.0.1"):
        assert urls.refusal(address, allow_private=False), address
        assert urls.refusal(address, allow_private=True) is None, address
    for address in ("169.254.169.254", "169.254.0.1", "fe80::1", "fe80::1%eth0", "fd00:ec2::254", "100.100.100.200",
                    "::ffff:169.254.169.254", "224.0.0.1", "ff02::1"):
        assert urls.refusal(address, allow_private=True), address
    for address in (PUBLIC, "8.8.8.8", "2606:4700::1111", "172.32.0.1", "192.169.0.1", "11.0.0.1"):
        assert urls.refusal(address, allow_private=False) is None, address
