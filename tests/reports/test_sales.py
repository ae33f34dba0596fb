"""GET /v1/reports/sales against hand-computed figures, for every group_by, on the orders of
tests/reports/world.py (Sales.place). Line totals (gross, tax included; W 1000, C 500, B 334):

    o1  web  ana, newsletter/spring  W×2 2000 (wh) + C×1 500 (hh); the cheese returned: 500 back
    o2  web  coupon                  W×1 1000 − 100 = 900 (wh)
    o3  pos  ana at hh               C×2 1000 + B×1 334 = 1334   -> credited to newsletter/spring
    o4  market, own prices           B×3 × 300 = 900 (wh)
    o5  web  cancelled               (not a sale)
    o6  pos  ben at be               W×1 1000                   -> credited to google (his cart)
    o7  web  coupon                  B×3 1002 − 100 = 902: 1 unit from wh, 2 from hh
    o9  web                          W×1 1000 (wh) + C×1 500 (hh, cancelled: 0)
    o10 webch (CHF)                  W×1 1100 (wh)
    o8  web  cleo, instagram         C×1 500, pickup at hh
Days (UTC): o1-o3 on day 0, o4-o10 on day 1, o8 on day 2.
"""
from datetime import date, timedelta

import pytest

from tests.conftest import auth
from tests.helpers import assert_problem
from tests.reports.world import Sales, iso

URL = "/v1/reports/sales"


@pytest.fixture(scope="module")
async def s(client, admin):
    return await (await Sales().setup(client, admin)).place(client)


def money(amount: int, currency: str = "EUR") -> dict:
    return {"amount": amount, "currency": currency}


def period(s, days: int = 3) -> dict:
    return {"from": iso(s.t0), "to": iso(s.t0 + timedelta(days=days))}


