"""Demo prices: a retail list for every demo channel (with a tier price and the gift box's own
price), a better list for loyalty members, a sale list that wins over retail for the hoodies
(it names the demo channels and has a higher priority; the channels name only retail-eur, see
docs/pricing.md), German VAT, "3 für 2" on coffee and chocolate, a Rabattstaffel on wine and a
coupon. Idempotent: what exists is left alone."""
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.service import existing_channels, lookup_skus
from app.core.ids import new_id
from app.pricing import promotion_rules
from app.pricing.models import PriceEntry, PriceList, Promotion, TaxRate

DEMO_CHANNELS = ["web-de", "app-de", "pos-de", "amazon-de"]
RETAIL = {  # sku prefix or sku -> gross EUR cents
    "TS-": 1999, "HOOD-": 5999, "JEANS-": 7999, "WINE-RIES-075": 1299, "CHEESE-GOUDA": 449,
    "COFFEE-ESP-1KG": 1899, "CHOC-DARK-100": 229, "GIFT-BOX": 1799,
}
TIERS = [("WINE-RIES-075", 6, 1099)]  # six bottles or more: 10.99 each
LOYALTY = {"COFFEE-ESP-1KG": 1699, "WINE-RIES-075": 1199}
SALE = {"HOOD-": 4999}  # the merino hoodies: 49.99 instead of 59.99
LISTS = [  # code, name, customer group, priority, prices (None: RETAIL with its tiers)
    ("retail-eur", "Retail EUR", None, 0, None),
    ("loyalty-eur", "Loyalty members EUR", "loyalty", 0, LOYALTY),
    ("sale-eur", "Winter sale EUR", None, 10, SALE),
]
TAX = [("DE", "standard", 1900), ("DE", "reduced", 700), ("DE", "zero", 0)]
PROMOTIONS = [
    {"code": "3fuer2", "name": "3 für 2 auf Kaffee und Schokolade", "type": "buy_x_pay_y", "params": {"x": 3, "y": 2},
     "categories": ["grocery/coffee", "grocery/chocolate"], "priority": 10, "stackable": False},
    {"code": "wein-staffel", "name": "Weinstaffel: ab 3 Flaschen 5 %, ab 6 Flaschen 10 %", "type": "tiered_percent",
     "params": {"tiers": [{"min_quantity": 3, "percent_bp": 500}, {"min_quantity": 6, "percent_bp": 1000}]},
     "categories": ["grocery/wine"], "priority": 5, "stackable": True},
    {"code": "willkommen10", "name": "10 % Willkommensrabatt", "type": "percent_off", "params": {"percent_bp": 1000},
     "coupon_code": "WILLKOMMEN10", "priority": 0, "stackable": True},
]


def _price(table: dict[str, int], sku: str) -> int | None:
    """A SKU's amount in `table`, whose keys are SKUs or prefixes ending in '-'."""
    for key, amount in table.items():
        if sku == key or (key.endswith("-") and sku.startswith(key)):
            return amount
    return None


async def seed_demo(session: AsyncSession) -> list[str]:
    made: list[str] = []
    have_lists = set((await session.execute(select(PriceList.code))).scalars())
    channels = sorted(await existing_channels(session, DEMO_CHANNELS))
    from app.catalog.seed import SEED_SKUS

    skus = await lookup_skus(session, SEED_SKUS)
    for code, name, group, priority, table in LISTS:
        if code in have_lists:
            continue
        pl = PriceList(id=new_id("pl"), code=code, name=name, currency="EUR", channels=channels,
                       customer_group=group, priority=priority)
        session.add(pl)
        await session.flush()
        rows = []
        for sku in skus:
            amount = _price(RETAIL if table is None else table, sku)
            if amount is not None:
                rows.append(PriceEntry(price_list_id=pl.id, sku=sku, min_quantity=1, amount=amount))
        if table is None:
            rows += [PriceEntry(price_list_id=pl.id, sku=s, min_quantity=q, amount=a) for s, q, a in TIERS if s in skus]
        session.add_all(rows)
        made.append(f"price list {code} ({len(rows)} prices)")
    have_tax = {(c, t) for c, t in (await session.execute(select(TaxRate.country, TaxRate.tax_class))).all()}
    for country, tax_class, rate in TAX:
        if (country, tax_class) not in have_tax:
            session.add(TaxRate(id=new_id("tax"), country=country, tax_class=tax_class, rate_bp=rate))
            made.append(f"tax rate {country}/{tax_class} {rate / 100:g} %")
    have_promos = set((await session.execute(select(Promotion.code))).scalars())
    for spec in PROMOTIONS:
        if spec["code"] in have_promos:
            continue
        assert not promotion_rules.validate_params(spec["type"], spec["params"])
        session.add(Promotion(id=new_id("promo"), **spec))
        made.append(f"promotion {spec['code']}")
    await session.flush()
    return made
