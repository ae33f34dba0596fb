"""Consents per purpose with their history: when, through which channel, with which key."""
import pytest
from sqlalchemy import select

from app.core.db import unit_of_work
from app.customers import consents
from app.customers.models import ConsentRecord
from tests.catalog.builders import Keys
from tests.customers.world import customer_events, email, register
from tests.helpers import assert_problem


@pytest.fixture(scope="module")
async def keys(client, admin):
    return await Keys().setup(client, admin)


async def history(client, headers, ref, **params) -> list[dict]:
    r = await client.get(f"/v1/customers/{ref}/consents", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def test_every_change_is_recorded_with_channel_and_key(client, admin, keys):
    k = keys
    c = await register(client, k.storefront, email=email("Opt"), consents={"marketing": True})
    assert c["consents"] == {"marketing": True, "personalization": False}
    rows = await history(client, admin, c["id"])
    assert [(r["purpose"], r["granted"], r["channel"], r["source"]) for r in rows] == \
           [("marketing", True, k.web, "registration")]
    assert rows[0]["api_key"] and rows[0]["customer"] == c["id"] and rows[0]["created_at"].endswith("Z")

    # withdrawn at the till, personalization granted at the till: two rows through the POS channel
    r = await client.patch(f"/v1/customers/{c['id']}", headers=k.pos_bound,
                           json={"consents": {"marketing": False, "personalization": True}})
    assert r.json()["consents"] == {"marketing": False, "personalization": True}
    # the same again: no row (nothing changed)
    r = await client.patch(f"/v1/customers/{c['id']}", headers=k.pos_bound, json={"consents": {"marketing": False}})
    assert r.json()["version"] == 2
    # the back office (admin) grants marketing again: no channel
    r = await client.patch(f"/v1/customers/{c['id']}", headers=admin, json={"consents": {"marketing": True}})
    assert r.json()["consents"] == {"marketing": True, "personalization": True}
    rows = await history(client, k.storefront, c["id"])
    assert [(r["purpose"], r["granted"], r["channel"]) for r in rows] == [
        ("marketing", True, k.web), ("marketing", False, k.pos_channel), ("personalization", True, k.pos_channel),
        ("marketing", True, None)]
    assert len({r["api_key"] for r in rows}) == 3 and all(r["source"] == "update" for r in rows[1:])
    # paged oldest first
    first = await client.get(f"/v1/customers/{c['id']}/consents", headers=admin, params={"limit": 3})
    assert [r["id"] for r in first.json()["data"]] == [r["id"] for r in rows[:3]]
    rest = await history(client, admin, c["id"], cursor=first.json()["next_cursor"])
    assert [r["id"] for r in rest] == [rows[3]["id"]]

    # the customer's answer shows the current state, and so does has_consent (recommendations)
    async with unit_of_work() as session:
        assert await consents.has_consent(session, c["id"], "marketing") is True
        assert await consents.has_consent(session, c["id"], "personalization") is True
        assert await consents.has_consent(session, None, "marketing") is False
        assert await consents.has_consent(session, c["id"], "tracking") is False
    # a consent change is an update event naming the field, with no values
    evs = await customer_events(c["id"])
    assert evs[-1].type == "customer.updated" and evs[-1].data["changed"] == ["consents"]


async def test_no_consent_until_given(client, admin, keys):
    c = await register(client, admin, email=email("Quiet"))
    assert c["consents"] == {"marketing": False, "personalization": False}
    assert await history(client, admin, c["id"]) == []
    # a failed change writes no history
    other = await register(client, admin, email=email("Other"))
    r = await client.patch(f"/v1/customers/{c['id']}", headers=admin,
                           json={"email": other["email"], "consents": {"marketing": True}})
    assert_problem(r, 409, "duplicate_email")
    async with unit_of_work() as session:
        rows = (await session.execute(select(ConsentRecord).where(ConsentRecord.customer_id == c["id"]))).all()
    assert rows == []


async def test_who_reads_the_history(client, admin, keys):
    k = keys
    c = await register(client, k.storefront, email=email("Who"), consents={"personalization": True})
    assert len(await history(client, k.pos_bound, c["loyalty_card"] or c["email"])) == 1
    assert_problem(await client.get(f"/v1/customers/{c['id']}/consents", headers=k.storefront2), 404, "not_found")
    for h in (k.marketplace, k.dropshipper):
        assert_problem(await client.get(f"/v1/customers/{c['id']}/consents", headers=h), 403, "forbidden")
    assert_problem(await client.get("/v1/customers/cus_nobody/consents", headers=admin), 404, "not_found")
    assert_problem(await client.get(f"/v1/customers/{c['id']}/consents", headers=admin, params={"limit": 0}), 422)
