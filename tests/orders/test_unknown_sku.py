"""An unknown SKU answers the same everywhere a body names one (catalog, pricing, carts, orders):
422 `unknown_sku`, one `errors[]` entry per unknown SKU with the body's own path and a message
naming it. A lookup of one variant by its SKU in the path or query is a 404 (not found), like
every lookup of one resource by its key."""
from tests.catalog.builders import create_product, sku
from tests.helpers import assert_problem
from tests.orders.builders import Shop, create_cart, lines, ship_to
from tests.conftest import uid


def _unknown(r, *fields: str) -> dict:
    body = assert_problem(r, 422, "unknown_sku")
    assert [e["field"] for e in body["errors"]] == list(fields), body
    assert all("NOPE" in e["message"] and "Unknown SKU" in e["message"] for e in body["errors"]), body
    return body


async def test_unknown_sku_everywhere(client, admin):
    s = await Shop().setup(client, admin)
    await s.stock(client, s.hh, **{s.a: 5})
    nope, nope2 = "NOPE-" + sku(), "NOPE-" + sku()
    # catalog: bundle components
    r = await client.post("/v1/products", headers=admin, json={"title": "Box", "type": "bundle", "variants": [
        {"sku": sku("BOX"), "components": [{"sku": s.a}, {"sku": nope}]}]})
    _unknown(r, "variants[0].components[1].sku")
    r = await client.patch(f"/v1/variants/{s.box}", json={"components": [{"sku": nope}, {"sku": s.a}]}, headers=admin)
    _unknown(r, "components[0].sku")
    # pricing: prices, promotions (create and change), quotes
    r = await client.put(f"/v1/price-lists/{s.retail}/prices", headers=admin,
                         json=[{"sku": s.a, "amount": 1000}, {"sku": nope, "amount": 1}, {"sku": nope2, "amount": 2}])
    _unknown(r, "[1].sku", "[2].sku")
    promo = {"code": uid("p"), "name": "x", "type": "percent_off", "params": {"percent_bp": 100}}
    _unknown(await client.post("/v1/promotions", json={**promo, "skus": [nope]}, headers=admin), "skus[0]")
    r = await client.post("/v1/promotions", headers=admin, json={
        **promo, "type": "bundle_price", "params": {"items": [{"sku": s.a, "quantity": 1}, {"sku": nope, "quantity": 1}],
                                                    "amount": 100}})
    _unknown(r, "params.items[1].sku")
    r = await client.post("/v1/promotions", json={**promo, "skus": [s.a]}, headers=admin)
    assert r.status_code == 201, r.text
    _unknown(await client.patch(f"/v1/promotions/{promo['code']}", json={"skus": [s.a, nope]}, headers=admin), "skus[1]")
    r = await client.post("/v1/pricing/quote", json={"lines": lines((s.a, 1), (nope, 1))}, headers=s.storefront)
    _unknown(r, "lines[1].sku")
    # carts: create and change
    r = await client.post("/v1/carts", json={"lines": lines((nope, 1), (s.a, 1), (nope2, 1))}, headers=s.storefront)
    _unknown(r, "lines[0].sku", "lines[2].sku")
    cart = await create_cart(client, s.storefront, lines=lines((s.a, 1)), fulfillment=ship_to())
    r = await client.patch(f"/v1/carts/{cart['id']}", json={"lines": lines((s.a, 1), (nope, 2))}, headers=s.storefront)
    _unknown(r, "lines[1].sku")
    # orders: a POS sale, a marketplace import with its own prices, and one priced by the quote
    _unknown(await client.post("/v1/orders", json={"lines": lines((nope, 1))}, headers=s.pos_hh), "lines[0].sku")
    r = await client.post("/v1/orders", headers=s.marketplace, json={
        "external_id": uid("E"), "fulfillment": ship_to(),
        "lines": [{"sku": s.a, "quantity": 1, "unit_price": 900}, {"sku": nope, "quantity": 1, "unit_price": 900}]})
    _unknown(r, "lines[1].sku")
    r = await client.post("/v1/orders", headers=s.marketplace,
                          json={"external_id": uid("E"), "fulfillment": ship_to(), "lines": lines((nope, 1))})
    _unknown(r, "lines[0].sku")
    # a SKU the channel does not sell (another channel's, or archived) is unknown there too
    other = await create_product(client, admin, channels=[s.web2], variants=[{"sku": sku("OTHER")}])
    r = await client.post("/v1/pricing/quote", json={"lines": lines((other["variants"][0]["sku"], 1))},
                          headers=s.storefront)
    assert_problem(r, 422, "unknown_sku")
    # lookups of one variant by its SKU: 404
    for path in (f"/v1/variants/{nope}", f"/v1/variants?sku={nope}"):
        assert_problem(await client.get(path, headers=admin), 404, "not_found")
    assert_problem(await client.patch(f"/v1/variants/{nope}", json={"title": "x"}, headers=admin), 404, "not_found")
    assert_problem(await client.delete(f"/v1/variants/{nope}", headers=admin), 404, "not_found")
