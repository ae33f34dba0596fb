"""GET /v1/reports/sales: orders, units, revenue, discounts, returns and coupon use per group.

Definitions (README "Reports" says the same):
- **Which orders**: created in the period (`orders.created_at`, the time axis), in any status but
  `cancelled` (nothing was sold) and `pending_payment` (not paid yet: it becomes a sale when the
  payment is confirmed, or is cancelled). Units cancelled later on a live order (unfulfillable,
  a fulfillment cancelled or expired) are taken out line by line.
- **Revenue**: what the customers were charged for the units not cancelled, tax included as
  charged: per line floor(total × (quantity − cancelled) / quantity), the exact value of those
  units (each unit carries its share of the line total, the first k units are worth
  floor(total × k / quantity), cancelled units counted from the back, as payments settles them).
  It is gross of returns: `returns.refunded` is reported beside it. **Discounts** likewise:
  the discount allocated to the units not cancelled.
- **Returns**: units of completed returns of those orders (`quantity_returned`) and what was
  refunded for them: per line floor(total × returned / quantity), to the cent what the returns
  refunded (each return refunds the next units' shares, pricing.engine.refund_for_units). They
  count in the group and period of their order (a cohort view: "of what we sold in March, how
  much came back"), not on the day they came back. **Return rate** = returned units ÷ units.
- **Coupon redemption rate** = orders placed with a coupon code ÷ orders. Codes that cannot apply
  are refused at checkout (422), so an order's `coupon_codes` are valid codes; one that did not
  lower that basket (e.g. below its minimum) still counts as used.
- **group_by**: `channel`; `day` (calendar day of created_at in `tz`); `sku`; `location`;
  `source` (the order's own source, else the online touch credited by the in-store rule of
  attribution.py; `null`: none); `campaign` (source and campaign); `currency`.
- **Location**: where the order was served: the store of a POS sale, of a pickup or of a
  reservation (`orders.location`); for a shipped order, the location of its first live
  fulfillment (the first location sourcing chose, or what took over from it). Every order counts
  under exactly one location, so locations add up to the same totals as channels. A shipment
  split over several locations is credited whole to the first (what each location shipped is
  its work queue, GET /v1/fulfillments). At most 92 days: this group_by also reads fulfillments.
- **Currency**: every group is per currency too (a row has `currency`; Money amounts are in it):
  a SKU sold in EUR and CHF is two rows. Amounts are never converted.
- **Rates** are integer basis points (1234 = 12.34 %), rounded half up; null when the
  denominator is 0.

Bounded: groups are paged by their key (then currency), `limit` at most 500, `cursor` the last
group of the page before. Every page is one statement over the period.

How it is read (README "Reports" has the figures): every group_by but sku reads the orders alone,
one row per order, with the figures each order keeps summed from its lines (orders.live_units,
live_total, live_discount_total, returned_units, returned_total: app/orders/reporting.py), index-only
over ix_orders_report; sku reads the lines alone, in SKU order (each line carries its order's
unchanging values, ix_order_lines_sku_order covers them). Source and campaign add the credited
in-store sales as corrections to a plain aggregate (`_by_source`). The answers are exactly those of
summing the lines of the orders per group.
"""
from datetime import date
from typing import Any

from sqlalchemy import and_, case, distinct, func, literal, or_, select, true, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.channels.service import channel_row
from app.core.db import is_postgres
from app.orders import reporting
from app.orders.models import Fulfillment, Order, OrderLine
from app.reports import attribution
from app.reports.period import Period, bad, decode_cursor, encode_cursor, local_day
from app.reports.schemas import GroupBy

O = Order.__table__
OL = OrderLine.__table__
F = Fulfillment.__table__

