"""GET /v1/reports/customers: repeat buyers and buyers across channels, counts and rates.

Over the orders of the period that are sales (as in the sales report: created in [from, to),
not cancelled, not waiting for payment), by known customers (`customer_id`: a POS sale with a
loyalty card or email is one as much as a web order; records merged into one count once):
- `buyers`: customers with at least one such order;
- `repeat_buyers`: buyers with two orders or more in the period (any channels);
- `returning_buyers`: buyers who had bought before the period too;
- `cross_channel_buyers`: buyers who bought in two channels or more (by channel code: web-de and
  app-de are two); `online_and_store_buyers`: buyers with a POS sale and an order in any other
  channel (the omnichannel shopper);
- rates (basis points, half up, null for no buyers) = count ÷ buyers;
- `anonymous_orders`: orders without a customer (not in any figure above);
- `channels`: per channel, its buyers, its orders and its repeat buyers (two or more orders in
  that channel); one row per channel that sold in the period (at most 500).
Two statements. Counts only: no customer is named.
"""
from sqlalchemy import case, distinct, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.channels.models import Channel
from app.orders.models import Order
from app.reports.period import Period
from app.reports.sales import NOT_SALES, rate_bp

O = Order.__table__
CH = Channel.__table__
MAX_DAYS = 731
MAX_CHANNELS = 500


def _sales(p: Period, alias=O) -> list:
    return [alias.c.created_at >= p.start, alias.c.created_at < p.end, alias.c.status.not_in(NOT_SALES)]


async def report(session: AsyncSession, p: Period) -> dict:
    kind = case((CH.c.type == "pos", "store"), else_="online")
    buyers = (select(O.c.customer_id, func.count().label("orders"), func.count(distinct(O.c.channel)).label("channels"),
                     func.count(distinct(kind)).label("kinds"))
              .select_from(O.outerjoin(CH, CH.c.code == O.c.channel))
              .where(*_sales(p), O.c.customer_id.is_not(None)).group_by(O.c.customer_id).subquery("buyers"))
    before = O.alias("before")
    earlier = exists().where(before.c.customer_id == buyers.c.customer_id, before.c.created_at < p.start,
                             before.c.status.not_in(NOT_SALES))
    anonymous = select(func.count()).select_from(O).where(*_sales(p), O.c.customer_id.is_(None)).scalar_subquery()

    def how_many(cond):
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    head = (await session.execute(select(
        func.count().label("buyers_n"), func.coalesce(func.sum(buyers.c.orders), 0).label("orders_n"),
        how_many(buyers.c.orders >= 2).label("repeat_n"), how_many(earlier).label("returning_n"),
        how_many(buyers.c.channels >= 2).label("cross_n"), how_many(buyers.c.kinds >= 2).label("omni_n"),
        anonymous.label("anonymous_n")).select_from(buyers))).one()

    per = (select(O.c.channel, O.c.customer_id, func.count().label("orders"))
           .where(*_sales(p), O.c.customer_id.is_not(None)).group_by(O.c.channel, O.c.customer_id).subquery("per"))
    rows = (await session.execute(
        select(per.c.channel, func.count().label("buyers_n"), func.sum(per.c.orders).label("orders_n"),
               func.sum(case((per.c.orders >= 2, 1), else_=0)).label("repeat_n"))
        .group_by(per.c.channel).order_by(per.c.channel).limit(MAX_CHANNELS))).all()

    buyers_n = int(head.buyers_n)
    figures = {"repeat_buyers": int(head.repeat_n), "returning_buyers": int(head.returning_n),
               "cross_channel_buyers": int(head.cross_n), "online_and_store_buyers": int(head.omni_n)}
    return {
        "object": "report.customers", "period": p.render(),
        "buyers": buyers_n, "orders": int(head.orders_n), "anonymous_orders": int(head.anonymous_n),
        **figures,
        **{name.replace("_buyers", "_rate_bp"): rate_bp(v, buyers_n) for name, v in figures.items()},
        "channels": [{"channel": r.channel, "buyers": int(r.buyers_n), "orders": int(r.orders_n),
                      "repeat_buyers": int(r.repeat_n), "repeat_rate_bp": rate_bp(int(r.repeat_n), int(r.buyers_n))}
                     for r in rows],
    }
