"""Demo catalog for `python -m app.cli seed-demo`: fashion with sizes and colours,
groceries (a wine, a cheese, coffee, chocolate) and a gift-box bundle.

Idempotent: a product whose handle (or any of whose SKUs) already exists is left alone.
Other domains' seeds (prices, stock) refer to these SKUs: see `SEED_SKUS`.
"""
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.codes import make_gtin
from app.catalog.schemas import ProductCreate
from app.catalog.service import P, V, create_product, existing_channels
from app.core.sql import where_in

DEMO_CHANNELS = ["web-de", "app-de", "pos-de", "amazon-de"]
SIZES = ["S", "M", "L"]


def _g(n: int) -> str:
    """A valid EAN-13 in the demo company's prefix 4012345."""
    return make_gtin(f"4012345{n:05d}")


def _fashion(handle, title, category, prefix, colours, sizes, base, weight, attributes):
    variants = []
    n = base
    for code, colour in colours:
        for size in sizes:
            variants.append({"sku": f"{prefix}-{code}-{size}", "gtin": _g(n), "options": {"size": size, "colour": colour},
                             "weight_grams": weight})
            n += 1
    return {"handle": handle, "title": title, "category": category, "tax_class": "standard",
            "attributes": attributes, "variants": variants}


PRODUCTS = [
    _fashion("organic-cotton-t-shirt", "Organic Cotton T-Shirt", "fashion/t-shirts", "TS",
             [("BLK", "black"), ("WHT", "white")], SIZES, 1, 180,
             {"brand": "Nordfaser", "material": "100% organic cotton", "care": "30 °C"}),
    _fashion("merino-hoodie", "Merino Hoodie", "fashion/hoodies", "HOOD",
             [("GRY", "grey"), ("NVY", "navy")], ["M", "L"], 20, 520,
             {"brand": "Nordfaser", "material": "merino wool"}),
    {"handle": "slim-jeans", "title": "Slim Jeans", "category": "fashion/jeans", "tax_class": "standard",
     "attributes": {"brand": "Elbdenim", "material": "98% cotton, 2% elastane"},
     "variants": [{"sku": f"JEANS-BLU-{w}", "gtin": _g(30 + i), "options": {"waist": str(w), "colour": "blue"},
                   "weight_grams": 650} for i, w in enumerate((30, 32, 34))]},
    {"handle": "riesling-trocken-2023", "title": "Riesling trocken 2023, 0,75 l", "category": "grocery/wine",
     "tax_class": "standard", "description": "Mosel Riesling, crisp and dry. Contains sulphites.",
     "attributes": {"vintage": 2023, "region": "Mosel", "alcohol_percent": 11.5, "volume_ml": 750, "age_restricted": True},
     "variants": [{"sku": "WINE-RIES-075", "gtin": _g(40), "title": "0,75 l bottle", "weight_grams": 1300}]},
    {"handle": "gouda-mittelalt-400g", "title": "Gouda mittelalt, 400 g", "category": "grocery/cheese",
     "tax_class": "reduced", "attributes": {"milk": "cow", "ripening_weeks": 16, "chilled": True},
     "variants": [{"sku": "CHEESE-GOUDA", "gtin": _g(41), "title": "400 g", "weight_grams": 400}]},
    {"handle": "espresso-beans-1kg", "title": "Espresso Bohnen, 1 kg", "category": "grocery/coffee",
     "tax_class": "reduced", "attributes": {"roast": "dark", "origin": "Brazil, Ethiopia"},
     "variants": [{"sku": "COFFEE-ESP-1KG", "gtin": _g(42), "title": "1 kg", "weight_grams": 1000}]},
    {"handle": "dark-chocolate-70", "title": "Zartbitterschokolade 70 %, 100 g", "category": "grocery/chocolate",
     "tax_class": "reduced", "attributes": {"cocoa_percent": 70, "vegan": True},
     "variants": [{"sku": "CHOC-DARK-100", "gtin": _g(43), "title": "100 g", "weight_grams": 100}]},
    {"handle": "gift-box", "type": "bundle", "title": "Geschenkbox Wein & Käse", "category": "gifts/boxes",
     "tax_class": "standard", "description": "A Riesling, a Gouda and dark chocolate in a gift box.",
     "attributes": {"gift_wrap": True},
     "variants": [{"sku": "GIFT-BOX", "gtin": _g(50), "title": "Gift box", "weight_grams": 1900,
                   "components": [{"sku": "WINE-RIES-075", "quantity": 1}, {"sku": "CHEESE-GOUDA", "quantity": 1},
                                  {"sku": "CHOC-DARK-100", "quantity": 1}]}]},
]
SEED_SKUS = [v["sku"] for p in PRODUCTS for v in p["variants"]]


async def seed_demo(session: AsyncSession) -> list[str]:
    made: list[str] = []
    channels = await existing_channels(session, DEMO_CHANNELS)
    visible = [c for c in DEMO_CHANNELS if c in channels]
    for spec in PRODUCTS:
        skus = [v["sku"] for v in spec["variants"]]
        taken = (await session.execute(
            select(P.c.id).where(P.c.handle == spec["handle"]).union_all(select(V.c.id).where(where_in(session, V.c.sku, skus)))
        )).first()
        if taken:
            continue
        await create_product(session, ProductCreate(**spec, status="active", channels=visible))
        made.append(f"product {spec['handle']}")
    return made

