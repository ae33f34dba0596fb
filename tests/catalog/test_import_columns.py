"""POST /v1/catalog/import: price and stock columns (a first load in one file), unknown columns once."""
import secrets

import orjson

from tests.catalog.builders import create_product, gtin, sku
from tests.conftest import uid
from tests.helpers import assert_problem, create_location
from tests.inventory.builders import ledger_matches, level

NDJSON = {"Content-Type": "application/x-ndjson"}
CSV = {"Content-Type": "text/csv"}


async def create_price_list(client, admin, currency: str = "EUR") -> str:
    r = await client.post("/v1/price-lists", json={"code": uid("pl"), "currency": currency}, headers=admin)
    assert r.status_code == 201, r.text
    return r.json()["code"]


async def prices(client, admin, code: str) -> dict[str, int]:
    r = await client.get(f"/v1/price-lists/{code}/prices", params={"limit": 500}, headers=admin)
    assert r.status_code == 200, r.text
    return {p["sku"]: p["amount"] for p in r.json()["data"] if p["min_quantity"] == 1}


async def movements(client, admin, sku_: str) -> list[dict]:
    r = await client.get("/v1/inventory/movements", params={"sku": sku_}, headers=admin)
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def test_inline_import_with_price_and_stock(client, admin):
    eur, other = await create_price_list(client, admin), await create_price_list(client, admin)
    store = (await create_location(client, admin, "store"))["code"]
    wh = (await create_location(client, admin, "warehouse"))["code"]
    t = secrets.token_hex(3).upper()
    a, b, c, d = (f"FL-{t}-{x}" for x in "ABCD")
    csv_text = (
        "sku,product_handle,product_title,price,price_list,stock,location\n"
        f"{a},first-{t.lower()},First load,19.99,,12,\n"            # the query's list and location
        f"{b},first-{t.lower()},,5,{other},0,{wh}\n"                 # the row's own list and location
        f"{c},first-{t.lower()},,1.999,,3,\n"                        # EUR has 2 decimals: the row fails
        f"{d},first-{t.lower()},,7.50,nope-list,2,nowhere\n"         # unknown list and location
    )
    r = await client.post("/v1/catalog/import", params={"price_list": eur, "location": store},
                          content=csv_text.encode(), headers=admin | CSV)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["created"], out["failed"], out["prices_set"], out["stock_set"]) == (2, 2, 2, 1), out
    fields = {e["row"]: {x["field"] for x in e["errors"]} for e in out["errors"]}
    assert fields == {4: {"price"}, 5: {"price_list", "location"}}
    # a failed row writes nothing at all, not even its variant
    assert (await client.get(f"/v1/variants/{c}", headers=admin)).status_code == 404
    assert await prices(client, admin, eur) == {a: 1999}
    assert await prices(client, admin, other) == {b: 500}
    assert (await level(client, admin, a, store))["on_hand"] == 12
    assert (await level(client, admin, b, wh))["on_hand"] == 0
    moves = await movements(client, admin, a)
    assert [(m["quantity"], m["reason"], m["reference"]) for m in moves] == [(12, "count", "catalog-import")]
    assert await ledger_matches([a, b]) == []

    # the same file again: nothing changes (no price write, no movement)
    again = (await client.post("/v1/catalog/import", params={"price_list": eur, "location": store},
                               content=csv_text.encode(), headers=admin | CSV)).json()
    assert (again["unchanged"], again["prices_set"], again["stock_set"]) == (2, 0, 0), again
    # new figures: set, not added
    change = f"sku,price,stock\n{a},21.00,10\n".encode()
    out = (await client.post("/v1/catalog/import", params={"price_list": eur, "location": store},
                             content=change, headers=admin | CSV)).json()
    assert (out["unchanged"], out["prices_set"], out["stock_set"]) == (1, 1, 1), out
    assert (await prices(client, admin, eur))[a] == 2100
    assert (await level(client, admin, a, store))["on_hand"] == 10
    assert [m["quantity"] for m in await movements(client, admin, a)] == [12, -2]


async def test_price_and_stock_rules(client, admin):
    yen = await create_price_list(client, admin, "JPY")
    store = (await create_location(client, admin, "store"))["code"]
    t = secrets.token_hex(3)
    comp = (await create_product(client, admin, variants=[{"sku": sku("C")}]))["variants"][0]["sku"]
    free, box, plain = f"SVC-{t}", f"BOX-{t}", f"JP-{t}"
    rows = [
        {"sku": plain, "product_title": f"Plain {t}", "price": "1200", "stock": 4},
        {"sku": free, "product_title": f"Service {t}", "track_inventory": False, "price": 500, "stock": 1},
        {"sku": box, "product_title": f"Box {t}", "components": [{"sku": comp, "quantity": 2}], "stock": 1},
        {"sku": f"NUM-{t}", "product_title": f"Num {t}", "price": 12.5},
        {"sku": f"NEG-{t}", "product_title": f"Neg {t}", "stock": -1},
        {"sku": f"TXT-{t}", "product_title": f"Txt {t}", "price": "12,50"},
    ]
    body = b"\n".join(orjson.dumps(x) for x in rows)
    r = await client.post("/v1/catalog/import", params={"price_list": yen, "location": store}, content=body,
                          headers=admin | NDJSON)
    assert r.status_code == 200, r.text
    out = r.json()
    fields = {e["sku"]: [x["field"] for x in e["errors"]] for e in out["errors"]}
    assert fields == {free: ["stock"], box: ["stock"], f"NUM-{t}": ["price"], f"NEG-{t}": ["stock"],
                      f"TXT-{t}": ["price"]}, out
    assert "JPY has 0 decimal" in next(e for e in out["errors"] if e["sku"] == f"NUM-{t}")["errors"][0]["message"]
    assert await prices(client, admin, yen) == {plain: 1200}
    assert (await level(client, admin, plain, store))["on_hand"] == 4

    # NDJSON rows without a list or location for their price or stock fail one by one
    r = await client.post("/v1/catalog/import", content=orjson.dumps({"sku": plain, "price": "1", "stock": 1}),
                          headers=admin | NDJSON)
    assert [x["field"] for x in r.json()["errors"][0]["errors"]] == ["price_list", "location"]


