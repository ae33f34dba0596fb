"""The outbox audit of issue 13 for promotions, tax rates, channels and locations: every change
writes exactly one event, in its own transaction, with the resource as it was after the change;
a change not committed writes none; each key reads only what it may read (admin the promotions
and tax rates, a channel's keys their own channel and the locations it sells from)."""
import secrets

import pytest
from sqlalchemy import func, select
from starlette.requests import Request

from app.channels import service as channels
from app.channels.schemas import ChannelCreate, ChannelUpdate
from app.core.db import sessionmaker
from app.events.models import Event
from app.locations import service as locations
from app.locations.schemas import LocationCreate, LocationUpdate
from app.pricing import service as pricing
from app.pricing.schemas import PromotionCreate, PromotionUpdate, TaxRateCreate, TaxRateUpdate
from tests.conftest import auth, make_key, uid
from tests.events.helpers import count_events, create_endpoint, read_from, tail
from tests.helpers import assert_problem, create_channel, create_location

HOOK = "http://127.0.0.1:9/hooks"  # never delivered to
# inactive: the suite shares its database, and a promotion on everything would price every test's quotes
PROMOTION = {"name": "Ten off", "type": "percent_off", "params": {"percent_bp": 1000}, "active": False}


def _of(events: list[dict], resource_id: str) -> list[tuple[str, dict]]:
    return [(e["type"], e["data"]) for e in events if e["data"].get("id") == resource_id]


async def _changes(client, admin, cursor: str, resource_id: str, last_type: str) -> list[tuple[str, dict]]:
    events, _ = await read_from(client, admin, cursor, until=lambda evs: (last_type, resource_id) in {
        (e["type"], e["data"].get("id")) for e in evs})
    return _of(events, resource_id)


async def _new_tax_country(client, admin, tax_class: str, rate: int) -> dict:
    """A (country, tax class) no test has set yet: its first rate (201)."""
    for _ in range(50):
        country = "X" + secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        r = await client.post("/v1/tax-rates", headers=admin, json={"country": country, "tax_class": tax_class,
                                                                    "rate_bp": rate})
        if r.status_code == 201:
            return r.json()
        assert r.status_code == 200, r.text
    raise AssertionError("no free country code left")


async def test_promotion_changes_write_one_event_each(client, admin):
    cursor = await tail(client, admin)
    r = await client.post("/v1/promotions", headers=admin, json={"code": uid("promo"), **PROMOTION})
    assert r.status_code == 201, r.text
    created = r.json()
    path = f"/v1/promotions/{created['code']}"
    r = await client.patch(path, headers=admin, json={"name": "Renamed"})
    assert r.status_code == 200, r.text
    updated = r.json()
    r = await client.patch(path, headers=admin, json={"name": "Renamed"})  # no change: no event
    assert r.status_code == 200 and r.json()["version"] == updated["version"]
    r = await client.post(f"{path}/end", headers=admin)
    assert r.status_code == 200, r.text
    ended = r.json()
    assert (await client.post(f"{path}/end", headers=admin)).json()["version"] == ended["version"]  # ended already
    assert (await client.delete(path, headers=admin)).status_code == 204
    mine = await _changes(client, admin, cursor, created["id"], "promotion.deleted")
    assert [t for t, _ in mine] == ["promotion.created", "promotion.updated", "promotion.ended", "promotion.deleted"]
    assert [d for _, d in mine] == [created, updated, ended, ended]  # each the promotion after its change
    assert updated["name"] == "Renamed" and ended["valid_to"] is not None and ended["version"] == 3


