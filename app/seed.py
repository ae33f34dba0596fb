"""Demo retailer for `python -m app.cli seed-demo`. Idempotent: existing codes are left as they are.

Each domain adds its part here by calling its own service.
"""
from sqlalchemy import select

from app.channels.models import Channel
from app.channels.schemas import ChannelCreate
from app.channels.service import create_channel
from app.core.db import dispose_engine, unit_of_work
from app.locations.service import create_location
from app.locations.models import Location
from app.locations.schemas import LocationCreate

LOCATIONS = [
    {"code": "wh-central", "name": "Zentrallager Kassel", "type": "warehouse", "priority": 10,
     "address": {"line1": "Lagerstraße 1", "postal_code": "34117", "city": "Kassel", "country": "DE"}, "lat": 51.3127, "lon": 9.4797},
    {"code": "st-hamburg", "name": "Store Hamburg Mönckebergstraße", "type": "store",
     "address": {"line1": "Mönckebergstraße 7", "postal_code": "20095", "city": "Hamburg", "country": "DE"}, "lat": 53.5503, "lon": 10.0006},
    {"code": "st-berlin", "name": "Store Berlin Mitte", "type": "store",
     "address": {"line1": "Rosenthaler Straße 40", "postal_code": "10178", "city": "Berlin", "country": "DE"}, "lat": 52.5262, "lon": 13.4024},
    {"code": "st-munich", "name": "Store München Kaufingerstraße", "type": "store",
     "address": {"line1": "Kaufingerstraße 10", "postal_code": "80331", "city": "München", "country": "DE"}, "lat": 48.1374, "lon": 11.5714},
    # the wine partner before the warehouse (priority 5 < 10): an order it can ship whole (wine
    # only) is drop-shipped; anything else the warehouse covers goes there
    {"code": "pt-weinhaus", "name": "Weinhaus Keller (dropship partner)", "type": "partner", "priority": 5,
     "address": {"line1": "Weinstraße 3", "postal_code": "67433", "city": "Neustadt", "country": "DE"}, "lat": 49.3539, "lon": 8.1397},
]
ALL_LOCATIONS = [loc["code"] for loc in LOCATIONS]
CHANNELS = [
    {"code": "web-de", "name": "Webshop Deutschland", "type": "web", "currency": "EUR", "country": "DE",
     "price_lists": ["retail-eur"], "fulfillment_locations": ALL_LOCATIONS},
    {"code": "app-de", "name": "Mobile App", "type": "app", "currency": "EUR", "country": "DE",
     "price_lists": ["retail-eur"], "fulfillment_locations": ALL_LOCATIONS},
    {"code": "pos-de", "name": "Filialen (POS)", "type": "pos", "currency": "EUR", "country": "DE",
     "price_lists": ["retail-eur"], "fulfillment_locations": ["st-hamburg", "st-berlin", "st-munich"]},
    {"code": "amazon-de", "name": "Amazon Marketplace DE", "type": "marketplace", "currency": "EUR", "country": "DE",
     "price_lists": ["retail-eur"], "fulfillment_locations": ["wh-central", "pt-weinhaus"]},
]


async def seed() -> str:
    made = []
    try:
        async with unit_of_work() as session:
            made += await seed_locations_and_channels(session)
            for extra in _domain_seeders():
                made.extend(await extra(session))
            await _name_price_lists(session)
    finally:
        await dispose_engine()
    return "seeded: " + (", ".join(made) if made else "nothing new (already seeded)")


async def seed_locations_and_channels(session) -> list[str]:
    """The demo locations and channels that are missing (what the domain seeders build on)."""
    made = []
    have = set((await session.execute(select(Location.code))).scalars())
    for loc in LOCATIONS:
        if loc["code"] not in have:
            await create_location(session, LocationCreate(**loc))
            made.append(f"location {loc['code']}")
    have = set((await session.execute(select(Channel.code))).scalars())
    for ch in CHANNELS:
        if ch["code"] not in have:
            # price lists are named once the pricing seed has created them (_name_price_lists)
            await create_channel(session, ChannelCreate(**{**ch, "price_lists": []}))
            made.append(f"channel {ch['code']}")
    return made


async def _name_price_lists(session) -> None:
    """Give each demo channel its price lists (in priority order) once they exist."""
    from app.channels.service import _check_price_list_codes
    from app.core.errors import ApiError

    for spec in CHANNELS:
        ch = (await session.execute(select(Channel).where(Channel.code == spec["code"]))).scalars().first()
        if ch is None or ch.price_lists:
            continue
        try:
            await _check_price_list_codes(session, spec["price_lists"], ch.currency)
        except ApiError:
            continue  # pricing not seeded: leave the channel without lists
        ch.price_lists = spec["price_lists"]
        ch.version += 1
    await session.flush()


def _domain_seeders():
    """Domain seeders, each `async def seed_demo(session) -> list[str]`, in dependency order."""
    import importlib

    out = []
    for mod in ("app.catalog.seed", "app.pricing.seed", "app.inventory.seed", "app.customers.seed",
                "app.orders.seed"):
        try:
            out.append(importlib.import_module(mod).seed_demo)
        except ModuleNotFoundError as exc:
            if exc.name is None or not mod.startswith(exc.name):
                raise
    return out
