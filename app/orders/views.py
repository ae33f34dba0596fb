"""Orders and fulfillments as the API shows them, and the order's status derived from its parts.

    render_fulfillment(f, lines, order_number=..., show_pickup_code=...)  -> the fulfillment object
    await load_order(session, ref, who)      -> the order object (ref: id or number), 404 outside `who`'s scope
    render_order(order, lines, fulfillments, who)                          (what load_order renders with)
    await order_status_update(session, order_id)  -> re-derives status, quantities and bumps version
    order_visible(who) / pickup_code_visible(who, channel, location)       the scope rules

Who sees an order (`order_visible`): admin (and internal callers, `who=None`) every order; a
storefront or marketplace key the orders of its channel; a POS key the orders placed at its
store (POS sales, pickups, reservations) and those with a fulfillment at its store. Dropshippers
see fulfillments, not orders (their work queue). A `pickup_code` is shown only while the
fulfillment is `ready`, and only to admin, a POS key of that store, or a storefront key of the
order's channel (the shop shows it to its customer).

`load_order` runs three statements whatever the order's size: the order with its lines (one
join), its fulfillments with their lines (one join), its returns (one).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import bindparam, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import clock
from app.core.errors import ApiError
from app.core.responses import rfc3339
from app.orders import reporting, states
from app.orders.models import Fulfillment, FulfillmentLine, Order, OrderLine

O = Order.__table__
OL = OrderLine.__table__
F = Fulfillment.__table__
FL = FulfillmentLine.__table__

_LINE_COLS = [c.label(f"l_{c.name}") for c in OL.c]
_FL_COLS = [FL.c.order_line_id.label("fl_order_line_id"), FL.c.sku.label("fl_sku"),
            FL.c.quantity.label("fl_quantity")]


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    mapping = getattr(obj, "_mapping", None)
    if mapping is not None:
        return mapping.get(key, default)
    return getattr(obj, key, default)


# --------------------------------------------------------------------------- scope

def order_visible(who: Principal | None):
    """A WHERE clause over `orders` for the orders `who` may see (None: every order)."""
    if who is None or who.is_admin:
        return None
    if who.role in ("storefront", "marketplace"):
        return O.c.channel == who.channel
    if who.role == "pos":
        return or_(O.c.location == who.location,
                   exists().where(F.c.order_id == O.c.id, F.c.location_id == who.location_id))
    return O.c.id.is_(None)  # nobody else (dropshippers work on fulfillments)


def pickup_code_visible(who: Principal | None, channel: str | None, location: str | None) -> bool:
    if who is None:
        return False
    if who.is_admin:
        return True
    if who.role == "pos":
        return location is not None and location in (who.location, who.location_id)
    if who.role == "storefront":
        return channel is not None and channel == who.channel
    return False


# --------------------------------------------------------------------------- rendering

def render_fulfillment(f: Any, lines: Iterable[Any], *, order_number: str | None = None,
                       show_pickup_code: bool = False) -> dict:
    """The fulfillment object. `f`: a fulfillments row (Row, ORM object or dict); `lines`: its
    lines (anything with order_line_id, sku, quantity). `show_pickup_code`: the caller may see
    the code (see pickup_code_visible); it is shown only while the fulfillment is ready."""
    status = _get(f, "status")
    carrier, tracking = _get(f, "carrier"), _get(f, "tracking_number")
    return {
        "id": _get(f, "id"), "object": "fulfillment", "order": _get(f, "order_id"),
        "order_number": order_number if order_number is not None else _get(f, "order_number"),
        "location": _get(f, "location"), "method": _get(f, "method"), "kind": _get(f, "kind"), "status": status,
        "lines": [{"order_line_id": _get(ln, "order_line_id"), "sku": _get(ln, "sku"), "quantity": _get(ln, "quantity")}
                  for ln in lines],
        "tracking": {"carrier": carrier, "tracking_number": tracking} if (carrier or tracking) else None,
        "pickup_code": _get(f, "pickup_code") if (show_pickup_code and status == states.S.ready) else None,
        "expires_at": rfc3339(_get(f, "expires_at")), "reason": _get(f, "reason"),
        "sourcing": _get(f, "sourcing") or {}, "replaces": _get(f, "replaces"), "version": _get(f, "version"),
        "created_at": rfc3339(_get(f, "created_at")), "updated_at": rfc3339(_get(f, "updated_at")),
    }


def render_line(ln: Any, prefix: str = "") -> dict:
    def g(k: str) -> Any:
        return _get(ln, prefix + k)

    out = {
        "id": g("id"), "sku": g("sku"), "title": g("title"), "quantity": g("quantity"), "unit_price": g("unit_price"),
        "subtotal": g("subtotal"), "discounts": g("discounts") or [], "discount_total": g("discount_total"),
        "total": g("total"), "tax_rate_bp": g("tax_rate_bp"), "tax_amount": g("tax_amount"),
        "quantity_fulfilled": g("quantity_fulfilled"), "quantity_cancelled": g("quantity_cancelled"),
        "quantity_returned": g("quantity_returned"),
    }
    comps = g("components")
    if comps:
        out["components"] = comps
    return out


def unfulfillable(fulfillments: Iterable[tuple[Any, list]]) -> list[dict]:
    """The units nobody can serve: lines of declined fulfillments that no later fulfillment took
    over (`replaces`), as [{order_line_id, sku, quantity}]."""
    fuls = list(fulfillments)
    taken_over: dict[tuple[str, str], int] = defaultdict(int)
    for f, flines in fuls:
        if _get(f, "replaces") is not None:
            for ln in flines:
                taken_over[(_get(f, "replaces"), _get(ln, "order_line_id"))] += _get(ln, "quantity")
    out: dict[tuple[str, str], int] = defaultdict(int)
    for f, flines in fuls:
        if _get(f, "status") == states.S.declined:
            for ln in flines:
                left = _get(ln, "quantity") - taken_over.get((_get(f, "id"), _get(ln, "order_line_id")), 0)
                if left > 0:
                    out[(_get(ln, "order_line_id"), _get(ln, "sku"))] += left
    return [{"order_line_id": line, "sku": sku, "quantity": q} for (line, sku), q in sorted(out.items())]


def render_order(order: Any, lines: Iterable[Any], fulfillments: Iterable[tuple[Any, list]],
                 who: Principal | None = None, *, line_prefix: str = "", returns: Iterable[dict] = ()) -> dict:
    """The order object: `order` an orders row, `lines` its order lines (columns named with
    `line_prefix`), `fulfillments` [(fulfillment row, its lines)], `returns` its return
    summaries (`returns_of`)."""
    fulfillments = list(fulfillments)
    channel, number = _get(order, "channel"), _get(order, "number")
    return {
        "id": _get(order, "id"), "object": "order", "number": number, "channel": channel,
        "external_id": _get(order, "external_id"), "customer": _get(order, "customer_id"),
        "source": _get(order, "source"), "campaign": _get(order, "campaign"),  # attribution (app/reports)
        "email": _get(order, "email"), "status": _get(order, "status"),
        "payment_status": _get(order, "payment_status"),
        "payment": render_payment(order),
        "price_source": _get(order, "price_source"), "currency": _get(order, "currency"),
        "prices_include_tax": _get(order, "prices_include_tax"),
        "lines": [render_line(ln, line_prefix) for ln in lines],
        "totals": {"subtotal": _get(order, "subtotal"), "discount_total": _get(order, "discount_total"),
                   "tax_total": _get(order, "tax_total"), "total": _get(order, "total")},
        "coupon_codes": _get(order, "coupon_codes") or [], "promotions": _get(order, "promotions") or [],
        "fulfillment": {"method": _get(order, "fulfillment_method"), "location": _get(order, "location"),
                        "address": _get(order, "shipping_address")},
        "fulfillments": [render_fulfillment(f, fl, order_number=number,
                                            show_pickup_code=pickup_code_visible(who, channel, _get(f, "location")))
                         for f, fl in fulfillments],
        "unfulfillable": unfulfillable(fulfillments),
        "returns": list(returns),
        "cart": _get(order, "cart_id"),
        "version": _get(order, "version"),
        "created_at": rfc3339(_get(order, "created_at")), "updated_at": rfc3339(_get(order, "updated_at")),
    }


# --------------------------------------------------------------------------- returns

# The order object lists its returns, but orders do not import the returns domain (it builds on
# orders): app/returns/views.py registers the loader when it is imported (app.main imports every
# router). One statement for any number of orders; none before a loader is registered.
ReturnsLoader = Callable[[AsyncSession, list[str]], Awaitable[dict[str, list[dict]]]]
_returns_loader: ReturnsLoader | None = None


def register_returns_loader(loader: ReturnsLoader) -> None:
    global _returns_loader
    _returns_loader = loader


async def returns_of(session: AsyncSession, order_ids: list[str]) -> dict[str, list[dict]]:
    """{order id: [{id, status, location, code, refund_total, created_at}]}, oldest first."""
    if _returns_loader is None or not order_ids:
        return {}
    return await _returns_loader(session, order_ids)


def render_payment(order: Any) -> dict:
    """The order's payment: provider, reference and the figures (app/payments keeps them)."""
    currency = _get(order, "currency")

    def m(name: str) -> dict:
        return {"amount": _get(order, name) or 0, "currency": currency}

    return {"provider": _get(order, "payment_provider"), "reference": _get(order, "payment_reference"),
            "authorized": m("amount_authorized"), "captured": m("amount_captured"), "refunded": m("amount_refunded"),
            "multicapture": bool(_get(order, "multicapture")),
            "capture_before": rfc3339(_get(order, "capture_before")) if _get(order, "capture_before") else None,
            "expires_at": rfc3339(_get(order, "payment_expires_at")) if _get(order, "payment_expires_at") else None}


