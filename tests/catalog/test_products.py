"""Products and variants: create, read, PATCH with versions, variant management, errors."""
from sqlalchemy import select

from app.catalog.codes import gtin_forms, gtin_problem, make_gtin, slugify
from app.catalog.models import Product, Variant
from app.core.db import sessionmaker
from app.events.models import Event
from tests.catalog.builders import create_product, gtin, handle, product_body, sku
from tests.helpers import assert_problem, count_rows, create_channel


async def _events(product_id: str, type_: str | None = None) -> list[Event]:
    async with sessionmaker()() as s:
        stmt = select(Event).where(Event.type.like("product.%")).order_by(Event.id)
        if type_:
            stmt = stmt.where(Event.type == type_)
        rows = (await s.execute(stmt)).scalars().all()
    return [e for e in rows if e.data.get("id") == product_id]


def test_gtin_helpers():
    assert gtin_problem("4006381333931") is None  # a real EAN-13
    assert gtin_problem("4006381333932") is not None
    assert gtin_problem("96385074") is None  # EAN-8
    assert gtin_problem("036000291452") is None  # UPC-A
    assert gtin_problem("12345") is not None and gtin_problem("40063813339x1") is not None
    assert gtin_problem("٤٠٠٦٣٨١٣٣٣٩٣١") is not None  # non-ASCII digits
    assert "0036000291452" in gtin_forms("036000291452") and "00036000291452" in gtin_forms("036000291452")
    assert "036000291452" in gtin_forms("0036000291452")
    assert make_gtin("400638133393") == "4006381333931"
    assert slugify("Bio-T-Shirt „Größe“ M") == "bio-t-shirt-groesse-m"
    assert slugify("!!!") == "product"


async def test_create_product_with_variants(client, admin):
    web = (await create_channel(client, admin, "web"))["code"]
    s1, s2, g1 = sku("TS"), sku("TS"), gtin()
    body = {
        "title": "Organic Tee", "handle": handle("tee"), "description": "Soft.", "status": "active",
        "category": "fashion/t-shirts", "attributes": {"brand": "Nord", "organic": True, "gsm": 180},
        "tax_class": "standard", "channels": [web],
        "variants": [
            {"sku": s1, "gtin": g1, "options": {"size": "M", "colour": "black"}, "weight_grams": 180},
            {"sku": s2, "title": "Large white", "options": {"size": "L", "colour": "white"}, "attributes": {"fit": "loose"},
             "track_inventory": False},
        ],
    }
    r = await client.post("/v1/products", json=body, headers=admin)
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["id"].startswith("prod_") and p["object"] == "product" and p["type"] == "standard"
    assert p["version"] == 1 and r.headers["etag"] == '"1"'
    assert p["channels"] == [web] and p["category"] == "fashion/t-shirts" and p["attributes"]["gsm"] == 180
    assert p["created_at"].endswith("Z") and p["updated_at"].endswith("Z")
    v1, v2 = p["variants"]
    assert v1["id"].startswith("var_") and v1["sku"] == s1 and v1["gtin"] == g1
    assert v1["title"] == "M / black" and v1["options"] == {"size": "M", "colour": "black"} and v1["weight_grams"] == 180
    assert v1["track_inventory"] is True and "components" not in v1
    assert v2["title"] == "Large white" and v2["gtin"] is None and v2["track_inventory"] is False
    # by id and by handle: the same document
    for ref in (p["id"], body["handle"]):
        g = await client.get(f"/v1/products/{ref}", headers=admin)
        assert g.status_code == 200 and g.json() == p and g.headers["etag"] == '"1"'
    # the event carries the product
    events = await _events(p["id"], "product.created")
    assert len(events) == 1 and events[0].data["variants"][0]["sku"] == s1 and events[0].data["handle"] == body["handle"]


async def test_handle_is_derived_and_unique(client, admin):
    title = f"Käse Spezial {sku('x')}"
    a = await create_product(client, admin, title=title, handle=None)
    b = await create_product(client, admin, title=title, handle=None)
    assert a["handle"] == slugify(title) and a["handle"].startswith("kaese-spezial-")
    assert b["handle"] == a["handle"] + "-2"
    # defaults
    assert a["status"] == "active" and a["tax_class"] == "standard" and a["channels"] == []
    r = await client.post("/v1/products", json={"title": "Minimal", "variants": [{"sku": sku()}]}, headers=admin)
    assert r.status_code == 201 and r.json()["status"] == "draft" and r.json()["variants"][0]["title"] == "Minimal"


