"""Pricing rules around the pure engine: price lists, prices, tax rates, promotions, quotes.

`quote_basket(session, ...)` is the one function every channel prices through (carts,
orders, POS sales, marketplace listings): it loads the inputs in a few set-based statements,
whatever the basket size (POST /v1/pricing/quote: four, the API-key lookup included), and
hands them to `engine.quote`.
"""
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from sqlalchemy import and_, delete, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.service import canonical, canonical_sku, lookup_skus, sku_key
from app.core.sql import chunks, in_param, where_in
from app.customers import service as customers
from app.channels.models import Channel
from app.channels.service import channel_row
from app.core import clock
from app.core.concurrency import apply_changes, check_version
from app.core.cache import Cache
from app.core.db import flush_unique
from app.core.errors import ApiError
from app.core.ids import new_id
from app.core.pagination import PageParams, apply_page, page_result
from app.core.responses import rfc3339
from app.events.service import emit
from app.pricing import engine
from app.pricing.models import PriceEntry, PriceList, Promotion, TaxRate
from app.pricing.schemas import (
    PriceIn, PriceListCreate, PriceListUpdate, PromotionCreate, PromotionUpdate, QuoteRequest, TaxRateCreate,
    TaxRateUpdate,
)

PL = PriceList.__table__
PE = PriceEntry.__table__
PR = Promotion.__table__
TR = TaxRate.__table__
CH = Channel.__table__

MAX_PRICES_PER_PUT = 50_000


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _window(valid_from: datetime | None, valid_to: datetime | None) -> None:
    if valid_from is not None and valid_to is not None and valid_to <= valid_from:
        raise ApiError(422, "validation_error", "valid_to must be after valid_from.",
                       errors=[{"field": "valid_to", "message": "Must be after valid_from."}])


def _nulls(changes: dict, fields: tuple[str, ...]) -> None:
    bad = [f for f in fields if f in changes and changes[f] is None]
    if bad:
        raise ApiError(422, "validation_error", f"{bad[0]} may not be null.",
                       errors=[{"field": f, "message": "May not be null."} for f in bad])


async def _check_channels(session: AsyncSession, codes: list[str] | None, field: str = "channels",
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


async def _check_skus(session: AsyncSession, items: list[tuple[str, str]], also: Iterable[str] = ()) -> dict[str, str]:
    """items: (field path, sku); 422 naming every SKU the catalog does not know. Returns
    {given spelling: stored spelling} for the known SKUs of `items` and `also` (not checked)."""
    wanted = {s for _, s in items} | set(also)
    if not wanted:
        return {}
    stored = canonical(wanted, await lookup_skus(session, wanted))
    errors = [{"field": f, "message": f"Unknown SKU {s!r}."} for f, s in items if s not in stored]
    if errors:
        raise ApiError(422, "validation_error", errors[0]["message"], errors=errors)
    return stored


# --------------------------------------------------------------------------- price lists

def render_price_list(pl: Any) -> dict:
    return {
        "id": pl.id, "object": "price_list", "code": pl.code, "name": pl.name, "currency": pl.currency,
        "channels": list(pl.channels or []), "customer_group": pl.customer_group,
        "valid_from": rfc3339(pl.valid_from), "valid_to": rfc3339(pl.valid_to), "priority": pl.priority,
        "active": pl.active, "version": pl.version, "created_at": rfc3339(pl.created_at),
        "updated_at": rfc3339(pl.updated_at),
    }


async def _by_ref(session: AsyncSession, model, what: str, ref: str, for_update: bool):
    """A price list or promotion by code or id (404 naming it)."""
    stmt = select(model).where(or_(model.code == ref, model.id == ref))
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).scalars().first()
    if row is None:
        raise ApiError(404, "not_found", f"{what} {ref!r} was not found.")
    return row


async def get_price_list(session: AsyncSession, ref: str, *, for_update: bool = False) -> PriceList:
    return await _by_ref(session, PriceList, "Price list", ref, for_update)


async def _price_list_event(session: AsyncSession, pl: PriceList, **extra: Any) -> None:
    await emit(session, "price_list.updated", {"id": pl.id, "code": pl.code, "currency": pl.currency,
                                               "channels": list(pl.channels or []), "version": pl.version, **extra})


