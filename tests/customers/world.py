"""A retailer with customers: the shop of tests/returns/world.py (a warehouse, two stores, a web
shop, a POS channel, keys of every role), and helpers to register customers and to let them buy
in the web shop and at a till."""
import secrets

from sqlalchemy import select

from app.core.db import sessionmaker
from app.customers.models import AuditEntry
from app.events.models import Event
from app.customers.schemas import CustomerOut
from tests.conftest import uid
from tests.returns.world import SHIP, Shop


def email(prefix: str = "kunde") -> str:
    return f"{uid(prefix)}@example.com"


def card() -> str:
    return uid("lc").upper()


def person(tag: str | None = None) -> dict:
    """A customer body whose every personal value is unique (so a scan can look for it)."""
    tag = tag or secrets.token_hex(4)
    return {"email": f"p.{tag}@example.com", "name": f"Person {tag.title()}", "phone": f"+49 40 {int(tag, 16)}",
            "loyalty_card": f"LC-{tag.upper()}",
            "addresses": [{"name": f"Person {tag.title()}", "line1": f"Gasse {tag} 7", "postal_code": "20095",
                           "city": "Hamburg", "country": "DE", "lat": 53.55, "lon": 9.99}]}


async def register(client, headers, **body) -> dict:
    body.setdefault("email", email())
    r = await client.post("/v1/customers", json=body, headers=headers)
    assert r.status_code == 201, r.text
    CustomerOut.model_validate(r.json())
    return r.json()


class Store(Shop):
    async def web_order(self, client, customer: str | None, lines: dict[str, int], *, address: dict | None = None,
                        payment: dict | None = None, ship: bool = True, shop: dict | None = None,
                        channel: str | None = None) -> dict:
        """A cart in the web shop for `customer` (id, email or card), checked out (and shipped)."""
        shop = shop or self.shop
        body = {"channel": channel or self.web, "lines": [{"sku": s, "quantity": q} for s, q in lines.items()],
                "fulfillment": {"method": "ship", "address": address or {"line1": "Hafenstraße 1", "postal_code": "20459",
                                                                         "city": "Hamburg", "country": "DE"}}}
        if customer is not None:
            body["customer"] = customer
        r = await client.post("/v1/carts", headers=shop, json=body)
        assert r.status_code == 201, r.text
        r = await client.post(f"/v1/carts/{r.json()['id']}/checkout", headers=shop,
                              json={"payment": payment or {"provider": "none"}})
        assert r.status_code == 201, r.text
        order = r.json()
        if ship:
            for f in order["fulfillments"]:
                r = await client.post(f"/v1/fulfillments/{f['id']}/ship", headers=self.admin, json=SHIP)
                assert r.status_code == 200, r.text
        return await self.order(client, order["id"])

    async def pos_sale(self, client, customer: str | None, lines: dict[str, int], *, pos: dict | None = None,
                       payment: dict | None = None, expect: int = 201) -> dict:
        body: dict = {"lines": [{"sku": s, "quantity": q} for s, q in lines.items()]}
        if customer is not None:
            body["customer"] = customer
        if payment is not None:
            body["payment"] = payment
        r = await client.post("/v1/orders", headers=pos or self.pos_hh, json=body)
        assert r.status_code == expect, r.text
        return r.json()

    @classmethod
    async def stocked(cls, client, admin, *locations: str, units: int = 1000) -> "Store":
        """A store world with `units` of both its SKUs at each of `locations` (default: wh and hh)."""
        store = await cls().setup(client, admin)
        for loc in [getattr(store, name) for name in (locations or ("wh", "hh"))]:
            await store.stock(client, loc, **{store.a: units, store.b: units})
        return store


async def customer_events(customer_id: str, prefix: str = "customer.") -> list[Event]:
    async with sessionmaker()() as session:
        rows = (await session.execute(select(Event).where(Event.type.like(prefix + "%")).order_by(Event.id))).scalars()
        return [e for e in rows if e.data.get("id") == customer_id]


async def audit_rows(customer_id: str) -> list[AuditEntry]:
    async with sessionmaker()() as session:
        return list((await session.execute(select(AuditEntry).where(AuditEntry.customer_id == customer_id)
                                           .order_by(AuditEntry.id))).scalars())
