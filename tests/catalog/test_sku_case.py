"""SKUs are unique whatever their case, keep the spelling they were created with, and every
endpoint taking a SKU accepts any spelling and answers with the stored one (issue 9, item 8a)."""
import orjson
import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from app.catalog.models import Variant
from app.core import clock
from app.core.db import sessionmaker
from app.core.ids import new_id
from tests.catalog.builders import create_product, sku
from tests.helpers import assert_problem, create_channel, create_location

NDJSON = {"Content-Type": "application/x-ndjson"}


def mixed(s: str) -> str:
    """Another spelling of the same SKU: 'TS-BLK-M' -> 'ts-blk-m'."""
    return s.lower()


async def test_a_case_variant_of_an_existing_sku_is_a_duplicate(client, admin):
    upper = sku("TS-BLK")
    p = await create_product(client, admin, variants=[{"sku": upper}])
    assert p["variants"][0]["sku"] == upper
    r = await client.post("/v1/products", json={"title": "Other", "variants": [{"sku": mixed(upper)}]}, headers=admin)
    body = assert_problem(r, 409, "duplicate_sku")
    assert body["errors"][0]["field"] == "variants[0].sku"
    r = await client.post(f"/v1/products/{p['id']}/variants", json={"sku": mixed(upper)}, headers=admin)
    assert assert_problem(r, 409, "duplicate_sku")["errors"][0]["field"] == "sku"
    # two spellings in one request
    new = sku("NEW")
    r = await client.post("/v1/products", json={"title": "Twice", "variants": [{"sku": new}, {"sku": mixed(new)}]},
                          headers=admin)
    assert assert_problem(r, 409, "duplicate_sku")["errors"][0]["field"] == "variants[1].sku"
    # a lower-case SKU keeps its spelling; the upper-case one is then the duplicate
    low = mixed(sku("LOW"))
    assert (await create_product(client, admin, variants=[{"sku": low}]))["variants"][0]["sku"] == low
    r = await client.post("/v1/products", json={"title": "Up", "variants": [{"sku": low.upper()}]}, headers=admin)
    assert_problem(r, 409, "duplicate_sku")


async def test_the_database_refuses_a_case_variant(client, admin):
    """The unique index on lower(sku) (migration 0006) holds even past the API's checks."""
    upper = sku("IDX")
    p = await create_product(client, admin, variants=[{"sku": upper}])
    now = clock.now()
    async with sessionmaker()() as s:
        with pytest.raises(IntegrityError):
            await s.execute(insert(Variant.__table__).values(
                id=new_id("var"), product_id=p["id"], sku=mixed(upper), title="x", options={}, attributes={},
                track_inventory=True, is_bundle=False, position=9, created_at=now, updated_at=now))
        await s.rollback()


async def test_variant_reads_and_writes_take_any_spelling(client, admin):
    upper = sku("READ")
    p = await create_product(client, admin, variants=[{"sku": upper}, {"sku": sku("OTHER")}])
    r = await client.get("/v1/variants", params={"sku": mixed(upper)}, headers=admin)
    assert r.status_code == 200 and r.json()["sku"] == upper
    r = await client.get(f"/v1/variants/{mixed(upper)}", headers=admin)
    assert r.status_code == 200 and r.json()["sku"] == upper
    r = await client.patch(f"/v1/variants/{mixed(upper)}", json={"title": "Renamed"}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["sku"] == upper and r.json()["title"] == "Renamed"
    # a bundle names its components in their stored spelling
    r = await client.post("/v1/products", headers=admin, json={
        "title": "Box", "type": "bundle",
        "variants": [{"sku": sku("BOX"), "components": [{"sku": mixed(upper), "quantity": 2}]}]})
    assert r.status_code == 201, r.text
    assert r.json()["variants"][0]["components"] == [{"sku": upper, "quantity": 2}]
    r = await client.post("/v1/products", headers=admin, json={
        "title": "Box2", "type": "bundle",
        "variants": [{"sku": sku("BOX"), "components": [{"sku": upper, "quantity": 1}, {"sku": mixed(upper), "quantity": 1}]}]})
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "variants[0].components[1].sku"
    r = await client.delete(f"/v1/variants/{mixed(p['variants'][1]['sku'])}", headers=admin)
    assert r.status_code == 204, r.text


async def test_import_upserts_by_sku_in_any_spelling(client, admin):
    upper = sku("IMP")
    p = await create_product(client, admin, variants=[{"sku": upper}])
    row = {"sku": mixed(upper), "product_handle": p["handle"], "title": "Imported title"}
    r = await client.post("/v1/catalog/import", content=orjson.dumps(row) + b"\n", headers=admin | NDJSON)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["created"], out["updated"], out["failed"]) == (0, 1, 0), out
    got = (await client.get(f"/v1/products/{p['id']}", headers=admin)).json()
    assert [(v["sku"], v["title"]) for v in got["variants"]] == [(upper, "Imported title")]
    # two spellings of one new SKU in one file: the second row is the duplicate
    new = sku("IMPNEW")
    rows = [{"sku": new, "product_title": "Fresh"}, {"sku": mixed(new), "product_title": "Fresh"}]
    r = await client.post("/v1/catalog/import", content=b"".join(orjson.dumps(x) + b"\n" for x in rows),
                          headers=admin | NDJSON)
    out = r.json()
    assert (out["created"], out["failed"]) == (1, 1), out
    assert out["errors"][0]["row"] == 2 and out["errors"][0]["errors"][0]["field"] == "sku"
    # a bundle row naming a component in another spelling
    row = {"sku": sku("IMPBOX"), "product_title": "Import box", "components": [{"sku": mixed(new), "quantity": 3}]}
    r = await client.post("/v1/catalog/import", content=orjson.dumps(row) + b"\n", headers=admin | NDJSON)
    assert r.json()["created"] == 1, r.text
    v = (await client.get(f"/v1/variants/{row['sku']}", headers=admin)).json()
    assert v["components"] == [{"sku": new, "quantity": 3}]


