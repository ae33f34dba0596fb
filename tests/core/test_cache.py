"""Reference data served from each process's cache, dropped in every process the moment it
changes: a revoked key, a changed channel or a new promotion take effect on the next request,
also in another server process; a cache that cannot hear changes is not used."""
import asyncio

import httpx
from sqlalchemy import text

from app.core import cache
from app.core.db import get_engine
from tests.conftest import auth, make_key, uid
from tests.helpers import assert_problem, create_channel


async def test_revocation_reaches_every_process(client, admin, live_server):
    secret = await make_key("admin")
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as other:
        for _ in range(3):  # the other process now serves this key from its cache
            assert (await other.get("/v1/channels", headers=auth(secret))).status_code == 200
        assert (await client.get("/v1/channels", headers=auth(secret))).status_code == 200  # and so does this one
        key_id = next(k["id"] for k in (await client.get("/v1/api-keys", params={"limit": 500}, headers=admin)).json()["data"]
                      if secret.startswith(k["prefix"]))
        assert (await client.delete(f"/v1/api-keys/{key_id}", headers=admin)).status_code == 204
        assert_problem(await client.get("/v1/channels", headers=auth(secret)), 401, "unauthenticated")
        assert_problem(await other.get("/v1/channels", headers=auth(secret)), 401, "unauthenticated")


async def test_channel_and_promotion_changes_reach_every_process(client, admin, live_server):
    from tests.catalog.builders import create_product, sku

    ch = (await create_channel(client, admin, "web"))["code"]
    code = uid("pl")
    assert (await client.post("/v1/price-lists", headers=admin, json={
        "code": code, "currency": "EUR", "channels": [ch]})).status_code == 201
    assert (await client.patch(f"/v1/channels/{ch}", headers=admin, json={"price_lists": [code]})).status_code == 200
    s = sku("C")
    await create_product(client, admin, channels=[ch], variants=[{"sku": s}])
    assert (await client.put(f"/v1/price-lists/{code}/prices", headers=admin, json=[{"sku": s, "amount": 1000}])).status_code == 200
    r = await client.post("/v1/tax-rates", headers=admin, json={"country": "DE", "tax_class": "standard", "rate_bp": 1900})
    assert r.status_code in (200, 201) and r.json()["rate_bp"] == 1900
    body = {"channel": ch, "lines": [{"sku": s, "quantity": 1}]}
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as other:
        for _ in range(2):
            assert (await other.get(f"/v1/channels/{ch}", headers=admin)).json()["name"] == "Test web"
            q = await other.post("/v1/pricing/quote", headers=admin, json=body)
            assert q.status_code == 200 and q.json()["total"] == 1000, q.text
        assert (await client.patch(f"/v1/channels/{ch}", headers=admin, json={"name": "Renamed"})).status_code == 200
        promo = uid("promo")
        assert (await client.post("/v1/promotions", headers=admin, json={
            "code": promo, "name": "10 %", "type": "percent_off", "params": {"percent_bp": 1000},
            "skus": [s], "channels": [ch]})).status_code == 201
        assert (await other.get(f"/v1/channels/{ch}", headers=admin)).json()["name"] == "Renamed"
        assert (await other.post("/v1/pricing/quote", headers=admin, json=body)).json()["total"] == 900
        assert (await client.post("/v1/pricing/quote", headers=admin, json=body)).json()["total"] == 900
        # a new price (the SKU's prices are cached per SKU) is charged by the next quote everywhere
        assert (await client.put(f"/v1/price-lists/{code}/prices", headers=admin,
                                 json=[{"sku": s, "amount": 2000}])).status_code == 200
        assert (await other.post("/v1/pricing/quote", headers=admin, json=body)).json()["total"] == 1800
        assert (await client.post("/v1/pricing/quote", headers=admin, json=body)).json()["total"] == 1800


async def test_a_cache_that_cannot_hear_changes_is_not_used(client, admin, backend):
    ch = (await create_channel(client, admin, "web"))["code"]
    assert (await client.get(f"/v1/channels/{ch}", headers=admin)).status_code == 200
    assert (await client.get(f"/v1/channels/{ch}", headers=admin)).json()["name"] == "Test web"  # cached
    if backend == "postgres":
        assert cache.bus.listening
        pid = cache.bus.connection.get_server_pid()
        async with get_engine().connect() as conn:  # the LISTEN connection dies
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await conn.commit()
        for _ in range(100):
            if not cache.bus.listening:
                break
            await asyncio.sleep(0.01)
        assert not cache.bus.listening
    # a change behind the API's back: on PostgreSQL nobody hears it, on SQLite data_version moves
    async with get_engine().connect() as conn:
        await conn.execute(text("UPDATE channels SET name = 'Changed behind' WHERE code = :c"), {"c": ch})
        await conn.commit()
    assert (await client.get(f"/v1/channels/{ch}", headers=admin)).json()["name"] == "Changed behind"
    if backend == "postgres":
        for _ in range(300):  # it comes back by itself (retried every second)
            if cache.bus.listening:
                break
            await asyncio.sleep(0.02)
        assert cache.bus.listening