async def create_price_list(session: AsyncSession, data: PriceListCreate) -> dict:
    valid_from, valid_to = _utc(data.valid_from), _utc(data.valid_to)
    _window(valid_from, valid_to)
    await _check_channels(session, data.channels, currency=data.currency)
    pl = PriceList(id=new_id("pl"), code=data.code, name=data.name, currency=data.currency, channels=data.channels,
                   customer_group=data.customer_group, valid_from=valid_from, valid_to=valid_to,
                   priority=data.priority, active=data.active)
    session.add(pl)
    await flush_unique(session, "price list", data.code)
    await _price_list_event(session, pl, change="created")
    return render_price_list(pl)


async def update_price_list(session: AsyncSession, request: Request, ref: str, data: PriceListUpdate) -> dict:
    pl = await get_price_list(session, ref, for_update=True)
    check_version(request, pl.version, data.version)
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    _nulls(changes, ("channels", "priority", "active"))
    for f in ("valid_from", "valid_to"):
        if f in changes:
            changes[f] = _utc(changes[f])
    _window(changes.get("valid_from", pl.valid_from), changes.get("valid_to", pl.valid_to))
    if "channels" in changes:
        await _check_channels(session, changes["channels"], currency=pl.currency)
    changes = apply_changes(pl, changes)
    if changes:
        await _price_list_event(session, pl, change="updated", fields=sorted(changes))
    await session.flush()
    return render_price_list(pl)


async def list_price_lists(session: AsyncSession, page: PageParams, channel: str | None = None) -> dict:
    rows = (await session.execute(apply_page(select(PriceList), PriceList.id, page))).scalars().all()
    if channel:  # few lists: filtering the page in Python keeps the JSON query portable
        rows = [r for r in rows if channel in (r.channels or [])]
    return page_result(list(rows), page, render_price_list)


async def put_prices(session: AsyncSession, request: Request, ref: str, items: list[PriceIn], replace: bool) -> dict:
    """Upsert prices by (sku, min_quantity); `amount: null` removes one; `replace` drops every
    price not in the body. One transaction, set-based; the list's version goes up once."""
    if len(items) > MAX_PRICES_PER_PUT:
        raise ApiError(413, "payload_too_large", f"At most {MAX_PRICES_PER_PUT} prices per request.")
    pl = await get_price_list(session, ref, for_update=True)
    check_version(request, pl.version)
    seen: dict[tuple[str, int], int] = {}
    errors = []
    for i, p in enumerate(items):
        key = (sku_key(p.sku), p.min_quantity)  # one SKU in two spellings is still one SKU
        if key in seen:
            errors.append({"field": f"[{i}].sku", "message": f"{p.sku!r} with min_quantity {p.min_quantity} is also at [{seen[key]}]."})
        seen.setdefault(key, i)
    if errors:
        raise ApiError(422, "validation_error", errors[0]["message"], errors=errors)
    stored = await _check_skus(session, [(f"[{i}].sku", p.sku) for i, p in enumerate(items) if p.amount is not None],
                               also=[p.sku for p in items if p.amount is None])
    items = [p.model_copy(update={"sku": stored[p.sku]}) if stored.get(p.sku, p.sku) != p.sku else p for p in items]
    now = clock.now()
    upserts = [{"price_list_id": pl.id, "sku": p.sku, "min_quantity": p.min_quantity, "amount": p.amount, "updated_at": now}
               for p in items if p.amount is not None]
    removals = [p for p in items if p.amount is None]
    removed = 0
    if replace:
        removed = (await session.execute(delete(PE).where(PE.c.price_list_id == pl.id))).rowcount or 0
    else:
        for p in removals:
            removed += (await session.execute(delete(PE).where(
                PE.c.price_list_id == pl.id, PE.c.sku == p.sku, PE.c.min_quantity == p.min_quantity))).rowcount or 0
        if upserts:
            keys = {(u["sku"], u["min_quantity"]) for u in upserts}
            for part in chunks(sorted({s for s, _ in keys})):
                await session.execute(delete(PE).where(PE.c.price_list_id == pl.id, where_in(session, PE.c.sku, part),
                                                       PE.c.min_quantity.in_(sorted({q for _, q in keys}))))
    for part in chunks(upserts, 5000):
        await session.execute(insert(PE), part)
    pl.version += 1
    pl.updated_at = now
    await _price_list_event(session, pl, change="prices", prices_set=len(upserts), prices_removed=removed,
                            skus=sorted({p.sku for p in items})[:100])
    await session.flush()
    return {"price_list": pl.code, "version": pl.version, "set": len(upserts), "removed": removed}


