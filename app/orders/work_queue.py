"""Fulfillments as a store or a partner sees them: the work queue and one fulfillment.

    GET /v1/fulfillments?location=&status=&method=&order=   admin: all; POS: its store's;
                                                            dropshipper: its partner location's
    GET /v1/fulfillments/{id}

Every role gets the fulfillment object (views.render_fulfillment, the pickup code only to
whom views.pickup_code_visible allows it) plus, from the order, what the work needs:
`order_number`, `shipping_address` and the lines' titles. A dropshipper sees nothing else of
the order (no email, phone, prices or totals) and of the sourcing record only its rule.
A page takes three statements whatever its size.
"""
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core.errors import ApiError
from app.core.pagination import PageParams, apply_page, page_result
from app.core.sql import where_in
from app.inventory import service as inventory
from app.orders import views
from app.orders.fulfillments import F, LOCATION_ROLES, O, get, lines_of, visible

_ORDER_COLS = (O.c.id, O.c.number, O.c.channel, O.c.shipping_address)


def render(row: Any, lines: list[Any], order: Any, who: Principal) -> dict:
    out = views.render_fulfillment(row, lines, order_number=order.number if order is not None else None,
                                   show_pickup_code=views.pickup_code_visible(
                                       who, order.channel if order is not None else None, row.location))
    titles = {ln.order_line_id: ln.title for ln in lines}
    for ln in out["lines"]:
        ln["title"] = titles.get(ln["order_line_id"])
    out["shipping_address"] = order.shipping_address if order is not None else None
    if who.role == "dropshipper":
        out["sourcing"] = {"rule": (out["sourcing"] or {}).get("rule")}
    return out


async def _orders(session: AsyncSession, ids: set[str]) -> dict[str, Any]:
    if not ids:
        return {}
    rows = (await session.execute(select(*_ORDER_COLS).where(where_in(session, O.c.id, sorted(ids))))).all()
    return {r.id: r for r in rows}


async def get_one(session: AsyncSession, ref: str, who: Principal) -> dict:
    row = await get(session, ref, who)
    lines = (await lines_of(session, [row.id]))[row.id]
    return render(row, lines, (await _orders(session, {row.order_id})).get(row.order_id), who)


async def render_rows(session: AsyncSession, rows: list[Any], who: Principal) -> list[dict]:
    lines = await lines_of(session, [r.id for r in rows])
    orders = await _orders(session, {r.order_id for r in rows})
    return [render(r, lines[r.id], orders.get(r.order_id), who) for r in rows]


async def new_ones(session: AsyncSession, ids: list[str], who: Principal) -> list[dict]:
    """Fulfillments a decline just made, each in full when `who` may see it (admin; the part a
    store kept), else only that the lines went on (id, status, lines): not another location's work."""
    if not ids:
        return []
    rows = list((await session.execute(select(F).where(where_in(session, F.c.id, ids)).order_by(F.c.id))).all())
    shown = await render_rows(session, rows, who)
    return [s if visible(r, who) else {"id": s["id"], "object": "fulfillment", "status": s["status"],
                                       "lines": s["lines"]}
            for r, s in zip(rows, shown)]


async def list_queue(session: AsyncSession, who: Principal, page: PageParams, *, location: str | None,
                     status: str | None, method: str | None, order: str | None) -> dict:
    """Oldest first (the queue's order). A bound key naming another location: 404; an unknown
    location or order: an empty page."""
    stmt = select(F)
    if who.role in LOCATION_ROLES:
        if location is not None:
            who.location_or_404(location)
        stmt = stmt.where(F.c.location_id == who.location_id)
    elif not who.is_admin:  # the router asks for the role; defensive
        raise ApiError(403, "forbidden", f"The {who.role} role may not list fulfillments.")
    elif location is not None:
        found = (await inventory.locations_by_code(session, [location])).get(location)
        if found is None:
            return {"data": [], "next_cursor": None}
        stmt = stmt.where(F.c.location_id == found.id)
    if status is not None:
        stmt = stmt.where(F.c.status == status)
    if method is not None:
        stmt = stmt.where(F.c.method == method)
    if order is not None:
        stmt = stmt.where(F.c.order_id == select(O.c.id).where((O.c.id == order) | (O.c.number == order))
                          .limit(1).scalar_subquery())
    rows = list((await session.execute(apply_page(stmt, F.c.id, page))).all())
    shown = await render_rows(session, rows[:page.limit], who)
    result = page_result(rows, page, lambda r: r)
    result["data"] = shown
    return result
