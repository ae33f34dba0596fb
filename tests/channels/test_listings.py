"""GET /v1/channels/{code}/listings: the marketplace listing feed.

Prices are the quote engine's (one unit), stock is inventory's available-to-sell over the
channel's locations, `updated_since` returns exactly what changed, a cursor walk returns every
listing once while the data changes under it, and a page is a constant number of statements."""
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from app.core import cache, clock
from app.core.db import sql_statements
from tests.catalog.builders import create_product, gtin, sku
from tests.conftest import auth, make_key, uid
from tests.helpers import assert_problem, create_channel, create_location, warm_keys

# The suite shares one database and other tests move the clock: the steps of the updated_since
# tests run a century ahead, later than any moment another test writes at.
FAR = timedelta(days=365 * 100)  # past tests/reports (up to 2095)


def _country() -> str:
    letters = secrets.token_hex(2).upper()
    return "".join(c if c.isalpha() else chr(71 + int(c) % 20) for c in letters[:2])


class Market:
    """A marketplace channel selling from a warehouse and a store (not from a second store), a
    retail list, a 10 % promotion on the tees' category; tees in two sizes, a mug, a bundle (one
    tee + two mugs), an untracked service, a draft, an archived and a hidden product."""

    async def setup(self, client, admin):
        self.admin = admin
        country = _country()
        for tax_class, rate in (("standard", 1900), ("reduced", 700)):
            r = await client.post("/v1/tax-rates", json={"country": country, "tax_class": tax_class, "rate_bp": rate},
                                  headers=admin)
            assert r.status_code in (200, 201), r.text
        self.wh = (await create_location(client, admin, "warehouse"))["code"]
        self.st = (await create_location(client, admin, "store"))["code"]
        self.far_store = (await create_location(client, admin, "store"))["code"]
        self.retail = uid("retail")
        r = await client.post("/v1/price-lists", headers=admin, json={"code": self.retail, "currency": "EUR"})
        assert r.status_code == 201, r.text
        self.market = (await create_channel(client, admin, "marketplace", country=country, price_lists=[self.retail],
                                            fulfillment_locations=[self.wh, self.st]))["code"]
        self.other = (await create_channel(client, admin, "marketplace", country=country,
                                           price_lists=[self.retail]))["code"]
        self.web = (await create_channel(client, admin, "web", country=country, price_lists=[self.retail]))["code"]
        self.tag = uid("feed")
        chans = [self.market, self.web]
        self.tee_s, self.tee_m, self.mug, self.box, self.svc = sku("TS"), sku("TM"), sku("MUG"), sku("BOX"), sku("SVC")
        self.draft, self.archived, self.hidden = sku("DRF"), sku("ARC"), sku("HID")
        self.tee_gtin = gtin()
        self.tee = await create_product(client, admin, title=f"{self.tag} tee", category=f"{self.tag}/tees", channels=chans,
                                        variants=[{"sku": self.tee_s, "gtin": self.tee_gtin, "options": {"size": "S"}},
                                                  {"sku": self.tee_m, "options": {"size": "M"}}])
        self.mug_product = await create_product(client, admin, title=f"{self.tag} mug", channels=chans,
                                                variants=[{"sku": self.mug}])
        await create_product(client, admin, title=f"{self.tag} box", type="bundle", channels=chans,
                             variants=[{"sku": self.box, "components": [{"sku": self.tee_s, "quantity": 1},
                                                                         {"sku": self.mug, "quantity": 2}]}])
        await create_product(client, admin, title=f"{self.tag} service", channels=chans,
                             variants=[{"sku": self.svc, "track_inventory": False}])
        await create_product(client, admin, title=f"{self.tag} draft", status="draft", channels=chans,
                             variants=[{"sku": self.draft}])
        await create_product(client, admin, title=f"{self.tag} archived", status="archived", channels=chans,
                             variants=[{"sku": self.archived}])
        await create_product(client, admin, title=f"{self.tag} hidden", channels=[self.other],
                             variants=[{"sku": self.hidden}])
        r = await client.put(f"/v1/price-lists/{self.retail}/prices", headers=admin, json=[
            {"sku": s, "amount": a} for s, a in ((self.tee_s, 2000), (self.tee_m, 2100), (self.mug, 900),
                                                 (self.box, 3500), (self.draft, 100), (self.archived, 100),
                                                 (self.hidden, 100))])  # the service has no price
        assert r.status_code == 200, r.text
        self.promo = uid("promo")
        r = await client.post("/v1/promotions", headers=admin, json={
            "code": self.promo, "name": "Tees -10 %", "type": "percent_off", "params": {"percent_bp": 1000},
            "categories": [f"{self.tag}/tees"], "channels": [self.market]})
        assert r.status_code == 201, r.text
        await self.levels(client, self.wh, {self.tee_s: 5, self.mug: 10})
        await self.levels(client, self.st, {self.tee_s: (3, 1), self.mug: 1})  # (on hand, safety stock)
        await self.levels(client, self.far_store, {self.tee_s: 100, self.mug: 100})  # not the channel's
        self.marketplace = auth(await make_key("marketplace", channel=self.market))
        self.other_marketplace = auth(await make_key("marketplace", channel=self.other))
        self.storefront = auth(await make_key("storefront", channel=self.web))
        pos_channel = (await create_channel(client, admin, "pos", country=country))["code"]
        self.pos = auth(await make_key("pos", channel=pos_channel, location=self.st))
        partner = (await create_location(client, admin, "partner"))["code"]
        self.dropshipper = auth(await make_key("dropshipper", location=partner))
        self.sold = {self.tee_s, self.tee_m, self.mug, self.box, self.svc}
        return self

    async def levels(self, client, location: str, levels: dict) -> None:
        body = [{"sku": s, "on_hand": v[0], "safety_stock": v[1]} if isinstance(v, tuple) else {"sku": s, "on_hand": v}
                for s, v in levels.items()]
        r = await client.put("/v1/inventory/levels", headers=self.admin, json={"location": location, "levels": body})
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
async def m(client, admin):
    return await Market().setup(client, admin)


