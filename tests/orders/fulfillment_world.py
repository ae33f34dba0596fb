"""A small retailer for fulfillment tests, and orders placed through the real endpoints.

Locations: a warehouse, two stores (Hamburg, Berlin) that ship and offer pickup, two dropship
partners. A web channel ships from all of them (a ship-from-store channel from the stores
only). Keys with their real roles: the shop's storefront key, a POS key per store, a
dropshipper key per partner, a marketplace key; admin is the suite's.
"""
import secrets

from sqlalchemy import select

from app.core.db import sessionmaker
from app.events.models import Event
from tests.catalog.builders import create_product, sku
from tests.conftest import auth, make_key, uid
from tests.helpers import create_channel, create_location
from tests.inventory.builders import level, put_levels

NEAR_HAMBURG = {"name": "Kim", "line1": "Jungfernstieg 1", "postal_code": "20095", "city": "Hamburg", "country": "DE",
                "lat": 53.553, "lon": 9.992}
NEAR_BERLIN = {"line1": "Unter den Linden 1", "postal_code": "10117", "city": "Berlin", "country": "DE",
               "lat": 52.517, "lon": 13.389}


class World:
    async def setup(self, client, admin, *, hold_days: int = 2):
        self.admin = admin
        self.country = "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(2))
        for tax_class, rate in (("standard", 1900), ("reduced", 700)):
            r = await client.post("/v1/tax-rates", headers=admin,
                                  json={"country": self.country, "tax_class": tax_class, "rate_bp": rate})
            assert r.status_code in (200, 201), r.text
        self.wh = (await create_location(client, admin, "warehouse", lat=52.0, lon=10.0))["code"]
        self.hh = (await create_location(client, admin, "store", lat=53.5511, lon=9.9937))["code"]
        self.be = (await create_location(client, admin, "store", lat=52.52, lon=13.405))["code"]
        self.pt = (await create_location(client, admin, "partner"))["code"]
        self.pt2 = (await create_location(client, admin, "partner"))["code"]
        self.web = (await create_channel(client, admin, "web", country=self.country, pickup_hold_days=hold_days,
                                         fulfillment_locations=[self.wh, self.hh, self.be, self.pt]))["code"]
        self.sfs = (await create_channel(client, admin, "app", country=self.country, pickup_hold_days=hold_days,
                                         fulfillment_locations=[self.hh, self.be]))["code"]  # ship from store
        self.pos_channel = (await create_channel(client, admin, "pos", country=self.country))["code"]
        self.market = (await create_channel(client, admin, "marketplace", country=self.country))["code"]
        self.a, self.b, self.p = sku("A"), sku("B"), sku("P")
        chans = [self.web, self.sfs, self.pos_channel, self.market]
        for s in (self.a, self.b, self.p):
            await create_product(client, admin, channels=chans, variants=[{"sku": s}])
        self.prices = uid("retail")
        r = await client.post("/v1/price-lists", json={"code": self.prices, "currency": "EUR", "channels": chans},
                              headers=admin)
        assert r.status_code == 201, r.text
        r = await client.put(f"/v1/price-lists/{self.prices}/prices", headers=admin, json=[
            {"sku": self.a, "amount": 1000}, {"sku": self.b, "amount": 2000}, {"sku": self.p, "amount": 3000}])
        assert r.status_code == 200, r.text
        self.shop = auth(await make_key("storefront", channel=self.web))
        self.app = auth(await make_key("storefront", channel=self.sfs))
        self.pos_hh = auth(await make_key("pos", channel=self.pos_channel, location=self.hh))
        self.pos_be = auth(await make_key("pos", channel=self.pos_channel, location=self.be))
        self.drop = auth(await make_key("dropshipper", location=self.pt))
        self.drop2 = auth(await make_key("dropshipper", location=self.pt2))
        self.marketplace = auth(await make_key("marketplace", channel=self.market))
        return self

    async def stock(self, client, location: str, **levels: int) -> None:
        await put_levels(client, self.admin, location, **levels)

    async def level(self, client, sku: str, location: str) -> dict:
        return await level(client, self.admin, sku, location)

    async def place(self, client, lines: dict[str, int], *, method: str = "ship", location: str | None = None,
                    address: dict | None = None, payment: str = "none", shop: dict | None = None,
                    channel: str | None = None) -> dict:
        """A customer's order: a cart in the shop, checked out by the storefront key."""
        fulfillment: dict = {"method": method}
        if location is not None:
            fulfillment["location"] = location
        if method == "ship":
            fulfillment["address"] = address or NEAR_HAMBURG
        shop = shop or self.shop
        r = await client.post("/v1/carts", headers=shop, json={
            "channel": channel or self.web, "lines": [{"sku": s, "quantity": q} for s, q in lines.items()],
            "fulfillment": fulfillment})
        assert r.status_code == 201, r.text
        r = await client.post(f"/v1/carts/{r.json()['id']}/checkout", headers=shop,
                              json={"payment": {"provider": payment}})
        assert r.status_code == 201, r.text
        return r.json()

    async def order(self, client, ref: str) -> dict:
        r = await client.get(f"/v1/orders/{ref}", headers=self.admin)
        assert r.status_code == 200, r.text
        return r.json()


def at(order: dict, location: str) -> dict:
    """The order's (live) fulfillment at `location`."""
    found = [f for f in order["fulfillments"] if f["location"] == location and f["status"] not in ("declined",)]
    assert len(found) == 1, order["fulfillments"]
    return found[0]


async def events(type_: str, **match) -> list[dict]:
    """The outbox events of a type whose data contains `match`."""
    async with sessionmaker()() as s:
        rows = (await s.execute(select(Event.data).where(Event.type == type_))).scalars().all()
    return [d for d in rows if all(d.get(k) == v for k, v in match.items())]