GROUP_BYS = tuple(g.value for g in GroupBy)
MAX_DAYS = 731  # two years: a year against the year before
# by day: a year at most (366 groups a currency); by location: a quarter, because it also aggregates the
# period's fulfillments (over a year of a million lines that takes seconds here, see the README)
MAX_DAYS_BY = {"day": 366, "location": 92}
NOT_SALES = ("cancelled", "pending_payment")
# group_bys whose statement runs without parallel workers (tuning.report_settings): each worker would
# aggregate the period's first fulfillments again, which takes longer on two cores than doing it once
ALONE = ("location",)
LIVE_FULFILLMENTS = ("open", "ready", "shipped", "collected")  # they hold the units not cancelled


def max_days(group_by: str) -> int:
    return MAX_DAYS_BY.get(group_by, MAX_DAYS)


def rate_bp(part: int, whole: int) -> int | None:
    return (part * 10_000 * 2 + whole) // (whole * 2) if whole else None


async def scope(session: AsyncSession, who: Principal, channel: str | None) -> dict[str, str]:
    """What `who` may see, as order columns and their values (channel, location): admin everything
    (`channel` narrows: an unknown one is 422), storefront and marketplace keys their channel
    (another: 404), POS keys the orders of their store (its sales, pickups and reservations)."""
    if who.role in ("storefront", "marketplace"):
        if channel is not None:
            who.channel_or_404(channel)
        return {"channel": who.channel}
    if who.role == "pos":
        return {"location": who.location, **({"channel": channel} if channel is not None else {})}
    if channel is not None:
        row = await channel_row(session, channel)
        if row is None:
            raise bad("channel", f"Unknown channel {channel!r}.")
        return {"channel": row.code}
    return {}


def _coupon(pg: bool):
    """The order was placed with at least one coupon code."""
    return (func.jsonb_array_length(O.c.coupon_codes) if pg else func.json_array_length(O.c.coupon_codes)) > 0


def _first_fulfillments(pg: bool, p: Period):
    """Subquery (order_id, location): the location of each order's first live fulfillment (ids grow
    with time: the smallest), among those made since the period began (a fulfillment is made with
    or after its order). One aggregate over fulfillments: min(id || '|' || location) carries the
    location of the smallest id along."""
    tagged = func.min(F.c.id + "|" + F.c.location)
    first = (select(F.c.order_id, tagged.label("tagged"))
             .where(F.c.status.in_(LIVE_FULFILLMENTS), F.c.created_at >= p.start)
             .group_by(F.c.order_id).subquery("first_fulfillment"))
    location = (func.split_part(first.c.tagged, "|", 2) if pg
                else func.substr(first.c.tagged, func.instr(first.c.tagged, "|") + 1))
    return select(first.c.order_id, location.label("location")).subquery("first_location")


FIGURES = ("units", "revenue", "discounts", "returned", "refunded")  # summed per group, as named in the answer


def _order_figures() -> list:
    """An order's figures (summed from its lines on the order row: app/orders/reporting.py)."""
    return [O.c.live_units.label("units"), O.c.live_total.label("revenue"), O.c.live_discount_total.label("discounts"),
            O.c.returned_units.label("returned"), O.c.returned_total.label("refunded")]


def _grouped(rows, keys: list, orders, coupon_orders, *extra):
    return select(*keys, orders.label("orders"), coupon_orders.label("coupon_orders"),
                  *(func.sum(rows.c[f]).label(f) for f in FIGURES), *extra).group_by(*keys)


def _by_sku(pg: bool, p: Period, seen: dict[str, str]) -> tuple[list, Any]:
    """One row per order line, read in SKU order from ix_order_lines_sku_order alone: the order's
    created_at, channel, location, currency and coupon flag are on its lines (app/orders/reporting.py),
    and the period's orders that are not sales (cancelled, waiting for payment: a few) are left out
    by id (NOT IN: a hashed list, the lines stay in SKU order). An order counts once per SKU it has
    live units of."""
    line = reporting.line_figures(OL)
    not_sales = select(O.c.id).where(O.c.created_at >= p.start, O.c.created_at < p.end, O.c.status.in_(NOT_SALES))
    rows = (select(OL.c.sku.label("k"), OL.c.order_currency.label("currency"), OL.c.order_id,
                   OL.c.order_coupon.label("coupon"),
                   *(line[name].label(f) for f, name in zip(FIGURES, reporting.FIGURES)))
            .where(OL.c.order_created_at >= p.start, OL.c.order_created_at < p.end, OL.c.order_id.not_in(not_sales),
                   *(OL.c["order_" + column] == value for column, value in seen.items()))
            .subquery("rows"))
    live = rows.c.units > 0
    keys = [rows.c.k, rows.c.currency]
    return keys, _grouped(rows, keys, func.count(distinct(case((live, rows.c.order_id)))),
                          func.count(distinct(case((and_(live, rows.c.coupon), rows.c.order_id)))))


