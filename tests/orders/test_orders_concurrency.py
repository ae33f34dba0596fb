"""Many checkouts at once over real HTTP (the live uvicorn server, real concurrent database
transactions), across several stores competing for the last units: pickups, reservations and
shipments, some with bundles. No unit is sold twice, no order is lost (every 201 has its order
and its stock held), every level's ledger equals its on_hand, and no client sees a 5xx (a
deadlock or serialization failure is retried inside checkout). Runs on both databases."""
import asyncio
import random
from collections import defaultdict

import httpx
import pytest

from tests.helpers import assert_problem
from tests.inventory.builders import ledger_matches, level
from tests.orders.builders import HAMBURG, MUNICH, Shop, create_cart, lines, pickup_at, ship_to

BERLIN = {"line1": "Unter den Linden 1", "postal_code": "10117", "city": "Berlin", "country": "DE",
          "lat": 52.517, "lon": 13.389}


@pytest.fixture
async def shop(client, admin):
    return await Shop().setup(client, admin, partner_in_web=False)


def _consumption(shop: Shop, order_lines: list[dict]) -> dict[str, int]:
    """Stock units per SKU that fulfillment lines take (the bundle is 1 A + 2 B)."""
    out: dict[str, int] = defaultdict(int)
    for ln in order_lines:
        if ln["sku"] == shop.box:
            out[shop.a] += ln["quantity"]
            out[shop.b] += 2 * ln["quantity"]
        elif ln["sku"] != shop.svc:
            out[ln["sku"]] += ln["quantity"]
    return out


async def test_many_checkouts_compete_for_the_last_units(client, admin, shop, live_server, backend):
    s = shop
    stores = [s.hh, s.be, s.mu]
    supply = {s.wh: {s.a: 4, s.b: 6, s.c: 3}, s.hh: {s.a: 2, s.b: 3, s.c: 1}, s.be: {s.a: 2, s.b: 2, s.c: 2},
              s.mu: {s.a: 3, s.b: 2, s.c: 0}}
    for loc, levels in supply.items():
        r = await client.put("/v1/inventory/levels", headers=admin, json={"location": loc, "levels": [
            {"sku": sk, "on_hand": n + 1, "safety_stock": 1} for sk, n in levels.items()]})  # one unit never sold
        assert r.status_code == 200, r.text
    rng = random.Random(11)
    carts = []
    for i in range(48):
        kind = ("pickup", "reserve", "ship")[i % 3]
        basket = rng.choice([[(s.a, 1)], [(s.b, 2)], [(s.box, 1)], [(s.a, 1), (s.c, 1)], [(s.box, 1), (s.svc, 1)],
                             [(s.c, 2), (s.b, 1)]])
        fulfillment = ship_to(rng.choice([HAMBURG, MUNICH, BERLIN])) if kind == "ship" else \
            pickup_at(rng.choice(stores), kind)
        cart = await create_cart(client, s.storefront, lines=lines(*basket), fulfillment=fulfillment)
        carts.append(cart["id"])

    async def go(http: httpx.AsyncClient, cart_id: str) -> httpx.Response:
        return await http.post(f"/v1/carts/{cart_id}/checkout", json={"payment": {"provider": "none"}},
                               headers=s.storefront)

    async with httpx.AsyncClient(base_url=live_server, timeout=120, limits=httpx.Limits(max_connections=48)) as http:
        results = await asyncio.gather(*(go(http, c) for c in carts))

    codes = [r.status_code for r in results]
    assert set(codes) <= {201, 409}, [r.text for r in results if r.status_code not in (201, 409)]
    assert 0 < codes.count(201) < len(codes), codes  # some won, the stock ran out for others
    for r in results:
        if r.status_code == 409:
            assert_problem(r, 409, "insufficient_stock")
    # no lost order: every 201 is an order with its fulfillments, and exactly their stock is held
    held: dict[tuple[str, str], int] = defaultdict(int)
    numbers = set()
    for r in results:
        if r.status_code != 201:
            continue
        created = r.json()
        got = await client.get(f"/v1/orders/{created['id']}", headers=admin)
        assert got.status_code == 200, got.text
        order = got.json()
        assert order["fulfillments"] == created["fulfillments"] and order["fulfillments"]
        numbers.add(order["number"])
        for f in order["fulfillments"]:
            assert f["status"] == "open"
            for sku_, q in _consumption(s, f["lines"]).items():
                held[(sku_, f["location"])] += q
    assert len(numbers) == codes.count(201)  # numbers are unique
    for loc, levels in supply.items():
        for sku_, n in levels.items():
            lv = await level(client, admin, sku_, loc)
            assert lv["on_hand"] == n + 1 and lv["safety_stock"] == 1
            assert lv["reserved"] == held.get((sku_, loc), 0), (sku_, loc, lv)
            assert lv["reserved"] <= n  # never the safety stock, never more than there is
    assert await ledger_matches([s.a, s.b, s.c]) == []
    # the losers' carts are still open; the winners' completed
    for cart_id, r in zip(carts, results):
        cart = (await client.get(f"/v1/carts/{cart_id}", headers=s.storefront)).json()
        assert cart["status"] == ("completed" if r.status_code == 201 else "open")


async def test_double_checkout_over_http_makes_one_order(client, admin, shop, live_server):
    s = shop
    await s.stock(client, s.wh, **{s.a: 50})
    carts = [(await create_cart(client, s.storefront, lines=lines((s.a, 1)), fulfillment=ship_to()))["id"]
             for _ in range(5)]
    async with httpx.AsyncClient(base_url=live_server, timeout=120, limits=httpx.Limits(max_connections=40)) as http:
        results = await asyncio.gather(*(http.post(f"/v1/carts/{c}/checkout", headers=s.storefront,
                                                   json={"payment": {"provider": "none"}})
                                         for c in carts for _ in range(6)))
    by_cart = defaultdict(list)
    for i, r in enumerate(results):
        by_cart[carts[i // 6]].append(r)
    for cart_id, rs in by_cart.items():
        codes = sorted(r.status_code for r in rs)
        assert codes == [201] + [409] * 5, [r.text for r in rs]
        order_id = next(r.json()["id"] for r in rs if r.status_code == 201)
        assert all(r.json()["code"] == "cart_completed" and r.json()["order"] == order_id
                   for r in rs if r.status_code == 409)
    assert (await level(client, admin, s.a, s.wh))["reserved"] == 5