async def test_duplicate_handle_sku_gtin_are_409(client, admin):
    p = await create_product(client, admin)
    v = p["variants"][0]
    # duplicate handle
    r = await client.post("/v1/products", json=product_body(handle=p["handle"]), headers=admin)
    body = assert_problem(r, 409, "duplicate_handle")
    assert body["errors"][0]["field"] == "handle" and p["handle"] in body["errors"][0]["message"]
    # duplicate sku against the database, at its path
    r = await client.post("/v1/products", json=product_body(variants=[{"sku": sku()}, {"sku": v["sku"]}]), headers=admin)
    body = assert_problem(r, 409, "duplicate_sku")
    assert body["errors"] == [{"field": "variants[1].sku", "message": f"SKU {v['sku']!r} is already in use.", "value": v["sku"]}]
    # duplicate gtin against the database (also in another spelling: GTIN-14 with a leading zero)
    r = await client.post("/v1/products", json=product_body(variants=[{"sku": sku(), "gtin": "0" + v["gtin"]}]), headers=admin)
    body = assert_problem(r, 409, "duplicate_gtin")
    assert body["errors"][0]["field"] == "variants[0].gtin" and body["errors"][0]["value"] == "0" + v["gtin"]
    # duplicates inside one request
    s = sku()
    r = await client.post("/v1/products", json=product_body(variants=[{"sku": s}, {"sku": s}]), headers=admin)
    body = assert_problem(r, 409, "duplicate_sku")
    assert body["errors"][0]["field"] == "variants[1].sku"
    g = gtin()
    r = await client.post("/v1/products", json=product_body(variants=[{"sku": sku(), "gtin": g}, {"sku": sku(), "gtin": g}]),
                          headers=admin)
    assert assert_problem(r, 409, "duplicate_gtin")["errors"][0]["field"] == "variants[1].gtin"


async def test_failed_create_stores_nothing(client, admin):
    before = (await count_rows(Product), await count_rows(Variant), await count_rows(Event))
    taken = (await create_product(client, admin))["variants"][0]["sku"]
    before = (before[0] + 1, before[1] + 1, before[2] + 1)
    h, fresh = handle(), sku()
    r = await client.post("/v1/products", json=product_body(handle=h, variants=[{"sku": fresh}, {"sku": taken}]), headers=admin)
    assert_problem(r, 409, "duplicate_sku")
    r = await client.post("/v1/products", json=product_body(handle=h, channels=["no-such-channel"],
                                                             variants=[{"sku": fresh}]), headers=admin)
    assert_problem(r, 422, "validation_error")
    assert (await count_rows(Product), await count_rows(Variant), await count_rows(Event)) == before
    assert_problem(await client.get(f"/v1/products/{h}", headers=admin), 404, "not_found")
    assert_problem(await client.get(f"/v1/variants?sku={fresh}", headers=admin), 404, "not_found")