def _by_order(pg: bool, group_by: str, p: Period, where: list) -> tuple[list, Any]:
    """channel, currency, day, location, and source / campaign with the in-store rule off: one row
    per order, its figures from the order row (no join with order_lines)."""
    joined = O
    if group_by == "channel":
        keys = [O.c.channel.label("k")]
    elif group_by == "currency":
        keys = [O.c.currency.label("k")]
    elif group_by == "day":
        keys = [local_day(pg, O.c.created_at, p).label("k")]
    elif group_by == "location":
        first = _first_fulfillments(pg, p)
        joined = joined.outerjoin(first, and_(first.c.order_id == O.c.id, O.c.location.is_(None)))
        keys = [func.coalesce(O.c.location, first.c.location, "").label("k")]
    else:  # source, campaign: the order's own
        keys = [func.coalesce(O.c.source, "").label("k")] + (
            [func.coalesce(O.c.campaign, "").label("k2")] if group_by == "campaign" else [])
    rows = (select(*keys, O.c.currency.label("currency"), _coupon(pg).label("coupon"), *_order_figures())
            .select_from(joined).where(*where).subquery("rows"))
    keys = [rows.c.k] + ([rows.c.k2] if group_by == "campaign" else []) + [rows.c.currency]
    extra = [literal(0).label("credited")] if group_by in ("source", "campaign") else []
    return keys, _grouped(rows, keys, func.count(), func.count().filter(rows.c.coupon), *extra)


def _by_source(pg: bool, group_by: str, p: Period, where: list, days: int) -> tuple[list, Any]:
    """source and campaign with the in-store rule (attribution.py). Set-based in two parts added up:
    every order under its own source (and campaign), a plain aggregate over the period's orders;
    then each credited in-store sale (a few, from `attribution.attributed`) moved from the empty
    source, where the first part counted it, to its touch: one row of its figures under the
    touch and one of minus its figures under the empty key. Every figure is a sum, so the groups
    add up to exactly what crediting each order in place would give; a group left without orders
    is dropped (HAVING). The big pass needs no join (and may run in parallel), the join is with
    the credited sales only."""
    campaign = group_by == "campaign"
    own = O.c.source.is_not(None)
    rows = (select(func.coalesce(O.c.source, "").label("k"),
                   *([case((own, func.coalesce(O.c.campaign, "")), else_="").label("k2")] if campaign else []),
                   O.c.currency.label("currency"), _coupon(pg).label("coupon"), *_order_figures())
            .where(*where).subquery("rows"))
    keys = [rows.c.k] + ([rows.c.k2] if campaign else []) + [rows.c.currency]
    plain = _grouped(rows, keys, func.count(), func.count().filter(rows.c.coupon), literal(0).label("credited"))
    credited = attribution.attributed(pg, p, days, where)
    sign = union_all(select(literal(1).label("sign")), select(literal(-1).label("sign"))).subquery("sign")
    to_touch = sign.c.sign == 1
    moved = (select(case((to_touch, credited.c.source), else_="").label("k"),
                    *([case((to_touch, func.coalesce(credited.c.campaign, "")), else_="").label("k2")] if campaign
                      else []),
                    O.c.currency.label("currency"), sign.c.sign.label("orders"),
                    case((_coupon(pg), sign.c.sign), else_=0).label("coupon_orders"),
                    *((sign.c.sign * col).label(col.name) for col in _order_figures()),
                    case((to_touch, 1), else_=0).label("credited"))
             .select_from(credited.join(O, O.c.id == credited.c.order_id).join(sign, true())))
    parts = union_all(plain, moved).subquery("parts")
    keys = [parts.c.k] + ([parts.c.k2] if campaign else []) + [parts.c.currency]
    totals = [func.sum(parts.c[c]).label(c) for c in ("orders", "coupon_orders", *FIGURES, "credited")]
    return keys, select(*keys, *totals).group_by(*keys).having(func.sum(parts.c.orders) > 0)


