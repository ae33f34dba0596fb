"""Tax rates: one rate per (country, tax class), in basis points.

A new rate writes `tax_rate.created`, a changed one `tax_rate.updated` (the rate after the
change), in the caller's transaction; setting the rate it already has writes nothing."""
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.concurrency import check_version
from app.core.errors import ApiError
from app.core.ids import new_id
from app.core.pagination import PageParams, apply_page, page_result
from app.core.responses import rfc3339
from app.events.service import emit
from app.pricing.models import TaxRate
from app.pricing.schemas import TaxRateCreate, TaxRateUpdate


def render_tax_rate(t: Any) -> dict:
    return {"id": t.id, "object": "tax_rate", "country": t.country, "tax_class": t.tax_class, "rate_bp": t.rate_bp,
            "version": t.version, "created_at": rfc3339(t.created_at), "updated_at": rfc3339(t.updated_at)}


async def put_tax_rate(session: AsyncSession, data: TaxRateCreate) -> tuple[dict, bool]:
    """Set the rate of (country, tax_class): created (True) or changed in place (False). A
    (country, tax_class) has one rate, so setting it twice is not a conflict."""
    async def existing() -> TaxRate | None:
        return (await session.execute(select(TaxRate).where(
            TaxRate.country == data.country, TaxRate.tax_class == data.tax_class).with_for_update())).scalars().first()

    for _ in range(2):
        t = await existing()
        if t is not None:
            changed = t.rate_bp != data.rate_bp
            if changed:
                t.rate_bp, t.version, t.updated_at = data.rate_bp, t.version + 1, clock.now()
            await session.flush()
            rendered = render_tax_rate(t)
            if changed:
                await emit(session, "tax_rate.updated", rendered)
            return rendered, False
        t = TaxRate(id=new_id("tax"), country=data.country, tax_class=data.tax_class, rate_bp=data.rate_bp)
        try:
            async with session.begin_nested():
                session.add(t)
        except IntegrityError:  # created concurrently: update that one
            session.expunge(t)
            continue
        rendered = render_tax_rate(t)
        await emit(session, "tax_rate.created", rendered)
        return rendered, True
    raise ApiError(409, "conflict", "The tax rate changed concurrently; retry.")


async def get_tax_rate(session: AsyncSession, ref: str) -> dict:
    """By id (`tax_…`); 404 naming it."""
    t = (await session.execute(select(TaxRate).where(TaxRate.id == ref))).scalars().first()
    if t is None:
        raise ApiError(404, "not_found", f"Tax rate {ref!r} was not found.")
    return render_tax_rate(t)


async def update_tax_rate(session: AsyncSession, request: Request, ref: str, data: TaxRateUpdate) -> dict:
    t = (await session.execute(select(TaxRate).where(TaxRate.id == ref).with_for_update())).scalars().first()
    if t is None:
        raise ApiError(404, "not_found", f"Tax rate {ref!r} was not found.")
    check_version(request, t.version, data.version)
    changed = t.rate_bp != data.rate_bp
    if changed:
        t.rate_bp = data.rate_bp
        t.version += 1
        t.updated_at = clock.now()
    await session.flush()
    rendered = render_tax_rate(t)
    if changed:
        await emit(session, "tax_rate.updated", rendered)
    return rendered


async def list_tax_rates(session: AsyncSession, page: PageParams, country: str | None = None) -> dict:
    stmt = select(TaxRate)
    if country:
        stmt = stmt.where(TaxRate.country == country)
    rows = (await session.execute(apply_page(stmt, TaxRate.id, page))).scalars().all()
    return page_result(list(rows), page, render_tax_rate)
