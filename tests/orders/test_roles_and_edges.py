"""Orders across roles and at the edges: what the flow tests leave open.

- a 409's pickup `alternatives` name only stores the channel hands over at (one the customer
  can then choose), nearest first, with their distance;
- concurrent imports of one `external_id`: one order, every other answer 409
  duplicate_external_id naming it, no 5xx, nothing half-written (both databases);
- the role matrix of every endpoint the issue added: 401 without a key, 403 for each role that
  may not use it, never 401/403 for one that may;
- a fuzz run of just these routes with every bound role's key (the suite-wide fuzz test sends
  admin keys only), against real carts, orders and fulfillments: no 5xx, every error problem+json.
"""
import asyncio
import os

import httpx
import pytest

from tests.conftest import make_key, uid
from tests.helpers import assert_problem, create_location
from tests.inventory.builders import ledger_matches, level
from tests.orders.builders import HAMBURG, Shop, checkout, create_cart, lines, pickup_at, ship_to


@pytest.fixture
async def shop(client, admin):
    return await Shop().setup(client, admin)


# --------------------------------------------------------------------------- alternatives

async def test_alternatives_are_stores_the_channel_hands_over_at(client, admin, shop):
    s = shop
    outside = (await create_location(client, admin, "store", lat=53.56, lon=10.0))["code"]  # next to Hamburg
    await s.stock(client, outside, **{s.a: 9})
    await s.stock(client, s.be, **{s.a: 9})
    await s.stock(client, s.mu, **{s.a: 9})
    cart = await create_cart(client, s.storefront, lines=lines((s.a, 2)), fulfillment=pickup_at(s.hh))
    r = await client.post(f"/v1/carts/{cart['id']}/checkout", json={"payment": {"provider": "none"}},
                          headers=s.storefront)
    body = assert_problem(r, 409, "insufficient_stock")
    alts = [a["location"] for a in body["alternatives"]]
    assert outside not in alts, body["alternatives"]  # nearest, but web does not hand over there
    assert alts[:2] == [s.be, s.mu] and all(a["distance_km"] > 0 for a in body["alternatives"])
    # every alternative can be chosen
    for alt in alts:
        r = await client.patch(f"/v1/carts/{cart['id']}", json={"fulfillment": pickup_at(alt)}, headers=s.storefront)
        assert r.status_code == 200, r.text
    r = await client.patch(f"/v1/carts/{cart['id']}", json={"fulfillment": pickup_at(outside)}, headers=s.storefront)
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "fulfillment.location"


# --------------------------------------------------------------------------- one external_id at once

async def test_concurrent_imports_of_one_external_id_make_one_order(client, admin, shop, live_server):
    s = shop
    await s.stock(client, s.wh, **{s.a: 50})
    ext = uid("AMZ")
    body = {"external_id": ext, "lines": [{"sku": s.a, "quantity": 2, "unit_price": 990}], "fulfillment": ship_to()}
    async with httpx.AsyncClient(base_url=live_server, timeout=120) as http:
        rs = await asyncio.gather(*(http.post("/v1/orders", json=body, headers=s.marketplace) for _ in range(8)))
    codes = sorted(r.status_code for r in rs)
    assert codes == [201] + [409] * 7, [r.text for r in rs]
    order = next(r.json() for r in rs if r.status_code == 201)
    for r in rs:
        if r.status_code == 409:
            problem = assert_problem(r, 409, "duplicate_external_id")
            assert (problem["order"], problem["order_number"]) == (order["id"], order["number"])
    lv = await level(client, admin, s.a, s.wh)
    assert (lv["on_hand"], lv["reserved"]) == (50, 2)  # the losers held nothing
    found = (await client.get("/v1/orders", params={"external_id": ext}, headers=s.marketplace)).json()["data"]
    assert [o["id"] for o in found] == [order["id"]]
    assert await ledger_matches([s.a]) == []


# --------------------------------------------------------------------------- a customer's orders, every channel type

