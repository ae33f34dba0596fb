"""The audit trail: which API key read or changed which customer's data, when."""
import pytest

from tests.catalog.builders import Keys
from tests.conftest import uid
from tests.customers.world import audit_rows, card, email, register
from tests.helpers import assert_problem


@pytest.fixture(scope="module")
async def keys(client, admin):
    return await Keys().setup(client, admin)


def trail(rows) -> list[tuple]:
    return [(a.action, a.role, a.channel, a.location) for a in rows]


async def test_reads_and_changes_are_recorded(client, admin, keys):
    k = keys
    c = await register(client, k.storefront, email=email("Aud"), loyalty_card=card())
    rid = uid("req")
    assert (await client.get(f"/v1/customers/{c['id']}", headers={**k.storefront, "X-Request-Id": rid})).status_code == 200
    assert (await client.head(f"/v1/customers/{c['email']}", headers=k.pos_bound)).status_code == 200
    r = await client.get("/v1/customers", params={"loyalty_card": c["loyalty_card"]}, headers=k.pos_bound)
    assert len(r.json()["data"]) == 1
    r = await client.get("/v1/customers", params={"email": c["email"]}, headers=k.storefront)
    assert len(r.json()["data"]) == 1
    assert (await client.patch(f"/v1/customers/{c['id']}", json={"name": "Audrey", "phone": "+49 30 1"},
                               headers=k.pos_bound)).status_code == 200
    assert (await client.get(f"/v1/customers/{c['id']}/consents", headers=admin)).status_code == 200
    assert (await client.get(f"/v1/customers/{c['id']}/export", headers=k.storefront)).status_code == 200

    rows = await audit_rows(c["id"])  # reads are committed at once (autocommit), seen from another session
    assert trail(rows) == [
        ("create", "storefront", k.web, None),
        ("read", "storefront", k.web, None),
        ("read", "pos", k.pos_channel, k.store),  # HEAD reads as much as GET
        ("lookup", "pos", k.pos_channel, k.store),
        ("lookup", "storefront", k.web, None),
        ("update", "pos", k.pos_channel, k.store),
        ("consents_read", "admin", None, None),
        ("export", "storefront", k.web, None),
    ]
    assert rows[1].request_id == rid and all(a.api_key_id for a in rows)
    assert (rows[3].detail, rows[4].detail, rows[5].detail) == ({"by": "loyalty_card"}, {"by": "email"},
                                                                 {"fields": ["name", "phone"]})
    # values never: the trail holds no personal data
    assert all("Audrey" not in str(a.detail) and c["email"] not in str(a.detail) for a in rows)

    # the API: admin only, oldest first, paged; reading the trail is on it too
    r = await client.get(f"/v1/customers/{c['loyalty_card']}/audit", headers=admin, params={"limit": 5})
    assert r.status_code == 200, r.text
    page1 = r.json()
    assert [a["action"] for a in page1["data"]] == ["create", "read", "read", "lookup", "lookup"]
    assert page1["data"][1]["request_id"] == rid and page1["data"][0]["customer"] == c["id"]
    r = await client.get(f"/v1/customers/{c['id']}/audit", headers=admin, params={"cursor": page1["next_cursor"]})
    assert [a["action"] for a in r.json()["data"]] == ["update", "consents_read", "export", "audit_read", "audit_read"]
    for h in (k.storefront, k.pos_bound, k.marketplace, k.dropshipper):
        assert_problem(await client.get(f"/v1/customers/{c['id']}/audit", headers=h), 403, "forbidden")
    assert_problem(await client.get("/v1/customers/cus_nobody/audit", headers=admin), 404, "not_found")


async def test_what_is_not_read_is_not_recorded(client, admin, keys):
    k = keys
    c = await register(client, admin, email=email("Quiet"), channel=k.web)
    other = await register(client, admin, email=email("Other"))
    before = len(await audit_rows(c["id"]))
    # another shop's key: 404, nothing read
    assert_problem(await client.get(f"/v1/customers/{c['id']}", headers=k.storefront2), 404)
    r = await client.get("/v1/customers", params={"email": c["email"]}, headers=k.storefront2)
    assert r.json()["data"] == []
    # a change refused: rolled back with the change
    r = await client.patch(f"/v1/customers/{c['id']}", json={"email": other["email"]}, headers=admin)
    assert_problem(r, 409, "duplicate_email")
    assert len(await audit_rows(c["id"])) == before


async def test_an_admin_list_records_each_customer_shown(client, admin, keys):
    tag = uid("zz")
    made = [await register(client, admin, email=email(), name=f"Liste {tag} {i}") for i in range(3)]
    r = await client.get("/v1/customers", params={"q": tag, "limit": 2}, headers=admin)
    assert [c["id"] for c in r.json()["data"]] == [m["id"] for m in made[:2]]
    for m, shown in zip(made, (True, True, False)):
        assert (trail(await audit_rows(m["id"]))[-1][0] == "list") == shown


async def test_orders_and_store_credit_of_a_customer_are_on_the_trail(client, admin, keys):
    k = keys
    c = await register(client, admin, email=email("Credit"), channel=k.web)
    before = len(await audit_rows(c["id"]))
    assert (await client.get(f"/v1/customers/{c['id']}/orders", headers=k.storefront)).status_code == 200
    assert (await client.get(f"/v1/customers/{c['email']}/orders", headers=k.pos_bound)).status_code == 200
    r = await client.post(f"/v1/customers/{c['id']}/store-credit", headers=admin,
                          json={"amount": 500, "currency": "EUR", "note": "goodwill"})
    assert r.status_code == 201, r.text
    assert (await client.get(f"/v1/customers/{c['id']}/store-credit", headers=k.pos_bound)).status_code == 200
    # another shop's key reads nothing, and nothing is recorded for it
    assert_problem(await client.get(f"/v1/customers/{c['id']}/orders", headers=k.storefront2), 404)
    rows = (await audit_rows(c["id"]))[before:]
    assert trail(rows) == [
        ("orders_read", "storefront", k.web, None),
        ("orders_read", "pos", k.pos_channel, k.store),
        ("store_credit_change", "admin", None, None),
        ("store_credit_read", "pos", k.pos_channel, k.store),
    ]
    assert rows[2].detail == {"currency": "EUR"} and "goodwill" not in str(rows[2].detail)
