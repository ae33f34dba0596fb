"""API keys: created with a random secret shown once, stored as a SHA-256 hash.

Secrets carry 256 bits of randomness, so a fast hash is safe (nothing to brute
force) and lets every request authenticate with one indexed lookup.
"""
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.auth.models import ApiKey
from app.auth.principal import Principal
from app.channels.models import Channel
from app.core import clock
from app.core.cache import Cache
from app.core.errors import ApiError, not_found, validation_error
from app.core.ids import new_id
from app.locations.models import Location

SECRET_PREFIX = "uc_"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(role: str) -> str:
    return f"{SECRET_PREFIX}{role[:4]}_{secrets.token_urlsafe(32)}"


# Built once: every authenticated request runs it (the key is looked up each time, so a
# revocation takes effect on the next request).
_KEY_LOOKUP = select(
    ApiKey.id, ApiKey.role, ApiKey.channel_id, ApiKey.channel_code,
    ApiKey.location_id, ApiKey.location_code, ApiKey.rate_limit, ApiKey.last_used_at,
).where(ApiKey.secret_hash == bindparam("secret_hash"), ApiKey.revoked_at.is_(None))
_TOUCH = (update(ApiKey).where(ApiKey.id == bindparam("key_id"),
                               (ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < bindparam("stale_before")))
          .values(last_used_at=bindparam("now")))
LAST_USED_RESOLUTION = timedelta(minutes=1)


_keys = Cache("api_keys")  # secret hash -> (Principal, last_used_at as this process last saw or wrote it)


async def principal_for_secret(conn: AsyncSession | AsyncConnection | Callable[[], Awaitable[AsyncConnection]],
                               secret: str) -> Principal | None:
    """The key's principal, or None (unknown, revoked). Known keys are served from the process's
    cache, which a revocation drops at commit in every worker (app/core/cache.py); unknown
    secrets are never cached, so a new key works at once. `last_used_at` is written at most once
    a minute per key (a conditional UPDATE, so concurrent requests write it once): on the
    request's autocommit connection, its own tiny transaction, never the request's. `conn` may be
    a coroutine function giving the connection, so a cached key needs none."""
    if not secret or len(secret) > 200:
        return None
    digest = hash_secret(secret)
    now = clock.now()
    hit = _keys.get(digest)
    if hit is not None:
        principal, last_used = hit
        if last_used is None or now - last_used >= LAST_USED_RESOLUTION:
            await _touch(conn, principal.key_id, now)
            hit[1] = now
        return principal
    generation = _keys.generation
    db = await _connection(conn)
    row = (await db.execute(_KEY_LOOKUP, {"secret_hash": digest})).first()
    if row is None:
        return None
    last_used = row.last_used_at
    if last_used is None or now - last_used >= LAST_USED_RESOLUTION:
        await _touch(db, row.id, now)
        last_used = now
    principal = Principal(
        key_id=row.id, role=row.role, channel_id=row.channel_id, channel=row.channel_code,
        location_id=row.location_id, location=row.location_code, rate_limit=row.rate_limit,
    )
    _keys.put(digest, [principal, last_used], generation)
    return principal


async def _connection(conn):
    return await conn() if callable(conn) else conn


async def _touch(conn, key_id: str, now) -> None:
    db = await _connection(conn)
    await db.execute(_TOUCH, {"key_id": key_id, "stale_before": now - LAST_USED_RESOLUTION, "now": now})


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
    "pos": (True, {"pos"}, True, {"store"}),  # its store and the pos channel it sells in
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
    await session.flush()
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
        await session.refresh(key)
    return key