async def test_tax_rate_changes_write_one_event_each(client, admin):
    cursor = await tail(client, admin)
    created = await _new_tax_country(client, admin, "reduced", 700)
    body = {"country": created["country"], "tax_class": "reduced"}
    r = await client.post("/v1/tax-rates", headers=admin, json={**body, "rate_bp": 700})  # the same rate: no event
    assert r.status_code == 200 and r.json()["version"] == 1
    r = await client.post("/v1/tax-rates", headers=admin, json={**body, "rate_bp": 800})
    assert r.status_code == 200, r.text
    put = r.json()
    r = await client.patch(f"/v1/tax-rates/{created['id']}", headers=admin, json={"rate_bp": 900})
    assert r.status_code == 200, r.text
    patched = r.json()
    r = await client.patch(f"/v1/tax-rates/{created['id']}", headers=admin, json={"rate_bp": 900})
    assert r.status_code == 200 and r.json()["version"] == 3
    events, _ = await read_from(client, admin, cursor, until=lambda evs: len(_of(evs, created["id"])) >= 3)
    mine = _of(events, created["id"])
    assert mine == [("tax_rate.created", created), ("tax_rate.updated", put), ("tax_rate.updated", patched)]
    assert [d["rate_bp"] for _, d in mine] == [700, 800, 900]


async def test_channel_and_location_changes_write_one_event_each(client, admin):
    cursor = await tail(client, admin)
    loc = await create_location(client, admin, "warehouse")
    ch = await create_channel(client, admin, "marketplace", fulfillment_locations=[loc["code"]])
    r = await client.patch(f"/v1/channels/{ch['code']}", headers=admin, json={"name": "Renamed", "max_splits": 2})
    assert r.status_code == 200, r.text
    ch2 = r.json()
    r = await client.patch(f"/v1/channels/{ch['code']}", headers=admin, json={"name": "Renamed"})
    assert r.status_code == 200 and r.json()["version"] == 2  # no change: no event
    r = await client.patch(f"/v1/locations/{loc['code']}", headers=admin, json={"priority": 5, "active": False})
    assert r.status_code == 200, r.text
    loc2 = r.json()
    assert await _changes(client, admin, cursor, ch["id"], "channel.updated") == [
        ("channel.created", ch), ("channel.updated", ch2)]
    assert await _changes(client, admin, cursor, loc["id"], "location.updated") == [
        ("location.created", loc), ("location.updated", loc2)]
    assert loc2["priority"] == 5 and loc2["active"] is False and ch2["max_splits"] == 2


async def test_refused_changes_write_no_event(client, admin):
    """A 409 found by the INSERT itself (the write started), a 412: nothing, events included."""
    loc = await create_location(client, admin)
    ch = await create_channel(client, admin)
    r = await client.post("/v1/promotions", headers=admin, json={"code": uid("promo"), **PROMOTION})
    assert r.status_code == 201, r.text
    promo = r.json()
    before = await count_events()
    body = {"code": ch["code"], "name": "Twice", "type": "web", "currency": "EUR", "country": "DE"}
    assert_problem(await client.post("/v1/channels", headers=admin, json=body), 409, "duplicate_code")
    body = {"code": loc["code"], "name": "Twice", "type": "store"}
    assert_problem(await client.post("/v1/locations", headers=admin, json=body), 409, "duplicate_code")
    assert_problem(await client.post("/v1/promotions", headers=admin, json={"code": promo["code"], **PROMOTION}), 409,
                   "duplicate_code")
    assert_problem(await client.patch(f"/v1/promotions/{promo['code']}", headers={**admin, "If-Match": '"7"'},
                                      json={"name": "Stale"}), 412, "version_conflict")
    assert_problem(await client.patch(f"/v1/channels/{ch['code']}", headers={**admin, "If-Match": '"7"'},
                                      json={"name": "Stale"}), 412, "version_conflict")
    assert await count_events() == before


class _RolledBack(Exception):
    pass