# --------------------------------------------------------------------------- reading

def _order_stmt(ref: str, who: Principal | None):
    stmt = (select(O, *_LINE_COLS).select_from(O.outerjoin(OL, OL.c.order_id == O.c.id))
            .where(or_(O.c.id == ref, O.c.number == ref)).order_by(OL.c.position))
    scope = order_visible(who)
    if scope is not None:
        stmt = stmt.where(scope)
    return stmt


def _fulfillments_stmt(order_ids):
    return (select(F, *_FL_COLS).select_from(F.outerjoin(FL, FL.c.fulfillment_id == F.c.id))
            .where(order_ids).order_by(F.c.created_at, F.c.id, FL.c.order_line_id))


def group_fulfillments(rows: Iterable[Any]) -> dict[str, list[tuple[Any, list[dict]]]]:
    """Rows of fulfillments outer-joined with their lines -> {order id: [(row, lines)]}."""
    out: dict[str, list[tuple[Any, list[dict]]]] = defaultdict(list)
    last: dict[str, tuple[Any, list[dict]]] = {}
    for r in rows:
        entry = last.get(r.id)
        if entry is None:
            entry = last[r.id] = (r, [])
            out[r.order_id].append(entry)
        if r.fl_order_line_id is not None:
            entry[1].append({"order_line_id": r.fl_order_line_id, "sku": r.fl_sku, "quantity": r.fl_quantity})
    return out


