"""Promotions: validated params, known SKUs and channels, and no two exclusive promotions the
engine could not rank (409 promotion_conflict).

Ending and deleting: `POST /v1/promotions/{code}/end` sets `valid_to` to now (one not yet started
gets the empty window now..now): quotes, carts and pages stop applying it at once, its coupon
answers `expired`, and orders that used it keep it. `DELETE` removes a promotion no order ever
used (none lists it in `promotions`); one that discounted an order is `409 promotion_in_use`,
to be ended instead, so every order keeps naming a promotion that exists.

Each change writes its event in the caller's transaction, with the promotion after it:
`promotion.created`, `promotion.updated` (only when something changed), `promotion.ended`,
`promotion.deleted` (the promotion as it was). Admin keys alone read them (app/events/types.py)."""
from typing import Any

from fastapi import Request
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock, references
from app.core.concurrency import apply_changes, check_version
from app.core.db import flush_unique
from app.core.errors import ApiError
from app.core.ids import new_id
from app.core.pagination import PageParams, apply_page, page_result
from app.core.responses import rfc3339
from app.events.service import emit
from app.pricing import engine, promotion_rules
from app.pricing.common import PR, by_ref, check_channels, check_skus, check_window, ended_now, refuse_nulls, utc
from app.pricing.models import Promotion
from app.pricing.schemas import PromotionCreate, PromotionUpdate


def render_promotion(p: Any) -> dict:
    return {
        "id": p.id, "object": "promotion", "code": p.code, "name": p.name, "type": p.type, "params": p.params,
        "skus": p.skus, "categories": p.categories, "channels": p.channels, "customer_groups": p.customer_groups,
        "coupon_code": p.coupon_code, "valid_from": rfc3339(p.valid_from), "valid_to": rfc3339(p.valid_to),
        "priority": p.priority, "stackable": p.stackable, "active": p.active, "version": p.version,
        "created_at": rfc3339(p.created_at), "updated_at": rfc3339(p.updated_at),
    }


def to_engine(p: Any) -> engine.Promotion:
    return engine.Promotion(
        code=p.code, type=p.type, params=p.params, name=p.name,
        skus=frozenset(p.skus) if p.skus else None, categories=tuple(p.categories) if p.categories else None,
        channels=tuple(p.channels) if p.channels else None,
        customer_groups=tuple(p.customer_groups) if p.customer_groups else None,
        coupon_code=p.coupon_code, valid_from=utc(p.valid_from), valid_to=utc(p.valid_to),
        priority=p.priority, stackable=p.stackable, active=p.active,
    )


async def _validate_promotion(session: AsyncSession, values: dict, own_id: str | None = None) -> None:
    errors = promotion_rules.validate_params(values["type"], values["params"])
    if errors:
        raise ApiError(422, "validation_error", f"{errors[0]['field']}: {errors[0]['message']}", errors=errors)
    check_window(values.get("valid_from"), values.get("valid_to"))
    await check_channels(session, values.get("channels"))
    skus = [(f"skus[{i}]", s) for i, s in enumerate(values.get("skus") or [])]
    if values["type"] == "bundle_price":
        skus += [(f"params.items[{i}].sku", it["sku"]) for i, it in enumerate(values["params"]["items"])]
    stored = await check_skus(session, skus)
    if values.get("skus"):  # kept in the stored spelling: the engine compares exact SKUs
        values["skus"] = [stored[s] for s in values["skus"]]
    if values["type"] == "bundle_price":
        values["params"] = {**values["params"], "items": [{**it, "sku": stored[it["sku"]]} for it in values["params"]["items"]]}
    candidate = to_engine(_Obj(values))
    if candidate.stackable or not candidate.active:
        return
    others = (await session.execute(select(Promotion).where(
        Promotion.active.is_(True), Promotion.stackable.is_(False), Promotion.priority == candidate.priority))).scalars().all()
    clash = promotion_rules.conflicts(candidate, [to_engine(o) for o in others if o.id != own_id])
    if clash:
        names = ", ".join(c.code for c in clash)
        raise ApiError(
            409, "promotion_conflict",
            f"Promotion {candidate.code!r} and {names} are all exclusive (stackable: false), share priority "
            f"{candidate.priority} and can apply to the same products in the same quote, so neither can be preferred. "
            "Give one a different priority, make one stackable, or narrow their channels, products or dates.",
            errors=[{"field": "priority", "message": f"Same priority as exclusive promotion {c.code!r}."} for c in clash],
            conflicting=[c.code for c in clash],
        )


