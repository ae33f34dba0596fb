"""Dropship partners (API.md section 2 and 12): a partner key works the fulfillments routed to its
own location and nothing else. It sees each with the shipping address and never the customer's
e-mail or phone, prices or totals, nor another location's name or stock; it ships with tracking,
declines (the orders engine re-sources the lines elsewhere at once), keeps its own stock with
PUT /v1/inventory/levels, and reads no catalog, orders or customers."""
import re
import secrets

import pytest

from tests.helpers import assert_problem
from tests.inventory.builders import ledger_matches
from tests.orders.fulfillment_world import NEAR_BERLIN, World, at

# What a partner's fulfillment may hold, every key at every depth (WorkItemOut): the fulfillment
# itself, the order's number and the shipping address, the lines' titles. Nothing else.
ITEM_KEYS = {"id", "object", "order", "order_number", "location", "method", "kind", "status", "lines", "tracking",
             "pickup_code", "expires_at", "reason", "sourcing", "replaces", "version", "created_at", "updated_at",
             "shipping_address"}
LINE_KEYS = {"order_line_id", "sku", "quantity", "title"}
ADDRESS_KEYS = {"name", "line1", "line2", "postal_code", "city", "country", "lat", "lon"}
DECLINE_KEYS = ITEM_KEYS | {"resourced", "kept", "unfulfillable"}
ELSEWHERE_KEYS = {"id", "object", "status", "lines"}  # a fulfillment a decline made at another location
# Words that must not occur as a key anywhere in what a partner reads
FORBIDDEN = {"email", "phone", "customer", "totals", "total", "subtotal", "unit_price", "price", "amount", "discounts",
             "discount_total", "tax_amount", "tax_total", "payment", "rejected", "candidates", "strategy", "currency"}


