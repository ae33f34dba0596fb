"""Quotes: `quote_basket`, the one function every channel prices through (carts, orders, POS
sales, marketplace listings), and the POST /v1/pricing/quote use case."""
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.service import canonical, lookup_skus
from app.core import clock
from app.core.errors import ApiError
from app.customers import service as customers
from app.pricing import engine, offers
from app.pricing.reference import context, load_channel, price_rows, reference_data
from app.pricing.schemas import QuoteRequest


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


async def quote_basket(session: AsyncSession, channel: Any, lines: list[tuple[str, int]], *,
                       customer_group: str | None = None, coupon_codes: list[str] | tuple = (),
                       now: datetime | None = None) -> engine.QuoteResult:
    """Price `lines` [(sku, quantity)] in `channel` (a channels row). Raises ApiError 422 for
    what cannot be priced (unknown or unsellable SKU, no price, no tax rate) and for a coupon that
    can never apply here (`invalid_coupon`, each error with its `reason`: unknown, not_yet_valid,
    expired, not_in_channel, customer_group). Each line says which price list priced it
    (`price_list`); `coupons` says per coupon whether it applied and, if not, why
    (app/pricing/offers.py)."""
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
    rows = await price_rows(conn, sorted(wanted))
    lists = [pl for pl in ref.price_lists.values() if pl.currency == channel.currency]
    prices = [engine.Price(ref.list_code[r.price_list_id], r.sku, r.amount, r.min_quantity)
              for r in rows if r.price_list_id in ref.list_code]
    promos = ref.promotions
    tax = ref.tax.get(channel.country, {})
    ctx = context(channel, now, customer_group, coupons)
    if coupons:  # a coupon that can never apply here is refused, naming why
        bad = [(i, c, problem) for i, c in enumerate(coupons) if (problem := offers.coupon_problem(ctx, promos, c))]
        if bad:
            raise ApiError(422, "invalid_coupon", bad[0][2][1],
                           errors=[{"field": f"coupon_codes[{i}]", "message": message, "reason": reason}
                                   for i, _, (reason, message) in bad])
    try:
        result = engine.quote(ctx, [engine.LineIn(s, q) for s, q in lines], facts, lists, prices, promos, tax)
    except engine.PricingError as exc:
        raise ApiError(422, exc.code, exc.detail, errors=exc.errors) from None
    if coupons:  # and a valid one that did not apply to this basket says why
        items = [engine.Item(ln.sku, ln.quantity, ln.unit_price, ln.tax_rate_bp, facts[ln.sku].category)
                 for ln in result.lines]
        result.coupons = offers.coupon_outcomes(ctx, promos, items, result)
    return result


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