async def test_whole_file_errors_for_price_and_stock(client, admin):
    store = (await create_location(client, admin, "store"))["code"]
    # a CSV price (stock) column with neither a price_list (location) column nor the query parameter
    body = assert_problem(await client.post("/v1/catalog/import", content=b"sku,price,stock\nA-1,1.00,2\n",
                                            headers=admin | CSV), 422, "validation_error")
    assert {e["field"] for e in body["errors"]} == {"price_list", "location"}
    # unknown ?price_list= / ?location=: the whole file is refused, nothing written
    s = sku("Q")
    r = await client.post("/v1/catalog/import", params={"price_list": "no-such-list", "location": store},
                          content=f"sku,product_title,price\n{s},Q,1.00\n".encode(), headers=admin | CSV)
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "price_list"
    r = await client.post("/v1/catalog/import", params={"location": "no-such-store"},
                          content=f"sku,product_title,stock\n{s},Q,1\n".encode(), headers=admin | CSV)
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "location"
    assert (await client.get(f"/v1/variants/{s}", headers=admin)).status_code == 404


async def test_unknown_columns_are_listed_once(client, admin):
    t = secrets.token_hex(3)
    lines = ["sku,product_handle,product_title,colour,Supplier Ref,gtin"]
    skus = [f"UC-{t}-{i}".upper() for i in range(40)]
    for i, s in enumerate(skus):
        lines.append(f"{s},uc-{t}-{i},Unknown cols {i},red,SUP-{i},{gtin() if i == 0 else ''}")
    r = await client.post("/v1/catalog/import", content="\n".join(lines).encode(), headers=admin | CSV)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["created"] == 40 and out["failed"] == 0 and out["errors"] == []
    assert out["unknown_columns"] == ["colour", "Supplier Ref"]
    v = (await client.get(f"/v1/variants/{skus[1]}", headers=admin)).json()
    assert v["options"] == {} and v["attributes"] == {}  # not imported anywhere
    # NDJSON: unknown fields, once, in the order first seen
    rows = [{"sku": skus[0], "colour": "red"}, {"sku": skus[1], "colour": "blue", "supplier": "x"}]
    out = (await client.post("/v1/catalog/import", content=b"\n".join(orjson.dumps(x) for x in rows),
                             headers=admin | NDJSON)).json()
    assert out["unknown_columns"] == ["colour", "supplier"] and out["failed"] == 0 and out["unchanged"] == 2


async def test_inline_import_is_written_in_chunks(client, admin, monkeypatch):
    """Chunks of 2 rows: a product's rows stay together (its title may be on its last row) and
    bundles come after the variants the file creates for them."""
    from app.core.settings import get_settings

    monkeypatch.setattr(get_settings(), "import_chunk_rows", 2)
    t = secrets.token_hex(3)
    box, c1, c2 = f"CH-{t}-BOX", f"CH-{t}-C1", f"CH-{t}-C2"
    a = [f"CH-{t}-{s}" for s in "SML"]
    rows = [
        {"sku": box, "product_title": f"Box {t}", "components": f"{c1}:1|{c2}:2"},
        {"sku": a[0], "product_handle": f"ch-{t}", "options": {"size": "S"}},
        {"sku": c1, "product_title": f"C1 {t}"},
        {"sku": a[1], "product_handle": f"ch-{t}", "options": {"size": "M"}},
        {"sku": c2, "product_title": f"C2 {t}"},
        {"sku": a[2], "product_handle": f"ch-{t}", "product_title": "Chunked", "options": {"size": "L"}},
    ]
    r = await client.post("/v1/catalog/import", content=b"\n".join(orjson.dumps(x) for x in rows), headers=admin | NDJSON)
    out = r.json()
    assert (out["created"], out["failed"], out["products_created"]) == (6, 0, 4), out
    p = (await client.get(f"/v1/products/ch-{t}", headers=admin)).json()
    assert p["title"] == "Chunked" and [v["sku"] for v in p["variants"]] == a
    v = (await client.get(f"/v1/variants/{box}", headers=admin)).json()
    assert sorted((c["sku"], c["quantity"]) for c in v["components"]) == [(c1, 1), (c2, 2)]
