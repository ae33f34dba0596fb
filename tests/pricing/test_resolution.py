"""Which price list priced a line, what became of each coupon, the resolution order through the
API (a sale list that names a channel wins without editing the channel), and who may read lists."""
from datetime import timedelta

from app.core import clock
from app.pricing.schemas import PriceListWritten
from tests.conftest import auth, make_key, uid
from tests.helpers import assert_problem, create_channel, create_location
from tests.pricing.test_api import quote, world  # noqa: F401  (the fixture)


async def _list(client, admin, **body) -> dict:
    r = await client.post("/v1/price-lists", json={"currency": "EUR", **body}, headers=admin)
    assert r.status_code == 201, r.text
    PriceListWritten.model_validate(r.json())
    return r.json()


async def _prices(client, admin, code, rows) -> None:
    r = await client.put(f"/v1/price-lists/{code}/prices", json=rows, headers=admin)
    assert r.status_code == 200, r.text


async def _promo(client, admin, **body) -> dict:
    r = await client.post("/v1/promotions", json={"name": body["code"], **body}, headers=admin)
    assert r.status_code == 201, r.text
    return r.json()


async def test_lines_name_their_price_list(client, admin, world):
    w = world
    loyal = uid("loyal")
    await _list(client, admin, code=loyal, channels=[w.web], customer_group="loyalty")
    await _prices(client, admin, loyal, [{"sku": w.tee, "amount": 1700}])
    lines = [{"sku": w.tee, "quantity": 1}, {"sku": w.coffee, "quantity": 1}]
    q = await quote(client, admin, channel=w.web, lines=lines)
    assert [(x["sku"], x["price_list"]) for x in q["lines"]] == [(w.tee, w.retail), (w.coffee, w.retail)]
    q = await quote(client, admin, channel=w.web, customer_group="loyalty", lines=lines)
    assert [(x["unit_price"], x["price_list"]) for x in q["lines"]] == [(1700, loyal), (1000, w.retail)]
    assert q["coupons"] == []


async def test_coupons_say_why_they_did_not_apply(client, admin, world):
    w = world
    tag = uid("C").upper()
    codes = {k: f"{tag}-{k}" for k in ("MIN", "CHOC", "OK", "GONE", "POS", "SOON")}
    await _promo(client, admin, code=uid("min"), type="amount_off", coupon_code=codes["MIN"],
                 params={"amount": 500, "per": "order", "min_subtotal": 5000})
    await _promo(client, admin, code=uid("choc"), type="percent_off", coupon_code=codes["CHOC"], skus=[w.choc],
                 params={"percent_bp": 1000})
    await _promo(client, admin, code=uid("ok"), type="amount_off", coupon_code=codes["OK"], params={"amount": 100})
    now = clock.now()
    await _promo(client, admin, code=uid("gone"), type="amount_off", coupon_code=codes["GONE"], params={"amount": 100},
                 valid_from=(now - timedelta(days=9)).isoformat(), valid_to=(now - timedelta(days=1)).isoformat())
    await _promo(client, admin, code=uid("soon"), type="amount_off", coupon_code=codes["SOON"], params={"amount": 100},
                 valid_from=(now + timedelta(days=1)).isoformat())
    await _promo(client, admin, code=uid("pos"), type="amount_off", coupon_code=codes["POS"], params={"amount": 100},
                 channels=[w.net])
    lines = [{"sku": w.tee, "quantity": 1}]
    q = await quote(client, admin, channel=w.web, lines=lines,
                    coupon_codes=[codes["MIN"].lower(), codes["CHOC"], codes["OK"]])
    assert q["coupons"] == [
        {"code": codes["MIN"], "applied": False, "reason": "min_subtotal",
         "message": f"Coupon {codes['MIN']!r} needs qualifying items worth at least 5000 (minor units of EUR); "
                    "the basket has 2000."},
        {"code": codes["CHOC"], "applied": False, "reason": "no_matching_items",
         "message": f"No item in the basket qualifies for coupon {codes['CHOC']!r}."},
        {"code": codes["OK"], "applied": True},
    ]
    assert q["discount_total"] == 100
    # reached: applied
    q = await quote(client, admin, channel=w.web, lines=[{"sku": w.tee, "quantity": 3}], coupon_codes=[codes["MIN"]])
    assert q["coupons"] == [{"code": codes["MIN"], "applied": True}] and q["discount_total"] == 500
    # a coupon that can never apply here is refused, each error naming its reason
    r = await client.post("/v1/pricing/quote", headers=admin, json={
        "channel": w.web, "lines": lines,
        "coupon_codes": [codes["OK"], "NO-SUCH-" + tag, codes["GONE"], codes["POS"], codes["SOON"]]})
    body = assert_problem(r, 422, "invalid_coupon")
    assert [(e["field"], e["reason"]) for e in body["errors"]] == [
        ("coupon_codes[1]", "unknown"), ("coupon_codes[2]", "expired"), ("coupon_codes[3]", "not_in_channel"),
        ("coupon_codes[4]", "not_yet_valid")]
    assert body["detail"] == f"Coupon {'NO-SUCH-' + tag!r} is unknown."