def keys_everywhere(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_everywhere(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_everywhere(v)}
    return set()


def assert_partner_view(item: dict, w, *, allowed: set[str] = ITEM_KEYS) -> None:
    """Exactly the work item's fields; the address as given; no customer, price or sourcing data."""
    assert set(item) <= allowed, set(item) - allowed
    assert set(item) >= ITEM_KEYS - {"shipping_address"} or allowed == ELSEWHERE_KEYS, item
    for ln in item["lines"]:
        assert set(ln) <= LINE_KEYS, ln
    if allowed is not ELSEWHERE_KEYS:
        assert item["location"] == w.pt, item
        assert item["sourcing"] is None or set(item["sourcing"]) <= {"rule"}, item["sourcing"]
        assert item["pickup_code"] is None
        if item["shipping_address"] is not None:
            assert set(item["shipping_address"]) <= ADDRESS_KEYS, item["shipping_address"]
    assert not keys_everywhere(item) & FORBIDDEN, keys_everywhere(item) & FORBIDDEN


def assert_no_customer_text(text: str, w) -> None:
    for secret in (w.email, w.phone, w.email.split("@")[0]):
        assert secret not in text, secret
    for other in (w.wh, w.hh, w.be, w.pt2):  # no other location's name, nor its stock situation
        assert other not in text, other


async def post(client, path, headers, body=None, if_match=None):
    h = dict(headers)
    if if_match is not None:
        h["If-Match"] = f'"{if_match}"'
    return await client.post(path, headers=h, json=body)


@pytest.fixture
async def w(client, admin):
    """fulfillment_world's retailer, its web channel shipping from both partners too, and a
    customer with an e-mail and a phone number who orders there."""
    w = await World().setup(client, admin)
    r = await client.patch(f"/v1/channels/{w.web}", headers=admin,
                           json={"fulfillment_locations": [w.wh, w.hh, w.be, w.pt, w.pt2]})
    assert r.status_code == 200, r.text
    w.email = f"kim.dropship-{secrets.token_hex(3)}@example.org"
    w.phone = f"+49 40 {secrets.randbelow(10**7):07d}"
    r = await client.post("/v1/customers", headers=admin, json={"email": w.email, "name": "Kim Customer",
                                                                "phone": w.phone, "channel": w.web})
    assert r.status_code == 201, r.text
    w.customer = r.json()["id"]
    return w


async def place(client, w, lines: dict[str, int], address=None) -> dict:
    """The customer's order in the web shop (a cart with the customer, checked out)."""
    r = await client.post("/v1/carts", headers=w.shop, json={
        "channel": w.web, "customer": w.email, "lines": [{"sku": s, "quantity": q} for s, q in lines.items()],
        "fulfillment": {"method": "ship", "address": address or {**NEAR_BERLIN, "name": "Kim Customer"}}})
    assert r.status_code == 201, r.text
    r = await client.post(f"/v1/carts/{r.json()['id']}/checkout", headers=w.shop, json={"payment": {"provider": "none"}})
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["email"] == w.email  # the order knows the customer; the partner must not
    return order


async def only_at(client, w, location: str, sku: str, n: int) -> None:
    """`n` units of `sku` at `location` and none anywhere else the web channel ships from."""
    for loc in (w.wh, w.hh, w.be, w.pt, w.pt2):
        await w.stock(client, loc, **{sku: n if loc == location else 0})


# --------------------------------------------------------------------------- what a partner sees

async def test_the_queue_holds_its_own_work_and_no_customer_data(client, admin, w):
    await only_at(client, w, w.pt2, w.p, 3)
    theirs = at(await place(client, w, {w.p: 1}), w.pt2)  # the other partner's work
    await only_at(client, w, w.wh, w.a, 3)
    warehouse = at(await place(client, w, {w.a: 1}), w.wh)
    await only_at(client, w, w.pt, w.p, 5)
    order = await place(client, w, {w.p: 2})
    mine = at(order, w.pt)
    assert mine["kind"] == "dropship"
    # the admin's view has what the partner must not see
    r = await client.get(f"/v1/fulfillments/{mine['id']}", headers=admin)
    assert r.json()["sourcing"].get("rejected"), r.json()["sourcing"]

    r = await client.get("/v1/fulfillments", headers=w.drop, params={"limit": 500})
    assert r.status_code == 200, r.text
    queue = r.json()["data"]
    assert {x["location"] for x in queue} == {w.pt}
    assert mine["id"] in {x["id"] for x in queue}
    assert not {theirs["id"], warehouse["id"]} & {x["id"] for x in queue}
    for item in queue:
        assert_partner_view(item, w)
    assert_no_customer_text(r.text, w)
    [item] = [x for x in queue if x["id"] == mine["id"]]
    assert item["order_number"] == order["number"] and item["order"] == order["id"]
    assert item["shipping_address"] == {**NEAR_BERLIN, "name": "Kim Customer"}  # what the label needs
    assert [(ln["sku"], ln["quantity"]) for ln in item["lines"]] == [(w.p, 2)] and item["lines"][0]["title"]
    assert set(item["sourcing"]) == {"rule"}  # how it came here, not which other location had what

    r = await client.get(f"/v1/fulfillments/{mine['id']}", headers=w.drop)
    assert r.status_code == 200, r.text
    assert r.json() == item and r.headers["ETag"] == '"1"'
    assert_no_customer_text(r.text, w)
    # filters stay inside the partner's location
    r = await client.get("/v1/fulfillments", headers=w.drop, params={"order": order["number"]})
    assert [x["id"] for x in r.json()["data"]] == [mine["id"]]
    r = await client.get("/v1/fulfillments", headers=w.drop, params={"order": theirs["order"]})
    assert r.json()["data"] == []
    r = await client.get("/v1/fulfillments", headers=w.drop, params={"location": w.pt})
    assert r.status_code == 200 and mine["id"] in {x["id"] for x in r.json()["data"]}
    for location in (w.pt2, w.wh, "nowhere"):
        assert_problem(await client.get("/v1/fulfillments", headers=w.drop, params={"location": location}),
                       404, "not_found")
    # another partner's work, a warehouse's: as if they did not exist
    for other in (theirs, warehouse):
        assert_problem(await client.get(f"/v1/fulfillments/{other['id']}", headers=w.drop), 404, "not_found")
    assert_problem(await client.get(f"/v1/fulfillments/{mine['id']}", headers=w.drop2), 404, "not_found")
    assert_problem(await client.get("/v1/fulfillments/ful_nope", headers=w.drop), 404, "not_found")


async def test_it_ships_with_tracking(client, admin, w):
    await only_at(client, w, w.pt, w.p, 4)
    order = await place(client, w, {w.p: 3})
    mine = at(order, w.pt)
    url = f"/v1/fulfillments/{mine['id']}/ship"
    # the other partner cannot ship it, even naming the right version
    assert_problem(await post(client, url, w.drop2, {"carrier": "DHL", "tracking_number": "1"}, if_match=1),
                   404, "not_found")
    for body, field in (({"carrier": "DHL"}, "tracking_number"), ({"tracking_number": "1"}, "carrier"),
                        ({"carrier": "", "tracking_number": "1"}, "carrier"),
                        ({"carrier": "DHL", "tracking_number": "1", "price": 5}, "price")):
        problem = assert_problem(await post(client, url, w.drop, body), 422, "validation_error")
        assert [e["field"] for e in problem["errors"]] == [field], problem
    assert_problem(await post(client, url, w.drop, {"carrier": "DHL", "tracking_number": "1"}, if_match=7),
                   412, "version_conflict")
    r = await post(client, url, w.drop, {"carrier": "DHL", "tracking_number": "00340434161094042557"}, if_match=1)
    assert r.status_code == 200, r.text
    shipped = r.json()
    assert_partner_view(shipped, w)
    assert_no_customer_text(r.text, w)
    assert shipped["status"] == "shipped" and r.headers["ETag"] == '"2"'
    assert shipped["tracking"] == {"carrier": "DHL", "tracking_number": "00340434161094042557"}
    assert shipped["shipping_address"]["city"] == NEAR_BERLIN["city"]
    level = await w.level(client, w.p, w.pt)
    assert (level["on_hand"], level["reserved"]) == (1, 0)  # the goods left the partner's stock
    o = await w.order(client, order["id"])
    assert o["status"] == "fulfilled" and at(o, w.pt)["tracking"]["tracking_number"] == "00340434161094042557"
    problem = assert_problem(await post(client, url, w.drop, {"carrier": "DHL", "tracking_number": "2"}),
                             409, "invalid_transition")
    assert problem["current_status"] == "shipped"
    assert await ledger_matches([w.p]) == []


async def test_it_declines_and_the_lines_go_elsewhere(client, admin, w):
    await only_at(client, w, w.pt, w.p, 2)
    await w.stock(client, w.wh, **{w.p: 1})  # too few: the partner gets it
    order = await place(client, w, {w.p: 2})
    mine = at(order, w.pt)
    await w.stock(client, w.wh, **{w.p: 5})  # restocked meanwhile
    url = f"/v1/fulfillments/{mine['id']}/decline"
    problem = assert_problem(await post(client, url, w.drop, {}), 422, "validation_error")
    assert [e["field"] for e in problem["errors"]] == ["reason"]
    assert_problem(await post(client, url, w.drop2, {"reason": "not mine"}), 404, "not_found")
    r = await post(client, url, w.drop, {"reason": "discontinued"}, if_match=1)
    assert r.status_code == 200, r.text
    out = r.json()
    assert_partner_view(out, w, allowed=DECLINE_KEYS)
    assert_no_customer_text(r.text, w)
    assert (out["status"], out["reason"], out["kept"], out["unfulfillable"]) == ("declined", "discontinued", [], [])
    [moved] = out["resourced"]
    assert set(moved) == ELSEWHERE_KEYS  # where the lines went: not said
    assert [(ln["sku"], ln["quantity"]) for ln in moved["lines"]] == [(w.p, 2)]

    # the orders engine put them elsewhere: a new open fulfillment at the warehouse, holding the stock
    o = await w.order(client, order["id"])
    new = at(o, w.wh)
    assert (new["id"], new["status"], new["replaces"]) == (moved["id"], "open", mine["id"])
    assert {"location": w.pt, "reason": "excluded"} in new["sourcing"]["rejected"]
    assert o["status"] == "confirmed"
    assert (await w.level(client, w.p, w.pt))["reserved"] == 0
    assert (await w.level(client, w.p, w.wh))["reserved"] == 2
    # the partner sees its declined fulfillment, not the new one
    r = await client.get(f"/v1/fulfillments/{mine['id']}", headers=w.drop)
    assert r.status_code == 200 and r.json()["status"] == "declined"
    assert_problem(await client.get(f"/v1/fulfillments/{new['id']}", headers=w.drop), 404, "not_found")
    r = await client.get("/v1/fulfillments", headers=w.drop, params={"order": order["id"], "status": "open"})
    assert r.json()["data"] == []
    assert_problem(await post(client, f"/v1/fulfillments/{new['id']}/ship", w.drop,
                              {"carrier": "DHL", "tracking_number": "1"}), 404, "not_found")
    assert await ledger_matches([w.p]) == []


async def test_it_keeps_its_own_stock_and_no_other(client, admin, w):
    r = await client.put("/v1/inventory/levels", headers=w.drop, json={
        "location": w.pt, "levels": [{"sku": w.p, "on_hand": 12}, {"sku": w.b, "on_hand": 3, "safety_stock": 1}]})
    assert r.status_code == 200, r.text
    assert (await w.level(client, w.p, w.pt))["on_hand"] == 12
    r = await client.get("/v1/inventory", headers=w.drop)
    assert r.status_code == 200 and {x["location"] for x in r.json()["data"]} == {w.pt}
    assert {x["sku"]: x["available"] for x in r.json()["data"]}[w.b] == 2
    r = await client.get("/v1/inventory/movements", headers=w.drop, params={"sku": w.p})
    assert r.status_code == 200 and {x["location"] for x in r.json()["data"]} == {w.pt}
    # sourcing uses it at once: with nothing elsewhere, the partner gets the order
    for loc in (w.wh, w.hh, w.be, w.pt2):
        await w.stock(client, loc, **{w.p: 0})
    assert at(await place(client, w, {w.p: 1}), w.pt)["kind"] == "dropship"
    # another location's stock: as if it did not exist (its levels, its ledger, a write there)
    for other in (w.pt2, w.wh):
        assert_problem(await client.put("/v1/inventory/levels", headers=w.drop,
                                        json={"location": other, "levels": [{"sku": w.p, "on_hand": 99}]}),
                       404, "not_found")
        assert_problem(await client.get("/v1/inventory", headers=w.drop, params={"location": other}), 404, "not_found")
        assert_problem(await client.get("/v1/inventory/movements", headers=w.drop, params={"location": other}),
                       404, "not_found")
        assert_problem(await client.post("/v1/inventory/adjustments", headers=w.drop, json={
            "sku": w.p, "location": other, "delta": 5, "reason": "receipt"}), 404, "not_found")
    assert (await w.level(client, w.p, w.pt2))["on_hand"] == 0
    assert_problem(await client.get("/v1/availability", headers=w.drop, params={"skus": w.p}), 403, "forbidden")
    assert await ledger_matches([w.p, w.b]) == []


# --------------------------------------------------------------------------- nothing else

async def test_it_reads_no_catalog_orders_or_customers(client, admin, w):
    await only_at(client, w, w.pt, w.p, 3)
    order = await place(client, w, {w.p: 1})
    mine = at(order, w.pt)
    product = (await client.get("/v1/variants", headers=admin, params={"sku": w.p})).json()
    forbidden = {
        "/v1/products": 403, f"/v1/products/{product['product_id']}": 403, f"/v1/variants/{w.p}": 403,
        "/v1/variants": 403, "/v1/categories": 403,
        "/v1/orders": 403, f"/v1/orders/{order['id']}": 403, f"/v1/orders/{order['number']}": 403,
        f"/v1/orders/{order['id']}/returnable": 403, f"/v1/orders/{order['id']}/payments": 403,
        "/v1/customers": 403, f"/v1/customers/{w.customer}": 403, f"/v1/customers/{w.customer}/orders": 403,
        f"/v1/customers/{w.email}": 403, "/v1/carts": 403, "/v1/reservations": 403,
        f"/v1/availability?skus={w.p}": 403, "/v1/price-lists": 403, f"/v1/price-lists/{w.prices}/prices": 403,
        "/v1/promotions": 403, "/v1/tax-rates": 403, "/v1/returns": 403, "/v1/api-keys": 403,
        f"/v1/channels/{w.web}": 404, f"/v1/channels/{w.web}/listings": 403, f"/v1/locations/{w.wh}": 404,
        f"/v1/locations/{w.pt2}": 404, "/v1/inventory/transfers": 403,
    }
    for path, status in forbidden.items():
        assert_problem(await client.get(path, headers=w.drop), status), path
    for path, body in (("/v1/pricing/quote", {"channel": w.web, "lines": [{"sku": w.p, "quantity": 1}]}),
                       ("/v1/orders", {"channel": w.web, "lines": [{"sku": w.p, "quantity": 1}]}),
                       ("/v1/carts", {"channel": w.web}),
                       ("/v1/reservations", {"sku": w.p, "location": w.pt, "quantity": 1}),
                       (f"/v1/orders/{order['id']}/cancel", None),
                       (f"/v1/fulfillments/{mine['id']}/cancel", None),
                       (f"/v1/fulfillments/{mine['id']}/ready", None),
                       (f"/v1/fulfillments/{mine['id']}/collect", {"pickup_code": "AAAA2222"})):
        assert_problem(await post(client, path, w.drop, body), 403, "forbidden")
    # what it may list is its own: its location, no channel
    r = await client.get("/v1/locations", headers=w.drop)
    assert [x["code"] for x in r.json()["data"]] == [w.pt]
    assert (await client.get("/v1/channels", headers=w.drop)).json()["data"] == []


async def test_every_read_it_may_do_is_listed(client, admin, w):
    """A sweep of every GET of the API with the partner's key: what answers 200 is on this list
    (a new endpoint that lets a partner read must be looked at, and added here)."""
    await only_at(client, w, w.pt, w.p, 3)
    order = await place(client, w, {w.p: 1})
    mine = at(order, w.pt)
    from app.main import app

    allowed = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc", "/v1/channels", "/v1/locations",
               "/v1/inventory", "/v1/inventory/movements", "/v1/fulfillments", "/v1/fulfillments/{fid}",
               "/v1/events", "/v1/webhook-endpoints"}
    values = {"fid": mine["id"], "ref": order["id"], "cart_id": "cart_x", "key_id": w.customer, "rid": "res_x",
              "tid": "tr_x", "import_id": "imp_x", "endpoint_id": "whe_x"}
    readable = set()
    for path, ops in app.openapi()["paths"].items():
        if "get" not in ops:
            continue
        concrete = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), order["id"]), path)
        r = await client.get(concrete, headers=w.drop)
        assert r.status_code in (200, 403, 404, 422), (path, r.status_code, r.text)
        if r.status_code == 200:
            readable.add(path)
    assert readable <= allowed, readable - allowed
    assert {"/v1/fulfillments", "/v1/fulfillments/{fid}", "/v1/inventory"} <= readable


