"""POST /v1/catalog/import: NDJSON and CSV, upsert by sku, idempotency, per-row errors."""
import secrets

import orjson
from sqlalchemy import select

from app.catalog import importer
from app.core.db import sessionmaker
from app.events.models import Event
from tests.catalog.builders import create_product, gtin, sku
from tests.helpers import assert_problem, create_channel

NDJSON = {"Content-Type": "application/x-ndjson"}
CSV = {"Content-Type": "text/csv"}


def ndjson(rows: list) -> bytes:
    return b"\n".join(r if isinstance(r, bytes) else orjson.dumps(r) for r in rows) + b"\n"


async def _import(client, admin, body: bytes, headers=NDJSON) -> dict:
    r = await client.post("/v1/catalog/import", content=body, headers=admin | headers)
    assert r.status_code == 200, r.text
    return r.json()


async def _product_events(product_ids: set[str]) -> list[Event]:
    async with sessionmaker()() as s:
        rows = (await s.execute(select(Event).where(Event.type.like("product.%")).order_by(Event.id))).scalars().all()
    return [e for e in rows if e.data.get("id") in product_ids]


async def test_ndjson_create_reimport_update(client, admin):
    web = (await create_channel(client, admin, "web"))["code"]
    t = secrets.token_hex(3)
    tee, mug = f"tee-{t}", f"mug-{t}"
    skus = [f"TEE-{t}-{s}".upper() for s in "SML"]
    gtins = [gtin() for _ in skus]
    rows = [
        {"sku": s, "product_handle": tee, "product_title": "Import Tee", "status": "active", "category": "fashion/t-shirts",
         "tax_class": "standard", "channels": [web], "options": {"size": size, "colour": "black"}, "gtin": g,
         "weight_grams": 180, "attributes": {"fit": "regular"}, "product_attributes": {"brand": "Nord"}}
        for s, size, g in zip(skus, "SML", gtins)
    ]
    rows[1].pop("product_title")  # product fields may be given once per product
    mug_sku = f"MUG-{t}".upper()
    rows.append({"sku": mug_sku, "product_title": f"Mug {t}", "track_inventory": False, "channels": f"{web}"})
    result = await _import(client, admin, ndjson(rows))
    assert result == {"format": "ndjson", "created": 4, "updated": 0, "unchanged": 0, "failed": 0, "products_created": 2,
                      "products_updated": 0, "prices_set": 0, "stock_set": 0, "errors": [], "errors_truncated": False,
                      "unknown_columns": [], "warnings": []}
    p = (await client.get(f"/v1/products/{tee}", headers=admin)).json()
    assert p["title"] == "Import Tee" and p["status"] == "active" and p["channels"] == [web] and p["version"] == 1
    assert p["attributes"] == {"brand": "Nord"} and p["category"] == "fashion/t-shirts"
    assert [v["sku"] for v in p["variants"]] == skus
    assert p["variants"][0]["title"] == "S / black" and p["variants"][0]["gtin"] == gtins[0]
    assert p["variants"][2]["attributes"] == {"fit": "regular"} and p["variants"][2]["weight_grams"] == 180
    mug = (await client.get(f"/v1/variants/{mug_sku}", headers=admin)).json()
    assert mug["handle"] == f"mug-{t}" and mug["track_inventory"] is False and mug["status"] == "draft"
    ids = {p["id"], mug["product_id"]}
    assert [e.type for e in await _product_events(ids)] == ["product.created"] * 2

    # the same file again: nothing changes, no version bump, no event
    again = await _import(client, admin, ndjson(rows))
    assert again["unchanged"] == 4 and again["created"] == again["updated"] == again["failed"] == 0
    assert again["products_updated"] == 0
    assert (await client.get(f"/v1/products/{tee}", headers=admin)).json() == p
    assert len(await _product_events(ids)) == 2

    # upsert: changed fields only; untouched fields stay
    change = [{"sku": skus[0], "title": "Small black", "gtin": None},
              {"sku": skus[2], "product_handle": tee, "status": "archived", "weight_grams": 190}]
    result = await _import(client, admin, ndjson(change))
    assert result["updated"] == 2 and result["products_updated"] == 1 and result["unchanged"] == 0
    p2 = (await client.get(f"/v1/products/{tee}", headers=admin)).json()
    assert p2["version"] == 2 and p2["status"] == "archived" and p2["title"] == "Import Tee"
    assert p2["variants"][0]["title"] == "Small black" and p2["variants"][0]["gtin"] is None
    assert p2["variants"][0]["options"] == {"size": "S", "colour": "black"}
    assert p2["variants"][2]["weight_grams"] == 190 and p2["variants"][1] == p["variants"][1]
    events = await _product_events(ids)
    assert [e.type for e in events] == ["product.created"] * 2 + ["product.updated"]
    data = events[-1].data
    assert data["version"] == 2 and data["source"] == "import" and data["changed"] == ["status"]
    assert sorted(data["variants_updated"]) == sorted([skus[0], skus[2]])
    # a new variant for an existing product
    new_sku = f"TEE-{t}-XL".upper()
    result = await _import(client, admin, ndjson([{"sku": new_sku, "product_handle": tee, "options": {"size": "XL"}}]))
    assert result["created"] == 1 and result["products_updated"] == 1 and result["products_created"] == 0
    p3 = (await client.get(f"/v1/products/{tee}", headers=admin)).json()
    assert [v["sku"] for v in p3["variants"]] == skus + [new_sku] and p3["version"] == 3