async def order_row(session: AsyncSession, ref: str, who: Principal | None, *, for_update: bool = False) -> Any:
    """The orders row by id or number within `who`'s scope (404 outside it), for routes that need
    the order's columns, not its rendering (payments), and for changes (`for_update`: the row
    locked, as every change of an order takes it first). One statement."""
    stmt = select(O).where(or_(O.c.id == ref, O.c.number == ref))
    if for_update:
        stmt = stmt.with_for_update()
    scope = order_visible(who)
    if scope is not None:
        stmt = stmt.where(scope)
    row = (await session.execute(stmt)).first()
    if row is None:
        raise ApiError(404, "not_found", f"Order {ref!r} was not found.")
    return row


async def load_order(session: AsyncSession, ref: str, who: Principal | None) -> dict:
    """The order by id or number, rendered for `who`; 404 when it does not exist or lies
    outside `who`'s scope. Three statements."""
    rows = (await session.execute(_order_stmt(ref, who))).all()
    if not rows:
        raise ApiError(404, "not_found", f"Order {ref!r} was not found.")
    order = rows[0]
    lines = [r for r in rows if r.l_id is not None]
    fulfillments = group_fulfillments((await session.execute(_fulfillments_stmt(F.c.order_id == order.id))).all())
    returns = await returns_of(session, [order.id])
    return render_order(order, lines, fulfillments.get(order.id, []), who, line_prefix="l_",
                        returns=returns.get(order.id, ()))