async def list_prices(session: AsyncSession, ref: str, page: PageParams, sku: str | None = None) -> dict:
    pl = await get_price_list(session, ref)
    stmt = select(PE.c.sku, PE.c.min_quantity, PE.c.amount, PE.c.updated_at).where(PE.c.price_list_id == pl.id)
    if sku:
        stmt = stmt.where(PE.c.sku == await canonical_sku(session, sku))
    # keyset on (sku, min_quantity), encoded as one cursor string
    if page.after:
        s, _, q = page.after.rpartition("\x1f")
        if q.isdigit():
            stmt = stmt.where(or_(PE.c.sku > s, and_(PE.c.sku == s, PE.c.min_quantity > int(q))))
    rows = (await session.execute(stmt.order_by(PE.c.sku, PE.c.min_quantity).limit(page.limit + 1))).all()
    return page_result(
        list(rows), page,
        lambda r: {"sku": r.sku, "min_quantity": r.min_quantity, "amount": r.amount, "currency": pl.currency,
                   "updated_at": rfc3339(r.updated_at)},
        id_of=lambda r: f"{r.sku}\x1f{r.min_quantity}",
    )


# --------------------------------------------------------------------------- tax rates

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
            if t.rate_bp != data.rate_bp:
                t.rate_bp, t.version, t.updated_at = data.rate_bp, t.version + 1, clock.now()
            await session.flush()
            return render_tax_rate(t), False
        t = TaxRate(id=new_id("tax"), country=data.country, tax_class=data.tax_class, rate_bp=data.rate_bp)
        try:
            async with session.begin_nested():
                session.add(t)
            return render_tax_rate(t), True
        except IntegrityError:  # created concurrently: update that one
            session.expunge(t)
    raise ApiError(409, "conflict", "The tax rate changed concurrently; retry.")


async def update_tax_rate(session: AsyncSession, request: Request, ref: str, data: TaxRateUpdate) -> dict:
    t = (await session.execute(select(TaxRate).where(TaxRate.id == ref).with_for_update())).scalars().first()
    if t is None:
        raise ApiError(404, "not_found", f"Tax rate {ref!r} was not found.")
    check_version(request, t.version, data.version)
    if t.rate_bp != data.rate_bp:
        t.rate_bp = data.rate_bp
        t.version += 1
        t.updated_at = clock.now()
    await session.flush()
    return render_tax_rate(t)


async def list_tax_rates(session: AsyncSession, page: PageParams, country: str | None = None) -> dict:
    stmt = select(TaxRate)
    if country:
        stmt = stmt.where(TaxRate.country == country)
    rows = (await session.execute(apply_page(stmt, TaxRate.id, page))).scalars().all()
    return page_result(list(rows), page, render_tax_rate)


# --------------------------------------------------------------------------- promotions

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
        coupon_code=p.coupon_code, valid_from=_utc(p.valid_from), valid_to=_utc(p.valid_to),
        priority=p.priority, stackable=p.stackable, active=p.active,
    )