async def test_its_events_are_its_work_only(client, admin, w):
    """GET /v1/events (and so its webhooks): fulfillment events at its location, as its queue shows them."""
    await only_at(client, w, w.pt, w.p, 3)
    order = await place(client, w, {w.p: 1})
    mine = at(order, w.pt)
    r = await post(client, f"/v1/fulfillments/{mine['id']}/ship", w.drop, {"carrier": "DHL", "tracking_number": "7"})
    assert r.status_code == 200, r.text
    seen, cursor = [], None
    for _ in range(100):  # a poller's stream: a cursor always comes back, an empty page ends it
        r = await client.get("/v1/events", headers=w.drop, params={"limit": 500, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        seen += r.json()["data"]
        assert_no_customer_text(r.text, w)
        cursor = r.json()["next_cursor"]
        if cursor is None or not r.json()["data"]:
            break
    assert {e["type"] for e in seen} <= {f"fulfillment.{s}" for s in ("created", "shipped", "declined", "cancelled",
                                                                       "ready", "collected", "expired")}
    assert {e["data"]["location"] for e in seen} == {w.pt}
    assert {"fulfillment.created", "fulfillment.shipped"} <= {e["type"] for e in seen if e["data"]["id"] == mine["id"]}
    for e in seen:
        assert not keys_everywhere(e["data"]) & FORBIDDEN, (e["type"], keys_everywhere(e["data"]) & FORBIDDEN)


async def test_work_a_store_declined_shows_nothing_of_the_store(client, admin, w):
    """Re-sourced from a store to the partner: the partner learns it replaces some fulfillment,
    not which store had it, nor why it declined."""
    for loc, n in ((w.hh, 1), (w.pt, 1), (w.wh, 0), (w.be, 0), (w.pt2, 0)):
        await w.stock(client, loc, **{w.b: n})
    order = await place(client, w, {w.b: 1}, address={**NEAR_BERLIN, "lat": 53.55, "lon": 9.99})
    first = at(order, w.hh)
    r = await post(client, f"/v1/fulfillments/{first['id']}/decline", w.pos_hh, {"reason": "shelf empty at the Alster"})
    assert r.status_code == 200, r.text
    o = await w.order(client, order["id"])
    new = at(o, w.pt)
    assert new["replaces"] == first["id"] and w.hh in new["sourcing"]["reason"]  # the admin's view says it all
    r = await client.get(f"/v1/fulfillments/{new['id']}", headers=w.drop)
    assert r.status_code == 200, r.text
    assert_partner_view(r.json(), w)
    assert_no_customer_text(r.text, w)
    assert "Alster" not in r.text and r.json()["reason"] is None
    assert r.json()["replaces"] == first["id"]  # an id it cannot read
    assert_problem(await client.get(f"/v1/fulfillments/{first['id']}", headers=w.drop), 404, "not_found")