async def render_orders(session: AsyncSession, orders: list[Any], who: Principal | None) -> list[dict]:
    """Many orders (rows of `orders`) rendered with their lines, fulfillments and returns: three statements."""
    if not orders:
        return []
    ids = [o.id for o in orders]
    lines: dict[str, list] = defaultdict(list)
    for r in (await session.execute(select(OL).where(OL.c.order_id.in_(ids)).order_by(OL.c.order_id, OL.c.position))).all():
        lines[r.order_id].append(r)
    fulfillments = group_fulfillments((await session.execute(_fulfillments_stmt(F.c.order_id.in_(ids)))).all())
    returns = await returns_of(session, ids)
    return [render_order(o, lines.get(o.id, []), fulfillments.get(o.id, []), who, returns=returns.get(o.id, ()))
            for o in orders]


# --------------------------------------------------------------------------- the derived status

def progress(lines: Iterable[tuple[str, int]], fulfillments: Iterable[tuple[str, str, str | None, list[tuple[str, int]]]]
             ) -> dict[str, states.LineProgress]:
    """Per order line: ordered, fulfilled, cancelled units. `lines`: (line id, quantity);
    `fulfillments`: (id, status, replaces, [(line id, quantity)]). Shipped / collected units are
    fulfilled, cancelled / expired ones cancelled; the units of a declined fulfillment that no
    later fulfillment took over (`replaces`) are unfulfillable, so cancelled too."""
    ordered = dict(lines)
    fuls = list(fulfillments)
    taken_over: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for _, _, replaces, flines in fuls:
        if replaces is not None:
            for key, q in flines:
                taken_over[replaces][key] += q
    entries: list[tuple[str, list[tuple[str, int]]]] = [(status, flines) for _, status, _, flines in fuls]
    for fid, status, _, flines in fuls:
        if status == states.S.declined:
            left = [(key, q - taken_over[fid].get(key, 0)) for key, q in flines]
            entries.append((states.S.cancelled, [(k, q) for k, q in left if q > 0 and k in ordered]))
    entries = [(s, [(k, q) for k, q in fl if k in ordered]) for s, fl in entries]
    out = states.line_progress(ordered, entries)
    # never more than ordered (a line cannot be both fulfilled and cancelled beyond its quantity)
    return {k: states.LineProgress(p.ordered, min(p.fulfilled, p.ordered),
                                   min(p.cancelled, p.ordered - min(p.fulfilled, p.ordered)))
            for k, p in out.items()}


def payment_pending(payment_status: str | None, provider: str | None) -> bool:
    """An order waits for its payment while a provider that confirms asynchronously (Stripe)
    has not reported it paid or authorized."""
    return provider == "stripe" and payment_status == "unpaid"


