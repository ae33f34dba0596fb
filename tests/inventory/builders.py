"""A small world for inventory tests: locations, a channel, stocked products and a bundle."""
from sqlalchemy import func, select

from app.core.db import sessionmaker
from app.inventory.models import StockLevel, StockMovement
from tests.catalog.builders import create_product, sku
from tests.helpers import create_channel, create_location


class World:
    async def setup(self, client, admin):
        self.wh = (await create_location(client, admin, "warehouse", lat=52.0, lon=10.0))["code"]
        self.hh = (await create_location(client, admin, "store", lat=53.5511, lon=9.9937))["code"]  # Hamburg
        self.be = (await create_location(client, admin, "store", lat=52.52, lon=13.405))["code"]  # Berlin
        self.partner = (await create_location(client, admin, "partner"))["code"]
        self.web = (await create_channel(client, admin, "web", fulfillment_locations=[self.wh, self.hh, self.be]))["code"]
        self.pos = (await create_channel(client, admin, "pos"))["code"]  # the stores' tills sell in it
        self.a, self.b, self.c, self.box, self.free = sku("A"), sku("B"), sku("C"), sku("BOX"), sku("SVC")
        chans = [self.web]
        for s in (self.a, self.b, self.c):
            await create_product(client, admin, channels=chans, variants=[{"sku": s}])
        await create_product(client, admin, channels=chans, variants=[{"sku": self.free, "track_inventory": False}])
        await create_product(client, admin, channels=chans, type="bundle",
                             variants=[{"sku": self.box, "components": [{"sku": self.a, "quantity": 1},
                                                                        {"sku": self.b, "quantity": 2}]}])
        return self


async def put_levels(client, admin, location: str, **levels: int) -> None:
    r = await client.put("/v1/inventory/levels", headers=admin,
                         json={"location": location, "levels": [{"sku": s, "on_hand": n} for s, n in levels.items()]})
    assert r.status_code == 200, r.text


async def level(client, admin, sku: str, location: str) -> dict:
    r = await client.get("/v1/inventory", params={"sku": sku, "location": location}, headers=admin)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    return data[0] if data else {"on_hand": 0, "reserved": 0, "safety_stock": 0, "available": 0}


async def ledger_matches(skus: list[str] | None = None) -> list:
    """Levels whose on_hand differs from the sum of their movements (empty = consistent)."""
    async with sessionmaker()() as s:
        moved = (select(StockMovement.sku, StockMovement.location_id, func.sum(StockMovement.quantity).label("total"))
                 .group_by(StockMovement.sku, StockMovement.location_id).subquery())
        stmt = (select(StockLevel.sku, StockLevel.location_id, StockLevel.on_hand, moved.c.total)
                .outerjoin(moved, (moved.c.sku == StockLevel.sku) & (moved.c.location_id == StockLevel.location_id)))
        if skus:
            stmt = stmt.where(StockLevel.sku.in_(skus))
        rows = (await s.execute(stmt)).all()
        bad = [r for r in rows if r.on_hand != (r.total or 0)]
        bad += [r for r in (await s.execute(select(StockLevel).where(
            (StockLevel.on_hand < 0) | (StockLevel.reserved < 0)))).scalars()]
    return bad