async def test_per_row_errors_good_rows_land(client, admin):
    t = secrets.token_hex(3)
    existing = await create_product(client, admin, variants=[{"sku": sku("EX"), "gtin": gtin()}])
    ex_sku, ex_gtin = existing["variants"][0]["sku"], existing["variants"][0]["gtin"]
    good1, good2 = sku("GOOD"), sku("GOOD")
    dup = sku("DUP")
    rows = [
        {"sku": good1, "product_handle": f"h-{t}", "product_title": "Good"},                      # 1 ok
        {"sku": sku("BAD"), "product_handle": f"h-{t}", "gtin": "4006381333932"},               # 2 bad check digit
        b'{"sku": "broken", ',                                                                  # 3 invalid JSON
        {"sku": sku("BAD"), "product_handle": f"h-{t}", "channels": ["nowhere-x"]},             # 4 unknown channel
        {"sku": sku("GOOD"), "product_handle": f"h-{t}", "colour": "red"},                      # 5 ok: unknown field listed once
        {"product_handle": f"h-{t}"},                                                           # 6 no sku
        {"sku": dup, "product_handle": f"h-{t}"},                                               # 7 ok
        {"sku": dup, "product_handle": f"h-{t}"},                                               # 8 duplicate in file
        {"sku": sku("BAD"), "product_handle": f"h-{t}", "gtin": ex_gtin},                       # 9 gtin taken
        {"sku": sku("NEW")},                                                                    # 10 no handle/title
        {"sku": ex_sku, "product_handle": f"h-{t}"},                                            # 11 moving variants
        {"sku": sku("BAD"), "product_handle": f"h-{t}", "components": "X:1"},                   # 12 not a bundle
        {"sku": sku("BAD"), "product_handle": f"h-{t}", "weight_grams": "heavy"},               # 13 wrong type
        [1, 2],                                                                                 # 14 not an object
        {"sku": good2, "product_handle": f"h-{t}", "weight_grams": 5},                          # 15 ok
        {"sku": sku("BAD"), "product_handle": f"new-{t}"},                                      # 16 new product w/o title
    ]
    result = await _import(client, admin, ndjson(rows))
    assert result["created"] == 4 and result["failed"] == 12, result
    assert result["unknown_columns"] == ["colour"]
    by_row = {e["row"]: e for e in result["errors"]}
    assert set(by_row) == {2, 3, 4, 6, 8, 9, 10, 11, 12, 13, 14, 16}
    expect_field = {2: "gtin", 3: "row", 4: "channels[0]", 6: "sku", 8: "sku", 9: "gtin",
                    10: "product_handle", 11: "product_handle", 12: "components", 13: "weight_grams", 14: "row",
                    16: "product_title"}
    for row, field in expect_field.items():
        assert field in {e["field"] for e in by_row[row]["errors"]}, (row, by_row[row])
    assert by_row[9]["sku"] == rows[8]["sku"] and ex_sku in by_row[9]["errors"][0]["message"]
    assert "row 7" in by_row[8]["errors"][0]["message"]
    p = (await client.get(f"/v1/products/h-{t}", headers=admin)).json()
    assert [v["sku"] for v in p["variants"]] == [good1, rows[4]["sku"], dup, good2]