async def test_events_are_written_in_the_changes_transaction():
    """Every one of these changes writes its event into the caller's transaction: seen inside it,
    gone with its rollback, together with the change."""
    request = Request({"type": "http", "method": "PATCH", "path": "/", "headers": []})
    codes = {k: uid(k) for k in ("promo", "ch", "loc")}
    country = "Y" + secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    before = await count_events()
    with pytest.raises(_RolledBack):
        async with sessionmaker()() as session:
            async with session.begin():
                await pricing.create_promotion(session, PromotionCreate(code=codes["promo"], **PROMOTION))
                await pricing.update_promotion(session, request, codes["promo"], PromotionUpdate(name="Other"))
                await pricing.end_promotion(session, request, codes["promo"])
                await pricing.delete_promotion(session, request, codes["promo"])
                rate, _ = await pricing.put_tax_rate(session, TaxRateCreate(country=country, tax_class="zero", rate_bp=1))
                await pricing.update_tax_rate(session, request, rate["id"], TaxRateUpdate(rate_bp=rate["rate_bp"] + 1))
                await locations.create_location(session, LocationCreate(code=codes["loc"], name="L", type="store"))
                await locations.update_location(session, request, codes["loc"], LocationUpdate(priority=3))
                await channels.create_channel(session, ChannelCreate(
                    code=codes["ch"], name="C", type="web", currency="EUR", country="DE"))
                await channels.update_channel(session, request, codes["ch"], ChannelUpdate(name="Other"))
                inside = (await session.execute(select(func.count()).select_from(Event))).scalar_one()
                assert inside == before + 10
                raise _RolledBack
    assert await count_events() == before


async def test_who_reads_these_events(client, admin):
    """A channel's keys read their own channel's changes and those of the locations it sells from,
    never another channel's or location's, nor promotions and tax rates (admin's alone)."""
    here, there = (await create_location(client, admin, "warehouse"))["code"], (await create_location(client, admin))["code"]
    market = (await create_channel(client, admin, "marketplace", fulfillment_locations=[here]))["code"]
    web = (await create_channel(client, admin, "web", fulfillment_locations=[there]))["code"]
    keys = {"market": auth(await make_key("marketplace", channel=market)),
            "web": auth(await make_key("storefront", channel=web))}
    cursor = await tail(client, admin)
    for code in (market, web):
        assert (await client.patch(f"/v1/channels/{code}", headers=admin, json={"name": "New " + code})).status_code == 200
    for code in (here, there):
        assert (await client.patch(f"/v1/locations/{code}", headers=admin, json={"name": "New " + code})).status_code == 200
    r = await client.post("/v1/promotions", headers=admin, json={"code": uid("promo"), **PROMOTION})
    assert r.status_code == 201, r.text
    await _new_tax_country(client, admin, "zero", 0)
    wanted = {("channel.updated", market), ("channel.updated", web), ("location.updated", here),
              ("location.updated", there), ("promotion.created", r.json()["code"]), ("tax_rate.created", None)}

    def seen(evs):
        return {(e["type"], e["data"].get("code")) for e in evs}

    everything, _ = await read_from(client, admin, cursor,
                                    until=lambda evs: {w for w in wanted if w[1]} <= seen(evs))
    assert {w for w in wanted if w[1]} <= seen(everything) and "tax_rate.created" in {e["type"] for e in everything}
    for who, channel, location in (("market", market, here), ("web", web, there)):
        mine, _ = await read_from(client, keys[who], cursor)  # everything is settled: the admin read it
        got = {(t, c) for t, c in seen(mine) if t.startswith(("channel.", "location.", "promotion.", "tax_rate."))}
        assert got == {("channel.updated", channel), ("location.updated", location)}, who
    # subscriptions: the same rights
    await create_endpoint(client, keys["market"], HOOK, ["channel.updated", "location.updated"])
    for types in (["promotion.created"], ["tax_rate.updated"]):
        body = assert_problem(await client.post("/v1/webhook-endpoints", headers=keys["market"],
                                                json={"url": HOOK, "events": types}), 403, "forbidden")
        assert types[0] in body["detail"]
    await create_endpoint(client, admin, HOOK, ["promotion.created", "promotion.updated", "promotion.ended",
                                                "promotion.deleted", "tax_rate.created", "tax_rate.updated",
                                                "channel.created", "location.created"])
    r = await client.get("/v1/events", headers=admin, params={"type": "promotion.ended,tax_rate.updated", "limit": 1})
    assert r.status_code == 200, r.text