async def report(client, s, group_by: str, headers=None, **params) -> dict:
    r = await client.get(URL, params={**period(s), "group_by": group_by, "limit": 500, **params},
                         headers=headers or s.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["next_cursor"] is None
    return body


def row(body: dict, currency: str = "EUR", **key) -> dict:
    found = [g for g in body["data"] if g["currency"] == currency and all(g.get(k) == v for k, v in key.items())]
    assert len(found) == 1, (key, body["data"])
    return found[0]


def figures(g: dict) -> tuple:
    return (g["orders"], g["units"], g["revenue"]["amount"], g["discounts"]["amount"], g["returns"]["units"],
            g["returns"]["refunded"]["amount"], g["return_rate_bp"], g["coupon_orders"], g["coupon_redemption_rate_bp"])


async def test_the_world_is_as_the_figures_assume(client, s):
    o7 = s.o7["lines"][0]
    assert (o7["subtotal"], o7["discount_total"], o7["total"]) == (1002, 100, 902)
    assert {f["location"]: sum(ln["quantity"] for ln in f["lines"]) for f in s.o7["fulfillments"]} == {s.wh: 1, s.hh: 2}
    assert s.o2["totals"]["total"] == 900 and s.o4["totals"]["total"] == 900 and s.o10["currency"] == "CHF"
    assert {f["location"] for f in s.o1["fulfillments"]} == {s.wh, s.hh}
    assert s.ret["refund_total"] == money(500)
    o9 = (await client.get(f"/v1/orders/{s.o9['id']}", headers=s.admin)).json()
    assert o9["status"] != "cancelled"
    assert {ln["sku"]: ln["quantity_cancelled"] for ln in o9["lines"]} == {s.w: 0, s.c: 1}
    o5 = (await client.get(f"/v1/orders/{s.o5['id']}", headers=s.admin)).json()
    assert o5["status"] == "cancelled"


async def test_by_channel(client, s):
    body = await report(client, s, "channel")
    assert body["object"] == "report.sales" and body["period"]["from"] == iso(s.t0)
    assert len(body["data"]) == 4
    # orders, units, revenue, discounts, returned units, refunded, return rate, coupon orders, coupon rate
    assert figures(row(body, channel=s.web)) == (5, 9, 5802, 200, 1, 500, 1111, 2, 4000)
    assert figures(row(body, channel=s.pos)) == (2, 4, 2334, 0, 0, 0, 0, 0, 0)
    assert figures(row(body, channel=s.market)) == (1, 3, 900, 0, 0, 0, 0, 0, 0)
    chf = row(body, "CHF", channel=s.webch)
    assert figures(chf) == (1, 1, 1100, 0, 0, 0, 0, 0, 0) and chf["revenue"] == money(1100, "CHF")
    # the refunds reported are what the returns refunded
    assert row(body, channel=s.web)["returns"]["refunded"] == s.ret["refund_total"]


async def test_by_day_in_utc_and_in_another_zone(client, s):
    body = await report(client, s, "day")
    d0 = s.t0.date()
    day = [str(d0 + timedelta(days=n)) for n in range(4)]
    assert figures(row(body, day=day[0])) == (3, 7, 4734, 100, 1, 500, 1429, 1, 3333)
    assert figures(row(body, day=day[1])) == (4, 8, 3802, 100, 0, 0, 0, 1, 2500)
    assert figures(row(body, "CHF", day=day[1]))[:3] == (1, 1, 1100)
    assert figures(row(body, day=day[2]))[:3] == (1, 1, 500)
    assert len(body["data"]) == 4

    # UTC+14: o2 (10:00 UTC) and o3 (11:00) fall on the next local day; o6, o7, o9 (11-13:00) too
    local = await report(client, s, "day", **{"from": day[0], "to": day[3], "tz": "Pacific/Kiritimati"})
    assert local["period"]["tz"] == "Pacific/Kiritimati" and local["period"]["from"] == iso(s.t0 - timedelta(hours=14))
    assert figures(row(local, day=day[0]))[:3] == (1, 3, 2500)  # o1
    assert figures(row(local, day=day[1]))[:3] == (3, 7, 3134)  # o2, o3, o4
    assert figures(row(local, day=day[2]))[:3] == (3, 5, 2902)  # o6, o7, o9
    assert figures(row(local, "CHF", day=day[2]))[:3] == (1, 1, 1100)
    assert figures(row(local, day=day[3]))[:3] == (1, 1, 500)  # o8


async def test_by_sku_split_by_currency(client, s):
    body = await report(client, s, "sku")
    assert figures(row(body, sku=s.w)) == (4, 5, 4900, 100, 0, 0, 0, 1, 2500)
    assert figures(row(body, "CHF", sku=s.w)) == (1, 1, 1100, 0, 0, 0, 0, 0, 0)
    assert figures(row(body, sku=s.c)) == (3, 4, 2000, 0, 1, 500, 2500, 0, 0)  # o9's cancelled cheese: no order
    assert figures(row(body, sku=s.b)) == (3, 7, 2136, 100, 0, 0, 0, 1, 3333)
    assert len(body["data"]) == 4
    # the SKUs add up to the channels
    by_channel = await report(client, s, "channel")
    eur = [g for g in by_channel["data"] if g["currency"] == "EUR"]
    assert sum(g["revenue"]["amount"] for g in body["data"] if g["currency"] == "EUR") == \
        sum(g["revenue"]["amount"] for g in eur) == 9036


async def test_by_location_credits_each_order_once(client, s):
    # a store order counts at its store; a shipped one at its first live fulfillment (smallest id)
    orders = {name: (await client.get(f"/v1/orders/{getattr(s, name)['id']}", headers=s.admin)).json()
              for name in ("o1", "o2", "o4", "o7", "o9", "o10")}
    live = ("open", "ready", "shipped", "collected")
    first = {name: min((f["id"], f["location"]) for f in o["fulfillments"] if f["status"] in live)[1]
             for name, o in orders.items()}
    assert first["o2"] == first["o4"] == first["o9"] == first["o10"] == s.wh  # o9: its cheese (hh) was cancelled
    assert first["o1"] in (s.wh, s.hh) and first["o7"] in (s.wh, s.hh)
    # per order: orders, units, revenue, discounts, returned, refunded, coupon (see the table above)
    eur = {"o1": (1, 3, 2500, 0, 1, 500, 0), "o2": (1, 1, 900, 100, 0, 0, 1), "o3": (1, 3, 1334, 0, 0, 0, 0),
           "o4": (1, 3, 900, 0, 0, 0, 0), "o6": (1, 1, 1000, 0, 0, 0, 0), "o7": (1, 3, 902, 100, 0, 0, 1),
           "o9": (1, 1, 1000, 0, 0, 0, 0), "o8": (1, 1, 500, 0, 0, 0, 0)}
    where = {**first, "o3": s.hh, "o6": s.be, "o8": s.hh}
    expected = {}
    for name, fig in eur.items():
        total = expected.setdefault(where[name], [0] * 7)
        expected[where[name]] = [a + b for a, b in zip(total, fig)]
    body = await report(client, s, "location")
    for location, (orders_n, units, revenue, discounts, returned, refunded, coupons) in expected.items():
        g = row(body, location=location)
        assert figures(g) == (orders_n, units, revenue, discounts, returned, refunded,
                              (returned * 10000 * 2 + units) // (units * 2), coupons,
                              (coupons * 10000 * 2 + orders_n) // (orders_n * 2)), location
    assert figures(row(body, "CHF", location=s.wh))[:3] == (1, 1, 1100)
    assert len(body["data"]) == len(expected) + 1
    assert sum(g["revenue"]["amount"] for g in body["data"] if g["currency"] == "EUR") == 9036  # as the channels


async def test_by_source_credits_in_store_sales_to_the_online_touch(client, s):
    body = await report(client, s, "source")
    assert body["attribution_days"] == 30
    news = row(body, source="newsletter")  # o1 and ana's till sale o3
    assert figures(news) == (2, 6, 3834, 0, 1, 500, 1667, 0, 0) and news["attributed_orders"] == 1
    google = row(body, source="google")  # ben's sale o6, credited to the cart he left the day before
    assert figures(google)[:3] == (1, 1, 1000) and google["attributed_orders"] == 1
    insta = row(body, source="instagram")
    assert figures(insta)[:3] == (1, 1, 500) and insta["attributed_orders"] == 0
    none = row(body, source=None)
    assert figures(none) == (4, 8, 3702, 200, 0, 0, 0, 2, 5000) and none["attributed_orders"] == 0
    assert figures(row(body, "CHF", source=None))[:3] == (1, 1, 1100)
    assert [(g["source"], g["currency"]) for g in body["data"]] == [
        (None, "CHF"), (None, "EUR"), ("google", "EUR"), ("instagram", "EUR"), ("newsletter", "EUR")]

    # one day back: ben's cart (27 hours before his sale) no longer counts; ana's order (2 hours) does
    short = await report(client, s, "source", attribution_days=1)
    assert [g["source"] for g in short["data"] if g["currency"] == "EUR"] == [None, "instagram", "newsletter"]
    assert figures(row(short, source=None))[:3] == (5, 9, 4702)
    assert row(short, source="newsletter")["attributed_orders"] == 1
    off = await report(client, s, "source", attribution_days=0)
    assert figures(row(off, source="newsletter"))[:3] == (1, 3, 2500) and row(off, source="newsletter")["attributed_orders"] == 0
    assert figures(row(off, source=None))[:3] == (6, 12, 3702 + 1334 + 1000)


async def test_by_campaign(client, s):
    body = await report(client, s, "campaign")
    assert figures(row(body, source="newsletter", campaign="spring"))[:3] == (2, 6, 3834)
    assert figures(row(body, source="google", campaign=None))[:3] == (1, 1, 1000)
    assert figures(row(body, source="instagram", campaign=None))[:3] == (1, 1, 500)
    assert figures(row(body, source=None, campaign=None))[:3] == (4, 8, 3702)


async def test_by_currency(client, s):
    body = await report(client, s, "currency")
    assert [(g["currency"], g["revenue"]["amount"]) for g in body["data"]] == [("CHF", 1100), ("EUR", 9036)]


@pytest.mark.parametrize("group_by", ["sku", "day", "location"])
async def test_groups_are_paged_by_key(client, s, group_by):
    everything = await report(client, s, group_by)
    seen, cursor = [], None
    for _ in range(10):
        params = {**period(s), "group_by": group_by, "limit": 1, **({"cursor": cursor} if cursor else {})}
        r = await client.get(URL, params=params, headers=s.admin)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["data"]) == 1
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything["data"] and len(seen) == 4
    keys = [(g[group_by], g["currency"]) for g in seen]
    assert keys == sorted(keys)


async def test_a_channel_filter_for_admin(client, s):
    body = await report(client, s, "sku", channel=s.pos)
    assert body["channel"] == s.pos
    assert {(g["sku"], g["units"]) for g in body["data"]} == {(s.c, 2), (s.b, 1), (s.w, 1)}
    r = await client.get(URL, params={**period(s), "channel": "no-such-channel"}, headers=s.admin)
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "channel"


# --------------------------------------------------------------------------- who sees what

async def test_role_matrix(client, s):
    # a storefront key: its channel only; naming another is 404
    web = await report(client, s, "channel", headers=s.shop)
    assert [(g["channel"], g["orders"]) for g in web["data"]] == [(s.web, 5)]
    assert_problem(await client.get(URL, params={**period(s), "channel": s.pos}, headers=s.shop), 404, "not_found")
    # a marketplace key: its channel
    market = await report(client, s, "sku", headers=s.marketplace)
    assert [(g["sku"], g["revenue"]["amount"]) for g in market["data"]] == [(s.b, 900)]
    # a POS key: its store's orders (its till's sales, the pickups there), grouped as asked
    hh = await report(client, s, "channel", headers=s.pos_hh)
    assert hh["location"] == s.hh
    assert sorted((g["channel"], g["orders"], g["revenue"]["amount"]) for g in hh["data"]) == \
        sorted([(s.pos, 1, 1334), (s.web, 1, 500)])
    # nobody else
    assert_problem(await client.get(URL, params=period(s), headers=s.dropshipper), 403, "forbidden")
    assert_problem(await client.get(URL, params=period(s)), 401, "unauthenticated")
    assert_problem(await client.get(URL, params=period(s), headers=auth("nope")), 401)


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("params, field", [
    ({"group_by": "week"}, "group_by"),
    ({"group_by": ""}, "group_by"),
    ({"from": "2026-02-30"}, "from"),
    ({"from": "yesterday"}, "from"),
    ({"to": "2026-01-01T25:00:00Z"}, "to"),
    ({"from": "2026-03-02", "to": "2026-03-01"}, "to"),  # inverted
    ({"from": "2026-03-01T10:00:00Z", "to": "2026-03-01T10:00:00Z"}, "to"),  # empty
    ({"from": "2024-01-01", "to": "2025-01-01", "group_by": "day"}, "from"),  # 367 days: too long for days
    ({"from": "2024-01-01", "to": "2026-01-05"}, "from"),  # more than 731 days
    ({"from": "2026-01-01", "to": "2026-04-03", "group_by": "location"}, "from"),  # 93 days: more than 92
    ({"tz": "Mars/Olympus_Mons"}, "tz"),
    ({"tz": "../../etc/passwd"}, "tz"),
    ({"cursor": "bm90IGpzb24"}, "cursor"),
    ({"cursor": "WyJhIl0"}, "cursor"),  # ["a"]: not a (key, currency) pair
    ({"attribution_days": "91", "group_by": "source"}, "attribution_days"),
    ({"attribution_days": "-1"}, "attribution_days"),
    ({"limit": "0"}, "limit"),
    ({"limit": "501"}, "limit"),
    ({"from": "10000-01-01"}, "from"),
    ({"to": "9999-12-31"}, "to"),  # its end is beyond the calendar
])
async def test_bad_input_is_422_naming_the_field(client, admin, params, field):
    r = await client.get(URL, params=params, headers=admin)
    body = assert_problem(r, 422)
    assert field in [e["field"] for e in body["errors"]], body


async def test_a_year_of_days_is_fine(client, admin):
    r = await client.get(URL, params={"from": "2025-01-01", "to": "2025-12-31", "group_by": "day",
                                      "tz": "Europe/Berlin"}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["period"] == {"from": "2024-12-31T23:00:00Z", "to": "2025-12-31T23:00:00Z", "tz": "Europe/Berlin"}
    r = await client.get(URL, params={"from": "2024-01-01", "to": "2024-12-31", "group_by": "day"}, headers=admin)
    assert r.status_code == 200, r.text  # a leap year: 366 days
    r = await client.get(URL, params={"from": "2026-01-01", "to": "2026-04-02", "group_by": "location"}, headers=admin)
    assert r.status_code == 200, r.text  # 92 days


async def test_the_default_period_is_the_last_30_days(client, admin):
    body = (await client.get(URL, headers=admin)).json()
    assert body["group_by"] == "channel"
    start, end = (date.fromisoformat(body["period"][k][:10]) for k in ("from", "to"))
    assert end - start == timedelta(days=30)
