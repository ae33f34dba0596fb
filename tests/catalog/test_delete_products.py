"""DELETE /v1/products/{ref}: gone when nothing refers to it, archived (200) when something does;
DELETE /v1/variants/{ref} refuses a referenced variant. Every change is seen at once by product
pages and quotes (the caches drop with the commit)."""
from sqlalchemy import select

from app.catalog.models import BundleComponent, Product, ProductChannel, Variant
from app.catalog.schemas import ProductArchivedOut
from app.core.db import sessionmaker
from app.events.models import Event
from tests.catalog.builders import create_product, handle, sku
from tests.conftest import auth, make_key, uid
from tests.helpers import assert_problem, count_rows, create_channel, create_location
from tests.inventory.builders import put_levels
from tests.orders.builders import Shop, create_cart, lines, ship_to


async def _events(product_id: str) -> list[Event]:
    async with sessionmaker()() as s:
        rows = (await s.execute(select(Event).where(Event.type.like("product.%")).order_by(Event.id))).scalars().all()
    return [e for e in rows if e.data.get("id") == product_id]


async def test_unreferenced_product_is_deleted(client, admin):
    web = (await create_channel(client, admin, "web"))["code"]
    front = auth(await make_key("storefront", channel=web))
    p = await create_product(client, admin, channels=[web],
                             variants=[{"sku": sku("DEL")}, {"sku": sku("DEL"), "options": {"size": "L"}}])
    url = f"/v1/products/{p['id']}"
    # read through the storefront's response cache first: the delete must reach it at once
    for _ in range(2):
        assert (await client.get(url, headers=front)).status_code == 200
    assert (await client.get("/v1/variants", params={"sku": p["variants"][0]["sku"]}, headers=front)).status_code == 200
    assert_problem(await client.delete(url, headers=admin | {"If-Match": '"7"'}), 412, "version_conflict")
    assert_problem(await client.delete(url, headers=front), 403, "forbidden")
    r = await client.delete(url, headers=admin | {"If-Match": '"1"'})
    assert r.status_code == 204 and r.content == b""
    for key in (front, admin):
        assert_problem(await client.get(url, headers=key), 404, "not_found")
        assert_problem(await client.get(f"/v1/products/{p['handle']}", headers=key), 404, "not_found")
        for v in p["variants"]:
            assert_problem(await client.get("/v1/variants", params={"sku": v["sku"]}, headers=key), 404, "not_found")
    assert p["id"] not in [x["id"] for x in (await client.get("/v1/products", params={"q": p["variants"][0]["sku"]},
                                                               headers=admin)).json()["data"]]
    assert (await count_rows(Product, id=p["id"]), await count_rows(Variant, product_id=p["id"]),
            await count_rows(ProductChannel, product_id=p["id"])) == (0, 0, 0)
    events = await _events(p["id"])
    assert [e.type for e in events] == ["product.created", "product.updated"]
    assert events[-1].data["deleted"] is True and events[-1].data["handle"] == p["handle"]
    # gone: a second DELETE is a 404; the SKUs and the handle are free again
    assert_problem(await client.delete(url, headers=admin), 404, "not_found")
    again = await create_product(client, admin, handle=p["handle"], variants=[{"sku": p["variants"][0]["sku"]}])
    assert again["id"] != p["id"]


async def test_unreferenced_bundle_is_deleted_with_its_components_rows(client, admin):
    part = await create_product(client, admin)
    box = await create_product(client, admin, type="bundle",
                               variants=[{"sku": sku("BOX"), "components": [{"sku": part["variants"][0]["sku"]}]}])
    assert (await client.delete(f"/v1/products/{box['handle']}", headers=admin)).status_code == 204
    assert await count_rows(BundleComponent, bundle_variant_id=box["variants"][0]["id"]) == 0
    # its component is free now: nothing refers to it any more
    assert (await client.delete(f"/v1/products/{part['id']}", headers=admin)).status_code == 204


