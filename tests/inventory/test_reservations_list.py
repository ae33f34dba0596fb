"""GET /v1/reservations: filters, statuses as answered, pages, and who sees which holds."""
from datetime import timedelta

import pytest

from app.core import clock
from app.core.db import sessionmaker
from app.inventory import reservations
from app.inventory.jobs import expire_reservations
from app.inventory.schemas import ReservationPage
from tests.catalog.builders import create_product, sku
from tests.conftest import auth, make_key
from tests.helpers import assert_problem, create_channel
from tests.inventory.builders import World, put_levels


@pytest.fixture
async def world(client, admin):
    w = await World().setup(client, admin)
    await put_levels(client, admin, w.hh, **{w.a: 50, w.b: 50})
    await put_levels(client, admin, w.be, **{w.a: 50})
    w.shop = auth(await make_key("storefront", channel=w.web))
    yield w
    clock.reset()


async def hold(client, headers, sku_, location, quantity=1, ttl_seconds=600, **kw) -> dict:
    r = await client.post("/v1/reservations", headers=headers, json={
        "sku": sku_, "location": location, "quantity": quantity, "ttl_seconds": ttl_seconds, **kw})
    assert r.status_code == 201, r.text
    return r.json()


async def listed(client, headers, **params) -> list[dict]:
    """Every page of the list (limit 2, to walk the cursor), as ids in answer order."""
    out, cursor = [], None
    while True:
        r = await client.get("/v1/reservations", headers=headers,
                             params={**params, "limit": 2, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        page = ReservationPage.model_validate(r.json())
        assert len(page.data) <= 2
        out += [x.id for x in page.data]
        cursor = page.next_cursor
        if cursor is None:
            return out


async def test_filters_and_statuses_as_answered(client, admin, world):
    w = world
    a1 = await hold(client, admin, w.a, w.hh, reference="click-1")
    a2 = await hold(client, w.shop, w.a.lower(), w.hh, 2, reference="cart-9")  # any spelling; stored spelling kept
    b1 = await hold(client, admin, w.b, w.hh, ttl_seconds=30)
    be1 = await hold(client, admin, w.a, w.be)
    gone = await hold(client, admin, w.b, w.hh)
    assert (await client.delete(f"/v1/reservations/{gone['id']}", headers=admin)).json()["status"] == "released"
    sold = await hold(client, admin, w.a, w.hh)
    async with sessionmaker()() as s:  # what orders do when held goods leave
        await reservations.commit(s, sold["id"])
        await s.commit()
    clock.advance(timedelta(seconds=31))  # b1 has run out; no worker has released it yet

    at_hh = [a1["id"], a2["id"], b1["id"], gone["id"], sold["id"]]
    assert await listed(client, admin, location=w.hh) == at_hh  # creation order, every page once
    r = await client.get("/v1/reservations", headers=admin, params={"location": w.hh})
    assert [x["status"] for x in r.json()["data"]] == ["active", "active", "expired", "released", "committed"]
    assert r.json()["data"][1]["sku"] == w.a and r.json()["next_cursor"] is None
    # the location by id, too
    loc_id = (await client.get(f"/v1/locations/{w.hh}", headers=admin)).json()["id"]
    assert await listed(client, admin, location=loc_id) == at_hh
    assert await listed(client, admin, location=w.be) == [be1["id"]]
    # status as the answer shows it: an active hold past its time is expired
    assert await listed(client, admin, location=w.hh, status="active") == [a1["id"], a2["id"]]
    assert await listed(client, admin, location=w.hh, status="expired") == [b1["id"]]
    assert await listed(client, admin, location=w.hh, status="released") == [gone["id"]]
    assert await listed(client, admin, location=w.hh, status="committed") == [sold["id"]]
    # sku in any spelling, reference, combined
    assert await listed(client, admin, sku=w.a.lower(), location=w.hh) == [a1["id"], a2["id"], sold["id"]]
    assert await listed(client, admin, sku=w.b) == [b1["id"], gone["id"]]
    assert await listed(client, admin, reference="cart-9", location=w.hh) == [a2["id"]]
    assert await listed(client, admin, sku=w.a, location=w.be, status="active") == [be1["id"]]
    # unknown location or SKU: nothing, as the other lists answer
    assert await listed(client, admin, location="no-such-location") == []
    assert await listed(client, admin, sku="NO-SUCH-SKU") == []
    # the worker releasing b1 for good changes nothing in how it lists
    assert await expire_reservations() >= 1
    assert await listed(client, admin, location=w.hh, status="expired") == [b1["id"]]
    assert await listed(client, admin, location=w.hh, status="active") == [a1["id"], a2["id"]]


async def test_bad_filters_name_the_parameter(client, admin, world):
    for params, field in (({"status": "pending"}, "status"), ({"limit": 0}, "limit"), ({"limit": 501}, "limit"),
                          ({"cursor": "%%%"}, "cursor"), ({"cursor": "bm90LWFuLWlk"}, "cursor"),
                          ({"location": "x" * 101}, "location"), ({"sku": "x" * 101}, "sku"),
                          ({"reference": "x" * 201}, "reference")):
        body = assert_problem(await client.get("/v1/reservations", params=params, headers=admin), 422, "validation_error")
        assert [e["field"] for e in body["errors"]] == [field], body


async def test_storefront_and_marketplace_keys_see_their_channels_holds_only(client, admin, world):
    w = world
    market = (await create_channel(client, admin, "marketplace", fulfillment_locations=[w.hh]))["code"]
    listed_sku = sku("MKT")
    await create_product(client, admin, channels=[market], variants=[{"sku": listed_sku}])
    await put_levels(client, admin, w.hh, **{listed_sku: 5})
    seller = auth(await make_key("marketplace", channel=market))
    shop2 = auth(await make_key("storefront", channel=w.web))  # another key of the same channel
    other_shop = auth(await make_key("storefront", channel=(await create_channel(client, admin, "web"))["code"]))
    pos = auth(await make_key("pos", channel=w.pos, location=w.hh))

    mine = await hold(client, w.shop, w.a, w.hh)
    sibling = await hold(client, shop2, w.b, w.hh)
    theirs = await hold(client, seller, listed_sku, w.hh)
    staff = await hold(client, pos, w.a, w.hh)
    backoffice = await hold(client, admin, w.a, w.hh)

    assert await listed(client, w.shop, location=w.hh) == [mine["id"], sibling["id"]]
    assert await listed(client, shop2) == [mine["id"], sibling["id"]]
    assert await listed(client, seller) == [theirs["id"]]
    assert await listed(client, other_shop) == []
    # filters narrow within the scope and never widen it
    assert await listed(client, w.shop, sku=listed_sku) == []
    assert await listed(client, w.shop, status="active", location=w.hh) == [mine["id"], sibling["id"]]
    # the POS key at Hamburg sees every hold at its store, whoever placed it; admin all
    assert await listed(client, pos) == [mine["id"], sibling["id"], theirs["id"], staff["id"], backoffice["id"]]
    assert await listed(client, admin, location=w.hh) == [mine["id"], sibling["id"], theirs["id"], staff["id"],
                                                          backoffice["id"]]
    # one by id: the same scope (404 outside it, as for a hold that does not exist)
    for rid in (theirs["id"], staff["id"], backoffice["id"]):
        assert_problem(await client.get(f"/v1/reservations/{rid}", headers=w.shop), 404, "not_found")
        assert_problem(await client.delete(f"/v1/reservations/{rid}", headers=w.shop), 404, "not_found")
    assert (await client.get(f"/v1/reservations/{sibling['id']}", headers=w.shop)).json()["placed_by"]["location"] is None
    # dropshippers have no business with holds
    drop = auth(await make_key("dropshipper", location=w.partner))
    assert_problem(await client.get("/v1/reservations", headers=drop), 403, "forbidden")
