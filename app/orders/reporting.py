"""What the sales report reads, kept where it reads it (app/reports/sales.py has the definitions),
so that a year of orders is one pass over one table, never orders joined with a million lines.

**What each order sold**, summed from its lines onto the order row (the report's per-order groups:
channel, day, location, source, campaign, currency):

    live_units           Σ (quantity − quantity_cancelled)                       the units not cancelled
    live_total           Σ floor(total × (quantity − quantity_cancelled) / quantity)   charged for them
    live_discount_total  Σ floor(discount_total × (quantity − quantity_cancelled) / quantity)
    returned_units       Σ quantity_returned
    returned_total       Σ floor(total × quantity_returned / quantity)            what the returns refunded

Never set by hand. Checkout writes them with the order (`of_lines`, from the lines it is about to
insert); after that they are counted again from the lines by the very UPDATE of the order that
follows every change of a line's quantities (`recount()`, a correlated sum: no statement of its
own): views.order_status_update (fulfilled and cancelled units, after every fulfillment change)
and returns._touch_order (returned units). Those are the only writers of order_lines.

**The order on its lines**: order_created_at, order_channel, order_currency, order_location (the
store of a pickup, reservation or POS sale) and order_coupon (placed with a coupon code), for the
report by SKU, which reads the lines in SKU order and filters and groups them without visiting
each line's order. Copies of values an order never changes after checkout (nothing updates these
columns of `orders`), written with the lines (`on_lines`); the order's status, which does change,
is not copied (the report leaves out the lines of the period's few cancelled and unpaid orders).

tests/reports/test_order_figures.py walks every flow (checkout, payment confirmed or expired,
fulfilment, cancellation, decline and re-sourcing, expiry, returns, customer merge) and checks
both against the lines and the orders after each step.
"""
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from app.orders.models import Order, OrderLine

O = Order.__table__
OL = OrderLine.__table__
FIGURES = ("live_units", "live_total", "live_discount_total", "returned_units", "returned_total")
ON_LINES = {"order_created_at": "created_at", "order_channel": "channel", "order_currency": "currency",
            "order_location": "location"}  # line column: order column (and order_coupon: coupon_codes not empty)


def line_figures(line: Any) -> dict[str, Any]:
    """A line's share of each figure: SQL expressions over `line` (a table or subquery with the
    columns of order_lines), integer arithmetic on both databases (all operands are non-negative)."""
    live = line.c.quantity - line.c.quantity_cancelled
    return {"live_units": live, "live_total": (line.c.total * live) // line.c.quantity,
            "live_discount_total": (line.c.discount_total * live) // line.c.quantity,
            "returned_units": line.c.quantity_returned,
            "returned_total": (line.c.total * line.c.quantity_returned) // line.c.quantity}


def recount() -> dict[str, Any]:
    """Values for `update(orders)`: each figure summed again from the order's lines as they are."""
    return {name: select(func.coalesce(func.sum(expr), 0)).where(OL.c.order_id == O.c.id).scalar_subquery()
            for name, expr in line_figures(OL).items()}


def of_lines(lines: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The figures of lines not written yet (dicts with the columns of order_lines)."""
    out = dict.fromkeys(FIGURES, 0)
    for ln in lines:
        q, live, returned = ln["quantity"], ln["quantity"] - ln["quantity_cancelled"], ln["quantity_returned"]
        out["live_units"] += live
        out["live_total"] += ln["total"] * live // q
        out["live_discount_total"] += ln["discount_total"] * live // q
        out["returned_units"] += returned
        out["returned_total"] += ln["total"] * returned // q
    return out


def on_lines(*, created_at: datetime, channel: str, currency: str, location: str | None,
             coupon_codes: list) -> dict[str, Any]:
    """The order's values each of its lines carries (the columns of `ON_LINES` and order_coupon)."""
    return {"order_created_at": created_at, "order_channel": channel, "order_currency": currency,
            "order_location": location, "order_coupon": bool(coupon_codes)}
