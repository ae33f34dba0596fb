"""What the pricing modules share: the tables, and the checks their writes make."""
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.service import canonical, lookup_skus
from app.channels.models import Channel
from app.core.errors import ApiError
from app.core.sql import where_in
from app.pricing import engine
from app.pricing.models import PriceEntry, PriceList, Promotion, TaxRate

PL = PriceList.__table__
PE = PriceEntry.__table__
PR = Promotion.__table__
TR = TaxRate.__table__
CH = Channel.__table__


def utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def list_to_engine(pl: Any) -> engine.PriceList:
    """A price list (row or ORM object) as the engine takes it."""
    return engine.PriceList(pl.code, pl.currency, tuple(pl.channels or ()), pl.customer_group, utc(pl.valid_from),
                            utc(pl.valid_to), pl.priority, pl.active)


def check_window(valid_from: datetime | None, valid_to: datetime | None) -> None:
    if valid_from is not None and valid_to is not None and valid_to <= valid_from:
        raise ApiError(422, "validation_error", "valid_to must be after valid_from.",
                       errors=[{"field": "valid_to", "message": "Must be after valid_from."}])


def refuse_nulls(changes: dict, fields: tuple[str, ...]) -> None:
    bad = [f for f in fields if f in changes and changes[f] is None]
    if bad:
        raise ApiError(422, "validation_error", f"{bad[0]} may not be null.",
                       errors=[{"field": f, "message": "May not be null."} for f in bad])


async def check_channels(session: AsyncSession, codes: list[str] | None, field: str = "channels",
                          currency: str | None = None) -> None:
    if not codes:
        return
    rows = {r.code: r.currency for r in (await session.execute(
        select(CH.c.code, CH.c.currency).where(where_in(session, CH.c.code, codes)))).all()}
    errors = [{"field": f"{field}[{i}]", "message": f"Unknown channel {c!r}."} for i, c in enumerate(codes) if c not in rows]
    if currency is not None:
        errors += [{"field": f"{field}[{i}]", "message": f"Channel {c!r} sells in {rows[c]}, this list is in {currency}."}
                   for i, c in enumerate(codes) if c in rows and rows[c] != currency]
    if errors:
        raise ApiError(422, "validation_error", errors[0]["message"], errors=errors)


async def check_skus(session: AsyncSession, items: list[tuple[str, str]], also: Iterable[str] = ()) -> dict[str, str]:
    """items: (field path, sku); 422 unknown_sku naming every SKU the catalog does not know. Returns
    {given spelling: stored spelling} for the known SKUs of `items` and `also` (not checked)."""
    wanted = {s for _, s in items} | set(also)
    if not wanted:
        return {}
    stored = canonical(wanted, await lookup_skus(session, wanted))
    errors = [{"field": f, "message": f"Unknown SKU {s!r}."} for f, s in items if s not in stored]
    if errors:
        raise ApiError(422, "unknown_sku", errors[0]["message"], errors=errors)
    return stored


def ended_now(valid_from: datetime | None, valid_to: datetime | None, now: datetime) -> dict[str, datetime] | None:
    """The validity changes that end a price list or promotion at `now` (`valid_to = now`; one not
    yet started gets the empty window now..now, so it never runs), or None when it has ended already."""
    valid_from, valid_to = utc(valid_from), utc(valid_to)
    if valid_to is not None and valid_to <= now:
        return None
    if valid_from is not None and valid_from > now:
        return {"valid_from": now, "valid_to": now}
    return {"valid_to": now}


async def by_ref(session: AsyncSession, model, what: str, ref: str, for_update: bool):
    """A price list or promotion by code or id (404 naming it)."""
    stmt = select(model).where(or_(model.code == ref, model.id == ref))
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).scalars().first()
    if row is None:
        raise ApiError(404, "not_found", f"{what} {ref!r} was not found.")
    return row
