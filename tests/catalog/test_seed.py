"""The demo catalog: realistic, visible in the demo channels, idempotent."""
from app.catalog.seed import SEED_SKUS, seed_demo
from app.core.db import unit_of_work
from app.seed import seed_locations_and_channels
from tests.conftest import auth, make_key


async def _demo_channels():
    """What app/seed.py creates before the catalog seed runs (only what is missing)."""
    async with unit_of_work() as session:
        await seed_locations_and_channels(session)


async def test_seed_demo_is_idempotent(client, admin):
    await _demo_channels()
    async with unit_of_work() as session:
        first = await seed_demo(session)
    async with unit_of_work() as session:
        assert await seed_demo(session) == []
    assert len(SEED_SKUS) == len(set(SEED_SKUS))
    for s in ("TS-BLK-M", "WINE-RIES-075", "CHEESE-GOUDA", "GIFT-BOX"):
        assert s in SEED_SKUS
    assert all(x.startswith("product ") for x in first)
    for s in SEED_SKUS:
        r = await client.get(f"/v1/variants?sku={s}", headers=admin)
        assert r.status_code == 200, s
        assert r.json()["status"] == "active"
    box = (await client.get("/v1/variants?sku=GIFT-BOX", headers=admin)).json()
    assert box["type"] == "bundle" and {c["sku"] for c in box["components"]} >= {"WINE-RIES-075", "CHEESE-GOUDA"}
    tee = (await client.get("/v1/products/organic-cotton-t-shirt", headers=admin)).json()
    assert tee["channels"] == sorted(["web-de", "app-de", "pos-de", "amazon-de"]) and tee["category"] == "fashion/t-shirts"
    assert {v["options"]["size"] for v in tee["variants"]} == {"S", "M", "L"}
    wine = (await client.get("/v1/variants?sku=WINE-RIES-075", headers=admin)).json()
    cheese = (await client.get("/v1/variants?sku=CHEESE-GOUDA", headers=admin)).json()
    assert wine["category"] == "grocery/wine" and cheese["category"] == "grocery/cheese" and cheese["tax_class"] == "reduced"
    # a web-de storefront finds it by barcode
    storefront = auth(await make_key("storefront", channel="web-de"))
    r = await client.get(f"/v1/variants?gtin={wine['gtin']}", headers=storefront)
    assert r.status_code == 200 and r.json()["sku"] == "WINE-RIES-075"
