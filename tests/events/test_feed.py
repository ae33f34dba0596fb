"""GET /v1/events: the envelope, the type filter, cursors that never pass an event committed
later (commit order is not id order), and what each key may read: a partner sees only its own
fulfillments, without customer data, in the stream and in its webhooks."""
import asyncio

import orjson
import pytest

from app.core import clock
from app.core.db import sessionmaker, unit_of_work
from app.core.ids import new_id
from app.events.service import emit, emit_many, insert_events
from tests.conftest import auth, make_key, uid
from tests.events.helpers import create_endpoint, read_from, run_worker, tail
from tests.helpers import assert_problem, create_location
from tests.orders.fulfillment_world import World, at

CUSTOMER_DATA = ("email", "phone", "totals", "total", "customer", "payment", "unit_price", "channel")


@pytest.fixture
async def w(client, admin):
    return await World().setup(client, admin)


async def test_pages_types_and_cursor_errors(client, admin):
    cursor = await tail(client, admin)
    channel = uid("feed")
    async with unit_of_work() as session:
        await emit_many(session, [{"type": "order.created", "data": {"n": i}, "channel": channel} for i in range(7)])
        await emit(session, "order.cancelled", {"n": 99}, channel=channel)
    # (PostgreSQL may hold them back a moment behind another write transaction of this database)
    await read_from(client, admin, cursor, type="order.cancelled",
                    until=lambda evs: any(e["data"].get("n") == 99 for e in evs))
    seen, pages, c = [], 0, cursor
    while True:  # pages of 3, oldest first
        r = await client.get("/v1/events", headers=admin, params={"cursor": c, "limit": 3, "type": "order.created"})
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [e for e in body["data"] if e["data"].get("n") is not None]
        pages += 1
        c = body["next_cursor"]
        assert c  # always given
        if not body["has_more"]:
            break
    mine = [e["data"]["n"] for e in seen]
    assert mine[-7:] == list(range(7)) and pages >= 3
    # polling again from the end: nothing new, same cursor
    r = await client.get("/v1/events", headers=admin, params={"cursor": c, "type": "order.created"})
    assert r.json() == {"data": [], "next_cursor": c, "has_more": False}
    # several types at once
    both, _ = await read_from(client, admin, cursor, type="order.created,order.cancelled",
                              until=lambda evs: len(evs) >= 8)
    assert [e["type"] for e in both if e["data"].get("n") is not None][-8:] == ["order.created"] * 7 + ["order.cancelled"]
    for bad in ("!!!", "bm90LWEtY3Vyc29y", "MTp4eHg"):
        body = assert_problem(await client.get("/v1/events", headers=admin, params={"cursor": bad}), 422)
        assert body["errors"][0]["field"] == "cursor"
    for bad in ({"limit": 0}, {"limit": 501}, {"type": "*"}):
        assert_problem(await client.get("/v1/events", headers=admin, params=bad), 422)
    assert_problem(await client.get("/v1/events"), 401)


async def test_an_event_committed_after_a_newer_one_is_not_skipped(client, admin):
    """Ids are made when an event is written; commits come in any order. A poller that has
    passed the newer event still gets the older one once it commits."""
    cursor = await tail(client, admin)
    early = new_id("evt")  # written "first"...
    await asyncio.sleep(0.005)
    async with unit_of_work() as session:
        newer = await emit(session, "order.created", {"n": "newer"}, channel=uid("c"))
    first, cursor = await read_from(client, admin, cursor, until=lambda evs: any(e["id"] == newer for e in evs))
    assert newer in [e["id"] for e in first]
    async with unit_of_work() as session:  # ...committed last
        await insert_events(session, [{"id": early, "type": "order.created", "data": {"n": "early"},
                                       "channel": None, "location": None, "created_at": clock.now()}])
    assert early < newer
    second, _ = await read_from(client, admin, cursor, until=lambda evs: any(e["id"] == early for e in evs))
    assert early in [e["id"] for e in second] and newer not in [e["id"] for e in second]


