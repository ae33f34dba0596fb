"""Bundles: one variant with components; every validation rule."""
from tests.catalog.builders import create_product, gtin, handle, sku
from tests.helpers import assert_problem


async def _components(client, admin):
    a = await create_product(client, admin, variants=[{"sku": sku("WINE"), "gtin": gtin()}])
    b = await create_product(client, admin, variants=[{"sku": sku("CHEESE")}])
    return a["variants"][0]["sku"], b["variants"][0]["sku"]


def _bundle(bsku: str, components: list, **kw) -> dict:
    body = {"title": "Gift box", "handle": handle("box"), "type": "bundle", "status": "active",
            "variants": [{"sku": bsku, "components": components}]}
    body.update(kw)
    return body


async def test_bundle_create_and_read(client, admin):
    wine, cheese = await _components(client, admin)
    bsku = sku("BOX")
    r = await client.post("/v1/products", json=_bundle(bsku, [{"sku": wine, "quantity": 2}, {"sku": cheese}]), headers=admin)
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["type"] == "bundle" and len(p["variants"]) == 1
    v = p["variants"][0]
    assert v["track_inventory"] is True
    assert sorted(v["components"], key=lambda c: c["sku"]) == sorted(
        [{"sku": wine, "quantity": 2}, {"sku": cheese, "quantity": 1}], key=lambda c: c["sku"])
    assert (await client.get(f"/v1/products/{p['id']}", headers=admin)).json() == p
    scan = (await client.get(f"/v1/variants?sku={bsku}", headers=admin)).json()
    assert scan["type"] == "bundle" and scan["components"] == v["components"]
    # standard variants carry no components key
    assert "components" not in (await client.get(f"/v1/variants?sku={wine}", headers=admin)).json()
    # components can be replaced; same set again is a no-op
    r = await client.patch(f"/v1/variants/{bsku}", json={"components": [{"sku": wine, "quantity": 3}]},
                           headers=admin | {"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.json()["components"] == [{"sku": wine, "quantity": 3}] and r.json()["version"] == 2
    r = await client.patch(f"/v1/variants/{bsku}", json={"components": [{"sku": wine, "quantity": 3}]}, headers=admin)
    assert r.json()["version"] == 2
    # a component used by a bundle cannot be deleted; a bundle gets no second variant
    body = assert_problem(await client.delete(f"/v1/variants/{wine}", headers=admin), 409, "variant_in_bundle")
    assert bsku in body["detail"]
    assert_problem(await client.post(f"/v1/products/{p['id']}/variants", json={"sku": sku()}, headers=admin),
                   422, "validation_error")
    assert_problem(await client.patch(f"/v1/variants/{bsku}", json={"track_inventory": False}, headers=admin),
                   422, "validation_error")
    for bad in ([], [{"sku": bsku}], [{"sku": wine}, {"sku": wine}]):
        assert_problem(await client.patch(f"/v1/variants/{bsku}", json={"components": bad}, headers=admin),
                       422, "validation_error")
    # an unknown component answers like every unknown SKU
    body = assert_problem(await client.patch(f"/v1/variants/{bsku}", json={"components": [{"sku": "NOPE-404"}]},
                                             headers=admin), 422, "unknown_sku")
    assert body["errors"] == [{"field": "components[0].sku", "message": "Unknown SKU 'NOPE-404'."}]


async def test_bundle_validation(client, admin):
    wine, cheese = await _components(client, admin)
    existing_bundle = sku("BOX")
    r = await client.post("/v1/products", json=_bundle(existing_bundle, [{"sku": wine}]), headers=admin)
    assert r.status_code == 201
    unknown = "UNKNOWN-" + sku()
    r = await client.post("/v1/products", json=_bundle(sku("BOX"), [{"sku": wine}, {"sku": unknown}]), headers=admin)
    assert assert_problem(r, 422, "unknown_sku")["errors"] == [
        {"field": "variants[0].components[1].sku", "message": f"Unknown SKU {unknown!r}."}]
    cases = [
        # (components or full body, field that must be named)
        ([{"sku": wine}, {"sku": existing_bundle}], "variants[0].components[1].sku"),
        ([{"sku": wine, "quantity": 0}], "variants[0].components[0].quantity"),
        ([{"sku": wine, "quantity": 1001}], "variants[0].components[0].quantity"),
        ([{"sku": wine, "quantity": -1}], "variants[0].components[0].quantity"),
        ([{"sku": wine, "quantity": "two"}], "variants[0].components[0].quantity"),
        ([{"sku": wine}, {"sku": wine}], "variants[0].components[1].sku"),
        ([], "variants[0].components"),
        (None, "variants[0].components"),
        ([{"sku": wine, "qty": 1}], "variants[0].components[0].qty"),
    ]
    for comps, field in cases:
        bsku = sku("BOX")
        r = await client.post("/v1/products", json=_bundle(bsku, comps), headers=admin)
        body = assert_problem(r, 422, "validation_error")
        assert field in {e["field"] for e in body["errors"]}, (comps, body)
        assert_problem(await client.get(f"/v1/variants?sku={bsku}", headers=admin), 404)
    # itself
    bsku = sku("BOX")
    body = assert_problem(await client.post("/v1/products", json=_bundle(bsku, [{"sku": bsku}]), headers=admin), 422)
    assert body["errors"][0]["field"] == "variants[0].components[0].sku"
    # exactly one variant
    body = _bundle(sku("BOX"), [{"sku": wine}])
    body["variants"].append({"sku": sku("BOX"), "components": [{"sku": cheese}]})
    r = await client.post("/v1/products", json=body, headers=admin)
    assert "variants" in {e["field"] for e in assert_problem(r, 422, "validation_error")["errors"]}
    # bundles stay tracked; standard products have no components
    body = _bundle(sku("BOX"), [{"sku": wine}])
    body["variants"][0]["track_inventory"] = False
    assert_problem(await client.post("/v1/products", json=body, headers=admin), 422, "validation_error")
    r = await client.post("/v1/products", json={"title": "Std", "variants": [{"sku": sku(), "components": [{"sku": wine}]}]},
                          headers=admin)
    body = assert_problem(r, 422, "validation_error")
    assert body["errors"][0]["field"] == "variants[0].components"