async def test_a_list_naming_the_channel_wins_without_editing_the_channel(client, admin, world):
    w = world
    r = await client.patch(f"/v1/channels/{w.web}", json={"price_lists": [w.retail]}, headers=admin)
    assert r.status_code == 200, r.text
    # a sale list that names the channel, with a higher priority than the channel's list: it wins
    sale = await _list(client, admin, code=uid("sale"), channels=[w.web], priority=10)
    assert sale["warnings"] == []
    await _prices(client, admin, sale["code"], [{"sku": w.tee, "amount": 1500}])
    q = await quote(client, admin, channel=w.web, lines=[{"sku": w.tee, "quantity": 1}, {"sku": w.coffee, "quantity": 1}])
    assert [(x["unit_price"], x["price_list"]) for x in q["lines"]] == [(1500, sale["code"]), (1000, w.retail)]
    # one with the channel list's priority takes part, but only where the channel's lists have no price: warned
    filler = await _list(client, admin, code=uid("filler"), channels=[w.web, w.other])
    assert filler["warnings"] == [{
        "code": "outranked_in_channel", "channel": w.web, "price_lists": [w.retail],
        "message": f"Channel {w.web!r} names {w.retail!r} in its price_lists, and with a priority not below 0 they "
                   f"rank ahead of {filler['code']!r} there: {filler['code']!r} prices only the SKUs they do not. To "
                   "let it win, give it a higher priority than theirs, or name it in the channel's price_lists ahead "
                   "of them."}]
    await _prices(client, admin, filler["code"], [{"sku": w.tee, "amount": 1}, {"sku": w.unpriced, "amount": 777}])
    q = await quote(client, admin, channel=w.web, lines=[{"sku": w.tee, "quantity": 1}, {"sku": w.unpriced, "quantity": 1}])
    assert [(x["unit_price"], x["price_list"]) for x in q["lines"]] == [(1500, sale["code"]), (777, filler["code"])]
    # a higher priority than the channel's list: the warning is gone, and it ranks ahead of retail (behind the sale)
    r = await client.patch(f"/v1/price-lists/{filler['code']}", json={"priority": 5}, headers=admin)
    assert r.status_code == 200 and r.json()["warnings"] == []
    PriceListWritten.model_validate(r.json())
    q = await quote(client, admin, channel=w.web, lines=[{"sku": w.tee, "quantity": 1}])
    assert q["lines"][0]["price_list"] == sale["code"]
    # the resolution order, as the API explains it: customer-group lists first, then as merged above
    loyal = await _list(client, admin, code=uid("loyal"), channels=[w.web], customer_group="loyalty", priority=-3)
    off = await _list(client, admin, code=uid("off"), channels=[w.web], active=False)
    r = await client.get("/v1/price-lists", params={"channel": w.web}, headers=admin)
    assert r.status_code == 200 and r.json()["next_cursor"] is None
    assert [x["code"] for x in r.json()["data"]] == [loyal["code"], sale["code"], filler["code"], w.retail, off["code"]]
    assert_problem(await client.get("/v1/price-lists", params={"channel": "no-such"}, headers=admin), 422)


