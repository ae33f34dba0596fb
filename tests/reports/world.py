"""A small retailer whose sales the report tests compute by hand, built through the real API.

Every order is placed with the one clock moved to a moment of its own far in the future (a random
day between 2041 and 2095, `T0`), so a report over [T0, T0 + 3 days) sees this world's orders and
nobody else's.

Locations: a warehouse `wh` and two stores `hh`, `be`. Channels (EUR unless said): `web` (ships
from wh and hh), `pos` (the stores' tills), `market` (a marketplace shipping from wh) and `webch`
(CHF, ships from wh). Products: wine W (1000; CHF 1100), cheese C (500), bread B (334). Stock: wh
W 10 and B 4; hh C 10 and B 3; be W 5 — so a web order of wine and cheese splits over wh and hh.
A coupon takes 10 % off a web basket. Customers (registered in web): ana (loyalty card), ben, cleo.
"""
import random
from datetime import UTC, datetime, timedelta

from app.core import clock
from tests.catalog.builders import create_product, sku
from tests.conftest import auth, make_key, uid
from tests.helpers import create_channel, create_location
from tests.inventory.builders import put_levels

ADDRESS = {"name": "Kim", "line1": "Jungfernstieg 1", "postal_code": "20095", "city": "Hamburg", "country": "DE",
           "lat": 53.553, "lon": 9.992}
SHIP = {"carrier": "DHL", "tracking_number": "00340434161094042557"}


def far_day() -> datetime:
    """Midnight UTC of a random day far ahead: a time window no other test writes orders in."""
    return datetime(2041, 1, 1, tzinfo=UTC) + timedelta(days=random.randrange(0, 365 * 54))


def at(t0: datetime, day: int, hour: int, minute: int = 0) -> datetime:
    """Move the clock to t0 + day days + hour:minute (returns that moment)."""
    moment = t0 + timedelta(days=day, hours=hour, minutes=minute)
    clock.set_offset(moment - datetime.now(UTC))
    return moment


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


async def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json() if response.status_code != 204 else {}


class Retailer:
    async def setup(self, client, admin):
        self.admin = admin
        country = "".join(random.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(2))
        r = await client.post("/v1/tax-rates", headers=admin, json={"country": country, "tax_class": "standard",
                                                                     "rate_bp": 1900})
        assert r.status_code in (200, 201), r.text
        self.wh = (await create_location(client, admin, "warehouse", lat=52.0, lon=10.0))["code"]
        self.hh = (await create_location(client, admin, "store", lat=53.55, lon=9.99))["code"]
        self.be = (await create_location(client, admin, "store", lat=52.52, lon=13.40))["code"]
        self.partner = (await create_location(client, admin, "partner"))["code"]
        kw = {"country": country}
        self.web = (await create_channel(client, admin, "web", fulfillment_locations=[self.wh, self.hh], **kw))["code"]
        self.pos = (await create_channel(client, admin, "pos", fulfillment_locations=[self.hh, self.be], **kw))["code"]
        self.market = (await create_channel(client, admin, "marketplace", fulfillment_locations=[self.wh], **kw))["code"]
        self.webch = (await create_channel(client, admin, "web", currency="CHF", fulfillment_locations=[self.wh],
                                           **kw))["code"]
        euro = [self.web, self.pos, self.market]
        self.w, self.c, self.b = sku("WINE"), sku("CHEESE"), sku("BREAD")
        for s, category in ((self.w, "wine"), (self.c, "cheese"), (self.b, "bakery")):
            await create_product(client, admin, channels=euro + [self.webch], category=category,
                                 variants=[{"sku": s}])
        self.eur, self.chf = uid("eur"), uid("chf")
        await ok(await client.post("/v1/price-lists", headers=admin, json={"code": self.eur, "currency": "EUR",
                                                                           "channels": euro}), 201)
        await ok(await client.put(f"/v1/price-lists/{self.eur}/prices", headers=admin, json=[
            {"sku": self.w, "amount": 1000}, {"sku": self.c, "amount": 500}, {"sku": self.b, "amount": 334}]))
        await ok(await client.post("/v1/price-lists", headers=admin, json={"code": self.chf, "currency": "CHF",
                                                                           "channels": [self.webch]}), 201)
        await ok(await client.put(f"/v1/price-lists/{self.chf}/prices", headers=admin,
                                  json=[{"sku": self.w, "amount": 1100}]))
        self.coupon = uid("SAVE").upper()
        await ok(await client.post("/v1/promotions", headers=admin, json={
            "code": uid("promo"), "name": "Ten off", "type": "percent_off", "params": {"percent_bp": 1000},
            "channels": [self.web], "coupon_code": self.coupon}), 201)
        await put_levels(client, admin, self.wh, **{self.w: 10, self.b: 4})
        await put_levels(client, admin, self.hh, **{self.c: 10, self.b: 3})
        await put_levels(client, admin, self.be, **{self.w: 5})
        self.card = uid("ANA").upper()
        self.ana = await self.customer(client, "ana", loyalty_card=self.card)
        self.ben = await self.customer(client, "ben")
        self.cleo = await self.customer(client, "cleo")
        self.shop = auth(await make_key("storefront", channel=self.web))
        self.shop_ch = auth(await make_key("storefront", channel=self.webch))
        self.pos_hh = auth(await make_key("pos", channel=self.pos, location=self.hh))
        self.pos_be = auth(await make_key("pos", channel=self.pos, location=self.be))
        self.marketplace = auth(await make_key("marketplace", channel=self.market))
        self.dropshipper = auth(await make_key("dropshipper", location=self.partner))
        return self

    async def customer(self, client, name: str, **kw) -> dict:
        return await ok(await client.post("/v1/customers", headers=self.admin, json={
            "email": f"{uid(name)}@example.com", "name": name.title(), "channel": self.web, **kw}), 201)

    async def cart(self, client, lines: dict[str, int], *, shop: dict | None = None, **body) -> dict:
        body.setdefault("fulfillment", {"method": "ship", "address": ADDRESS})
        return await ok(await client.post("/v1/carts", headers=shop or self.shop, json={
            "lines": [{"sku": s, "quantity": q} for s, q in lines.items()], **body}), 201)

    async def checkout(self, client, cart: dict, *, shop: dict | None = None) -> dict:
        return await ok(await client.post(f"/v1/carts/{cart['id']}/checkout", headers=shop or self.shop,
                                          json={"payment": {"provider": "none"}}), 201)

    async def web_order(self, client, lines: dict[str, int], *, shop: dict | None = None, **body) -> dict:
        return await self.checkout(client, await self.cart(client, lines, shop=shop, **body), shop=shop)

    async def sale(self, client, key: dict, items: dict[str, int], **body) -> dict:
        """POST /v1/orders: a POS key's sale at its till, or a marketplace key's import (`lines` in `body`
        replaces `items`, e.g. with the marketplace's own unit prices)."""
        return await ok(await client.post("/v1/orders", headers=key, json={
            "lines": [{"sku": s, "quantity": q} for s, q in items.items()], **body}), 201)

    async def ship_all(self, client, order: dict) -> None:
        for f in order["fulfillments"]:
            await ok(await client.post(f"/v1/fulfillments/{f['id']}/ship", headers=self.admin, json=SHIP))