_far = [FAR]


@pytest.fixture
def moved_clock():
    """Decades ahead, a day later for every test (each moves the clock by less than that)."""
    _far[0] += timedelta(days=1)
    clock.set_offset(_far[0])
    yield
    clock.reset()


async def walk(client, headers, channel: str, *, limit: int = 100, between=None, **params) -> tuple[list[dict], str]:
    """Every page of a walk: (listings in order, the walk's as_of). `between(page_number)` runs
    after each page but the last (changes while the connector pages)."""
    out, cursor, as_of, n = [], None, None, 0
    while True:
        q = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        r = await client.get(f"/v1/channels/{channel}/listings", params=q, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert as_of is None or body["as_of"] == as_of  # one walk, one watermark
        as_of = body["as_of"]
        out += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            return out, as_of
        assert len(body["data"]) == limit
        n += 1
        if between is not None:
            await between(n)


def by_sku(listings: list[dict]) -> dict[str, dict]:
    found = {x["sku"]: x for x in listings}
    assert len(found) == len(listings), "a SKU came twice"
    return found


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def stamp() -> str:
    return clock.now().isoformat().replace("+00:00", "Z")


async def since(client, m, when: str) -> set[str]:
    listings, _ = await walk(client, m.marketplace, m.market, updated_since=when)
    return set(by_sku(listings))


# --------------------------------------------------------------------------- what a listing says

async def test_the_feed_lists_what_the_channel_sells_priced_like_a_quote(client, admin, m):
    listings, as_of = await walk(client, m.marketplace, m.market, limit=2)
    found = by_sku(listings)
    assert set(found) == m.sold  # no draft, archived or hidden product
    tee = found[m.tee_s]
    assert set(tee) == {"sku", "gtin", "title", "product_id", "product_title", "price", "compare_at_price",
                        "available_to_sell", "updated_at"}
    assert (tee["gtin"], tee["title"], tee["product_title"], tee["product_id"]) == (
        m.tee_gtin, "S", f"{m.tag} tee", m.tee["id"])
    assert ts(as_of) <= clock.now() - timedelta(seconds=59)  # the watermark lies before the walk
    # every price is the one-unit quote's, the promotion included
    for s, x in found.items():
        r = await client.post("/v1/pricing/quote", headers=admin, json={"channel": m.market,
                                                                          "lines": [{"sku": s, "quantity": 1}]})
        if s == m.svc:
            assert r.status_code == 422 and x["price"] is None and x["compare_at_price"] is None, r.text
            continue
        assert r.status_code == 200, r.text
        line = r.json()["lines"][0]
        assert x["price"] == {"amount": line["subtotal"] - line["discount_total"], "currency": "EUR"}, (x, line)
        assert x["compare_at_price"] == ({"amount": line["unit_price"], "currency": "EUR"} if line["discounts"] else None)
    assert found[m.tee_s]["price"] == {"amount": 1800, "currency": "EUR"}  # 10 % off 20.00
    assert found[m.tee_s]["compare_at_price"] == {"amount": 2000, "currency": "EUR"}
    assert found[m.mug]["price"] == {"amount": 900, "currency": "EUR"} and found[m.mug]["compare_at_price"] is None
    # stock: warehouse + store less safety stock; the far store is not the channel's; a bundle is
    # what its components make per location (warehouse min(5, 10 // 2), store min(2, 1 // 2))
    assert {s: x["available_to_sell"] for s, x in found.items()} == {
        m.tee_s: 5 + 3 - 1, m.tee_m: 0, m.mug: 11, m.box: 5 + 0, m.svc: None}
    # the same figures as GET /v1/availability in that channel
    r = await client.get("/v1/availability", params={"skus": ",".join(sorted(m.sold)), "channel": m.market},
                         headers=m.marketplace)
    assert r.status_code == 200, r.text
    assert {d["sku"]: d["available_to_sell"] for d in r.json()["data"]} == {
        s: x["available_to_sell"] for s, x in found.items()}


async def test_available_to_sell_follows_stock_and_holds(client, admin, m):
    async def available(s: str) -> int:
        listings, _ = await walk(client, m.marketplace, m.market)
        return by_sku(listings)[s]["available_to_sell"]

    assert await available(m.tee_m) == 0
    await m.levels(client, m.st, {m.tee_m: 4})
    assert await available(m.tee_m) == 4
    r = await client.post("/v1/reservations", headers=admin, json={"sku": m.tee_m, "location": m.st, "quantity": 3})
    assert r.status_code == 201, r.text
    assert await available(m.tee_m) == 1
    r = await client.delete(f"/v1/reservations/{r.json()['id']}", headers=admin)
    assert r.status_code == 200, r.text
    assert await available(m.tee_m) == 4
    await m.levels(client, m.st, {m.tee_m: (4, 6)})  # safety stock above on hand: 0, never below
    assert await available(m.tee_m) == 0
    await m.levels(client, m.st, {m.tee_m: (0, 0)})


# --------------------------------------------------------------------------- updated_since

async def test_updated_since_returns_exactly_what_changed(client, admin, m, moved_clock):
    listings, as_of = await walk(client, m.marketplace, m.market)
    assert set(by_sku(listings)) == m.sold
    # nothing changed since the full walk began
    clock.advance(timedelta(minutes=5))
    t0 = stamp()
    assert await since(client, m, t0) == set()

    # a product edit: its variants
    clock.advance(timedelta(minutes=1))
    t1 = stamp()
    r = await client.patch(f"/v1/products/{m.tee['id']}", headers=admin, json={"description": "Softer"})
    assert r.status_code == 200, r.text
    assert await since(client, m, t1) == {m.tee_s, m.tee_m}

    # a price in the channel's list: that SKU only
    clock.advance(timedelta(minutes=1))
    t2 = stamp()
    r = await client.put(f"/v1/price-lists/{m.retail}/prices", headers=admin, json=[{"sku": m.mug, "amount": 950}])
    assert r.status_code == 200, r.text
    listings, _ = await walk(client, m.marketplace, m.market, updated_since=t2)
    assert set(by_sku(listings)) == {m.mug}
    assert listings[0]["price"] == {"amount": 950, "currency": "EUR"} and ts(listings[0]["updated_at"]) >= ts(t2)

    # stock at one of the channel's locations: the SKU and the bundle made of it
    clock.advance(timedelta(minutes=1))
    t3 = stamp()
    await m.levels(client, m.wh, {m.tee_s: 6})
    assert await since(client, m, t3) == {m.tee_s, m.box}
    # stock elsewhere changes nothing here
    clock.advance(timedelta(minutes=1))
    t4 = stamp()
    await m.levels(client, m.far_store, {m.tee_s: 7, m.mug: 1})
    assert await since(client, m, t4) == set()

    # a hold changes what is available: the level's updated_at moves
    clock.advance(timedelta(minutes=1))
    t5 = stamp()
    r = await client.post("/v1/reservations", headers=admin, json={"sku": m.mug, "location": m.wh, "quantity": 1})
    assert r.status_code == 201, r.text
    assert await since(client, m, t5) == {m.mug, m.box}
    r = await client.delete(f"/v1/reservations/{r.json()['id']}", headers=admin)
    assert r.status_code == 200, r.text

    # each step's listings carry their change's time; earlier steps are still found from earlier
    assert await since(client, m, t1) == {m.tee_s, m.tee_m, m.mug, m.box}
    # a promotion changes prices channel-wide: every listing
    clock.advance(timedelta(minutes=1))
    t6 = stamp()
    r = await client.patch(f"/v1/promotions/{m.promo}", headers=admin, json={"params": {"percent_bp": 1500}})
    assert r.status_code == 200, r.text
    listings, _ = await walk(client, m.marketplace, m.market, updated_since=t6)
    assert set(by_sku(listings)) == m.sold
    assert by_sku(listings)[m.tee_s]["price"] == {"amount": 1700, "currency": "EUR"}
    # a price removed from a list leaves no row behind: channel-wide too
    clock.advance(timedelta(minutes=1))
    t7 = stamp()
    r = await client.put(f"/v1/price-lists/{m.retail}/prices", headers=admin, json=[{"sku": m.tee_m, "amount": None}])
    assert r.status_code == 200, r.text
    listings, _ = await walk(client, m.marketplace, m.market, updated_since=t7)
    assert by_sku(listings)[m.tee_m]["price"] is None and set(by_sku(listings)) == m.sold
    clock.advance(timedelta(minutes=1))
    t8 = stamp()
    r = await client.put(f"/v1/price-lists/{m.retail}/prices", headers=admin, json=[{"sku": m.tee_m, "amount": 2100}])
    assert r.status_code == 200, r.text
    assert await since(client, m, t8) == {m.tee_m}


async def test_products_that_are_not_sold_never_appear(client, admin, m, moved_clock):
    clock.advance(timedelta(hours=1))
    t0 = stamp()
    r = await client.patch(f"/v1/products/{m.mug_product['id']}", headers=admin, json={"status": "archived"})
    assert r.status_code == 200, r.text
    assert m.mug not in await since(client, m, t0)  # changed, but no longer sold
    listings, _ = await walk(client, m.marketplace, m.market)
    assert set(by_sku(listings)) == m.sold - {m.mug}
    r = await client.patch(f"/v1/products/{m.mug_product['id']}", headers=admin, json={"status": "draft"})
    assert r.status_code == 200, r.text
    r = await client.patch(f"/v1/products/{m.mug_product['id']}", headers=admin,
                           json={"status": "active", "channels": [m.web]})  # active, hidden from the market
    assert r.status_code == 200, r.text
    listings, _ = await walk(client, m.marketplace, m.market)
    assert m.mug not in by_sku(listings) and m.draft not in by_sku(listings) and m.hidden not in by_sku(listings)
    storefront, _ = await walk(client, m.storefront, m.web)
    assert m.mug in by_sku(storefront)
    clock.advance(timedelta(minutes=1))
    t1 = stamp()
    r = await client.patch(f"/v1/products/{m.mug_product['id']}", headers=admin, json={"channels": [m.market, m.web]})
    assert r.status_code == 200, r.text
    assert await since(client, m, t1) == {m.mug}  # listed again: it comes as changed


# --------------------------------------------------------------------------- the cursor

async def test_a_walk_returns_every_listing_once_while_things_change(client, admin, m, moved_clock):
    extra = [sku("W") for _ in range(12)]
    await create_product(client, admin, title=f"{m.tag} many", channels=[m.market],
                         variants=[{"sku": s} for s in extra])
    everything, _ = await walk(client, m.marketplace, m.market)
    skus = [x["sku"] for x in everything]
    assert len(skus) >= 16
    plain = [s for s in skus if s in extra]  # in the feed's order
    seen_after = set()

    async def meddle(page: int) -> None:
        # between pages: change listings behind and ahead of the cursor, add one, the clock moves
        clock.advance(timedelta(seconds=30))
        behind, ahead = plain[0], plain[-1 - page % 2]
        await m.levels(client, m.wh, {behind: page, ahead: page})
        r = await client.put(f"/v1/price-lists/{m.retail}/prices", headers=admin,
                             json=[{"sku": behind, "amount": 100 + page}, {"sku": ahead, "amount": 200 + page}])
        assert r.status_code == 200, r.text
        new = sku("NEW")
        seen_after.add(new)
        await create_product(client, admin, title=f"{m.tag} new {page}", channels=[m.market], variants=[{"sku": new}])

    clock.advance(timedelta(minutes=5))
    t0 = stamp()
    listings, as_of = await walk(client, m.marketplace, m.market, limit=3, between=meddle)
    got = [x["sku"] for x in listings]
    assert len(got) == len(set(got))  # nobody twice
    assert set(skus) <= set(got)  # everybody who was there throughout
    # what changed during the walk, and what came, is in the next pull from as_of
    assert ts(as_of) <= ts(t0)
    after, _ = await walk(client, m.marketplace, m.market, updated_since=as_of)
    assert seen_after | {plain[0]} <= set(by_sku(after))
    # the incremental walk with its own cursor: the same rules
    incremental, _ = await walk(client, m.marketplace, m.market, limit=2, updated_since=t0, between=meddle)
    assert len({x["sku"] for x in incremental}) == len(incremental)


async def test_a_page_is_a_constant_number_of_statements(client, admin, m, moved_clock):
    base = f"/v1/channels/{m.market}/listings"
    sizes = [sku("SZ") for _ in range(8)]
    await create_product(client, admin, title=f"{m.tag} sizes", channels=[m.market], variants=[{"sku": s} for s in sizes])
    clock.advance(timedelta(hours=1))
    t0 = stamp()
    await m.levels(client, m.wh, dict.fromkeys(sizes, 3))
    assert await since(client, m, t0) == set(sizes)  # the incremental statement, below too
    await warm_keys(client, m.marketplace, admin)
    cursors = {}
    for limit in (1, 2, 5):
        r = await client.get(base, params={"limit": limit}, headers=m.marketplace)
        cursors[limit] = r.json()["next_cursor"]
    counts: dict[tuple, int] = {}
    with sql_statements() as statements:
        for limit in (1, 2, 5):
            shapes = {"first": {}, "next": {"cursor": cursors[limit]}, "since": {"updated_since": t0},
                      "since, channel-wide": {"updated_since": "2000-01-01T00:00:00Z"}}
            for shape, params in shapes.items():
                for state in ("cold", "warm"):
                    if state == "cold":
                        cache.drop_all()  # nothing remembered: channel, locations, pricing, facts, prices
                    statements.clear()
                    r = await client.get(base, params={"limit": limit, **params}, headers=m.marketplace)
                    assert r.status_code == 200 and len(r.json()["data"]) == limit, r.text
                    counts[shape, state, limit] = len(statements)
    for shape in shapes:
        for state in ("cold", "warm"):
            assert len({counts[shape, state, limit] for limit in (1, 2, 5)}) == 1, counts
    # warm: the page and the stock (its locations, its levels); cold adds the key, the channel, the
    # locations, the reference data, the channel-wide moment, the SKUs' facts and their prices
    assert {counts[shape, "warm", 5] for shape in shapes} == {3}, counts
    assert counts["first", "cold", 5] <= 12, counts
    print("statements per page", {k: v for k, v in counts.items() if k[2] == 5})


async def test_an_updated_since_older_than_the_event_retention_resends_the_channel(client, m, moved_clock):
    """Removed prices and price list changes are known from the outbox, which keeps events
    EVENTS_RETENTION_DAYS (30): an updated_since older than that gets the whole channel."""
    clock.advance(timedelta(days=40))  # nothing changed in the last 40 days
    everything = set(by_sku((await walk(client, m.marketplace, m.market))[0]))
    assert await since(client, m, (clock.now() - timedelta(days=25)).isoformat()) == set()
    assert await since(client, m, (clock.now() - timedelta(days=35)).isoformat()) == everything


# --------------------------------------------------------------------------- who may read it, bad input

async def test_who_may_read_which_feed(client, admin, m):
    base = f"/v1/channels/{m.market}/listings"
    assert (await client.get(base, headers=m.marketplace)).status_code == 200
    assert (await client.get(base, headers=admin)).status_code == 200
    channel_id = (await client.get(f"/v1/channels/{m.market}", headers=admin)).json()["id"]
    assert (await client.get(f"/v1/channels/{channel_id}/listings", headers=m.marketplace)).status_code == 200
    assert_problem(await client.get(base, headers=m.other_marketplace), 404, "not_found")
    assert_problem(await client.get(base, headers=m.storefront), 404, "not_found")
    r = await client.get(f"/v1/channels/{m.web}/listings", headers=m.storefront)  # a storefront reads its own
    assert r.status_code == 200 and m.tee_s in {x["sku"] for x in r.json()["data"]}
    assert_problem(await client.get(f"/v1/channels/{m.web}/listings", headers=m.marketplace), 404, "not_found")
    assert_problem(await client.get(base, headers=m.pos), 403, "forbidden")
    assert_problem(await client.get(base, headers=m.dropshipper), 403, "forbidden")
    assert_problem(await client.get(base), 401, "unauthenticated")
    assert_problem(await client.get("/v1/channels/nope-nope/listings", headers=admin), 404, "not_found")
    assert_problem(await client.get("/v1/channels/nope-nope/listings", headers=m.marketplace), 404, "not_found")


@pytest.mark.parametrize("params, field", [
    ({"updated_since": "yesterday"}, "updated_since"),
    ({"updated_since": "2026-13-40T00:00:00Z"}, "updated_since"),
    ({"updated_since": "x" * 41}, "updated_since"),
    ({"limit": 0}, "limit"),
    ({"limit": 1001}, "limit"),
    ({"limit": "many"}, "limit"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"cursor": "W10"}, "cursor"),  # "[]"
    ({"cursor": "bad cursor!"}, "cursor"),
    ({"cursor": "WzEsIngiLDEsbnVsbF0"}, None),  # [1,"x",1,null]: a well-formed cursor is fine
    ({"cursor": "WzEsIngiLDFlOTksbnVsbF0"}, "cursor"),  # a float timestamp
    ({"cursor": "WzEsIngiLDk5OTk5OTk5OTk5OTk5OTk5OTk5OTksbnVsbF0"}, "cursor"),  # beyond any date
])
async def test_bad_input_names_the_field(client, m, params, field):
    r = await client.get(f"/v1/channels/{m.market}/listings", params=params, headers=m.marketplace)
    if field is None:
        assert r.status_code == 200, r.text
        return
    body = assert_problem(r, 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == [field], body


async def test_a_cursor_keeps_its_walk(client, m):
    r = await client.get(f"/v1/channels/{m.market}/listings", params={"limit": 1, "updated_since": "2001-01-01T00:00:00Z"},
                         headers=m.marketplace)
    assert r.status_code == 200, r.text
    cursor = r.json()["next_cursor"]
    assert r.json()["as_of"] >= "2001"
    r2 = await client.get(f"/v1/channels/{m.market}/listings", params={"limit": 1, "cursor": cursor},
                          headers=m.marketplace)
    assert r2.status_code == 200 and r2.json()["as_of"] == r.json()["as_of"]
    r3 = await client.get(f"/v1/channels/{m.market}/listings", headers=m.marketplace,
                          params={"limit": 1, "cursor": cursor, "updated_since": "2001-01-01T00:00:00+00:00"})
    assert r3.json() == r2.json()  # the same moment, spelled otherwise
    r4 = await client.get(f"/v1/channels/{m.market}/listings", headers=m.marketplace,
                          params={"limit": 1, "cursor": cursor, "updated_since": "2002-01-01T00:00:00Z"})
    assert [e["field"] for e in assert_problem(r4, 422, "validation_error")["errors"]] == ["updated_since"]
    # a watermark later than now minus the margin is the caller's updated_since itself
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    r5 = await client.get(f"/v1/channels/{m.market}/listings", params={"updated_since": later}, headers=m.marketplace)
    assert r5.status_code == 200 and ts(r5.json()["as_of"]) == ts(later)
