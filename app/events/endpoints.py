"""Webhook endpoints: create, read, change, delete, rotate the secret.

An endpoint belongs to the API key that created it and receives what that key may read
(scope.py): admin everything, a marketplace key its channel's events, a dropshipper key the
fulfillment events of its own location. Admin, marketplace and dropshipper keys may own
endpoints; a subscription to a type the key may never read answers 403 naming the types.
Admin keys see every endpoint, other keys their own (another key's: 404).

URLs must be http(s), must not point at this API itself, nor at link-local (cloud metadata)
addresses, nor at loopback or private networks unless WEBHOOK_ALLOW_PRIVATE_URLS (urls.py).
"""
from datetime import timedelta
from typing import Any

from fastapi import Request
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import clock
from app.core.concurrency import check_version
from app.core.errors import ApiError, validation_error
from app.core.ids import new_id
from app.core.responses import rfc3339
from app.events import signing
from app.events.urls import check_url
from app.events.models import WebhookDelivery, WebhookEndpoint
from app.events.schemas import EndpointCreate, EndpointUpdate
from app.events.types import ENDPOINT_ROLES, WILDCARD, readable_by_role, unknown

W = WebhookEndpoint.__table__
D = WebhookDelivery.__table__


def render(row: Any, *, secret: str | None = None) -> dict:
    return {
        "id": row.id, "object": "webhook_endpoint", "api_key": row.api_key_id, "url": row.url,
        "description": row.description, "events": list(row.events or []), "active": row.active,
        "status": row.status if row.active else "disabled", "secret": secret,
        "secret_rotation": ({"previous_secret_expires_at": rfc3339(row.previous_expires_at)}
                            if row.previous_secret and row.previous_expires_at and row.previous_expires_at > clock.now()
                            else None),
        "failing_since": rfc3339(row.failing_since), "version": row.version,
        "created_at": rfc3339(row.created_at), "updated_at": rfc3339(row.updated_at),
    }


def may_own(who: Principal) -> None:
    if who.role not in ENDPOINT_ROLES:
        raise ApiError(403, "forbidden", f"The {who.role} role may not receive webhooks "
                                         f"(admin, marketplace and dropshipper keys may).")


def check_events(who: Principal, events: list[str], field: str = "events") -> list[str]:
    """Known types only (422 naming the others), each readable by the key's role (403)."""
    wanted = list(dict.fromkeys(events))
    bad = unknown(wanted)
    if bad:
        raise ApiError(422, "validation_error", f"Unknown event type(s): {', '.join(bad)}.",
                       errors=[{"field": f"{field}[{events.index(t)}]", "message": f"Unknown event type {t!r}."}
                               for t in bad])
    if WILDCARD in wanted and len(wanted) > 1:
        raise validation_error(field, 'Subscribe to ["*"] alone (every event the key may read), or name types.')
    refused = [t for t in wanted if t != WILDCARD and not readable_by_role(who.role, t)]
    if refused:
        raise ApiError(403, "forbidden", f"A {who.role} key may not subscribe to {', '.join(refused)}: it may "
                                         f"not read those events.",
                       errors=[{"field": f"{field}[{events.index(t)}]", "message": "Outside the key's rights."}
                               for t in refused])
    return wanted


# --------------------------------------------------------------------------- reads

async def get_row(session: AsyncSession, who: Principal, ref: str, *, for_update: bool = False) -> Any:
    stmt = select(W).where(W.c.id == ref)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    if row is None or not (who.is_admin or row.api_key_id == who.key_id):
        raise ApiError(404, "not_found", f"Webhook endpoint {ref!r} was not found.")
    return row


async def list_rows(session: AsyncSession, who: Principal, after: str | None, limit: int) -> list[Any]:
    stmt = select(W)
    if not who.is_admin:
        stmt = stmt.where(W.c.api_key_id == who.key_id)
    if after:
        stmt = stmt.where(W.c.id > after)
    return list((await session.execute(stmt.order_by(W.c.id).limit(limit + 1))).all())


# --------------------------------------------------------------------------- writes

async def create(session: AsyncSession, request: Request, who: Principal, body: EndpointCreate) -> tuple[Any, str]:
    may_own(who)
    events = check_events(who, body.events)
    url = await check_url(request, body.url)
    now = clock.now()
    secret = signing.new_secret()
    values = {"id": new_id("whe"), "api_key_id": who.key_id, "url": url, "description": body.description,
              "events": events, "active": body.active, "status": "active", "secret": secret,
              "previous_secret": None, "previous_expires_at": None, "failing_since": None, "version": 1,
              "created_at": now, "updated_at": now}
    row = (await session.execute(W.insert().values(**values).returning(*W.c))).one()
    return row, secret


async def update_endpoint(session: AsyncSession, request: Request, who: Principal, ref: str,
                          body: EndpointUpdate) -> Any:
    row = await get_row(session, who, ref, for_update=True)
    check_version(request, row.version, body.version)
    changes = body.model_dump(exclude_unset=True, exclude={"version"})
    nulls = [f for f in ("url", "events", "active") if f in changes and changes[f] is None]
    if nulls:
        raise ApiError(422, "validation_error", f"{nulls[0]} may not be null.",
                       errors=[{"field": f, "message": "May not be null."} for f in nulls])
    if "events" in changes:
        changes["events"] = check_events(who, changes["events"])
    if "url" in changes:
        changes["url"] = await check_url(request, changes["url"])
    changes = {k: v for k, v in changes.items() if getattr(row, k) != v}
    if not changes:
        return row
    return (await session.execute(
        update(W).where(W.c.id == row.id)
        .values(**changes, version=W.c.version + 1, updated_at=clock.now()).returning(*W.c))).one()


async def delete_endpoint(session: AsyncSession, who: Principal, ref: str) -> None:
    row = await get_row(session, who, ref, for_update=True)
    await session.execute(delete(D).where(D.c.endpoint_id == row.id))
    await session.execute(delete(W).where(W.c.id == row.id))


async def rotate_secret(session: AsyncSession, request: Request, who: Principal, ref: str,
                        overlap_seconds: int) -> tuple[Any, str]:
    """A new secret; the current one keeps signing beside it for `overlap_seconds` (a secret
    still in an earlier overlap is dropped: at most two sign at once)."""
    row = await get_row(session, who, ref, for_update=True)
    check_version(request, row.version)
    now = clock.now()
    secret = signing.new_secret()
    keep = overlap_seconds > 0
    row = (await session.execute(
        update(W).where(W.c.id == row.id).values(
            secret=secret, previous_secret=row.secret if keep else None,
            previous_expires_at=now + timedelta(seconds=overlap_seconds) if keep else None,
            version=W.c.version + 1, updated_at=now).returning(*W.c))).one()
    return row, secret


def signing_secrets(row: Any) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during its overlap."""
    out = [row.secret]
    if row.previous_secret and row.previous_expires_at and row.previous_expires_at > clock.now():
        out.append(row.previous_secret)
    return out