async def test_a_customers_orders_span_web_app_pos_and_marketplace(client, admin, shop):
    from tests.catalog.builders import create_product, sku
    from tests.helpers import create_channel

    s = shop
    app = (await create_channel(client, admin, "app", country=s.country, fulfillment_locations=[s.wh]))["code"]
    x = sku("X")
    await create_product(client, admin, channels=[s.web, app, s.pos, s.market], variants=[{"sku": x}])
    prices = uid("p")
    r = await client.post("/v1/price-lists", headers=admin,
                          json={"code": prices, "currency": "EUR", "channels": [s.web, app, s.pos, s.market]})
    assert r.status_code == 201, r.text
    r = await client.put(f"/v1/price-lists/{prices}/prices", headers=admin, json=[{"sku": x, "amount": 1000}])
    assert r.status_code == 200, r.text
    await s.stock(client, s.wh, **{x: 10})
    await s.stock(client, s.hh, **{x: 10})
    email, card = f"{uid('x')}@example.com", uid("CARD").upper()
    r = await client.post("/v1/customers", json={"email": email, "name": "Every Channel", "loyalty_card": card},
                          headers=s.storefront)
    assert r.status_code == 201, r.text
    customer = r.json()["id"]
    web = await checkout(client, s.storefront, (await create_cart(
        client, s.storefront, customer=email, lines=lines((x, 1)), fulfillment=ship_to()))["id"])
    on_app = await checkout(client, admin, (await create_cart(
        client, admin, channel=app, customer=customer, lines=lines((x, 1)), fulfillment=ship_to()))["id"])
    pos = (await client.post("/v1/orders", json={"customer": card, "lines": lines((x, 1))}, headers=s.pos_hh)).json()
    # a marketplace key cannot attach a customer registered elsewhere with no order there yet
    # (it never learns who exists); the back office can
    r = await client.post("/v1/orders", headers=s.marketplace, json={
        "external_id": uid("E"), "customer": email, "fulfillment": ship_to(), "lines": lines((x, 1))})
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "customer"
    r = await client.post("/v1/orders", headers=admin, json={
        "channel": s.market, "external_id": uid("E"), "customer": customer, "fulfillment": ship_to(),
        "lines": [{"sku": x, "quantity": 1, "unit_price": 950}]})
    assert r.status_code == 201, r.text
    market = r.json()
    expected = [web["id"], on_app["id"], pos["id"], market["id"]]
    for headers in (admin, s.storefront, s.pos_hh):
        r = await client.get(f"/v1/customers/{customer}/orders", headers=headers)
        assert r.status_code == 200, r.text
        assert [o["id"] for o in r.json()["data"]] == expected
        assert [o["number"][:3] for o in r.json()["data"]] == ["WEB", "APP", "POS", "MKT"]


# --------------------------------------------------------------------------- refusals write no events

async def test_refused_orders_write_no_events(client, admin, shop):
    from sqlalchemy import func, select

    from app.core.db import sessionmaker
    from app.events.models import Event

    async def count() -> int:
        async with sessionmaker()() as session:
            return (await session.execute(select(func.count()).select_from(Event))).scalar_one()

    s = shop
    await s.stock(client, s.wh, **{s.a: 1})
    short = await create_cart(client, s.storefront, lines=lines((s.a, 2)), fulfillment=ship_to())
    ext = uid("E")
    r = await client.post("/v1/orders", headers=s.marketplace, json={
        "external_id": ext, "fulfillment": ship_to(), "lines": lines((s.a, 1))})
    assert r.status_code == 201, r.text
    before = await count()
    r = await client.post(f"/v1/carts/{short['id']}/checkout", json={"payment": {"provider": "none"}},
                          headers=s.storefront)
    assert_problem(r, 409, "insufficient_stock")
    r = await client.post("/v1/orders", headers=s.marketplace, json={
        "external_id": ext, "fulfillment": ship_to(), "lines": lines((s.a, 1))})
    assert_problem(r, 409, "duplicate_external_id")
    r = await client.post("/v1/orders", json={"lines": lines((s.a, 5))}, headers=s.pos_hh)
    assert_problem(r, 409, "insufficient_stock")
    assert await count() == before


# --------------------------------------------------------------------------- the role matrix

ROLES = ("storefront", "pos", "marketplace", "dropshipper")


