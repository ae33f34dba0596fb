"""Demo stock: every seeded unit came in through a receipt movement; seeding twice adds nothing."""
from sqlalchemy import func, select

from app.catalog.seed import SEED_SKUS
from app.catalog.seed import seed_demo as seed_catalog
from app.core.db import unit_of_work
from app.inventory.models import StockLevel, StockMovement
from app.inventory.seed import seed_demo
from app.seed import seed_locations_and_channels
from tests.inventory.builders import ledger_matches


async def _seed_movements() -> list[tuple]:
    async with unit_of_work() as s:
        return list((await s.execute(select(StockMovement.sku, StockMovement.location_id, StockMovement.quantity,
                                            StockMovement.reason)
                                     .where(StockMovement.reference == "seed-demo").order_by(StockMovement.id))).all())


async def test_seed_demo_stock_is_idempotent(client, admin):
    async with unit_of_work() as s:
        await seed_locations_and_channels(s)
    async with unit_of_work() as s:
        await seed_catalog(s)
    async with unit_of_work() as s:
        first = await seed_demo(s)  # [] when an earlier test of this run seeded already
    assert first == [] or first[0].startswith("stock ")
    moves = await _seed_movements()
    assert moves and {m.reason for m in moves} == {"receipt"} and all(m.quantity > 0 for m in moves)
    async with unit_of_work() as s:
        assert await seed_demo(s) == []
        levels = (await s.execute(select(func.count()).select_from(StockLevel)
                                  .where(StockLevel.sku.in_(SEED_SKUS)))).scalar_one()
    assert await _seed_movements() == moves  # nothing doubled
    assert levels >= len({(m.sku, m.location_id) for m in moves})
    assert await ledger_matches(SEED_SKUS) == []
    # the bundle has no stock of its own; the warehouse, the stores and the wine partner have
    assert "GIFT-BOX" not in {m.sku for m in moves}
    r = await client.get("/v1/inventory", params={"sku": "WINE-RIES-075"}, headers=admin)
    assert {"wh-central", "st-hamburg", "st-berlin", "st-munich", "pt-weinhaus"} <= {x["location"] for x in r.json()["data"]}
    r = await client.get("/v1/inventory/movements", params={"sku": "WINE-RIES-075", "location": "pt-weinhaus",
                                                           "reference": "seed-demo"}, headers=admin)
    assert [(m["quantity"], m["reason"]) for m in r.json()["data"]] == [(120, "receipt")]
    wh = (await client.get("/v1/inventory", params={"sku": "TS-BLK-M", "location": "wh-central"}, headers=admin)).json()["data"]
    assert wh and wh[0]["safety_stock"] > 0
    r = await client.get("/v1/availability", params={"skus": "GIFT-BOX", "channel": "web-de"}, headers=admin)
    assert r.status_code == 200 and r.json()["data"][0]["available_to_sell"] > 0