async def test_csv_import(client, admin):
    web = (await create_channel(client, admin, "web"))["code"]
    pos = (await create_channel(client, admin, "pos"))["code"]
    t = secrets.token_hex(3)
    wine, cheese, box = f"WINE-{t}".upper(), f"CHEESE-{t}".upper(), f"BOX-{t}".upper()
    g = gtin()
    csv_text = (
        "\ufeffsku,product_handle,product_title,title,gtin,status,category,tax_class,option.size,option.colour,"
        "attr.material,product_attr.origin,weight_grams,track_inventory,channels,components\n"
        f'{wine},wine-{t},"Riesling, trocken",0.75 l,{g},active,grocery/wine,standard,,,,Mosel,1300,,{web}|{pos},\n'
        f"{cheese},cheese-{t},Gouda,,,active,grocery/cheese,reduced,,,,,400,true,{web},\n"
        f"{box},box-{t},Gift box,,,active,gifts,standard,,,,,,,{web},{wine}:2|{cheese}\n"
        f"TSHIRT-{t}-M,tee-{t},Tee,,,draft,fashion/t-shirts,,M,black,cotton,,180,no,,\n"
        "\n"
        f"BAD-{t},tee-{t},,,123,,,,,,,,,,,,extra-cell\n"
        f"BAD2-{t},tee-{t},,,,,,,,,,,-5,,,\n"
    )
    r = await client.post("/v1/catalog/import", content=csv_text.encode(), headers=admin | CSV)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["created"] == 4 and result["failed"] == 2 and result["products_created"] == 4, result
    assert [e["row"] for e in result["errors"]] == [7, 8]  # physical lines (the header is line 1)
    assert result["errors"][1]["errors"][0]["field"] == "weight_grams"
    w = (await client.get(f"/v1/products/wine-{t}", headers=admin)).json()
    assert w["title"] == "Riesling, trocken" and w["channels"] == sorted([web, pos]) and w["attributes"] == {"origin": "Mosel"}
    assert w["variants"][0]["title"] == "0.75 l" and w["variants"][0]["gtin"] == g and w["variants"][0]["weight_grams"] == 1300
    b = (await client.get(f"/v1/products/box-{t}", headers=admin)).json()
    assert b["type"] == "bundle"
    assert sorted(b["variants"][0]["components"], key=lambda c: c["sku"]) == sorted(
        [{"sku": wine, "quantity": 2}, {"sku": cheese, "quantity": 1}], key=lambda c: c["sku"])
    tee = (await client.get(f"/v1/variants/TSHIRT-{t}-M", headers=admin)).json()
    assert tee["track_inventory"] is False and tee["status"] == "draft"
    full = (await client.get(f"/v1/products/tee-{t}", headers=admin)).json()
    assert full["variants"][0]["options"] == {"size": "M", "colour": "black"}
    assert full["variants"][0]["attributes"] == {"material": "cotton"}
    # again: unchanged (the failing rows fail again)
    r = await client.post("/v1/catalog/import", content=csv_text.encode(), headers=admin | CSV)
    assert r.json()["unchanged"] == 4 and r.json()["failed"] == 2 and r.json()["products_updated"] == 0
    # semicolon-separated with a charset parameter; components changed
    semi = f"sku;components\n{box};{wine}:1\n"
    r = await client.post("/v1/catalog/import", content=semi.encode(), headers=admin | {"Content-Type": "text/csv; charset=utf-8"})
    assert r.status_code == 200 and r.json()["updated"] == 1, r.text
    b2 = (await client.get(f"/v1/variants/{box}", headers=admin)).json()
    assert b2["components"] == [{"sku": wine, "quantity": 1}] and b2["version"] == 2


async def test_csv_file_level_errors(client, admin):
    for text in ("product_title\nX\n", "sku,sku\nA,B\n", "sku,title\n\"A,x\n", "sku\x00\nA\n", "colour\nred\n"):
        r = await client.post("/v1/catalog/import", content=text.encode(), headers=admin | CSV)
        assert_problem(r, 422, "validation_error")
    r = await client.post("/v1/catalog/import", content=b"\xff\xfe\x00", headers=admin | CSV)
    assert_problem(r, 422, "validation_error")
    body = assert_problem(await client.post("/v1/catalog/import", content=b"sku,sku\nA,B\n", headers=admin | CSV), 422)
    assert body["errors"][0]["field"] == "header" and "'sku' appears twice" in body["errors"][0]["message"]