async def test_catalog_answers_are_cached_per_visibility_and_dropped_on_change(client, admin, live_server):
    from tests.catalog.builders import create_product

    ch = (await create_channel(client, admin, "web"))["code"]
    other = (await create_channel(client, admin, "web"))["code"]
    shop = auth(await make_key("storefront", channel=ch))
    p = await create_product(client, admin, status="active", channels=[ch, other])
    params = {"q": p["title"]}
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as far:
        for http in (client, far):
            first = await http.get("/v1/products", params=params, headers=shop)
            again = await http.get("/v1/products", params=params, headers=shop)
            assert first.status_code == again.status_code == 200
            assert first.content == again.content and again.headers["ratelimit-limit"] and again.headers["x-request-id"]
            assert first.json()["data"][0]["channels"] == [ch]  # the storefront sees only its channel
            assert sorted((await http.get("/v1/products", params=params, headers=admin)).json()["data"][0]["channels"]) \
                == sorted([ch, other])  # the same URL answers the admin differently
        r = await client.patch(f"/v1/products/{p['id']}", json={"description": "changed"}, headers=admin)
        assert r.status_code == 200, r.text
        for http in (client, far):
            got = (await http.get("/v1/products", params=params, headers=shop)).json()["data"][0]
            assert got["description"] == "changed" and got["version"] == 2
            single = await http.get(f"/v1/products/{p['id']}", headers=shop)
            assert single.json()["description"] == "changed" and single.headers["etag"] == '"2"'
        # an import (COPY on PostgreSQL, bypassing SQLAlchemy) drops the cached answers too
        sku = p["variants"][0]["sku"]
        before = (await far.get("/v1/variants", params={"sku": sku}, headers=shop)).json()
        assert before["title"] != "Imported title"
        body = f'{{"sku": "{sku}", "title": "Imported title"}}\n'.encode()
        r = await client.post("/v1/catalog/import", content=body, headers=admin | {"Content-Type": "application/x-ndjson"})
        assert r.status_code == 200 and r.json()["updated"] == 1, r.text
        for http in (client, far):
            assert (await http.get("/v1/variants", params={"sku": sku}, headers=shop)).json()["title"] == "Imported title"
        # archived: gone from the storefront's answers at once
        assert (await client.patch(f"/v1/products/{p['id']}", json={"status": "archived"}, headers=admin)).status_code == 200
        for http in (client, far):
            assert (await http.get("/v1/products", params=params, headers=shop)).json()["data"] == []
            assert (await http.get(f"/v1/products/{p['id']}", headers=shop)).status_code == 404


def test_response_caching_takes_a_collection_and_its_items_only():
    from app.core.cache import _response_cache

    assert _response_cache("/v1/channels") is not None and _response_cache("/v1/channels/web-de") is not None
    assert _response_cache("/v1/channels/web-de/listings") is None  # depends on more than channels
    assert _response_cache("/v1/channelsx") is None and _response_cache("/v1/pricing/quote") is None


async def test_a_transaction_never_fills_a_cache_with_what_it_wrote_itself(client, admin):
    """Read-your-writes inside a transaction bypasses the cache, and nothing it read is kept: a
    rollback must leave no trace in any process's cache."""
    from sqlalchemy import update

    from app.channels.models import Channel
    from app.channels.service import channel_row
    from app.core.db import sessionmaker

    ch = (await create_channel(client, admin, "web"))["code"]
    assert (await client.get(f"/v1/channels/{ch}", headers=admin)).json()["name"] == "Test web"  # cached
    async with sessionmaker()() as s:
        await s.execute(update(Channel).where(Channel.code == ch).values(name="Uncommitted"))
        assert (await channel_row(s, ch)).name == "Uncommitted"  # its own write, not the cache
        assert (await client.get(f"/v1/channels/{ch}", headers=admin)).json()["name"] == "Test web"
        await s.rollback()
    assert (await client.get(f"/v1/channels/{ch}", headers=admin)).json()["name"] == "Test web"


def test_whole_answers_are_bounded_in_bytes_too():
    from app.core.cache import Cache, bus

    store = Cache("test_bytes_topic", max_entries=1_000, max_bytes=1_600)
    usable, bus.usable = bus.usable, lambda: True  # a cache that can hear changes (no database here)
    try:
        for i in range(10):
            store.put(("page", i), b"x" * 100, store.generation, size=100)
        assert len(store.data) == 10 and store.bytes == 1_000
        store.put(("big", 0), b"x" * 101, store.generation, size=101)  # over 1/16 of the budget: not kept
        assert ("big", 0) not in store.data and store.bytes == 1_000
        for i in range(10, 16):
            store.put(("page", i), b"x" * 100, store.generation, size=100)
        assert store.bytes == 1_600 and len(store.data) == 16
        store.put(("page", 16), b"x" * 100, store.generation, size=100)  # past the budget: emptied first
        assert list(store.data) == [("page", 16)] and store.bytes == 100
        store.clear()
        assert store.data == {} and store.bytes == 0
    finally:
        bus.usable = usable
