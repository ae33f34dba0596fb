"""API keys: created with a random secret shown once, stored as a SHA-256 hash.

Secrets carry 256 bits of randomness, so a fast hash is safe (nothing to brute
force) and lets every request authenticate with one indexed lookup.
"""
import hashlib
import secrets

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.auth.models import ApiKey
from app.auth.principal import Principal
from app.channels.models import Channel
from app.core import clock
from app.core.errors import ApiError, not_found, validation_error
from app.core.ids import new_id
from app.inventory.models import Location

SECRET_PREFIX = "uc_"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(role: str) -> str:
    return f"{SECRET_PREFIX}{role[:4]}_{secrets.token_urlsafe(32)}"


# Built once: every authenticated request runs it (the key is looked up each time, so a
# revocation takes effect on the next request).
_KEY_LOOKUP = select(
    ApiKey.id, ApiKey.role, ApiKey.channel_id, ApiKey.channel_code,
    ApiKey.location_id, ApiKey.location_code, ApiKey.rate_limit,
).where(ApiKey.secret_hash == bindparam("secret_hash"), ApiKey.revoked_at.is_(None))


async def principal_for_secret(session: AsyncSession | AsyncConnection, secret: str) -> Principal | None:
    if not secret or len(secret) > 200:
        return None
    row = (await session.execute(_KEY_LOOKUP, {"secret_hash": hash_secret(secret)})).first()
    if row is None:
        return None
    return Principal(
        key_id=row.id, role=row.role, channel_id=row.channel_id, channel=row.channel_code,
        location_id=row.location_id, location=row.location_code, rate_limit=row.rate_limit,
    )


async def _resolve_channel(session: AsyncSession, ref: str) -> Channel:
    ch = (await session.execute(select(Channel).where((Channel.code == ref) | (Channel.id == ref)))).scalars().first()
    if ch is None:
        raise validation_error("channel", f"Unknown channel {ref!r}.")
    return ch


async def _resolve_location(session: AsyncSession, ref: str) -> Location:
    loc = (await session.execute(select(Location).where((Location.code == ref) | (Location.id == ref)))).scalars().first()
    if loc is None:
        raise validation_error("location", f"Unknown location {ref!r}.")
    return loc


BINDING_RULES = {
    # role: (channel required?, allowed channel types, location required?, allowed location types)
    "admin": (False, None, False, None),
    "storefront": (True, {"web", "app", "social"}, False, None),
    "pos": (False, {"pos"}, True, {"store"}),
    "marketplace": (True, {"marketplace"}, False, None),
    "dropshipper": (False, None, True, {"partner"}),
}


async def create_api_key(
    session: AsyncSession, *, name: str, role: str, channel: str | None = None,
    location: str | None = None, rate_limit: str | None = None,
) -> tuple[ApiKey, str]:
    if role not in BINDING_RULES:
        raise validation_error("role", f"Unknown role {role!r}; one of {', '.join(BINDING_RULES)}.")
    need_channel, channel_types, need_location, location_types = BINDING_RULES[role]
    errors = []
    if need_channel and not channel:
        errors.append({"field": "channel", "message": f"A {role} key must be bound to a channel."})
    if need_location and not location:
        errors.append({"field": "location", "message": f"A {role} key must be bound to a location."})
    if channel and channel_types is None:
        errors.append({"field": "channel", "message": f"A {role} key is not bound to a channel."})
    if location and location_types is None:
        errors.append({"field": "location", "message": f"A {role} key is not bound to a location."})
    if errors:
        raise ApiError(422, "validation_error", errors[0]["message"], errors=errors)
    ch = await _resolve_channel(session, channel) if channel else None
    loc = await _resolve_location(session, location) if location else None
    if ch is not None and ch.type not in channel_types:
        raise validation_error("channel", f"A {role} key needs a channel of type {', '.join(sorted(channel_types))}; {ch.code!r} is {ch.type}.")
    if loc is not None and loc.type not in location_types:
        raise validation_error("location", f"A {role} key needs a location of type {', '.join(sorted(location_types))}; {loc.code!r} is {loc.type}.")
    secret = new_secret(role)
    key = ApiKey(
        id=new_id("key"), name=name, role=role, secret_hash=hash_secret(secret), prefix=secret[:12],
        channel_id=ch.id if ch else None, channel_code=ch.code if ch else None,
        location_id=loc.id if loc else None, location_code=loc.code if loc else None,
        rate_limit=rate_limit,
    )
    session.add(key)
    await session.commit()
    return key, secret


async def get_api_key(session: AsyncSession, key_id: str) -> ApiKey:
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise not_found("API key", key_id)
    return key


async def revoke_api_key(session: AsyncSession, key_id: str) -> ApiKey:
    key = await get_api_key(session, key_id)
    if key.revoked_at is None:
        await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=clock.now()))
        await session.commit()
        await session.refresh(key)
    return key
