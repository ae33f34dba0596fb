"""Builders for catalog tests (unique SKUs, valid GTINs, products through the API)."""
import secrets

from app.catalog.codes import make_gtin
from tests.conftest import auth, make_key, uid
from tests.helpers import create_channel, create_location


def sku(prefix: str = "SKU") -> str:
    return f"{prefix}-{secrets.token_hex(4).upper()}"


def gtin() -> str:
    """A random valid EAN-13 in the restricted-circulation range 20-29 (never used by the demo seed)."""
    return make_gtin("2" + "".join(str(secrets.randbelow(10)) for _ in range(11)))


def handle(prefix: str = "p") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def product_body(**kw) -> dict:
    body = {
        "title": kw.pop("title", f"Test product {secrets.token_hex(2)}"),
        "handle": kw.pop("handle", handle()),
        "status": kw.pop("status", "active"),
        "variants": kw.pop("variants", None) or [{"sku": sku(), "gtin": gtin(), "options": {"size": "M"}}],
    }
    body.update(kw)
    return body


async def create_product(client, admin, **kw) -> dict:
    r = await client.post("/v1/products", json=product_body(**kw), headers=admin)
    assert r.status_code == 201, r.text
    return r.json()


class Keys:
    """A web channel + its storefront key, a marketplace channel + key, a pos channel + store + pos key."""

    async def setup(self, client, admin):
        self.web = (await create_channel(client, admin, "web"))["code"]
        self.web2 = (await create_channel(client, admin, "web"))["code"]
        self.market = (await create_channel(client, admin, "marketplace"))["code"]
        self.pos_channel = (await create_channel(client, admin, "pos"))["code"]
        self.store = (await create_location(client, admin, "store"))["code"]
        self.partner = (await create_location(client, admin, "partner"))["code"]
        self.storefront = auth(await make_key("storefront", channel=self.web))
        self.storefront2 = auth(await make_key("storefront", channel=self.web2))
        self.marketplace = auth(await make_key("marketplace", channel=self.market))
        self.pos_bound = auth(await make_key("pos", channel=self.pos_channel, location=self.store))
        self.dropshipper = auth(await make_key("dropshipper", location=self.partner))
        return self


__all__ = ["sku", "gtin", "handle", "product_body", "create_product", "Keys", "uid"]