async def order_status_update(session: AsyncSession, order_id: str) -> dict:
    """Re-derive an order's status and its lines' quantity_fulfilled / quantity_cancelled from
    its fulfillments (call it after every fulfillment transition, in the same transaction), and
    bump the order's version. The order row is locked first (PostgreSQL), so two transitions
    of one order's fulfillments at once both end in the right status. Emits nothing: returns
    {status, previous_status, version} and the caller emits `order.cancelled` / … when the
    status changed. Four statements at most."""
    rows = (await session.execute(
        select(O.c.id, O.c.status, O.c.payment_status, O.c.payment_provider, O.c.version,
               OL.c.id.label("line_id"), OL.c.quantity, OL.c.quantity_fulfilled, OL.c.quantity_cancelled)
        .select_from(O.join(OL, OL.c.order_id == O.c.id)).where(O.c.id == order_id).with_for_update(of=O)
    )).all()
    if not rows:
        raise ApiError(404, "not_found", f"Order {order_id!r} was not found.")
    head = rows[0]
    frows = (await session.execute(
        select(F.c.id, F.c.status, F.c.replaces, FL.c.order_line_id, FL.c.quantity)
        .select_from(F.outerjoin(FL, FL.c.fulfillment_id == F.c.id)).where(F.c.order_id == order_id)
    )).all()
    fuls: dict[str, tuple[str, str, str | None, list]] = {}
    for r in frows:
        entry = fuls.setdefault(r.id, (r.id, r.status, r.replaces, []))
        if r.order_line_id is not None:
            entry[3].append((r.order_line_id, r.quantity))
    prog = progress([(r.line_id, r.quantity) for r in rows], fuls.values())
    status = states.derive_order_status(prog.values(), payment_pending=payment_pending(head.payment_status,
                                                                                       head.payment_provider))
    changed = [{"k_id": r.line_id, "qf": prog[r.line_id].fulfilled, "qc": prog[r.line_id].cancelled}
               for r in rows if (r.quantity_fulfilled, r.quantity_cancelled) != (prog[r.line_id].fulfilled,
                                                                                  prog[r.line_id].cancelled)]
    if changed:
        await session.execute(update(OL).where(OL.c.id == bindparam("k_id"))
                              .values(quantity_fulfilled=bindparam("qf"), quantity_cancelled=bindparam("qc")), changed)
    version = (await session.execute(
        update(O).where(O.c.id == order_id).values(status=str(status), version=O.c.version + 1, updated_at=clock.now(),
                                                   **reporting.recount())
        .returning(O.c.version))).scalar_one()
    return {"status": str(status), "previous_status": head.status, "version": version}


__all__ = ["load_order", "list_orders", "render_order", "render_orders", "render_fulfillment", "render_line", "order_status_update",
           "order_visible", "pickup_code_visible", "group_fulfillments", "progress", "payment_pending"]


# --------------------------------------------------------------------------- lists

async def list_orders(session: AsyncSession, who: Principal | None, page: Any, *, channel: str | None = None,
                      status: str | None = None, customer_id: str | None = None,
                      created_since: Any = None, external_id: str | None = None, scoped: bool = True) -> dict:
    """A page of orders within `who`'s scope (`scoped=False`: every order the filters match, e.g.
    a customer's from every channel), oldest first (cursor: the last id), rendered in full.
    Four statements whatever the page size."""
    from app.core.pagination import apply_page, page_result

    stmt = select(O)
    scope = order_visible(who) if scoped else None
    if scope is not None:
        stmt = stmt.where(scope)
    if channel is not None:
        stmt = stmt.where(O.c.channel == channel)
    if status is not None:
        stmt = stmt.where(O.c.status == status)
    if customer_id is not None:
        stmt = stmt.where(O.c.customer_id == customer_id)
    if created_since is not None:
        stmt = stmt.where(O.c.created_at >= created_since)
    if external_id is not None:
        stmt = stmt.where(O.c.external_id == external_id)
    rows = list((await session.execute(apply_page(stmt, O.c.id, page))).all())
    result = page_result(rows, page, lambda r: r)
    result["data"] = await render_orders(session, result["data"], who)
    return result
