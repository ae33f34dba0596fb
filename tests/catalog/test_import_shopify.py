"""POST /v1/catalog/import reads Shopify's product CSV export as it is.

The fixture is written by hand after Shopify's documented export format (help.shopify.com,
"Using CSV files to import and export products"): the rows of one Handle are one product, the
first carries the product columns, the others only variant columns, image-only rows between
them; single-variant products have Option1 Name "Title" / Option1 Value "Default Title"."""
from pathlib import Path

from tests.catalog.test_import_columns import create_price_list, movements, prices
from tests.helpers import create_location
from tests.inventory.builders import level

CSV = {"Content-Type": "text/csv"}
EXPORT = (Path(__file__).parent / "fixtures" / "shopify_products_export.csv").read_bytes()
NOT_IMPORTED = [
    "Option1 Linked To", "Option2 Linked To", "Option3 Linked To", "Variant Inventory Policy",
    "Variant Fulfillment Service", "Variant Compare At Price", "Variant Requires Shipping", "Variant Taxable",
    "Image Src", "Image Position", "Image Alt Text", "Gift Card", "SEO Title", "SEO Description",
    "Google Shopping / Google Product Category", "Google Shopping / Gender", "Google Shopping / Age Group",
    "Google Shopping / MPN", "Google Shopping / Condition", "Google Shopping / Custom Product", "Variant Image",
    "Variant Weight Unit", "Variant Tax Code", "Cost per item", "Included / Germany", "Price / Germany",
    "Compare At Price / Germany",
]


async def test_shopify_export_as_it_is(client, admin):
    eur = await create_price_list(client, admin)
    store = (await create_location(client, admin, "store"))["code"]
    r = await client.post("/v1/catalog/import", params={"price_list": eur, "location": store}, content=EXPORT,
                          headers=admin | CSV)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["format"] == "shopify"
    # 10 variant rows (the image-only row is no row): 8 variants of 5 products, 2 rows fail
    assert (out["created"], out["failed"], out["products_created"]) == (8, 2, 5), out
    assert out["unknown_columns"] == NOT_IMPORTED
    assert out["warnings"] == ["1 variant(s) had a negative Variant Inventory Qty; their stock was set to 0."]
    errors = {e["row"]: e for e in out["errors"]}
    # file lines: the tee's description spans two lines, so the napkins start on line 10
    assert errors[10]["sku"] == "NAP-LIN-SAND"
    assert errors[10]["errors"][0]["field"] == "Variant Barcode" and "check digit" in errors[10]["errors"][0]["message"]
    assert errors[11]["errors"][0]["field"] == "Variant SKU"

    tee = (await client.get("/v1/products/organic-cotton-tee", headers=admin)).json()
    assert tee["title"] == "Organic Cotton Tee" and tee["status"] == "active"
    assert tee["description"] == '<p>Soft, heavy <strong>organic</strong> cotton.</p>\n<p>Fits "true to size".</p>'
    assert tee["category"] == "Apparel & Accessories/Clothing/Shirts & Tops"
    assert tee["attributes"] == {"vendor": "Nordwind", "type": "T-Shirt", "tags": ["organic", "summer", "tee"]}
    assert [(v["sku"], v["options"], v["title"], v["gtin"], v["weight_grams"]) for v in tee["variants"]] == [
        ("TEE-ORG-S-BLK", {"size": "S", "color": "Black"}, "S / Black", "4006381900010", 180),
        ("TEE-ORG-M-BLK", {"size": "M", "color": "Black"}, "M / Black", "4006381900027", 190),
        ("TEE-ORG-L-BLK", {"size": "L", "color": "Black"}, "L / Black", "4006381900034", 200),
    ]
    mug = (await client.get("/v1/products/ceramic-mug", headers=admin)).json()
    assert mug["status"] == "draft" and mug["variants"][0]["options"] == {}  # "Default Title" is no option
    assert mug["variants"][0]["title"] == "Ceramic Mug 350 ml" and mug["attributes"]["vendor"] == "Töpferei Alt"
    gift = (await client.get("/v1/products/gift-card", headers=admin)).json()
    assert [v["options"] for v in gift["variants"]] == [{"denominations": "€25"}, {"denominations": "€50"}]
    assert all(v["track_inventory"] is False and v["weight_grams"] is None for v in gift["variants"])
    # the napkins' first row failed, yet the product is made from the row that remains
    napkins = (await client.get("/v1/products/linen-napkins", headers=admin)).json()
    assert napkins["title"] == "Linen Napkins, set of 4" and [v["sku"] for v in napkins["variants"]] == ["NAP-LIN-SAGE"]
    assert (await client.get("/v1/products/wool-blanket-old", headers=admin)).json()["status"] == "archived"

    assert await prices(client, admin, eur) == {
        "TEE-ORG-S-BLK": 2490, "TEE-ORG-M-BLK": 2490, "TEE-ORG-L-BLK": 2650, "MUG-CER-350": 1200,
        "GIFT-25": 2500, "GIFT-50": 5000, "NAP-LIN-SAGE": 3400, "BLK-WOOL-OLD": 8900}
    assert (await level(client, admin, "TEE-ORG-S-BLK", store))["on_hand"] == 12
    assert (await level(client, admin, "TEE-ORG-L-BLK", store))["on_hand"] == 0  # -2 in Shopify
    assert (await level(client, admin, "MUG-CER-350", store))["on_hand"] == 30
    assert await movements(client, admin, "GIFT-25") == []  # not tracked: no stock

    # the same export again changes nothing
    again = (await client.post("/v1/catalog/import", params={"price_list": eur, "location": store}, content=EXPORT,
                               headers=admin | CSV)).json()
    assert (again["unchanged"], again["updated"], again["prices_set"], again["stock_set"]) == (8, 0, 0, 0), again

    # without a price list and location: the catalog only, and the answer says what was left out
    plain = (await client.post("/v1/catalog/import", content=EXPORT, headers=admin | CSV)).json()
    assert plain["unchanged"] == 8 and plain["prices_set"] == plain["stock_set"] == 0
    assert plain["warnings"][:2] == [
        "Variant Price was not imported: give ?price_list=<code> to import prices.",
        "Variant Inventory Qty was not imported: give ?location=<code> to import stock.",
    ]


async def test_shopify_details(client, admin):
    header = "Handle,Title,Option1 Name,Option1 Value,Variant SKU,Variant Grams,Published,Variant Price\n"
    text = (
        header
        + "sd-one,Sd One,Size,S,SD-ONE-S,abc,TRUE,1.00\n"   # grams not a number: that row fails
        + "sd-one,,,M,SD-ONE-M,,,1.00\n"                    # option name from the handle's first row
        + "sd-two,Sd Two,,,SD-TWO,,FALSE,\n"                # no Status column: Published decides
        + ",,,,SD-NONE,,,\n"                                # no handle
    )
    out = (await client.post("/v1/catalog/import", content=text.encode(), headers=admin | CSV)).json()
    assert out["format"] == "shopify" and out["created"] == 2 and out["failed"] == 2, out
    assert [(e["row"], e["errors"][0]["field"]) for e in out["errors"]] == [(2, "Variant Grams"), (5, "Handle")]
    one = (await client.get("/v1/products/sd-one", headers=admin)).json()
    assert one["status"] == "active" and one["variants"][0]["options"] == {"size": "M"}
    assert (await client.get("/v1/products/sd-two", headers=admin)).json()["status"] == "draft"