async def _world(client, admin, s):
    """A cart and an order of the storefront, a pickup fulfillment at Hamburg, a customer."""
    await s.stock(client, s.hh, **{s.a: 20})
    cart = await create_cart(client, s.storefront, lines=lines((s.a, 1)), fulfillment=pickup_at(s.hh))
    spare = await create_cart(client, s.storefront, lines=lines((s.a, 1)), fulfillment=pickup_at(s.hh))
    order = await checkout(client, s.storefront, cart["id"])
    email = f"{uid('m')}@example.com"
    r = await client.post("/v1/customers", json={"email": email, "name": "Matrix"}, headers=s.storefront)
    assert r.status_code == 201, r.text
    return spare["id"], order, order["fulfillments"][0]["id"], email


def _endpoints(cart: str, order: dict, ful: str, email: str) -> list[tuple[str, str, dict | None, dict, set[str]]]:
    """(method, path, body, query, roles allowed besides admin). Bodies are invalid where a role
    that may call the endpoint would otherwise change something (the answer is then a 422)."""
    o = order["id"]
    bad = {"unexpected": True}
    return [
        ("POST", "/v1/carts", bad, {}, {"storefront", "pos", "marketplace"}),
        ("GET", "/v1/carts", None, {}, {"storefront", "pos", "marketplace"}),
        ("GET", f"/v1/carts/{cart}", None, {}, {"storefront", "pos", "marketplace"}),
        ("PATCH", f"/v1/carts/{cart}", bad, {}, {"storefront", "pos", "marketplace"}),
        ("POST", f"/v1/carts/{cart}/checkout", {"payment": {}}, {}, {"storefront", "pos", "marketplace"}),
        ("POST", "/v1/orders", bad, {}, {"pos", "marketplace"}),
        ("GET", "/v1/orders", None, {}, {"storefront", "pos", "marketplace"}),
        ("GET", f"/v1/orders/{o}", None, {}, {"storefront", "pos", "marketplace"}),
        ("GET", f"/v1/orders/{order['number']}", None, {}, {"storefront", "pos", "marketplace"}),
        ("POST", f"/v1/orders/{o}/cancel", bad, {}, set()),
        ("GET", f"/v1/customers/{email}/orders", None, {}, {"storefront", "pos"}),
        ("GET", "/v1/fulfillments", None, {}, {"pos", "dropshipper"}),
        ("GET", f"/v1/fulfillments/{ful}", None, {}, {"pos", "dropshipper"}),
        ("POST", f"/v1/fulfillments/{ful}/ship", {}, {}, {"pos", "dropshipper"}),
        ("POST", f"/v1/fulfillments/{ful}/ready", None, {}, {"pos"}),  # sent with a stale If-Match
        ("POST", f"/v1/fulfillments/{ful}/collect", bad, {}, {"pos"}),
        ("POST", f"/v1/fulfillments/{ful}/decline", {}, {}, {"pos", "dropshipper"}),
        ("POST", f"/v1/fulfillments/{ful}/cancel", bad, {}, set()),
        ("POST", "/v1/customers", bad, {}, {"storefront", "pos"}),
        ("GET", "/v1/customers", None, {"email": email}, {"storefront", "pos"}),
        ("GET", f"/v1/customers/{email}", None, {}, {"storefront", "pos"}),
        ("PATCH", f"/v1/customers/{email}", bad, {}, {"storefront", "pos"}),
    ]


async def test_every_new_endpoint_by_every_role(client, admin, shop):
    s = shop
    cart, order, ful, email = await _world(client, admin, s)
    keys = {"storefront": s.storefront, "pos": s.pos_hh, "marketplace": s.marketplace, "dropshipper": s.dropshipper}
    before = await client.get(f"/v1/orders/{order['id']}", headers=admin)
    checked = 0
    for method, path, body, query, allowed in _endpoints(cart, order, ful, email):
        kw = {"json": body} if body is not None else {}
        r = await client.request(method, path, params=query, **kw)
        assert_problem(r, 401, "unauthenticated")
        r = await client.request(method, path, params=query, headers={"Authorization": "Bearer uc_nope"}, **kw)
        assert_problem(r, 401, "unauthenticated")
        stale = {"If-Match": '"99"'} if path.endswith("/ready") else {}
        for role in ROLES:
            r = await client.request(method, path, params=query, headers={**keys[role], **stale}, **kw)
            if role in allowed:
                assert r.status_code not in (401, 403), (method, path, role, r.text)
            else:
                assert_problem(r, 403, "forbidden")
            checked += 1
    assert checked == len(ROLES) * 22
    # none of it changed the order, its fulfillment or the stock
    after = await client.get(f"/v1/orders/{order['id']}", headers=admin)
    assert after.json() == before.json()
    assert (await level(client, admin, s.a, s.hh))["reserved"] == 1
    assert (await client.get(f"/v1/carts/{cart}", headers=s.storefront)).json()["status"] == "open"