async def _archived(client, admin, ref: str, *, version: int, what: set[str]) -> dict:
    r = await client.delete(f"/v1/products/{ref}", headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    ProductArchivedOut.model_validate(body)  # the documented shape is the real one
    assert body["status"] == "archived" and body["deleted"] is False and body["version"] == version
    assert r.headers["etag"] == f'"{version}"'
    assert set(body["referenced_by"]) == what, body["referenced_by"]
    return body


async def test_referenced_product_is_archived_and_no_longer_sold(client, admin):
    shop = await Shop().setup(client, admin)
    priced = await create_product(client, admin, channels=[shop.web], variants=[{"sku": sku("PR")}])
    s = priced["variants"][0]["sku"]
    r = await client.put(f"/v1/price-lists/{shop.retail}/prices", json=[{"sku": s, "amount": 1234}], headers=admin)
    assert r.status_code == 200, r.text
    # the storefront sees it priced and can quote it; both answers are cached
    page = f"/v1/products/{priced['id']}"
    for _ in range(2):
        r = await client.get(page, headers=shop.storefront)
        assert r.status_code == 200 and r.json()["variants"][0]["price"]["amount"] == 1234
        r = await client.post("/v1/pricing/quote", json={"lines": lines((s, 1))}, headers=shop.storefront)
        assert r.status_code == 200 and r.json()["total"] == 1234
    body = await _archived(client, admin, priced["id"], version=2, what={"prices"})
    assert body["referenced_by"] == {"prices": [s]} and body["variants"][0]["sku"] == s
    # at once: the storefront no longer sees it, a quote answers unknown_sku naming the line
    assert_problem(await client.get(page, headers=shop.storefront), 404, "not_found")
    r = await client.post("/v1/pricing/quote", json={"lines": lines((shop.a, 1), (s, 1))}, headers=shop.storefront)
    assert assert_problem(r, 422, "unknown_sku")["errors"][0]["field"] == "lines[1].sku"
    # admin still reads it (history); a second DELETE changes nothing; event: product.updated, archived
    assert (await client.get(page, headers=admin)).json()["status"] == "archived"
    await _archived(client, admin, priced["id"], version=2, what={"prices"})
    events = await _events(priced["id"])
    assert [e.type for e in events] == ["product.created", "product.updated"]
    assert events[-1].data["status"] == "archived" and "deleted" not in events[-1].data
    # once nothing refers to it any more, DELETE removes it
    r = await client.put(f"/v1/price-lists/{shop.retail}/prices", json=[{"sku": s, "amount": None}], headers=admin)
    assert r.status_code == 200, r.text
    assert (await client.delete(page, headers=admin)).status_code == 204


async def test_every_kind_of_reference_archives(client, admin):
    shop = await Shop().setup(client, admin)

    async def fresh(**kw) -> tuple[dict, str]:
        p = await create_product(client, admin, channels=[shop.web, shop.market], **kw)
        return p, p["variants"][0]["sku"]

    # stock: a level (and its count movement)
    p, s = await fresh()
    await put_levels(client, admin, shop.wh, **{s: 3})
    await _archived(client, admin, p["id"], version=2, what={"stock"})
    # a bundle containing it
    p, s = await fresh()
    await create_product(client, admin, type="bundle", variants=[{"sku": sku("BOX"), "components": [{"sku": s}]}])
    await _archived(client, admin, p["handle"], version=2, what={"bundles"})
    # a promotion naming it
    p, s = await fresh()
    r = await client.post("/v1/promotions", headers=admin, json={
        "code": uid("promo"), "name": "x", "type": "percent_off", "params": {"percent_bp": 500}, "skus": [s]})
    assert r.status_code == 201, r.text
    await _archived(client, admin, p["id"], version=2, what={"promotions"})
    # an open cart (its price removed since: only the cart refers to it)
    p, s = await fresh()
    r = await client.put(f"/v1/price-lists/{shop.retail}/prices", json=[{"sku": s, "amount": 500}], headers=admin)
    assert r.status_code == 200
    cart = await create_cart(client, shop.storefront, lines=lines((s, 1)), fulfillment=ship_to())
    r = await client.put(f"/v1/price-lists/{shop.retail}/prices", json=[{"sku": s, "amount": None}], headers=admin)
    assert r.status_code == 200
    await _archived(client, admin, p["id"], version=2, what={"carts"})
    r = await client.get(f"/v1/carts/{cart['id']}", headers=shop.storefront)  # the cart says why it has no price
    assert r.status_code == 200 and r.json()["pricing_error"]["code"] == "unknown_sku"
    # an order line: a marketplace import with its own price of an untracked product (no stock, no price)
    p, s = await fresh(variants=[{"sku": sku("SVC"), "track_inventory": False}])
    r = await client.post("/v1/orders", headers=shop.marketplace, json={
        "external_id": uid("ext"), "lines": [{"sku": s, "quantity": 1, "unit_price": 990}], "fulfillment": ship_to()})
    assert r.status_code == 201, r.text
    body = await _archived(client, admin, p["id"], version=2, what={"orders"})
    assert body["referenced_by"] == {"orders": [s]}
    # several at once are all named
    p, s = await fresh()
    await put_levels(client, admin, shop.hh, **{s: 1})
    r = await client.put(f"/v1/price-lists/{shop.retail}/prices", json=[{"sku": s, "amount": 700}], headers=admin)
    assert r.status_code == 200
    await _archived(client, admin, p["id"], version=2, what={"stock", "prices"})
    # its price removed, the stock still refers to it: still archived, nothing changes
    r = await client.put(f"/v1/price-lists/{shop.retail}/prices", json=[{"sku": s, "amount": None}], headers=admin)
    assert r.status_code == 200
    await _archived(client, admin, p["id"], version=2, what={"stock"})


async def test_referenced_variant_is_not_deleted(client, admin):
    loc = (await create_location(client, admin, "warehouse"))["code"]
    keep, used, free = sku("K"), sku("U"), sku("F")
    p = await create_product(client, admin, handle=handle(),
                             variants=[{"sku": keep}, {"sku": used, "options": {"size": "L"}},
                                       {"sku": free, "options": {"size": "S"}}])
    await put_levels(client, admin, loc, **{used: 2})
    body = assert_problem(await client.delete(f"/v1/variants/{used}", headers=admin), 409, "variant_in_use")
    assert body["referenced_by"] == {"stock": [used]} and "archive" in body["detail"]
    assert [e["field"] for e in body["errors"]] == ["sku"]
    assert (await client.get(f"/v1/products/{p['id']}", headers=admin)).json()["version"] == 1
    assert (await client.delete(f"/v1/variants/{free}", headers=admin)).status_code == 204
    prod = (await client.get(f"/v1/products/{p['id']}", headers=admin)).json()
    assert [v["sku"] for v in prod["variants"]] == [keep, used] and prod["version"] == 2


async def test_delete_unknown_product(client, admin):
    assert_problem(await client.delete("/v1/products/prod_nope", headers=admin), 404, "not_found")
    assert_problem(await client.delete("/v1/products/no-such-handle", headers=admin), 404, "not_found")
    assert_problem(await client.delete("/v1/products/" + "x" * 300, headers=admin), 404, "not_found")
