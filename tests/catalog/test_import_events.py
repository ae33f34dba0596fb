"""Imported products' events name the product's channels, like the events of POST/PATCH
/v1/products: a marketplace key polling GET /v1/events sees the imports of its channel (and
only those), and the import stays set-based (its statements do not grow with its rows)."""
import secrets

from app.core.db import sql_statements
from tests.catalog.test_import import _import, ndjson
from tests.conftest import auth, make_key
from tests.events.helpers import read_from, tail
from tests.helpers import create_channel


def _rows(t: str, channel: str, n: int, **extra) -> list[dict]:
    return [{"sku": f"IE-{t}-{i}".upper(), "product_handle": f"ie-{t}-{i}", "product_title": f"Imported {i}",
             "status": "active", "channels": [channel], **extra} for i in range(n)]


async def test_a_marketplace_key_sees_its_channels_imports(client, admin):
    market = (await create_channel(client, admin, "marketplace"))["code"]
    other = (await create_channel(client, admin, "web"))["code"]
    key = auth(await make_key("marketplace", channel=market))
    t = secrets.token_hex(3)
    cursor = await tail(client, admin)
    mine = _rows(t, market, 2)
    draft = {**_rows(t + "d", market, 1)[0], "status": "draft"}
    theirs = _rows(t + "o", other, 1)
    assert (await _import(client, admin, ndjson(mine + [draft] + theirs)))["products_created"] == 4
    # an update by import without a channels column: the product's stored channels
    again = [{"sku": r["sku"], "product_title": "Renamed"} for r in mine]
    assert (await _import(client, admin, ndjson(again)))["products_updated"] == 2

    def products(evs):
        return [(e["type"], e["data"]["handle"], e["data"].get("title")) for e in evs if e["type"].startswith("product.")]

    handles = [r["product_handle"] for r in mine]
    expected = [("product.created", h, f"Imported {i}") for i, h in enumerate(handles)] + \
               [("product.updated", h, "Renamed") for h in handles]
    seen, _ = await read_from(client, key, cursor, until=lambda evs: len(products(evs)) >= 4)
    assert products(seen) == expected  # not the draft, not the other channel's
    for e in seen:
        if e["type"].startswith("product."):
            assert e["data"]["channels"] == [market] and e["data"]["source"] == "import"
    # admin sees all of them; the same channels as a product made through the API would name
    everything, _ = await read_from(client, admin, cursor, until=lambda evs: len(products(evs)) >= 6)
    by_handle = {e["data"]["handle"]: e["data"] for e in everything if e["type"] == "product.created"}
    assert by_handle[draft["product_handle"]]["channels"] == [market]
    assert by_handle[theirs[0]["product_handle"]]["channels"] == [other]
    api = (await client.get(f"/v1/products/{handles[0]}", headers=admin)).json()
    assert api["channels"] == by_handle[handles[0]]["channels"]


async def test_import_events_cost_no_statement_per_row(client, admin):
    channel = (await create_channel(client, admin, "marketplace"))["code"]
    counts = []
    for n in (3, 30):
        t = secrets.token_hex(3)
        rows = _rows(t, channel, n)
        await _import(client, admin, ndjson(rows))
        with sql_statements() as statements:  # an update of existing products: their channels are read
            result = await _import(client, admin, ndjson([{"sku": r["sku"], "product_title": "New"} for r in rows]))
        assert result["products_updated"] == n
        counts.append(len(statements))
    assert counts[0] == counts[1], counts