async def _validate_promotion(session: AsyncSession, values: dict, own_id: str | None = None) -> None:
    errors = engine.validate_params(values["type"], values["params"])
    if errors:
        raise ApiError(422, "validation_error", f"{errors[0]['field']}: {errors[0]['message']}", errors=errors)
    _window(values.get("valid_from"), values.get("valid_to"))
    await _check_channels(session, values.get("channels"))
    skus = [(f"skus[{i}]", s) for i, s in enumerate(values.get("skus") or [])]
    if values["type"] == "bundle_price":
        skus += [(f"params.items[{i}].sku", it["sku"]) for i, it in enumerate(values["params"]["items"])]
    stored = await _check_skus(session, skus)
    if values.get("skus"):  # kept in the stored spelling: the engine compares exact SKUs
        values["skus"] = [stored[s] for s in values["skus"]]
    if values["type"] == "bundle_price":
        values["params"] = {**values["params"], "items": [{**it, "sku": stored[it["sku"]]} for it in values["params"]["items"]]}
    candidate = to_engine(_Obj(values))
    if candidate.stackable or not candidate.active:
        return
    others = (await session.execute(select(Promotion).where(
        Promotion.active.is_(True), Promotion.stackable.is_(False), Promotion.priority == candidate.priority))).scalars().all()
    clash = engine.conflicts(candidate, [to_engine(o) for o in others if o.id != own_id])
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
    return await _by_ref(session, Promotion, "Promotion", ref, for_update)


def _params(type_: str, params: Any) -> Any:
    """Accepted spellings mapped, defaults filled in; left as given when invalid (validation names the fields)."""
    params = engine.canonical_params(type_, params)
    return params if engine.validate_params(type_, params) else engine.normalize_params(type_, params)


async def create_promotion(session: AsyncSession, data: PromotionCreate) -> dict:
    values = data.model_dump()
    values["valid_from"], values["valid_to"] = _utc(data.valid_from), _utc(data.valid_to)
    values["coupon_code"] = data.coupon_code.upper() if data.coupon_code else None
    values["params"] = _params(data.type, data.params)
    await _validate_promotion(session, values)
    p = Promotion(id=new_id("promo"), **values)
    session.add(p)
    await flush_unique(session, "promotion", data.code)
    return render_promotion(p)


async def update_promotion(session: AsyncSession, request: Request, ref: str, data: PromotionUpdate) -> dict:
    p = await get_promotion(session, ref, for_update=True)
    check_version(request, p.version, data.version)
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    _nulls(changes, ("name", "params", "priority", "stackable", "active"))
    for f in ("valid_from", "valid_to"):
        if f in changes:
            changes[f] = _utc(changes[f])
    if changes.get("coupon_code"):
        changes["coupon_code"] = changes["coupon_code"].upper()
    values = {c.name: getattr(p, c.name) for c in PR.columns if c.name not in ("id", "version", "created_at", "updated_at")}
    values.update(changes)
    if "params" in changes:
        values["params"] = changes["params"] = _params(p.type, changes["params"])
    await _validate_promotion(session, values, own_id=p.id)
    changes.update({f: values[f] for f in ("skus", "params") if f in changes})  # SKUs in their stored spelling
    apply_changes(p, changes)
    await session.flush()
    return render_promotion(p)


async def list_promotions(session: AsyncSession, page: PageParams, active: bool | None = None,
                          type_: str | None = None) -> dict:
    stmt = select(Promotion)
    if active is not None:
        stmt = stmt.where(Promotion.active.is_(active))
    if type_:
        stmt = stmt.where(Promotion.type == type_)
    rows = (await session.execute(apply_page(stmt, Promotion.id, page))).scalars().all()
    return page_result(list(rows), page, render_promotion)


# --------------------------------------------------------------------------- quotes

async def customer_group_of(session: AsyncSession, ref: str, *, channel: str | None = None) -> str | None:
    """The customer's group, through the customers domain. Unknown (or, with `channel`, registered
    in another channel: a storefront cannot learn about other channels' customers) -> 422."""
    try:
        return await customers.get_customer_group(session, ref, channel=channel)
    except ApiError as exc:
        if exc.status == 404:
            raise ApiError(422, "validation_error", f"Unknown customer {ref!r}.",
                           errors=[{"field": "customer", "message": f"Unknown customer {ref!r}."}]) from None
        raise


async def load_channel(session: AsyncSession, code: str) -> Any:
    """The channels row by code or id (422 naming it when unknown), from the channels cache."""
    row = await channel_row(session, code)
    if row is None:
        raise ApiError(422, "validation_error", f"Unknown channel {code!r}.",
                       errors=[{"field": "channel", "message": f"Unknown channel {code!r}."}])
    return row


