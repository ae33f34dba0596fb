"""The same return handed in at several tills at once (or a POS retrying a request whose answer it
never saw), over real HTTP against the live server: real concurrent transactions. The order row
lock makes them take turns, so the last units come back once, are refunded once and land on hand
once. Runs on both databases (SQLite serializes the writers; PostgreSQL waits on the row lock)."""
import asyncio
from collections import Counter

import httpx
import pytest
from sqlalchemy import func, select

from app.core.db import sessionmaker
from app.inventory.models import StockMovement
from app.returns.models import Return
from tests.helpers import assert_problem
from tests.inventory.builders import ledger_matches
from tests.returns.world import Shop, line, line_id, post_return, quantity_returned, ret_line

CLIENTS = 10


@pytest.fixture
async def w(client, admin):
    return await Shop().setup(client, admin)


async def test_concurrent_duplicates_return_the_last_units_once(client, w, live_server):
    await w.stock(client, w.wh, **{w.a: 3, w.b: 1})
    order = await w.shipped(client, {w.a: 3, w.b: 1})
    await post_return(client, w.pos_hh, order, [ret_line(order, w.a, 1)])  # two of A and the B are left
    before = {s: (await w.level(client, s, w.hh))["on_hand"] for s in (w.a, w.b)}
    body = {"order": order["number"], "refund_method": "cash",
            "lines": [ret_line(order, w.a, 2), ret_line(order, w.b, 1)]}
    tills = [w.pos_hh, w.pos_be]

    async with httpx.AsyncClient(base_url=live_server, timeout=120,
                                 limits=httpx.Limits(max_connections=CLIENTS)) as http:
        results = await asyncio.gather(*(http.post("/v1/returns", json=body, headers=tills[i % 2])
                                         for i in range(CLIENTS)))

    codes = Counter(r.status_code for r in results)
    assert codes == {201: 1, 409: CLIENTS - 1}, [r.text for r in results]
    for r in results:
        if r.status_code == 409:
            assert_problem(r, 409, "return_quantity_exceeded")
    won = next(r.json() for r in results if r.status_code == 201)
    where = won["location"]
    # counted once: never more returned than fulfilled
    ids = [line_id(order, w.a), line_id(order, w.b)]
    assert await quantity_returned(ids) == {ids[0]: 3, ids[1]: 1}
    o = await w.order(client, order["id"])
    assert all(ln["quantity_returned"] <= ln["quantity_fulfilled"] for ln in o["lines"])
    assert len(o["returns"]) == 2
    # refunded once: the two returns add up to the line totals
    async with sessionmaker()() as s:
        refunded = (await s.execute(select(func.sum(Return.refund_total))
                                    .where(Return.order_id == order["id"]))).scalar()
        moved = (await s.execute(select(StockMovement.sku, func.sum(StockMovement.quantity))
                                 .where(StockMovement.reason == "return", StockMovement.sku.in_([w.a, w.b]),
                                        StockMovement.reference == won["id"])
                                 .group_by(StockMovement.sku))).all()
    assert refunded == line(order, w.a)["total"] + line(order, w.b)["total"]
    # on hand once, at the store whose till won
    assert dict(moved) == {w.a: 2, w.b: 1}
    after = {s: (await w.level(client, s, where))["on_hand"] for s in (w.a, w.b)}
    if where == w.hh:
        assert after == {w.a: before[w.a] + 2, w.b: before[w.b] + 1}
    else:
        assert after == {w.a: 2, w.b: 1}
        assert {s: (await w.level(client, s, w.hh))["on_hand"] for s in (w.a, w.b)} == before
    assert await ledger_matches([w.a, w.b]) == []


async def test_a_retried_return_with_its_idempotency_key_is_answered_once(client, w, live_server):
    await w.stock(client, w.wh, **{w.a: 1})
    order = await w.shipped(client, {w.a: 1})
    body = {"order": order["id"], "refund_method": "cash", "lines": [ret_line(order, w.a, 1)]}
    headers = w.pos_hh | {"Idempotency-Key": f"till-1/{order['id']}"}
    async with httpx.AsyncClient(base_url=live_server, timeout=120) as http:
        results = await asyncio.gather(*(http.post("/v1/returns", json=body, headers=headers) for _ in range(4)))
    assert {r.status_code for r in results} <= {201, 409}
    created = [r for r in results if r.status_code == 201]
    assert created and len({r.json()["id"] for r in created}) == 1  # replays of the one answer
    for r in results:
        if r.status_code == 409:
            assert r.json()["code"] == "idempotency_key_in_use"
    assert await quantity_returned([line_id(order, w.a)]) == {line_id(order, w.a): 1}
    assert (await w.level(client, w.a, w.hh))["on_hand"] == 1