async def test_storefront_and_pos_read_their_channels_lists(client, admin, world):
    w = world
    pos_ch = (await create_channel(client, admin, "pos", country=w.country))["code"]
    store = (await create_location(client, admin, "store"))["code"]
    theirs = await _list(client, admin, code=uid("pos-list"), channels=[pos_ch])
    await _prices(client, admin, theirs["code"], [{"sku": w.tee, "amount": 1900}])
    hidden = await _list(client, admin, code=uid("off"), channels=[w.web], active=False)
    r = await client.patch(f"/v1/channels/{w.other}", json={"price_lists": [w.retail]}, headers=admin)  # named by it
    assert r.status_code == 200, r.text
    shop = auth(await make_key("storefront", channel=w.web))
    other_shop = auth(await make_key("storefront", channel=w.other))
    pos = auth(await make_key("pos", channel=pos_ch, location=store))
    market = (await create_channel(client, admin, "marketplace", country=w.country))["code"]
    seller = auth(await make_key("marketplace", channel=market))

    r = await client.get("/v1/price-lists", headers=shop)
    assert r.status_code == 200 and [x["code"] for x in r.json()["data"]] == [w.retail]  # not the inactive one
    assert [x["code"] for x in (await client.get("/v1/price-lists", headers=other_shop)).json()["data"]] == [w.retail]
    assert [x["code"] for x in (await client.get("/v1/price-lists", headers=pos)).json()["data"]] == [theirs["code"]]
    assert (await client.get("/v1/price-lists", params={"channel": w.web}, headers=shop)).status_code == 200
    assert_problem(await client.get("/v1/price-lists", params={"channel": pos_ch}, headers=shop), 404, "not_found")
    r = await client.get(f"/v1/price-lists/{w.retail}", headers=shop)
    assert r.status_code == 200 and r.json()["code"] == w.retail and r.headers["etag"]
    r = await client.get(f"/v1/price-lists/{w.retail}/prices", params={"sku": w.tee}, headers=shop)
    assert r.status_code == 200 and [(x["sku"], x["amount"]) for x in r.json()["data"]] == [(w.tee, 2000)]
    r = await client.get(f"/v1/price-lists/{theirs['code']}/prices", headers=pos)
    assert [(x["sku"], x["amount"], x["currency"]) for x in r.json()["data"]] == [(w.tee, 1900, "EUR")]
    for headers, code in ((shop, theirs["code"]), (shop, hidden["code"]), (pos, w.retail)):
        assert_problem(await client.get(f"/v1/price-lists/{code}", headers=headers), 404, "not_found")
        assert_problem(await client.get(f"/v1/price-lists/{code}/prices", headers=headers), 404, "not_found")
    # read-only; marketplace keys have no price lists to read
    assert_problem(await client.post("/v1/price-lists", json={"code": uid("x"), "currency": "EUR"}, headers=shop), 403)
    assert_problem(await client.patch(f"/v1/price-lists/{w.retail}", json={"priority": 1}, headers=pos), 403)
    assert_problem(await client.put(f"/v1/price-lists/{w.retail}/prices", json=[], headers=shop), 403)
    assert_problem(await client.get("/v1/price-lists", headers=seller), 403, "forbidden")
    # admin sees everything, as before
    assert (await client.get(f"/v1/price-lists/{theirs['code']}", headers=admin)).status_code == 200