async def test_validation_errors_name_fields(client, admin):
    r = await client.post("/v1/products", json={
        "title": "", "handle": "Not A Slug", "status": "live", "tax_class": "luxury", "surprise": 1,
        "category": "/bad//", "channels": ["a", "a"],
        "variants": [{"sku": "has space", "gtin": "4006381333932", "weight_grams": -1, "colour": "x",
                      "options": {"size": ""}, "track_inventory": "maybe"}],
    }, headers=admin)
    body = assert_problem(r, 422, "validation_error")
    fields = {e["field"] for e in body["errors"]}
    assert fields >= {"title", "handle", "status", "tax_class", "surprise", "category", "channels",
                      "variants[0].sku", "variants[0].weight_grams", "variants[0].colour",
                      "variants[0].options.size", "variants[0].track_inventory"}, fields
    # a GTIN that is not one (check digit, length, letters) is 422 invalid_gtin naming each, once the
    # body's shape is right; nothing is stored
    good, h = gtin(), handle()
    for bad, message in [("4006381333932", "check digit"), ("12345", "8, 12, 13 or 14 digits"),
                         ("40063813339x1", "only digits"), ("1" * 15, "8, 12, 13 or 14 digits")]:
        r = await client.post("/v1/products", json=product_body(handle=h, variants=[
            {"sku": sku(), "gtin": good}, {"sku": sku(), "gtin": bad}]), headers=admin)
        body = assert_problem(r, 422, "invalid_gtin")
        assert [e["field"] for e in body["errors"]] == ["variants[1].gtin"] and message in body["errors"][0]["message"]
    assert_problem(await client.get(f"/v1/products/{h}", headers=admin), 404, "not_found")
    p = await create_product(client, admin)
    r = await client.patch(f"/v1/variants/{p['variants'][0]['sku']}", json={"gtin": "4006381333932"}, headers=admin)
    assert assert_problem(r, 422, "invalid_gtin")["errors"][0]["field"] == "gtin"
    r = await client.post(f"/v1/products/{p['id']}/variants", json={"sku": sku(), "gtin": "4006381333932"}, headers=admin)
    assert assert_problem(r, 422, "invalid_gtin")["errors"][0]["field"] == "gtin"
    assert (await client.get(f"/v1/products/{p['id']}", headers=admin)).json()["version"] == 1
    # wrong types and shapes
    for bad, field in [
        ({"title": 5, "variants": [{"sku": sku()}]}, "title"),
        ({"title": "x", "variants": []}, "variants"),
        ({"title": "x", "variants": [{"sku": sku(), "gtin": 4006381333931}]}, "variants[0].gtin"),
        ({"title": "x", "variants": [{"sku": sku(), "weight_grams": 10**12}]}, "variants[0].weight_grams"),
        ({"title": "x", "attributes": {"n": 10**30}, "variants": [{"sku": sku()}]}, "attributes"),
        ({"title": "x", "attributes": {"bad": {"nested": 1}}, "variants": [{"sku": sku()}]}, "attributes.bad"),
        ({"title": "x\u0000y", "variants": [{"sku": sku()}]}, "title"),
        ({"title": "x", "attributes": {"k": "a\u0000"}, "variants": [{"sku": sku()}]}, "attributes"),
        ('{"title": "x", "variants": [{"sku": "%s", "title": "\\ud800"}]}' % sku(), "variants[0].title"),
        ({"title": "x", "variants": "nope"}, "variants"),
    ]:
        if isinstance(bad, str):
            r = await client.post("/v1/products", content=bad, headers=admin | {"Content-Type": "application/json"})
        else:
            r = await client.post("/v1/products", json=bad, headers=admin)
        body = assert_problem(r, 422, "validation_error")
        # (NUL characters are caught for the whole body by app.core.schemas.Input, naming the path in the message)
        assert any(e["field"].startswith(field) or field in e["message"] for e in body["errors"]), (bad, body)
    # unknown channels are named
    r = await client.post("/v1/products", json=product_body(channels=["nowhere-1"]), headers=admin)
    body = assert_problem(r, 422, "validation_error")
    assert body["errors"] == [{"field": "channels[0]", "message": "Unknown channel 'nowhere-1'."}]
    # malformed JSON
    r = await client.post("/v1/products", content=b'{"title": ', headers=admin | {"Content-Type": "application/json"})
    assert_problem(r, 400, "invalid_json")
    # numbers as option values are taken as text
    p = await create_product(client, admin, variants=[{"sku": sku(), "options": {"waist": 32}}])
    assert p["variants"][0]["options"] == {"waist": "32"}


