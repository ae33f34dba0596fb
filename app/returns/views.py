"""Returns as the API shows them, who sees which, and the reads.

    render(row, lines)                          the return object
    await get(session, ref, who)                by id or authorization code, 404 outside `who`'s scope
    await list_returns(session, who, page, …)   a page, oldest first: two statements
    await summaries(session, order_ids)         {order id: [{id, status, location, refund_total, …}]}
                                                for the order object (registered with orders.views)
    await returnable(session, ref, who)         what of an order may come back now, and for how much

Who sees a return (`scope`): admin every one; storefront and marketplace keys those of their
channel's orders; a POS key those received at its store, those of orders it sees
(orders.views.order_visible), and every authorization (any store may complete one: its code is
shown to whichever store the customer walks into).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.channels.service import channel_row
from app.core import clock
from app.core.errors import ApiError
from app.core.pagination import PageParams, apply_page, page_result
from app.core.responses import rfc3339
from app.core.sql import where_in
from app.orders import views as order_views
from app.pricing.money import refund_for_units
from app.returns import facts, rules
from app.returns.models import Return, ReturnLine
from app.returns.states import ReturnStatus, effective_status

R = Return.__table__
RL = ReturnLine.__table__
O = facts.O
DEFAULT_WINDOW_DAYS = 30  # a channel that no longer exists


def money(amount: int, currency: str) -> dict:
    return {"amount": amount, "currency": currency}


def not_found(ref: str) -> ApiError:
    return ApiError(404, "not_found", f"Return {ref!r} was not found.")


async def window_days(session: AsyncSession, channel: str) -> int:
    row = await channel_row(session, channel)
    return row.return_window_days if row is not None else DEFAULT_WINDOW_DAYS


# --------------------------------------------------------------------------- rendering

def _get(obj: Any, key: str) -> Any:
    return obj[key] if isinstance(obj, dict) else getattr(obj, key)


def render_line(ln: Any, currency: str) -> dict:
    charged = [{"location": c["location"], "quantity": c["quantity"], "amount": money(c["amount"], currency)}
               for c in (_get(ln, "chargebacks") or [])]
    return {"id": _get(ln, "id"), "order_line_id": _get(ln, "order_line_id"), "sku": _get(ln, "sku"),
            "quantity": _get(ln, "quantity"), "reason": _get(ln, "reason"), "condition": _get(ln, "condition"),
            "refund": money(_get(ln, "refund_amount"), currency), "tax": money(_get(ln, "tax_amount"), currency),
            "chargeback": charged[0] if len(charged) == 1 else None,  # several partners: see chargebacks
            "chargebacks": charged, "sources": _get(ln, "sources") or []}


def render(row: Any, lines: Iterable[Any], now: datetime | None = None) -> dict:
    """The return object: `row` a returns row (or dict of its columns), `lines` its lines."""
    cur = _get(row, "currency")
    status = effective_status(_get(row, "status"), _get(row, "expires_at"), now or clock.now())
    return {
        "id": _get(row, "id"), "object": "return", "order": _get(row, "order_id"),
        "order_number": _get(row, "order_number"), "channel": _get(row, "channel"), "location": _get(row, "location"),
        "status": status, "code": _get(row, "code"),
        "lines": [render_line(ln, cur) for ln in lines],
        "refund_method": _get(row, "refund_method"),
        "refund_total": money(_get(row, "refund_total"), cur), "tax_total": money(_get(row, "tax_total"), cur),
        "refund": _get(row, "refund"),
        "expires_at": rfc3339(_get(row, "expires_at")), "completed_at": rfc3339(_get(row, "completed_at")),
        "cancelled_at": rfc3339(_get(row, "cancelled_at")), "version": _get(row, "version"),
        "created_at": rfc3339(_get(row, "created_at")), "updated_at": rfc3339(_get(row, "updated_at")),
    }


def summary(row: Any, now: datetime) -> dict:
    """A return inside the order object."""
    return {"id": row.id, "status": effective_status(row.status, row.expires_at, now), "location": row.location,
            "code": row.code, "refund_total": money(row.refund_total, row.currency),
            "created_at": rfc3339(row.created_at)}


# --------------------------------------------------------------------------- scope

def scope(who: Principal | None, now: datetime):
    """A WHERE clause over `returns` for the returns `who` may see (None: every return)."""
    if who is None or who.is_admin:
        return None
    if who.role in facts.CHANNEL_BOUND:
        return R.c.channel == who.channel
    if who.role == "pos":
        order_scope = order_views.order_visible(who)
        return or_(R.c.location_id == who.location_id, R.c.code.is_not(None),
                   exists().where(O.c.id == R.c.order_id, order_scope))
    return R.c.id.is_(None)


def ref_clause(ref: str):
    """A return by id, or an authorization by its code (as typed: case, spaces and dashes do not matter)."""
    if rules.looks_like_code(ref):
        return or_(R.c.id == ref, R.c.code == rules.normalize_code(ref))
    return R.c.id == ref


async def lines_of(session: AsyncSession, ids: list[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = defaultdict(list)
    if ids:
        rows = (await session.execute(select(RL).where(where_in(session, RL.c.return_id, ids))
                                      .order_by(RL.c.return_id, RL.c.position))).all()
        for r in rows:
            out[r.return_id].append(r)
    return out


async def get(session: AsyncSession, ref: str, who: Principal) -> dict:
    now = clock.now()
    stmt = select(R).where(ref_clause(ref))
    clause = scope(who, now)
    if clause is not None:
        stmt = stmt.where(clause)
    row = (await session.execute(stmt)).first()
    if row is None:
        raise not_found(ref)
    return render(row, (await lines_of(session, [row.id]))[row.id], now)


def _status_clause(status: str, now: datetime):
    if status == ReturnStatus.authorized:
        return and_(R.c.status == status, R.c.expires_at > now)
    if status == ReturnStatus.expired:
        return or_(R.c.status == status, and_(R.c.status == ReturnStatus.authorized.value, R.c.expires_at <= now))
    return R.c.status == status


async def list_returns(session: AsyncSession, who: Principal, page: PageParams, *, order: str | None = None,
                       location: str | None = None, status: str | None = None, code: str | None = None) -> dict:
    """A page of the returns `who` sees, oldest first; filters by order (id or number), location
    (code or id), status and authorization code. Two statements whatever the page size."""
    now = clock.now()
    stmt = select(R)
    clause = scope(who, now)
    if clause is not None:
        stmt = stmt.where(clause)
    if order is not None:
        stmt = stmt.where(or_(R.c.order_id == order, R.c.order_number == order))
    if location is not None:
        stmt = stmt.where(or_(R.c.location == location, R.c.location_id == location))
    if status is not None:
        stmt = stmt.where(_status_clause(status, now))
    if code is not None:
        stmt = stmt.where(R.c.code == rules.normalize_code(code))
    rows = list((await session.execute(apply_page(stmt, R.c.id, page))).all())
    result = page_result(rows, page, lambda r: r)
    lines = await lines_of(session, [r.id for r in result["data"]])
    result["data"] = [render(r, lines.get(r.id, []), now) for r in result["data"]]
    return result


async def summaries(session: AsyncSession, order_ids: list[str]) -> dict[str, list[dict]]:
    """The returns of many orders, oldest first, for the order object: one statement."""
    if not order_ids:
        return {}
    now = clock.now()
    out: dict[str, list[dict]] = defaultdict(list)
    rows = (await session.execute(
        select(R.c.id, R.c.order_id, R.c.status, R.c.expires_at, R.c.location, R.c.code, R.c.refund_total,
               R.c.currency, R.c.created_at).where(where_in(session, R.c.order_id, order_ids)).order_by(R.c.id))).all()
    for r in rows:
        out[r.order_id].append(summary(r, now))
    return out


order_views.register_returns_loader(summaries)


# --------------------------------------------------------------------------- what may come back

async def returnable(session: AsyncSession, ref: str, who: Principal) -> dict:
    """Per order line: fulfilled, returned, authorized, returnable now, past the window, and the
    refund for every returnable unit. A POS key may ask about any order (return in any store)."""
    order = await facts.find_order(session, ref, who)
    now = clock.now()
    days = await window_days(session, order.channel)
    known = await facts.load(session, order.id, now)
    out = []
    for line_id, ln in known.lines.items():
        within, expired, closes = ln.returnable(now, days)
        amount, _ = refund_for_units(ln.total, ln.tax_amount, ln.quantity, ln.quantity_returned, within)
        out.append({"order_line_id": line_id, "sku": ln.sku, "title": known.titles.get(line_id),
                    "quantity": ln.quantity, "quantity_fulfilled": ln.quantity_fulfilled,
                    "quantity_returned": ln.quantity_returned, "quantity_authorized": ln.authorized,
                    "returnable": within, "expired": expired, "window_closes_at": rfc3339(closes),
                    "refund": money(amount, order.currency)})
    return {"order": order.id, "order_number": order.number, "channel": order.channel,
            "return_window_days": days, "lines": out}