class _Obj:
    """Attribute access to a dict of promotion values (for to_engine)."""

    def __init__(self, d: dict):
        self.__dict__.update(d)


async def get_promotion(session: AsyncSession, ref: str, *, for_update: bool = False) -> Promotion:
    return await by_ref(session, Promotion, "Promotion", ref, for_update)


def _params(type_: str, params: Any) -> Any:
    """Accepted spellings mapped, defaults filled in; left as given when invalid (validation names the fields)."""
    params = promotion_rules.canonical_params(type_, params)
    return params if promotion_rules.validate_params(type_, params) else promotion_rules.normalize_params(type_, params)


async def create_promotion(session: AsyncSession, data: PromotionCreate) -> dict:
    values = data.model_dump()
    values["valid_from"], values["valid_to"] = utc(data.valid_from), utc(data.valid_to)
    values["coupon_code"] = data.coupon_code.upper() if data.coupon_code else None
    values["params"] = _params(data.type, data.params)
    await _validate_promotion(session, values)
    p = Promotion(id=new_id("promo"), **values)
    session.add(p)
    await flush_unique(session, "promotion", data.code)
    rendered = render_promotion(p)
    await emit(session, "promotion.created", rendered)
    return rendered


async def update_promotion(session: AsyncSession, request: Request, ref: str, data: PromotionUpdate) -> dict:
    p = await get_promotion(session, ref, for_update=True)
    check_version(request, p.version, data.version)
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    refuse_nulls(changes, ("name", "params", "priority", "stackable", "active"))
    for f in ("valid_from", "valid_to"):
        if f in changes:
            changes[f] = utc(changes[f])
    if changes.get("coupon_code"):
        changes["coupon_code"] = changes["coupon_code"].upper()
    values = {c.name: getattr(p, c.name) for c in PR.columns if c.name not in ("id", "version", "created_at", "updated_at")}
    values.update(changes)
    if "params" in changes:
        values["params"] = changes["params"] = _params(p.type, changes["params"])
    await _validate_promotion(session, values, own_id=p.id)
    changes.update({f: values[f] for f in ("skus", "params") if f in changes})  # SKUs in their stored spelling
    changed = apply_changes(p, changes)
    await session.flush()
    rendered = render_promotion(p)
    if changed:
        await emit(session, "promotion.updated", rendered)
    return rendered


async def end_promotion(session: AsyncSession, request: Request, ref: str) -> dict:
    """Valid until now (nothing else is checked or changed); an ended one answers unchanged."""
    p = await get_promotion(session, ref, for_update=True)
    check_version(request, p.version)
    changes = ended_now(p.valid_from, p.valid_to, clock.now())
    if changes and apply_changes(p, changes):
        await session.flush()
        await emit(session, "promotion.ended", render_promotion(p))
    return render_promotion(p)


async def delete_promotion(session: AsyncSession, request: Request, ref: str) -> None:
    """Gone, when no order used it; else 409 promotion_in_use (end it instead)."""
    p = await get_promotion(session, ref, for_update=True)
    check_version(request, p.version)
    used = await references.held(session, "promotion", [p.code])
    if used:
        raise ApiError(
            409, "promotion_in_use",
            f"Promotion {p.code!r} discounted orders already, which keep naming it; it cannot be deleted. End it "
            f"instead: POST /v1/promotions/{p.code}/end (or PATCH valid_to) stops it at once.",
            errors=[{"field": "code", "message": f"Used by {what}."} for what in used],
        )
    await emit(session, "promotion.deleted", render_promotion(p))
    await session.execute(delete(PR).where(PR.c.id == p.id))
    session.expunge(p)


async def list_promotions(session: AsyncSession, page: PageParams, active: bool | None = None,
                          type_: str | None = None) -> dict:
    stmt = select(Promotion)
    if active is not None:
        stmt = stmt.where(Promotion.active.is_(active))
    if type_:
        stmt = stmt.where(Promotion.type == type_)
    rows = (await session.execute(apply_page(stmt, Promotion.id, page))).scalars().all()
    return page_result(list(rows), page, render_promotion)