async def test_a_running_transaction_holds_back_later_events(client, admin, backend):
    """PostgreSQL: while a transaction that wrote an event is open, events committed after it
    are held back, so the cursor cannot pass the one still to come."""
    if backend != "postgres":
        pytest.skip("SQLite runs one write transaction at a time: nothing can commit past an open one")
    cursor = await tail(client, admin)
    async with sessionmaker()() as slow:
        await slow.begin()
        first = await emit(slow, "order.created", {"n": "slow"})
        async with unit_of_work() as session:
            second = await emit(session, "order.created", {"n": "quick"})
        r = await client.get("/v1/events", headers=admin, params={"cursor": cursor, "limit": 500})
        assert second not in [e["id"] for e in r.json()["data"]]  # committed, but held back
        held_cursor = r.json()["next_cursor"]
        await slow.commit()
    events, _ = await read_from(client, admin, held_cursor, until=lambda evs: {first, second} <= {e["id"] for e in evs})
    ids = [e["id"] for e in events]
    assert ids.index(first) < ids.index(second)


async def test_a_transaction_in_another_database_holds_nothing_back(client, admin, backend):
    """Transaction ids are shared by every database of a PostgreSQL server; one left open in
    another database (other apps, other test runs) must not stall this stream."""
    if backend != "postgres":
        pytest.skip("PostgreSQL only")
    import asyncpg

    from tests.conftest import PG_BASE

    cursor = await tail(client, admin)
    other = await asyncpg.connect(PG_BASE + "/postgres")
    try:
        tx = other.transaction()
        await tx.start()
        await other.fetchval("SELECT txid_current()")  # it holds a transaction id now
        async with unit_of_work() as session:
            event = await emit(session, "order.created", {"n": "beside"})
        seen, _ = await read_from(client, admin, cursor, until=lambda evs: event in [e["id"] for e in evs],
                                  timeout=5)  # the other transaction stays open all along
        assert event in [e["id"] for e in seen]
        await tx.rollback()
    finally:
        await other.close()


async def test_keys_read_their_own_channel_and_store(client, admin, w):
    await w.stock(client, w.wh, **{w.b: 5})
    await w.stock(client, w.hh, **{w.a: 5})
    cursors = {name: await tail(client, h) for name, h in
               (("shop", w.shop), ("market", w.marketplace), ("pos", w.pos_hh), ("pos_be", w.pos_be))}
    web_order = await w.place(client, {w.b: 1})
    r = await client.post("/v1/orders", headers=w.pos_hh, json={"lines": [{"sku": w.a, "quantity": 1}]})
    assert r.status_code == 201, r.text
    sale = r.json()
    shop, _ = await read_from(client, w.shop, cursors["shop"],
                              until=lambda evs: any(e["data"].get("id") == web_order["id"] for e in evs))
    assert {e["data"]["id"] for e in shop if e["type"] == "order.created"} == {web_order["id"]}
    assert all(e["data"].get("channel") in (None, w.web) for e in shop if e["type"].startswith(("order.", "fulfillment.")))
    # stock at the channel's locations is the channel's business; webhook-endpoint events are admin's
    assert any(e["type"] == "inventory.level_changed" for e in shop)
    assert not any(e["type"].startswith("webhook_endpoint.") for e in shop)
    pos, _ = await read_from(client, w.pos_hh, cursors["pos"],
                             until=lambda evs: any(e["data"].get("id") == sale["id"] for e in evs))
    assert {e["data"]["id"] for e in pos if e["type"] == "order.created"} == {sale["id"]}
    # the other store's till shares the pos channel (its sales), not the web shop's orders
    other, _ = await read_from(client, w.pos_be, cursors["pos_be"],
                               until=lambda evs: any(e["data"].get("id") == sale["id"] for e in evs))
    assert {e["data"]["id"] for e in other if e["type"] == "order.created"} == {sale["id"]}
    market, _ = await read_from(client, w.marketplace, cursors["market"])
    assert not [e for e in market if e["type"].startswith(("order.", "fulfillment."))]