async def test_bundles_in_import(client, admin):
    t = secrets.token_hex(3)
    base = await create_product(client, admin, variants=[{"sku": sku("C")}])
    c = base["variants"][0]["sku"]
    bundle = sku("B")
    rows = [
        {"sku": f"NEWC-{t}", "product_handle": f"newc-{t}", "product_title": "New component"},
        {"sku": bundle, "product_handle": f"bundle-{t}", "product_title": "Bundle",
         "components": [{"sku": c, "quantity": 2}, {"sku": f"NEWC-{t}", "quantity": 1}]},
        {"sku": sku("B"), "product_handle": f"b2-{t}", "product_title": "B2", "components": f"{bundle}:1"},  # a bundle
        {"sku": sku("B"), "product_handle": f"b3-{t}", "product_title": "B3", "components": "NOPE-X:1"},     # unknown
        {"sku": sku("B"), "product_handle": f"b4-{t}", "product_title": "B4", "components": f"{c}:0"},       # qty 0
        {"sku": sku("B"), "product_handle": f"b5-{t}", "product_title": "B5", "components": f"{c}|{c}"},     # twice
        {"sku": sku("B"), "product_handle": f"b6-{t}", "product_title": "B6", "components": f"{c}"},         # two rows
        {"sku": sku("B"), "product_handle": f"b6-{t}", "components": f"{c}"},
        {"sku": f"SELF-{t}", "product_handle": f"b7-{t}", "product_title": "B7", "components": f"SELF-{t}:1"},
    ]
    result = await _import(client, admin, ndjson(rows))
    assert result["created"] == 2 and result["failed"] == 7, result
    fields = {e["row"]: {x["field"] for x in e["errors"]} for e in result["errors"]}
    assert fields[3] == {"components[0].sku"} and fields[4] == {"components[0].sku"}
    assert fields[5] == {"components[0].quantity"} and fields[6] == {"components[1].sku"}
    assert fields[7] == fields[8] == {"components"} and fields[9] == {"components[0].sku"}
    v = (await client.get(f"/v1/variants/{bundle}", headers=admin)).json()
    assert v["type"] == "bundle" and {x["sku"] for x in v["components"]} == {c, f"NEWC-{t}"}
    # an existing bundle takes no second variant
    r = await _import(client, admin, ndjson([{"sku": sku("X"), "product_handle": f"bundle-{t}"}]))
    assert r["failed"] == 1 and r["errors"][0]["errors"][0]["field"] == "sku"


async def test_import_request_errors(client, admin, monkeypatch):
    assert_problem(await client.post("/v1/catalog/import", content=b'{"sku": "A"}', headers=admin | {"Content-Type": "application/json"}),
                   415, "unsupported_media_type")
    assert_problem(await client.post("/v1/catalog/import", content=b"x", headers=admin | {"Content-Type": "text/plain"}),
                   415, "unsupported_media_type")
    assert_problem(await client.post("/v1/catalog/import", content=b"", headers=admin | NDJSON), 422, "validation_error")
    assert_problem(await client.post("/v1/catalog/import", content=b"\n  \n", headers=admin | NDJSON), 422, "validation_error")
    assert_problem(await client.post("/v1/catalog/import", content=b"sku\n", headers=admin | CSV), 422, "validation_error")
    monkeypatch.setattr(importer, "MAX_BYTES", 100)
    big = ndjson([{"sku": sku(), "product_title": "x" * 50} for _ in range(5)])
    assert_problem(await client.post("/v1/catalog/import", content=big, headers=admin | NDJSON), 413, "payload_too_large")

    async def chunks():
        for _ in range(5):
            yield b'{"sku": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}\n'
    r = await client.post("/v1/catalog/import", content=chunks(), headers=admin | NDJSON)  # no Content-Length
    assert_problem(r, 413, "payload_too_large")
    monkeypatch.setattr(importer, "MAX_BYTES", 50 * 1024 * 1024)
    monkeypatch.setattr(importer, "MAX_ROWS", 2)
    r = await client.post("/v1/catalog/import", content=ndjson([{"sku": sku()} for _ in range(3)]), headers=admin | NDJSON)
    assert_problem(r, 413, "payload_too_large")


async def test_import_is_visible_to_channels(client, admin):
    from tests.conftest import auth, make_key

    web = (await create_channel(client, admin, "web"))["code"]
    storefront = auth(await make_key("storefront", channel=web))
    t = secrets.token_hex(3)
    rows = [{"sku": f"VIS-{t}-{i}", "product_handle": f"vis-{t}-{i}", "product_title": f"Vis {t} {i}",
             "status": "active" if i % 2 == 0 else "draft", "channels": [web]} for i in range(4)]
    await _import(client, admin, ndjson(rows))
    r = await client.get("/v1/products", params={"q": f"Vis {t}"}, headers=storefront)
    assert sorted(p["handle"] for p in r.json()["data"]) == [f"vis-{t}-0", f"vis-{t}-2"]
