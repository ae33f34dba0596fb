"""A small shop for order tests, built through the API: locations (a warehouse, three stores, a
dropship partner), a web channel shipping from them, a second web channel, a POS channel and a
marketplace channel, priced products (A, B, C, a bundle of 1 A + 2 B, an untracked service),
tax rates in a country of its own, and one key per role."""
from tests.catalog.builders import create_product, sku
from tests.conftest import auth, make_key, uid
from tests.helpers import create_channel, create_location
from tests.inventory.builders import put_levels

HAMBURG = {"line1": "Jungfernstieg 1", "postal_code": "20354", "city": "Hamburg", "country": "DE",
           "lat": 53.5530, "lon": 9.9925}
MUNICH = {"line1": "Marienplatz 1", "postal_code": "80331", "city": "München", "country": "DE",
          "lat": 48.1374, "lon": 11.5755}


def _country() -> str:
    letters = uid("x")[-2:].upper()
    return "".join(c if c.isalpha() else chr(65 + int(c)) for c in letters)


class Shop:
    async def setup(self, client, admin, *, partner_in_web: bool = True):
        self.admin = admin
        self.country = _country()
        self.wh = (await create_location(client, admin, "warehouse", lat=51.0, lon=10.0))["code"]  # central Germany
        self.hh = (await create_location(client, admin, "store", lat=53.5511, lon=9.9937))["code"]  # Hamburg
        self.be = (await create_location(client, admin, "store", lat=52.52, lon=13.405))["code"]  # Berlin
        self.mu = (await create_location(client, admin, "store", lat=48.1351, lon=11.582))["code"]  # Munich
        self.partner = (await create_location(client, admin, "partner", lat=50.11, lon=8.68))["code"]  # Frankfurt
        ship_from = [self.wh, self.hh, self.be, self.mu] + ([self.partner] if partner_in_web else [])
        kw = {"country": self.country}
        self.web = (await create_channel(client, admin, "web", fulfillment_locations=ship_from, **kw))["code"]
        self.web2 = (await create_channel(client, admin, "web", **kw))["code"]
        self.pos = (await create_channel(client, admin, "pos", **kw))["code"]
        self.market = (await create_channel(client, admin, "marketplace", fulfillment_locations=ship_from, **kw))["code"]
        chans = [self.web, self.web2, self.pos, self.market]
        self.a, self.b, self.c, self.box, self.svc = sku("A"), sku("B"), sku("C"), sku("BOX"), sku("SVC")
        for s in (self.a, self.b, self.c):
            await create_product(client, admin, channels=chans, variants=[{"sku": s}])
        await create_product(client, admin, channels=chans, variants=[{"sku": self.svc, "track_inventory": False}])
        await create_product(client, admin, channels=chans, type="bundle",
                             variants=[{"sku": self.box, "components": [{"sku": self.a, "quantity": 1},
                                                                        {"sku": self.b, "quantity": 2}]}])
        self.prices = {self.a: 1000, self.b: 500, self.c: 250, self.box: 1800, self.svc: 300}
        self.retail = uid("retail")
        r = await client.post("/v1/price-lists", headers=admin,
                              json={"code": self.retail, "currency": "EUR", "channels": chans})
        assert r.status_code == 201, r.text
        r = await client.put(f"/v1/price-lists/{self.retail}/prices", headers=admin,
                             json=[{"sku": s, "amount": a} for s, a in self.prices.items()])
        assert r.status_code == 200, r.text
        r = await client.post("/v1/tax-rates", headers=admin,
                              json={"country": self.country, "tax_class": "standard", "rate_bp": 1900})
        assert r.status_code in (200, 201), r.text
        self.storefront = auth(await make_key("storefront", channel=self.web))
        self.storefront2 = auth(await make_key("storefront", channel=self.web2))
        self.pos_hh = auth(await make_key("pos", channel=self.pos, location=self.hh))
        self.pos_be = auth(await make_key("pos", channel=self.pos, location=self.be))
        self.marketplace = auth(await make_key("marketplace", channel=self.market))
        self.dropshipper = auth(await make_key("dropshipper", location=self.partner))
        return self

    async def stock(self, client, location: str, **levels: int) -> None:
        await put_levels(client, self.admin, location, **levels)


async def create_cart(client, headers, *, expect: int = 201, **body) -> dict:
    r = await client.post("/v1/carts", json=body, headers=headers)
    assert r.status_code == expect, r.text
    return r.json()


async def checkout(client, headers, cart_id: str, provider: str = "none", expect: int = 201, **payment) -> dict:
    r = await client.post(f"/v1/carts/{cart_id}/checkout", json={"payment": {"provider": provider, **payment}},
                          headers=headers)
    assert r.status_code == expect, r.text
    return r.json()


def lines(*pairs) -> list[dict]:
    """lines((sku, qty), …) -> [{sku, quantity}]"""
    return [{"sku": s, "quantity": q} for s, q in pairs]


def ship_to(address: dict = HAMBURG) -> dict:
    return {"method": "ship", "address": address}


def pickup_at(location: str, method: str = "pickup") -> dict:
    return {"method": method, "location": location}


__all__ = ["Shop", "HAMBURG", "MUNICH", "create_cart", "checkout", "lines", "ship_to", "pickup_at", "sku", "uid"]
