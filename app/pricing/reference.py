"""What every quote reads besides its lines: the channel, the reference data (price lists,
promotions, tax rates) and the SKUs' prices, each from an in-process cache that every change
drops at its commit in every worker (app/core/cache.py)."""
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.channels.service import channel_row
from app.core.cache import Cache
from app.core.errors import ApiError
from app.core.sql import chunks, in_param
from app.pricing import engine
from app.pricing.common import PE, PL, PR, TR, list_to_engine, utc
from app.pricing.models import Promotion
from app.pricing.promotions import to_engine


def context(channel: Any, now: datetime, customer_group: str | None = None, coupons: tuple[str, ...] = ()
            ) -> engine.Context:
    """The engine's context for a channels row."""
    return engine.Context(channel=channel.code, currency=channel.currency, prices_include_tax=channel.prices_include_tax,
                          now=now, customer_group=customer_group, coupon_codes=coupons,
                          channel_price_lists=tuple(channel.price_lists or ()))


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
    changes: tuple[datetime, ...] = ()  # every valid_from / valid_to of the active lists and promotions, sorted

    def next_change(self, now: datetime) -> datetime | None:
        """The first moment after `now` at which a list or promotion starts or ends: until then,
        prices computed now stay right (unless the data changes)."""
        i = bisect_right(self.changes, now)
        return self.changes[i] if i < len(self.changes) else None


_reference: dict[str, tuple[tuple, ReferenceData]] = {}  # by stamp: when the cache below cannot serve
_pricing = Cache("pricing")  # dropped in every worker when a price list, promotion or tax rate changes


_STAMP_COLUMNS = tuple(
    col.label(f"ref_stamp_{i}") for i, col in enumerate(
        expr for t in (PR, PL, TR) for expr in (
            select(func.count()).select_from(t).scalar_subquery(),
            select(func.coalesce(func.sum(t.c.version), 0)).scalar_subquery(),
            select(func.coalesce(func.max(t.c.id), "")).scalar_subquery(),
        )
    )
)
_STAMP = select(*_STAMP_COLUMNS)


async def reference_data(session: AsyncSession) -> ReferenceData:
    """Price lists, promotions and tax rates for the engine. Served from the process's cache
    (no statement) while it can hear changes (app/core/cache.py); otherwise one small statement
    checks a stamp (per table the row count, the version sum and the greatest id: every change
    moves the sum, a delete the count, a create the greatest id, ids growing with time, so a delete
    and a create together still move it) and only when it moved are they loaded again."""
    conn = await session.connection()
    hit = _pricing.get("reference", conn)
    if hit is not None:
        return hit
    generation = _pricing.generation
    data = await _reference_by_stamp(session)
    _pricing.put("reference", data, generation, conn)
    return data


async def _reference_by_stamp(session: AsyncSession) -> ReferenceData:
    stamp = tuple((await session.execute(_STAMP)).one())
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
    engine_promos = [to_engine(p) for p in promos]
    changes = {t for r in lists if r.active for t in (utc(r.valid_from), utc(r.valid_to)) if t is not None}
    changes |= {t for p in engine_promos for t in (p.valid_from, p.valid_to) if t is not None}
    data = ReferenceData(
        price_lists={r.code: list_to_engine(r) for r in lists},
        list_code={r.id: r.code for r in lists if r.active},
        promotions=engine_promos,
        tax=tax,
        changes=tuple(sorted(changes)),
    )
    _reference[key] = (stamp, data)
    return data


_PRICES = {  # built once per dialect
    pg: select(PE.c.price_list_id, PE.c.sku, PE.c.amount, PE.c.min_quantity).where(in_param(pg, PE.c.sku, "skus"))
    for pg in (False, True)
}


_sku_prices = Cache("prices", max_entries=200_000)  # sku -> its price rows in every list


async def price_rows(conn, skus: list[str]) -> list:
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