@dataclass(slots=True)
class ReferenceData:
    """What every quote needs besides the SKUs' prices: price lists, active promotions and tax
    rates, converted for the engine once and reused while their stamp is unchanged."""

    price_lists: dict[str, engine.PriceList]  # by code
    list_code: dict[str, str]  # price list id -> code
    promotions: list[engine.Promotion]
    tax: dict[str, dict[str, int]]  # country -> tax class -> bp


_reference: dict[str, tuple[tuple, ReferenceData]] = {}  # by stamp: when the cache below cannot serve
_pricing = Cache("pricing")  # dropped in every worker when a price list, promotion or tax rate changes


_STAMP_COLUMNS = tuple(
    col.label(f"ref_stamp_{i}") for i, col in enumerate((
        select(func.count()).select_from(PR).scalar_subquery(),
        select(func.coalesce(func.sum(PR.c.version), 0)).scalar_subquery(),
        select(func.count()).select_from(PL).scalar_subquery(),
        select(func.coalesce(func.sum(PL.c.version), 0)).scalar_subquery(),
        select(func.count()).select_from(TR).scalar_subquery(),
        select(func.coalesce(func.sum(TR.c.version), 0)).scalar_subquery(),
    ))
)
_STAMP = select(*_STAMP_COLUMNS)


async def reference_data(session: AsyncSession) -> ReferenceData:
    """Price lists, promotions and tax rates for the engine. Served from the process's cache
    (no statement) while it can hear changes (app/core/cache.py); otherwise one small statement
    checks a stamp (row counts and version sums: every create and every change moves one, nothing
    is ever deleted) and only when it moved are they loaded again."""
    conn = await session.connection()
    hit = _pricing.get("reference", conn)
    if hit is not None:
        return hit
    generation = _pricing.generation
    data = await _reference_by_stamp(session)
    _pricing.put("reference", data, generation, conn)
    return data


async def _reference_by_stamp(session: AsyncSession) -> ReferenceData:
    stamp = tuple(int(x) for x in (await session.execute(_STAMP)).one())
    bind = session.bind
    key = str(getattr(bind, "url", None) or bind.engine.url) if bind is not None else ""
    cached = _reference.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    lists = (await session.execute(select(PL.c.id, PL.c.code, PL.c.currency, PL.c.channels, PL.c.customer_group,
                                          PL.c.valid_from, PL.c.valid_to, PL.c.priority, PL.c.active))).all()
    promos = (await session.execute(select(Promotion).where(Promotion.active.is_(True)))).scalars().all()
    rates = (await session.execute(select(TR.c.country, TR.c.tax_class, TR.c.rate_bp))).all()
    tax: dict[str, dict[str, int]] = {}
    for r in rates:
        tax.setdefault(r.country, {})[r.tax_class] = r.rate_bp
    data = ReferenceData(
        price_lists={r.code: engine.PriceList(r.code, r.currency, tuple(r.channels or ()), r.customer_group,
                                              _utc(r.valid_from), _utc(r.valid_to), r.priority, r.active) for r in lists},
        list_code={r.id: r.code for r in lists if r.active},
        promotions=[to_engine(p) for p in promos],
        tax=tax,
    )
    _reference[key] = (stamp, data)
    return data


_PRICES = {  # built once per dialect
    pg: select(PE.c.price_list_id, PE.c.sku, PE.c.amount, PE.c.min_quantity).where(in_param(pg, PE.c.sku, "skus"))
    for pg in (False, True)
}


_sku_prices = Cache("prices", max_entries=200_000)  # sku -> its price rows in every list


async def _price_rows(conn, skus: list[str]) -> list:
    """Every list's prices of `skus`; kept per SKU until a price changes (any list)."""
    rows, missing = [], []
    for s in skus:
        hit = _sku_prices.get(s, conn)
        if hit is None:
            missing.append(s)
        else:
            rows += hit
    if missing:
        generation = _sku_prices.generation
        stmt = _PRICES[conn.dialect.name == "postgresql"]
        per: dict[str, list] = {s: [] for s in missing}
        for part in chunks(missing):
            for r in (await conn.execute(stmt, {"skus": part})).all():
                per[r.sku].append(r)
        for s, found in per.items():
            _sku_prices.put(s, found, generation, conn)
            rows += found
    return rows