# --------------------------------------------------------------------------- fuzz, every bound role

# per operation and role; the suite-wide admin fuzz (tests/e2e/test_fuzz.py) runs FUZZ_EXAMPLES per operation
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_ROLE_EXAMPLES", "8"))
ORDER_PATHS = r"^/v1/(carts|orders|fulfillments|customers)"


def _fuzz(base_url: str, keys: dict[str, str], ids: dict[str, str]) -> tuple[set[str], list[str]]:
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from schemathesis.core.result import Err

    schema = schemathesis.openapi.from_url(base_url + "/openapi.json").include(path_regex=ORDER_PATHS)
    failures: list[str] = []
    seen: set[str] = set()
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"schema error: {result.err()}")
            continue
        op = result.ok()
        seen.add(op.label)
        for role, secret in keys.items():
            headers = {"Authorization": f"Bearer {secret}"}

            @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(), real=st.booleans())
            def run(case, real):
                if real and case.path_parameters:  # half the cases hit a real cart / order / fulfillment
                    for name in case.path_parameters:
                        if name in ids:
                            case.path_parameters[name] = ids[name]
                response = case.call(base_url=base_url, headers=headers, timeout=30)
                if response.status_code == 503 and "payment_provider_unavailable" in response.text:
                    return  # provider stripe: the suite's Stripe is a closed port (the documented 503)
                if response.status_code >= 500:
                    failures.append(f"{role} {op.label}: {response.status_code} for {case.as_curl_command()}\n"
                                    f"{response.text[:300]}")
                elif response.status_code >= 400:
                    ctype = response.headers.get("content-type", "")
                    ctype = ctype[0] if isinstance(ctype, list) else ctype
                    if not ctype.startswith("application/problem+json"):
                        failures.append(f"{role} {op.label}: {response.status_code} without problem+json")

            run()
    return seen, failures


async def test_fuzz_the_order_routes_with_every_role(client, admin, shop, live_server):
    s = shop
    await s.stock(client, s.hh, **{s.a: 500, s.b: 500})
    await s.stock(client, s.wh, **{s.a: 500, s.b: 500})
    cart = await create_cart(client, s.storefront, lines=lines((s.a, 1)), fulfillment=ship_to(HAMBURG))
    order = await checkout(client, s.storefront, (await create_cart(
        client, s.storefront, lines=lines((s.a, 1)), fulfillment=pickup_at(s.hh)))["id"])
    email = f"{uid('f')}@example.com"
    r = await client.post("/v1/customers", json={"email": email, "name": "Fuzz"}, headers=s.storefront)
    assert r.status_code == 201, r.text
    ids = {"cart_id": cart["id"], "ref": order["number"], "fid": order["fulfillments"][0]["id"]}
    secrets_ = {"admin": await make_key("admin", rate_limit="1000000/minute"),
                "storefront": await make_key("storefront", channel=s.web, rate_limit="1000000/minute"),
                "pos": await make_key("pos", channel=s.pos, location=s.hh, rate_limit="1000000/minute"),
                "marketplace": await make_key("marketplace", channel=s.market, rate_limit="1000000/minute"),
                "dropshipper": await make_key("dropshipper", location=s.partner, rate_limit="1000000/minute")}
    seen, failures = await asyncio.to_thread(_fuzz, live_server, secrets_, ids)
    for label in ("POST /v1/carts", "PATCH /v1/carts/{cart_id}", "POST /v1/carts/{cart_id}/checkout",
                  "POST /v1/orders", "GET /v1/orders/{ref}", "POST /v1/orders/{ref}/cancel",
                  "GET /v1/customers/{ref}/orders", "GET /v1/fulfillments", "POST /v1/fulfillments/{fid}/collect",
                  "POST /v1/fulfillments/{fid}/decline", "POST /v1/customers", "PATCH /v1/customers/{ref}"):
        assert label in seen, (label, sorted(seen))
    assert not failures, "\n\n".join(failures[:20])
    assert await ledger_matches([s.a, s.b]) == []