async def test_patch_product_versions_and_events(client, admin):
    web = (await create_channel(client, admin, "web"))["code"]
    app_ch = (await create_channel(client, admin, "app"))["code"]
    p = await create_product(client, admin, channels=[web], category="fashion/shirts")
    url = f"/v1/products/{p['id']}"
    r = await client.patch(url, json={"title": "Renamed", "channels": [web, app_ch], "category": None,
                                      "attributes": {"a": 1}}, headers=admin | {"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["version"] == 2 and r.headers["etag"] == '"2"' and out["title"] == "Renamed"
    assert out["channels"] == sorted([web, app_ch]) and out["category"] is None and out["attributes"] == {"a": 1}
    assert out["updated_at"] >= p["updated_at"] and out["variants"] == p["variants"]
    # stale If-Match and stale body version -> 412, unchanged
    assert_problem(await client.patch(url, json={"title": "Stale"}, headers=admin | {"If-Match": '"1"'}), 412, "version_conflict")
    assert_problem(await client.patch(url, json={"title": "Stale", "version": 1}, headers=admin), 412, "version_conflict")
    assert (await client.get(url, headers=admin)).json()["title"] == "Renamed"
    # a PATCH that changes nothing keeps the version and emits nothing
    r = await client.patch(url, json={"title": "Renamed", "version": 2}, headers=admin)
    assert r.status_code == 200 and r.json()["version"] == 2
    updates = await _events(p["id"], "product.updated")
    assert len(updates) == 1 and updates[0].data["title"] == "Renamed" and updates[0].data["version"] == 2
    # handle change; duplicate handle -> 409; nulls and unknown/immutable fields -> 422
    other = await create_product(client, admin)
    new_handle = handle("renamed")
    r = await client.patch(url, json={"handle": new_handle}, headers=admin)
    assert r.status_code == 200 and r.json()["handle"] == new_handle and r.json()["version"] == 3
    assert (await client.get(f"/v1/products/{new_handle}", headers=admin)).json()["id"] == p["id"]
    assert_problem(await client.patch(url, json={"handle": other["handle"]}, headers=admin), 409, "duplicate_handle")
    assert_problem(await client.patch(url, json={"title": None}, headers=admin), 422, "validation_error")
    assert_problem(await client.patch(url, json={"type": "bundle"}, headers=admin), 422, "validation_error")
    assert_problem(await client.patch(url, json={"channels": ["nowhere"]}, headers=admin), 422, "validation_error")
    assert_problem(await client.patch(url, json={"status": "deleted"}, headers=admin), 422, "validation_error")
    assert_problem(await client.patch("/v1/products/prod_nope", json={"title": "x"}, headers=admin), 404, "not_found")
    assert_problem(await client.patch("/v1/products/no-such-handle", json={"title": "x"}, headers=admin), 404, "not_found")
    assert (await client.get(url, headers=admin)).json()["version"] == 3


async def test_variants_add_update_delete(client, admin):
    p = await create_product(client, admin)
    v0 = p["variants"][0]
    # add
    s, g = sku("ADD"), gtin()
    r = await client.post(f"/v1/products/{p['handle']}/variants", json={"sku": s, "gtin": g, "options": {"size": "L"}},
                          headers=admin | {"If-Match": '"1"'})
    assert r.status_code == 201, r.text
    added = r.json()
    assert added["object"] == "variant" and added["sku"] == s and added["product_id"] == p["id"] and added["version"] == 2
    assert added["title"] == "L" and r.headers["etag"] == '"2"'
    prod = (await client.get(f"/v1/products/{p['id']}", headers=admin)).json()
    assert [v["sku"] for v in prod["variants"]] == [v0["sku"], s] and prod["version"] == 2
    assert_problem(await client.post(f"/v1/products/{p['id']}/variants", json={"sku": sku()},
                                     headers=admin | {"If-Match": '"1"'}), 412, "version_conflict")
    assert_problem(await client.post(f"/v1/products/{p['id']}/variants", json={"sku": s}, headers=admin), 409, "duplicate_sku")
    assert_problem(await client.post(f"/v1/products/{p['id']}/variants", json={"sku": sku(), "gtin": g}, headers=admin),
                   409, "duplicate_gtin")
    assert_problem(await client.post(f"/v1/products/{p['id']}/variants", json={"sku": sku(), "components": [{"sku": s}]},
                                     headers=admin), 422, "validation_error")
    assert_problem(await client.post("/v1/products/prod_nope/variants", json={"sku": sku()}, headers=admin), 404, "not_found")
    # update by sku and by id
    r = await client.patch(f"/v1/variants/{s}", json={"title": "Large", "weight_grams": 200, "gtin": None},
                           headers=admin | {"If-Match": '"2"'})
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "Large" and r.json()["gtin"] is None and r.json()["version"] == 3
    r = await client.patch(f"/v1/variants/{added['id']}", json={"gtin": g, "options": {"size": "XL"}}, headers=admin)
    assert r.status_code == 200 and r.json()["gtin"] == g and r.json()["options"] == {"size": "XL"} and r.json()["version"] == 4
    assert_problem(await client.patch(f"/v1/variants/{s}", json={"title": "x"}, headers=admin | {"If-Match": '"2"'}),
                   412, "version_conflict")
    assert_problem(await client.patch(f"/v1/variants/{s}", json={"gtin": v0["gtin"]}, headers=admin), 409, "duplicate_gtin")
    assert_problem(await client.patch(f"/v1/variants/{s}", json={"sku": "NEW"}, headers=admin), 422, "validation_error")
    assert_problem(await client.patch(f"/v1/variants/{s}", json={"title": None}, headers=admin), 422, "validation_error")
    assert_problem(await client.patch(f"/v1/variants/{s}", json={"components": [{"sku": v0["sku"]}]}, headers=admin),
                   422, "validation_error")
    assert_problem(await client.patch("/v1/variants/NOPE-XYZ", json={"title": "x"}, headers=admin), 404, "not_found")
    # unchanged PATCH: no bump
    r = await client.patch(f"/v1/variants/{s}", json={"title": "Large"}, headers=admin)
    assert r.json()["version"] == 4
    # delete
    assert_problem(await client.delete(f"/v1/variants/{s}", headers=admin | {"If-Match": '"3"'}), 412, "version_conflict")
    r = await client.delete(f"/v1/variants/{s}", headers=admin | {"If-Match": '"4"'})
    assert r.status_code == 204
    assert_problem(await client.get(f"/v1/variants/{s}", headers=admin), 404, "not_found")
    prod = (await client.get(f"/v1/products/{p['id']}", headers=admin)).json()
    assert [v["sku"] for v in prod["variants"]] == [v0["sku"]] and prod["version"] == 5
    assert_problem(await client.delete(f"/v1/variants/{v0['sku']}", headers=admin), 409, "last_variant")
    assert_problem(await client.delete("/v1/variants/NOPE-XYZ", headers=admin), 404, "not_found")
    kinds = [e.type for e in await _events(p["id"])]
    assert kinds == ["product.created"] + ["product.updated"] * 4


async def test_sku_with_slash_and_variant_detail(client, admin):
    s = f"{sku('A')}/B"
    p = await create_product(client, admin, category="grocery/wine", tax_class="standard",
                             variants=[{"sku": s, "gtin": gtin()}])
    r = await client.get(f"/v1/variants/{s}", headers=admin)
    assert r.status_code == 200, r.text
    v = r.json()
    assert v["sku"] == s and v["product_id"] == p["id"] and v["product_title"] == p["title"]
    assert v["handle"] == p["handle"] and v["status"] == "active" and v["tax_class"] == "standard"
    assert v["category"] == "grocery/wine" and v["type"] == "standard" and r.headers["etag"] == f'"{p["version"]}"'
    r = await client.patch(f"/v1/variants/{s}", json={"attributes": {"lot": "A1"}}, headers=admin)
    assert r.status_code == 200 and r.json()["attributes"] == {"lot": "A1"}
    # a SKU that looks like a variant id still resolves
    odd = "var_" + sku("LOOKALIKE")
    await create_product(client, admin, variants=[{"sku": odd}])
    assert (await client.get(f"/v1/variants/{odd}", headers=admin)).json()["sku"] == odd


async def test_idempotent_create(client, admin):
    body = product_body()
    headers = admin | {"Idempotency-Key": sku("idem")}
    a = await client.post("/v1/products", json=body, headers=headers)
    b = await client.post("/v1/products", json=body, headers=headers)
    assert a.status_code == b.status_code == 201 and a.content == b.content
    assert b.headers.get("idempotent-replayed") == "true"
    assert await count_rows(Product, handle=body["handle"]) == 1


async def test_concurrent_creates_of_one_sku_make_one_product(client, admin):
    """Twenty clients race to create products sharing one SKU: exactly one wins, the others get a
    409 naming the SKU (a unique violation raced in is diagnosed, never a 500), nothing partial."""
    import asyncio

    shared = sku("RACE")
    handles = [handle() for _ in range(20)]
    before = await count_rows(Product)
    results = await asyncio.gather(*(
        client.post("/v1/products", json=product_body(handle=h, variants=[{"sku": shared}]), headers=admin)
        for h in handles
    ))
    codes = sorted(r.status_code for r in results)
    assert codes == [201] + [409] * 19, codes
    for r in results:
        if r.status_code == 409:
            assert assert_problem(r, 409, "duplicate_sku")["errors"][0]["field"] == "variants[0].sku"
    assert await count_rows(Product) == before + 1
    assert await count_rows(Variant, sku=shared) == 1


async def test_attribute_numbers_are_bounded(client, admin):
    """JSONB keeps 1e20 as an exact 21-digit integer no client can read back as a number: refused."""
    r = await client.post("/v1/products", json=product_body(attributes={"weight": 1e20}), headers=admin)
    assert_problem(r, 422, "validation_error")
    p = await create_product(client, admin, attributes={"ratio": 0.5, "big": 2.0**52})
    assert p["attributes"] == {"ratio": 0.5, "big": 2.0**52}
