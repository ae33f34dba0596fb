"""Which events a key may read, and the payload it gets. One rule for GET /v1/events (as SQL)
and for webhook fan-out (in Python), so a poller and a subscriber of one key see the same.

- admin: every event.
- storefront, marketplace: the events of its channel (`events.channels` names it: the event's
  own channel, such as its channel.updated, or a product / price list visible there) and the
  stock and location changes at the channel's fulfillment locations; never webhook_endpoint.*,
  promotion.* or tax_rate.* (admin only, like the resources: a promotion carries its coupon).
- pos: the same for its pos channel, plus everything at its store (`events.location`).
- dropshipper: fulfillment.* at its partner location only, and of those only what its work
  queue shows (`partner_view`): no customer e-mail, phone, prices or totals, no other
  location's name or stock from the sourcing record.
"""
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, false, not_, or_, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.events.models import Event
from app.events.types import ADMIN_ONLY_PREFIXES, CHANNEL_LOCATION_TYPES, DROPSHIPPER_PREFIXES

E = Event.__table__


@dataclass(frozen=True, slots=True)
class Scope:
    role: str
    channel: str | None = None
    location: str | None = None
    channel_locations: frozenset[str] = field(default_factory=frozenset)


async def scope_of(session: AsyncSession, role: str, channel: str | None, location: str | None) -> Scope:
    """The scope of a key (its channel's fulfillment locations looked up, from the channel cache)."""
    locations: frozenset[str] = frozenset()
    if channel and role in ("storefront", "marketplace", "pos"):
        from app.channels.service import channel_row

        row = await channel_row(session, channel)
        locations = frozenset(row.fulfillment_locations or ()) if row is not None else frozenset()
    return Scope(role, channel, location, locations)


async def scope_for(session: AsyncSession, who: Principal) -> Scope:
    return await scope_of(session, who.role, who.channel, who.location)


def may_read(scope: Scope, type_: str, channels: str | None, location: str | None) -> bool:
    if scope.role == "admin":
        return True
    if scope.role == "dropshipper":
        return type_.startswith(DROPSHIPPER_PREFIXES) and scope.location is not None and location == scope.location
    if type_.startswith(ADMIN_ONLY_PREFIXES):
        return False
    if scope.channel and channels and f",{scope.channel}," in channels:
        return True
    if type_ in CHANNEL_LOCATION_TYPES and location is not None and location in scope.channel_locations:
        return True
    return scope.role == "pos" and scope.location is not None and location == scope.location


def sql_filter(scope: Scope):
    """`may_read` as a WHERE clause over `events`."""
    if scope.role == "admin":
        return true()
    if scope.role == "dropshipper":
        if scope.location is None:
            return false()
        return and_(_any_prefix(DROPSHIPPER_PREFIXES), E.c.location == scope.location)
    alternatives = []
    if scope.channel:
        alternatives.append(E.c.channels.contains(f",{scope.channel},", autoescape=True))
    if scope.channel_locations:
        alternatives.append(and_(E.c.type.in_(CHANNEL_LOCATION_TYPES),
                                 E.c.location.in_(sorted(scope.channel_locations))))
    if scope.role == "pos" and scope.location is not None:
        alternatives.append(E.c.location == scope.location)
    if not alternatives:
        return false()
    return and_(not_(_any_prefix(ADMIN_ONLY_PREFIXES)), or_(*alternatives))


def _any_prefix(prefixes: tuple[str, ...]):
    return or_(*(E.c.type.startswith(p, autoescape=True) for p in prefixes))


# What a partner sees of a fulfillment event: the fulfillment as its work queue shows it.
_PARTNER_FIELDS = ("id", "object", "order", "order_number", "location", "method", "kind", "status", "shipping_address",
                   "previous_status", "version", "tracking", "carrier", "tracking_number", "reason", "replaces",
                   "expires_at", "created_at", "updated_at", "declined_lines", "kept_in")


def partner_view(data: dict[str, Any]) -> dict[str, Any]:
    out = {k: data[k] for k in _PARTNER_FIELDS if k in data}
    if isinstance(data.get("lines"), list):
        out["lines"] = [{k: ln.get(k) for k in ("order_line_id", "sku", "quantity", "title") if k in ln}
                        for ln in data["lines"] if isinstance(ln, dict)]
    if isinstance(data.get("sourcing"), dict):
        out["sourcing"] = {"rule": data["sourcing"].get("rule")}
    return out


def payload(scope: Scope, type_: str, data: dict[str, Any]) -> dict[str, Any]:
    """The event's data as this scope gets it."""
    if scope.role == "dropshipper":
        return partner_view(data if isinstance(data, dict) else {})
    return data


def render(scope: Scope, row: Any) -> dict[str, Any]:
    """{id, type, created_at, data}: the envelope of GET /v1/events and of every webhook body."""
    from app.core.responses import rfc3339

    return {"id": row.id, "type": row.type, "created_at": rfc3339(row.created_at),
            "data": payload(scope, row.type, row.data)}