async def quote_basket(session: AsyncSession, channel: Any, lines: list[tuple[str, int]], *,
                       customer_group: str | None = None, coupon_codes: list[str] | tuple = (),
                       now: datetime | None = None) -> engine.QuoteResult:
    """Price `lines` [(sku, quantity)] in `channel` (a channels row). Raises ApiError 422 for
    what cannot be priced (unknown or unsellable SKU, no price, no tax rate, invalid coupon)."""
    now = now or clock.now()
    coupons = tuple(dict.fromkeys(c.upper() for c in coupon_codes))
    skus = sorted({s for s, _ in lines})
    infos = await lookup_skus(session, skus, channel=channel.code)
    stored = canonical(skus, infos)  # any spelling in, the stored one priced and answered
    if any(stored.get(s, s) != s for s in skus):
        lines = [(stored.get(s, s), q) for s, q in lines]
        skus = sorted({s for s, _ in lines})
    facts = {s: engine.SkuFacts(s, i.tax_class, i.category, i.components) for s, i in infos.items()}
    wanted = set(skus) | {c for i in infos.values() for c, _ in i.components}
    ref = await reference_data(session)
    conn = await session.connection()
    rows = await _price_rows(conn, sorted(wanted))
    lists = [pl for pl in ref.price_lists.values() if pl.currency == channel.currency]
    prices = [engine.Price(ref.list_code[r.price_list_id], r.sku, r.amount, r.min_quantity)
              for r in rows if r.price_list_id in ref.list_code]
    promos = ref.promotions
    tax = ref.tax.get(channel.country, {})
    ctx = engine.Context(channel=channel.code, currency=channel.currency, prices_include_tax=channel.prices_include_tax,
                         now=now, customer_group=customer_group, coupon_codes=coupons,
                         channel_price_lists=tuple(channel.price_lists or ()))
    if coupons:
        ok = {p.coupon_code for p in engine.eligible(ctx, promos) if p.coupon_code}
        bad = [(i, c) for i, c in enumerate(coupons) if c not in ok]
        if bad:
            raise ApiError(422, "invalid_coupon", f"Coupon {bad[0][1]!r} is unknown, expired or not valid here.",
                           errors=[{"field": f"coupon_codes[{i}]", "message": f"Coupon {c!r} is unknown, expired or not valid "
                                    f"in channel {channel.code!r} for this customer."} for i, c in bad])
    try:
        return engine.quote(ctx, [engine.LineIn(s, q) for s, q in lines], facts, lists, prices, promos, tax)
    except engine.PricingError as exc:
        raise ApiError(422, exc.code, exc.detail, errors=exc.errors) from None


async def quote(session: AsyncSession, who: Any, body: QuoteRequest) -> dict:
    """POST /v1/pricing/quote: who may quote in which channel, then `quote_basket`."""
    code = body.channel or who.channel
    if code is None:
        raise ApiError(422, "validation_error", "channel is required for this API key.",
                       errors=[{"field": "channel", "message": "Required."}])
    if not who.is_admin:  # a bound key quotes in its own channel only
        who.channel_or_404(code, "Channel")
    channel = await load_channel(session, code)
    group = None
    if body.customer_group is not None:
        if who.role not in ("admin", "pos"):
            raise ApiError(403, "forbidden", "Only admin and POS keys may name a customer_group; send customer instead.")
        group = body.customer_group
    if body.customer is not None:
        scope = who.channel if who.role in ("storefront", "marketplace") else None
        group = await customer_group_of(session, body.customer, channel=scope) or group
    result = await quote_basket(session, channel, [(ln.sku, ln.quantity) for ln in body.lines],
                                customer_group=group, coupon_codes=body.coupon_codes)
    out = result.as_dict()
    out = {"object": "quote", "channel": channel.code, "customer_group": group, **out}
    return out


async def existing_price_list_codes(session: AsyncSession, codes: list[str]) -> dict[str, str]:
    """{code: currency} of the price lists that exist (the channels domain validates with it)."""
    if not codes:
        return {}
    return {r.code: r.currency for r in (await session.execute(
        select(PL.c.code, PL.c.currency).where(where_in(session, PL.c.code, codes)))).all()}