async def test_a_partner_sees_only_its_fulfillments_without_customer_data(client, admin, w, receivers):
    hook = receivers()
    mine = await create_endpoint(client, w.drop, hook.url, ["fulfillment.created", "fulfillment.shipped"])
    everything = await create_endpoint(client, w.drop, hook.url.replace("/hooks", "/all"), ["*"])
    other = await create_endpoint(client, w.drop2, hook.url.replace("/hooks", "/other"), ["*"])
    cursors = {"drop": await tail(client, w.drop), "drop2": await tail(client, w.drop2)}
    await w.stock(client, w.pt, **{w.p: 3})
    await w.stock(client, w.wh, **{w.b: 3})
    dropship = await w.place(client, {w.p: 1})  # only the partner has it
    warehouse = await w.place(client, {w.b: 1})
    f = at(dropship, w.pt)
    r = await client.post(f"/v1/fulfillments/{f['id']}/ship", headers=w.drop, json={"carrier": "UPS", "tracking_number": "1Z"})
    assert r.status_code == 200, r.text

    events, _ = await read_from(client, w.drop, cursors["drop"],
                                until=lambda evs: {"fulfillment.created", "fulfillment.shipped"} <= {e["type"] for e in evs})
    assert {e["type"] for e in events} <= {"fulfillment.created", "fulfillment.shipped", "fulfillment.declined",
                                           "fulfillment.cancelled", "fulfillment.ready", "fulfillment.collected",
                                           "fulfillment.expired"}
    assert {e["data"]["id"] for e in events} == {f["id"]}
    for e in events:
        _no_foreign_data(e["data"], w)
    shipped = next(e for e in events if e["type"] == "fulfillment.shipped")["data"]
    assert shipped["status"] == "shipped" and shipped["tracking_number"] == "1Z"
    assert shipped["lines"] == [{"order_line_id": f["lines"][0]["order_line_id"], "sku": w.p, "quantity": 1}]
    others, _ = await read_from(client, w.drop2, cursors["drop2"])
    assert not [e for e in others if e["data"].get("id") in (f["id"], at(warehouse, w.wh)["id"])]
    # webhooks: the same rule
    await run_worker(mine["id"], everything["id"], other["id"])
    bodies = {path: [orjson.loads(s.body) for s in hook.requests if s.path == path] for path in ("/hooks", "/all", "/other")}
    assert sorted(b["type"] for b in bodies["/hooks"]) == ["fulfillment.created", "fulfillment.shipped"]
    assert {b["data"]["id"] for b in bodies["/hooks"] + bodies["/all"]} == {f["id"]}
    assert bodies["/other"] == []
    for b in bodies["/hooks"] + bodies["/all"]:
        _no_foreign_data(b["data"], w)
    # and it cannot ask for more
    assert_problem(await client.post("/v1/webhook-endpoints", headers=w.drop,
                                     json={"url": hook.url, "events": ["order.created"]}), 403)
    r = await client.get("/v1/events", headers=w.drop, params={"type": "order.created", "cursor": cursors["drop"]})
    assert r.status_code == 200 and r.json()["data"] == []


def _no_foreign_data(data: dict, w) -> None:
    """A partner may see the shipping address (to ship), nothing else of the customer or order."""
    rest = {k: v for k, v in data.items() if k != "shipping_address"}
    text = orjson.dumps(rest).decode()
    for key in CUSTOMER_DATA:
        assert key not in data, (key, data)
    assert "Kim" not in text and "Jungfernstieg" not in text  # the customer's name and street
    assert data["location"] == w.pt
    for loc in (w.wh, w.hh, w.be, w.pt2):  # no other location named (the sourcing record's candidates)
        assert loc not in text, (loc, data)
    assert set(data.get("sourcing") or {}) <= {"rule"}


async def test_a_key_bound_to_nothing_visible_reads_an_empty_stream(client, admin):
    partner = (await create_location(client, admin, "partner"))["code"]
    h = auth(await make_key("dropshipper", location=partner))
    r = await client.get("/v1/events", headers=h, params={"limit": 500})
    assert r.status_code == 200 and r.json()["data"] == [] and r.json()["has_more"] is False
