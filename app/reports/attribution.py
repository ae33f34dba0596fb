"""Attribution: where an order came from, and the in-store sale an online campaign brought.

Orders record their `channel`. Carts and orders (POST /v1/carts, PATCH, POST /v1/orders) take
`source` (utm_source, a referrer: `newsletter`, `google`…) and `campaign` (utm_campaign) when the
client knows them, stored lower-case; a cart hands its own to its order at checkout.

The in-store rule, applied by the reports when they read (set-based, nothing is written): a sale
in a `pos` channel that carries no source of its own, by a known customer, is credited to that
customer's latest online touch in the `days` (default 30, `attribution_days=` 0-90; 0 turns the
rule off) before the sale: an order or a cart in a channel that is not `pos`, that carried a
source (whatever became of it: an abandoned cart counts, that is the point). The sale then counts
under that touch's source and campaign; `attributed_orders` says how many of a group's orders
were credited so. Because it is read-time, a customer merged later, or a window asked for
differently, takes effect at once. Ties (two touches at the same instant) go to the smaller
source, then campaign.
"""
from datetime import timedelta

from sqlalchemy import and_, func, literal, select, union_all

from app.channels.models import Channel
from app.orders.models import Cart, Order
from app.reports.period import Period

O = Order.__table__
CART = Cart.__table__
CH = Channel.__table__
DEFAULT_DAYS = 30
MAX_DAYS = 90


def _pos_channels():
    return select(CH.c.code).where(CH.c.type == "pos").scalar_subquery()


def attributed(pg: bool, p: Period, days: int, order_filters: list):
    """A subquery (order_id, source, campaign): the POS sales of the period (within
    `order_filters`, clauses over `orders`) credited to an online touch. None when the rule is off."""
    if days <= 0:
        return None
    pos = (select(O.c.id, O.c.customer_id, O.c.created_at)
           .where(O.c.channel.in_(_pos_channels()), O.c.source.is_(None), O.c.customer_id.is_not(None),
                  *order_filters).subquery("pos_sales"))
    earliest = p.start - timedelta(days=days)
    online_orders = (select(O.c.customer_id, O.c.created_at, O.c.source, O.c.campaign)
                     .where(O.c.source.is_not(None), O.c.customer_id.is_not(None), O.c.channel.not_in(_pos_channels()),
                            O.c.created_at >= earliest, O.c.created_at < p.end))
    online_carts = (select(CART.c.customer_id, CART.c.created_at, CART.c.source, CART.c.campaign)
                    .where(CART.c.source.is_not(None), CART.c.customer_id.is_not(None),
                           CART.c.channel.not_in(_pos_channels()), CART.c.created_at >= earliest,
                           CART.c.created_at < p.end))
    touches = union_all(online_orders, online_carts).subquery("touches")
    if pg:
        window_start = pos.c.created_at - literal(timedelta(days=days))
    else:  # SQLite keeps UTC text 'YYYY-MM-DD HH:MM:SS.ffffff'; datetime() answers the same layout to the second
        window_start = func.datetime(pos.c.created_at, f"-{days} days")
    rank = func.row_number().over(partition_by=pos.c.id,
                                  order_by=(touches.c.created_at.desc(), touches.c.source, touches.c.campaign))
    ranked = (select(pos.c.id.label("order_id"), touches.c.source, touches.c.campaign, rank.label("rank"))
              .select_from(pos.join(touches, and_(touches.c.customer_id == pos.c.customer_id,
                                                  touches.c.created_at < pos.c.created_at,
                                                  touches.c.created_at >= window_start)))
              .subquery("ranked"))
    return select(ranked.c.order_id, ranked.c.source, ranked.c.campaign).where(ranked.c.rank == 1).subquery("credited")
