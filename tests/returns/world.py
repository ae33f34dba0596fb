"""The retailer of tests/orders/fulfillment_world.py (a warehouse that takes no returns, two
stores that do, two dropship partners, a web shop, a ship-from-store app, a POS channel, keys of
every role), with orders that have left: shipped from where sourcing put them, or sold at a till.
"""
from sqlalchemy import select

from app.core.db import sessionmaker
from app.inventory.models import StockMovement
from app.orders.models import OrderLine
from tests.orders.fulfillment_world import NEAR_HAMBURG, World, events  # noqa: F401  (re-exported)

SHIP = {"carrier": "DHL", "tracking_number": "00340434161094042557"}


class Shop(World):
    async def shipped(self, client, lines: dict[str, int], *, coupons: list[str] | None = None,
                      payment: str = "none", shop: dict | None = None, channel: str | None = None,
                      ship_with: dict | None = None) -> dict:
        """An order placed in the shop (its stock must be somewhere it ships from) whose every
        fulfillment has shipped (by admin, or `ship_with` the key that ships). The order as admin sees it."""
        shop = shop or self.shop
        r = await client.post("/v1/carts", headers=shop, json={
            "channel": channel or self.web, "lines": [{"sku": s, "quantity": q} for s, q in lines.items()],
            "coupon_codes": coupons or [], "fulfillment": {"method": "ship", "address": NEAR_HAMBURG}})
        assert r.status_code == 201, r.text
        r = await client.post(f"/v1/carts/{r.json()['id']}/checkout", headers=shop,
                              json={"payment": {"provider": payment}})
        assert r.status_code == 201, r.text
        order = r.json()
        for f in order["fulfillments"]:
            r = await client.post(f"/v1/fulfillments/{f['id']}/ship", headers=ship_with or self.admin, json=SHIP)
            assert r.status_code == 200, r.text
        return await self.order(client, order["id"])

    async def sold_at(self, client, pos: dict, lines: dict[str, int]) -> dict:
        """A sale at a store's till (paid there: external), collected at once."""
        r = await client.post("/v1/orders", headers=pos, json={
            "lines": [{"sku": s, "quantity": q} for s, q in lines.items()]})
        assert r.status_code == 201, r.text
        return await self.order(client, r.json()["id"])


def line_id(order: dict, sku: str) -> str:
    found = [ln["id"] for ln in order["lines"] if ln["sku"] == sku]
    assert len(found) == 1, order["lines"]
    return found[0]


def line(order: dict, sku: str) -> dict:
    return next(ln for ln in order["lines"] if ln["sku"] == sku)


async def post_return(client, headers: dict, order: dict | str, lines: list[dict], *, expect: int = 201,
                      method: str = "cash", **body) -> dict:
    """POST /v1/returns; `order` an order (its number is sent) or an id/number."""
    ref = order["number"] if isinstance(order, dict) else order
    r = await client.post("/v1/returns", headers=headers,
                          json={"order": ref, "lines": lines, "refund_method": method, **body})
    assert r.status_code == expect, r.text
    return r.json()


def ret_line(order: dict, sku: str, quantity: int = 1, condition: str | None = "resellable", **kw) -> dict:
    out = {"order_line_id": line_id(order, sku), "quantity": quantity, **kw}
    if condition is not None:
        out["condition"] = condition
    return out


def money(amount: int, currency: str = "EUR") -> dict:
    return {"amount": amount, "currency": currency}


async def movements(reference: str) -> list[tuple[str, str, int]]:
    """(sku, reason, quantity) of the ledger movements written under `reference`."""
    async with sessionmaker()() as s:
        rows = (await s.execute(select(StockMovement.sku, StockMovement.reason, StockMovement.quantity)
                                .where(StockMovement.reference == reference)
                                .order_by(StockMovement.sku))).all()
    return [tuple(r) for r in rows]


async def quantity_returned(line_ids: list[str]) -> dict[str, int]:
    async with sessionmaker()() as s:
        rows = (await s.execute(select(OrderLine.id, OrderLine.quantity_returned)
                                .where(OrderLine.id.in_(line_ids)))).all()
    return {r.id: r.quantity_returned for r in rows}