async def report(session: AsyncSession, who: Principal, *, group_by: str, period: Period, channel: str | None,
                 attribution_days: int, limit: int, cursor: str | None) -> dict:
    if group_by not in GROUP_BYS:
        raise bad("group_by", f"Unknown group_by {group_by!r}: one of {', '.join(GROUP_BYS)}.")
    pg = is_postgres(session)
    seen = await scope(session, who, channel)
    where = [O.c.created_at >= period.start, O.c.created_at < period.end, O.c.status.not_in(NOT_SALES),
             *(O.c[column] == value for column, value in seen.items())]
    if group_by == "sku":
        keys, stmt = _by_sku(pg, period, seen)
    elif group_by in ("source", "campaign") and attribution_days > 0:
        keys, stmt = _by_source(pg, group_by, period, where, attribution_days)
    else:
        keys, stmt = _by_order(pg, group_by, period, where)
    after = decode_cursor(cursor, len(keys))
    if after is not None and group_by == "day" and pg:  # PostgreSQL groups days as dates
        try:
            after[0] = date.fromisoformat(after[0])
        except ValueError:
            raise bad("cursor", "Invalid cursor: pass next_cursor of the previous page as it was.") from None
    stmt = stmt.order_by(*keys).limit(limit + 1)
    if after is not None:
        stmt = stmt.where(_after(keys, after))
    result = (await session.execute(stmt)).all()
    page = [_render(group_by, r) for r in result[:limit]]
    last = result[limit - 1] if len(result) > limit else None
    return {
        "object": "report.sales", "group_by": group_by, "period": period.render(),
        "channel": channel if channel is not None else (who.channel if who.role in ("storefront", "marketplace")
                                                        else None),
        "location": who.location if who.role == "pos" else None,
        **({"attribution_days": attribution_days} if group_by in ("source", "campaign") else {}),
        "data": page,
        "next_cursor": encode_cursor([str(v) for v in last[:len(keys)]]) if last is not None else None,
    }


def _after(keys: list, after: list):
    """(k1, k2, …) > (a1, a2, …), spelt out (row values compare alike on both databases this way)."""
    clause = keys[-1] > after[-1]
    for col, value in zip(reversed(keys[:-1]), reversed(after[:-1])):
        clause = or_(col > value, and_(col == value, clause))
    return clause


def _money(amount: Any, currency: str) -> dict:
    return {"amount": int(amount or 0), "currency": currency}


def _render(group_by: str, r: Any) -> dict:
    m = r._mapping
    currency = m["currency"]
    units, orders, returned = int(m["units"] or 0), int(m["orders"]), int(m["returned"] or 0)
    out: dict[str, Any] = {}
    if group_by in ("source", "campaign"):
        out["source"] = m["k"] or None
        if group_by == "campaign":
            out["campaign"] = m["k2"] or None
    elif group_by != "currency":
        out[group_by] = str(m["k"]) if group_by == "day" else (m["k"] or None)
    out.update({
        "currency": currency, "orders": orders, "units": units,
        "revenue": _money(m["revenue"], currency), "discounts": _money(m["discounts"], currency),
        "returns": {"units": returned, "refunded": _money(m["refunded"], currency)},
        "return_rate_bp": rate_bp(returned, units),
        "coupon_orders": int(m["coupon_orders"]), "coupon_redemption_rate_bp": rate_bp(int(m["coupon_orders"]), orders),
    })
    if group_by in ("source", "campaign"):
        out["attributed_orders"] = int(m["credited"])
    return out