class Sales(Retailer):
    """The orders of the sales, customer and attribution tests (figures in tests/reports/test_sales.py)."""

    async def place(self, client):
        t0 = self.t0 = far_day()
        try:
            at(t0, 0, 8)  # ben looks at cheese after clicking an ad, and leaves: a cart with a source
            await self.cart(client, {self.c: 1}, customer=self.ben["id"], source="google")
            at(t0, 0, 9)  # o1: ana from the newsletter, wine from wh and cheese from hh
            self.o1 = await self.web_order(client, {self.w: 2, self.c: 1}, customer=self.ana["email"],
                                           source=" Newsletter ", campaign="Spring")
            at(t0, 0, 10)  # o2: anonymous, with the coupon: 1000 - 100
            self.o2 = await self.web_order(client, {self.w: 1}, coupon_codes=[self.coupon])
            at(t0, 0, 11)  # o3: ana at the Hamburg till, her loyalty card: credited to the newsletter
            self.o3 = await self.sale(client, self.pos_hh, {self.c: 2, self.b: 1}, customer=self.card)
            at(t0, 1, 9)  # o4: a marketplace import at its own prices, 3 × 300
            self.o4 = await self.sale(client, self.marketplace, {self.b: 3}, external_id=uid("AMZ"),
                                      fulfillment={"method": "ship", "address": ADDRESS},
                                      lines=[{"sku": self.b, "quantity": 3, "unit_price": 300}])
            at(t0, 1, 10)  # o5: cancelled: not a sale
            self.o5 = await self.web_order(client, {self.w: 1})
            await ok(await client.post(f"/v1/orders/{self.o5['id']}/cancel", headers=self.admin, json={}))
            at(t0, 1, 11)  # o6: ben at the Berlin till: credited to the ad he clicked yesterday (his cart)
            self.o6 = await self.sale(client, self.pos_be, {self.w: 1}, customer=self.ben["email"])
            at(t0, 1, 12)  # o7: bread × 3 with the coupon (1002 - 100 = 902), 1 from wh and 2 from hh
            self.o7 = await self.web_order(client, {self.b: 3}, coupon_codes=[self.coupon])
            at(t0, 1, 13)  # o9: wine (wh) and cheese (hh); the cheese is cancelled, the wine still comes
            self.o9 = await self.web_order(client, {self.w: 1, self.c: 1})
            cheese = next(f for f in self.o9["fulfillments"] if f["location"] == self.hh)
            await ok(await client.post(f"/v1/fulfillments/{cheese['id']}/cancel", headers=self.admin, json={}))
            at(t0, 1, 14)  # o10: the Swiss shop, in CHF
            self.o10 = await self.web_order(client, {self.w: 1}, shop=self.shop_ch)
            at(t0, 2, 9)  # o1 shipped, its cheese comes back at the Hamburg till
            await self.ship_all(client, self.o1)
            cheese_line = next(ln for ln in self.o1["lines"] if ln["sku"] == self.c)
            self.ret = await ok(await client.post("/v1/returns", headers=self.pos_hh, json={
                "order": self.o1["number"], "refund_method": "cash",
                "lines": [{"order_line_id": cheese_line["id"], "quantity": 1, "condition": "resellable"}]}), 201)
            at(t0, 2, 10)  # o8: cleo from instagram, picks cheese up in Hamburg
            self.o8 = await self.web_order(client, {self.c: 1}, customer=self.cleo["id"], source="instagram",
                                           fulfillment={"method": "pickup", "location": self.hh})
        finally:
            clock.reset()
        return self