async def test_inventory_availability_and_transfers_take_any_spelling(client, admin):
    upper = sku("INV")
    wh = (await create_location(client, admin, "warehouse"))["code"]
    st = (await create_location(client, admin, "store"))["code"]
    web = (await create_channel(client, admin, "web", fulfillment_locations=[wh, st]))["code"]
    await create_product(client, admin, channels=[web], variants=[{"sku": upper}])
    low = mixed(upper)
    r = await client.put("/v1/inventory/levels", json={"location": wh, "levels": [{"sku": low, "on_hand": 7}]}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["data"][0]["sku"] == upper
    r = await client.put("/v1/inventory/levels", headers=admin,
                         json={"location": wh, "levels": [{"sku": low, "on_hand": 1}, {"sku": upper, "on_hand": 2}]})
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "levels[1].sku"
    r = await client.post("/v1/inventory/adjustments", json={"location": wh, "sku": low, "delta": 3, "reason": "receipt"},
                          headers=admin)
    assert r.status_code == 201, r.text
    assert (r.json()["sku"], r.json()["on_hand"]) == (upper, 10)
    levels = (await client.get("/v1/inventory", params={"sku": low}, headers=admin)).json()["data"]
    assert [(x["sku"], x["on_hand"]) for x in levels] == [(upper, 10)]
    moves = (await client.get("/v1/inventory/movements", params={"sku": low}, headers=admin)).json()["data"]
    assert {m["sku"] for m in moves} == {upper} and sum(m["quantity"] for m in moves) == 10
    r = await client.get("/v1/availability", params={"skus": f"{low},{upper}", "channel": web}, headers=admin)
    assert r.status_code == 200, r.text
    assert [(d["sku"], d["available_to_sell"]) for d in r.json()["data"]] == [(upper, 10)]
    r = await client.post("/v1/inventory/transfers", json={"from": wh, "to": st, "lines": [{"sku": low, "quantity": 4}]},
                          headers=admin)
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["lines"][0]["sku"] == upper
    assert (await client.post(f"/v1/inventory/transfers/{t['id']}/dispatch", headers=admin)).status_code == 200
    r = await client.post(f"/v1/inventory/transfers/{t['id']}/receive", json={"lines": [{"sku": low, "quantity": 4}]},
                          headers=admin)
    assert r.status_code == 200, r.text
    levels = (await client.get("/v1/inventory", params={"sku": upper, "location": st}, headers=admin)).json()["data"]
    assert levels[0]["on_hand"] == 4


async def test_prices_and_quotes_take_any_spelling(client, admin):
    upper = sku("PRC")
    web = (await create_channel(client, admin, "web", country="DE"))["code"]
    await create_product(client, admin, channels=[web], variants=[{"sku": upper}])
    code = f"pl-{upper.lower()}"
    r = await client.post("/v1/price-lists", json={"code": code, "currency": "EUR", "channels": [web]}, headers=admin)
    assert r.status_code == 201, r.text
    r = await client.put(f"/v1/price-lists/{code}/prices", json=[{"sku": mixed(upper), "amount": 1234}], headers=admin)
    assert r.status_code == 200, r.text
    r = await client.put(f"/v1/price-lists/{code}/prices", headers=admin,
                         json=[{"sku": mixed(upper), "amount": 1}, {"sku": upper, "amount": 2}])
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "[1].sku"
    prices = (await client.get(f"/v1/price-lists/{code}/prices", params={"sku": mixed(upper)}, headers=admin)).json()["data"]
    assert [(p["sku"], p["amount"]) for p in prices] == [(upper, 1234)]
    for tax_class, rate in (("standard", 1900),):
        r = await client.post("/v1/tax-rates", json={"country": "DE", "tax_class": tax_class, "rate_bp": rate}, headers=admin)
        assert r.status_code in (200, 201), r.text
    r = await client.post("/v1/pricing/quote", json={"channel": web, "lines": [{"sku": mixed(upper), "quantity": 2}]},
                          headers=admin)
    assert r.status_code == 200, r.text
    line = r.json()["lines"][0]
    assert (line["sku"], line["unit_price"]) == (upper, 1234)
    # a promotion naming the SKU in another spelling applies to it
    promo = f"P{upper.replace('-', '')}"
    r = await client.post("/v1/promotions", headers=admin, json={
        "code": promo, "name": "10 %", "type": "percent_off", "params": {"percent_bp": 1000}, "skus": [mixed(upper)],
        "channels": [web], "stackable": True})
    assert r.status_code == 201, r.text
    assert r.json()["skus"] == [upper]
    r = await client.post("/v1/pricing/quote", json={"channel": web, "lines": [{"sku": mixed(upper), "quantity": 1}]},
                          headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["lines"][0]["sku"] == upper and r.json()["discount_total"] == 123
