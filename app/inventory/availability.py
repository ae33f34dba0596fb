"""GET /v1/availability: per SKU, what each location can sell and what the channel can sell.

`available_to_sell` sums the channel's fulfillment locations (all active ship-capable
locations when the channel names none, or when no channel is given). `locations` lists the
locations with stock records for the SKU: for a storefront or marketplace key its channel's
fulfillment locations, for admin and POS keys every active location. With `near=lat,lon`
they are sorted by distance (great-circle, km; locations without coordinates last) and
`radius_km` keeps the ones within it; otherwise by priority, then code. `pickup` is true
where the location offers pickup and has the SKU available. Bundles are derived from their
components per location. Expired holds no longer count even before the worker releases them.
Unknown SKUs (for storefront and marketplace keys: SKUs not visible in their channel) answer
422 unknown_sku with one `errors[]` entry (field `skus`) naming each, rather than a per-SKU
"not found".
"""
import math
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.catalog.service import canonical, lookup_skus
from app.core.errors import ApiError
from app.inventory import service

EARTH_KM = 6371.0088
MAX_SKUS = 100


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(a)))


def parse_skus(raw: str) -> list[str]:
    skus = list(dict.fromkeys(s.strip() for s in raw.split(",") if s.strip()))
    if not skus:
        raise ApiError(422, "validation_error", "Give at least one SKU.", errors=[{"field": "skus", "message": "Required."}])
    if len(skus) > MAX_SKUS:
        raise ApiError(422, "validation_error", f"At most {MAX_SKUS} SKUs per request.",
                       errors=[{"field": "skus", "message": f"At most {MAX_SKUS}."}])
    return skus


def parse_near(raw: str | None) -> tuple[float, float] | None:
    if raw is None:
        return None
    try:
        lat_s, lon_s = raw.split(",")
        lat, lon = float(lat_s), float(lon_s)
    except ValueError:
        lat = lon = float("nan")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ApiError(422, "validation_error", "near must be 'lat,lon' in degrees, e.g. near=53.55,9.99.",
                       errors=[{"field": "near", "message": "Expected 'lat,lon'."}])
    return lat, lon


async def view(session: AsyncSession, who: Principal, *, skus: list[str], channel: str | None,
               near: tuple[float, float] | None, radius_km: float | None, location: str | None,
               in_stock: bool = False, limit_locations: int | None = None) -> dict:
    """The availability answer. `in_stock` and `limit_locations` trim the per-location list to
    what a product page ("in stock at 3 stores near you") or a POS ("who has it") shows; they
    never change `available_to_sell`."""
    from app.pricing.service import load_channel  # the channels row (422 when unknown)

    if who.role in ("storefront", "marketplace"):
        channel = channel or who.channel
        who.channel_or_404(channel)
    elif who.role == "pos" and channel is None:
        channel = who.channel
    if radius_km is not None and near is None:
        raise ApiError(422, "validation_error", "radius_km needs near=lat,lon.",
                       errors=[{"field": "radius_km", "message": "Give near as well."}])
    ch = await load_channel(session, channel) if channel else None
    bound = who.role in ("storefront", "marketplace")
    facts = await lookup_skus(session, skus, channel=ch.code if (bound and ch is not None) else None)
    stored = canonical(skus, facts)
    unknown = [s for s in skus if s not in stored]
    if unknown:
        errors = [{"field": "skus", "message": f"Unknown SKU {s!r}."} for s in unknown]
        raise service.invalid_fields(errors, errors)
    skus = list(dict.fromkeys(stored[s] for s in skus))  # any spelling in, the stored one out
    comp = {c for s in skus for c, _ in facts[s].components} - set(facts)
    if comp:
        facts.update(await lookup_skus(session, comp))
    locs: dict[str, tuple] = {}  # code -> (type, lat, lon, can_ship, can_pickup, priority)
    stock = await service.availability(session, skus, None, facts=facts, locations_out=locs)
    fulfil = set(ch.fulfillment_locations or []) if ch is not None else set()
    sell_from = fulfil or {c for c, r in locs.items() if r[3]}
    listed = fulfil if bound and fulfil else None
    if location is not None:
        known = await service.locations_by_code(session, [location])
        if location not in known or (listed is not None and known[location].code not in listed):
            raise ApiError(422, "validation_error", f"Unknown location {location!r}.",
                           errors=[{"field": "location", "message": f"Unknown location {location!r}."}])
        listed = {known[location].code}
    order = []  # (sort key, code, distance, can_pickup) in the answer's order
    for code, (type_, lat, lon, ship, pickup, priority) in locs.items():
        if listed is not None and code not in listed:
            continue
        dist = None
        if near is not None and lat is not None and lon is not None:
            dist = round(distance_km(near[0], near[1], lat, lon), 1)
        if radius_km is not None and (dist is None or dist > radius_km):
            continue
        key = (dist is None, dist or 0, code) if near is not None else (priority, code)
        order.append((key, code, dist, bool(pickup)))
    order.sort()
    data = []
    for sku in skus:
        per = stock.get(sku)
        if per is None:  # not stocked: no limit anywhere
            data.append({"sku": sku, "tracked": False, "available_to_sell": None, "locations": []})
            continue
        entries = [{"location": code, "available": per[code], "distance_km": dist, "pickup": pickup and per[code] > 0}
                   for _, code, dist, pickup in order if code in per and (per[code] > 0 or not in_stock)]
        if limit_locations is not None:
            del entries[limit_locations:]
        data.append({"sku": sku, "tracked": True, "available_to_sell": sum(a for c, a in per.items() if c in sell_from),
                     "locations": entries})
    return {"channel": ch.code if ch is not None else None, "data": data}
