"""A return refunds what the customer paid for exactly those units: the order line's stored
figures, every discount already allocated to it, tax as charged. Each case is computed by hand
below (19 % tax inside gross prices: tax = round(gross × 1900 / 11900), half up)."""
import pytest

from tests.catalog.builders import create_product, sku
from tests.conftest import uid
from tests.inventory.builders import ledger_matches
from tests.returns.world import Shop, line, line_id, money, movements, post_return, ret_line


@pytest.fixture
async def w(client, admin):
    return await Shop().setup(client, admin)


async def priced(client, w, amounts: dict[str, int]) -> None:
    """New products sold in the shop at these prices, 20 of each in the warehouse."""
    for s in amounts:
        await create_product(client, w.admin, channels=[w.web], variants=[{"sku": s}])
    r = await client.put(f"/v1/price-lists/{w.prices}/prices", headers=w.admin,
                         json=[{"sku": s, "amount": a} for s, a in amounts.items()])
    assert r.status_code == 200, r.text
    await w.stock(client, w.wh, **{s: 20 for s in amounts})


async def promotion(client, w, type_: str, params: dict, skus: list[str], **kw) -> str:
    code = uid("promo")
    r = await client.post("/v1/promotions", headers=w.admin, json={
        "code": code, "name": code, "type": type_, "params": params, "skus": skus, "channels": [w.web], **kw})
    assert r.status_code == 201, r.text
    return code


def figures(order: dict, s: str) -> tuple[int, int, int]:
    ln = line(order, s)
    return ln["subtotal"], ln["total"], ln["tax_amount"]


async def test_three_for_two_broken_refunds_the_allocated_price(client, w):
    t = sku("T")
    await priced(client, w, {t: 1000})
    await promotion(client, w, "buy_x_pay_y", {"x": 3, "y": 2}, [t])
    order = await w.shipped(client, {t: 3})
    assert figures(order, t) == (3000, 2000, 319)  # one of three free; tax round(2000·19/119) = 319
    first = await post_return(client, w.pos_hh, order, [ret_line(order, t, 1)])
    assert first["lines"][0]["refund"] == money(666) and first["lines"][0]["tax"] == money(106)  # ⌊2000/3⌋, ⌊319/3⌋
    rest = await post_return(client, w.pos_be, order, [ret_line(order, t, 2)])
    assert rest["refund_total"] == money(1334) and rest["tax_total"] == money(213)  # the line to the cent


async def test_three_for_two_over_two_skus(client, w):
    big, small = sku("TB"), sku("TS")
    await priced(client, w, {big: 1000, small: 600})
    await promotion(client, w, "buy_x_pay_y", {"x": 3, "y": 2}, [big, small])
    order = await w.shipped(client, {big: 2, small: 1})
    assert figures(order, big) == (2000, 2000, 319) and figures(order, small) == (600, 0, 0)  # the cheapest is free
    ret = await post_return(client, w.pos_hh, order, [ret_line(order, small, 1), ret_line(order, big, 1)])
    by_sku = {ln["sku"]: ln for ln in ret["lines"]}
    assert by_sku[small]["refund"] == money(0) and by_sku[big]["refund"] == money(1000)
    assert by_sku[big]["tax"] == money(159) and ret["refund_total"] == money(1000)


async def test_percent_off(client, w):
    s = sku("PC")
    await priced(client, w, {s: 1999})
    await promotion(client, w, "percent_off", {"percent_bp": 1000}, [s])
    order = await w.shipped(client, {s: 2})
    assert figures(order, s) == (3998, 3598, 574)  # 10 % of 3998 = 399.8 -> 400
    ret = await post_return(client, w.pos_hh, order, [ret_line(order, s, 1)])
    assert ret["refund_total"] == money(1799) and ret["tax_total"] == money(287)


async def test_tiered_discount(client, w):
    s = sku("TI")
    await priced(client, w, {s: 1000})
    await promotion(client, w, "tiered_percent", {"tiers": [{"min_quantity": 3, "percent_bp": 500},
                                                            {"min_quantity": 5, "percent_bp": 1000}]}, [s])
    order = await w.shipped(client, {s: 5})
    assert figures(order, s) == (5000, 4500, 718)
    ret = await post_return(client, w.pos_hh, order, [ret_line(order, s, 2)])
    assert ret["refund_total"] == money(1800) and ret["tax_total"] == money(287)  # 4500·2/5, ⌊718·2/5⌋


async def test_order_level_coupon_spread_over_lines(client, w):
    x, y = sku("CX"), sku("CY")
    await priced(client, w, {x: 1000, y: 700})
    coupon = uid("SAVE").upper()
    await promotion(client, w, "amount_off", {"amount": 500, "per": "order"}, [x, y], coupon_code=coupon)
    order = await w.shipped(client, {x: 1, y: 3}, coupons=[coupon])
    # 500 over 1000 and 2100: 161.29 / 338.71 -> 161 and 339 (largest remainder)
    assert figures(order, x) == (1000, 839, 134) and figures(order, y) == (2100, 1761, 281)
    ret = await post_return(client, w.pos_hh, order, [ret_line(order, y, 2)])
    assert ret["refund_total"] == money(1174) and ret["tax_total"] == money(187)  # ⌊1761·2/3⌋, ⌊281·2/3⌋
    ret = await post_return(client, w.pos_hh, order, [ret_line(order, x, 1), ret_line(order, y, 1)])
    assert ret["refund_total"] == money(839 + 587) and ret["tax_total"] == money(134 + 94)


async def test_a_bundle_comes_back_as_a_unit_and_its_parts_go_on_hand(client, w):
    box = sku("BOX")
    await create_product(client, w.admin, channels=[w.web], type="bundle",
                         variants=[{"sku": box, "components": [{"sku": w.a, "quantity": 1},
                                                               {"sku": w.b, "quantity": 2}]}])
    r = await client.put(f"/v1/price-lists/{w.prices}/prices", headers=w.admin, json=[{"sku": box, "amount": 2500}])
    assert r.status_code == 200, r.text
    await w.stock(client, w.wh, **{w.a: 2, w.b: 4})
    order = await w.shipped(client, {box: 2})
    assert figures(order, box) == (5000, 5000, 798)  # round(5000·19/119) = 798.3
    before = {s: (await w.level(client, s, w.hh))["on_hand"] for s in (w.a, w.b)}
    ret = await post_return(client, w.pos_hh, order, [ret_line(order, box, 1)])
    assert ret["lines"][0]["sku"] == box and ret["refund_total"] == money(2500) and ret["tax_total"] == money(399)
    assert await movements(ret["id"]) == sorted([(w.a, "return", 1), (w.b, "return", 2)])
    after = {s: (await w.level(client, s, w.hh))["on_hand"] for s in (w.a, w.b)}
    assert after == {w.a: before[w.a] + 1, w.b: before[w.b] + 2}
    assert (await w.level(client, box, w.hh))["on_hand"] == 0  # a bundle has no stock of its own
    assert await ledger_matches([w.a, w.b]) == []
    o = await w.order(client, order["id"])
    assert line(o, box)["quantity_returned"] == 1 and line_id(o, box) == ret["lines"][0]["order_line_id"]
