"""Customers: CRUD, uniqueness, lookups, If-Match, the role matrix, and the customer's group in a
quote."""
import pytest
from sqlalchemy import select

from app.core.db import sessionmaker, unit_of_work
from app.core.errors import ApiError
from app.customers import service
from app.customers.schemas import CustomerOut
from app.events.models import Event
from tests.catalog.builders import Keys, create_product, sku
from tests.conftest import auth, make_key, uid
from tests.helpers import assert_problem, create_channel


def email(prefix: str = "kunde") -> str:
    return f"{uid(prefix)}@example.com"


def card() -> str:
    return uid("lc").upper()


async def create(client, headers, **body) -> dict:
    body.setdefault("email", email())
    r = await client.post("/v1/customers", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert r.headers["etag"] == '"1"'
    CustomerOut.model_validate(r.json())
    return r.json()


async def events_of(customer_id: str) -> list[Event]:
    async with sessionmaker()() as session:
        rows = (await session.execute(select(Event).where(Event.type.like("customer.%")).order_by(Event.id))).scalars()
        return [e for e in rows if e.data.get("id") == customer_id]


async def count_events(type_: str) -> int:
    from sqlalchemy import func

    async with sessionmaker()() as session:
        return (await session.execute(select(func.count()).select_from(Event).where(Event.type == type_))).scalar_one()


@pytest.fixture(scope="module")
async def keys(client, admin):
    return await Keys().setup(client, admin)


# --------------------------------------------------------------------------- CRUD

async def test_create_read_update(client, admin):
    mail = email("Anna")
    address = {"name": "Anna", "line1": "Spitalerstraße 12", "postal_code": "20095", "city": "Hamburg", "country": "DE",
               "lat": 53.55, "lon": 10.0}
    c = await create(client, admin, email=mail, name="Anna Schmidt", phone="+49 40 1234567", group="loyalty",
                     loyalty_card="lc-4711-" + uid("x")[-8:], addresses=[address], consents={"marketing": True})
    assert c["id"].startswith("cus_") and c["object"] == "customer"
    assert c["email"] == mail and c["name"] == "Anna Schmidt" and c["group"] == "loyalty"
    assert c["loyalty_card"] == c["loyalty_card"].upper()  # cards are stored upper-case
    assert c["addresses"] == [address]
    assert c["consents"] == {"marketing": True, "personalization": False}
    assert c["channel"] is None and c["version"] == 1

    # {ref}: the id, the email in any case, the loyalty card in any case
    for ref in (c["id"], mail.upper(), c["loyalty_card"].lower()):
        r = await client.get(f"/v1/customers/{ref}", headers=admin)
        assert r.status_code == 200, (ref, r.text)
        assert r.json() == c and r.headers["etag"] == '"1"'

    r = await client.patch(f"/v1/customers/{mail}", json={"name": "Anna Meyer", "phone": None,
                                                          "consents": {"personalization": True}}, headers=admin)
    assert r.status_code == 200, r.text
    u = r.json()
    assert (u["name"], u["phone"], u["version"]) == ("Anna Meyer", None, 2)
    assert u["consents"] == {"marketing": True, "personalization": True}  # only what was sent changed
    assert r.headers["etag"] == '"2"'
    # the same values again: nothing changes, the version stays
    r = await client.patch(f"/v1/customers/{c['id']}", json={"name": "Anna Meyer"}, headers=admin)
    assert r.json()["version"] == 2
    # a new email (its case kept), a new card, no group, no addresses
    new_mail = email("Meyer")
    r = await client.patch(f"/v1/customers/{c['id']}", json={"email": new_mail, "loyalty_card": None, "group": None,
                                                             "addresses": []}, headers=admin)
    u = r.json()
    assert (u["email"], u["loyalty_card"], u["group"], u["addresses"], u["version"]) == (new_mail, None, None, [], 3)
    assert (await client.get(f"/v1/customers/{new_mail.lower()}", headers=admin)).json()["id"] == c["id"]
    assert_problem(await client.get(f"/v1/customers/{mail}", headers=admin), 404, "not_found")

    evs = await events_of(c["id"])
    assert [e.type for e in evs] == ["customer.created", "customer.updated", "customer.updated"]
    assert evs[1].data["changed"] == ["consents", "name", "phone"]
    assert evs[2].data["changed"] == ["addresses", "email", "group", "loyalty_card"]
    assert "email" not in evs[0].data and mail not in str(evs[0].data)  # no personal data in events


async def test_list_filters_and_pages(client, admin):
    tag = uid("zz")
    made = [await create(client, admin, email=email(), name=f"Kunde {tag} {i}", group="b2b" if i % 2 else "retail")
            for i in range(5)]
    seen, cursor = [], None
    while True:
        params = {"q": tag.upper(), "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/customers", params=params, headers=admin)).json()
        seen += [c["id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [c["id"] for c in made]
    r = await client.get("/v1/customers", params={"q": tag, "group": "b2b"}, headers=admin)
    assert [c["id"] for c in r.json()["data"]] == [made[1]["id"], made[3]["id"]]
    r = await client.get("/v1/customers", params={"email": made[2]["email"].upper()}, headers=admin)
    assert [c["id"] for c in r.json()["data"]] == [made[2]["id"]]
    # LIKE wildcards in q are plain characters
    r = await client.get("/v1/customers", params={"q": "%"}, headers=admin)
    assert all("%" in (c["name"] or "") + (c["email"] or "") + (c["phone"] or "") for c in r.json()["data"])
    assert_problem(await client.get("/v1/customers", params={"cursor": "!!"}, headers=admin), 422, "validation_error")


# --------------------------------------------------------------------------- uniqueness

async def test_email_and_loyalty_card_are_unique_whatever_their_case(client, admin):
    mail, lc = email("Dup"), card()
    first = await create(client, admin, email=mail, loyalty_card=lc)
    before = await count_events("customer.created")
    r = await client.post("/v1/customers", json={"email": mail.upper()}, headers=admin)
    body = assert_problem(r, 409, "duplicate_email")
    assert body["errors"] == [{"field": "email", "message": body["errors"][0]["message"]}]
    r = await client.post("/v1/customers", json={"email": email(), "loyalty_card": lc.lower()}, headers=admin)
    assert assert_problem(r, 409, "duplicate_loyalty_card")["errors"][0]["field"] == "loyalty_card"
    # nothing half-written: no second customer, no event for one
    r = await client.get("/v1/customers", params={"loyalty_card": lc}, headers=admin)
    assert [c["id"] for c in r.json()["data"]] == [first["id"]]
    assert await count_events("customer.created") == before

    # PATCH onto another customer's email or card
    other = await create(client, admin, loyalty_card=card())
    r = await client.patch(f"/v1/customers/{other['id']}", json={"email": mail.title()}, headers=admin)
    assert_problem(r, 409, "duplicate_email")
    r = await client.patch(f"/v1/customers/{other['id']}", json={"loyalty_card": lc}, headers=admin)
    assert_problem(r, 409, "duplicate_loyalty_card")
    assert (await client.get(f"/v1/customers/{other['id']}", headers=admin)).json() == other
    # the own email in another case is no conflict
    r = await client.patch(f"/v1/customers/{first['id']}", json={"email": mail.upper()}, headers=admin)
    assert r.status_code == 200 and r.json()["email"] == mail.upper()


# --------------------------------------------------------------------------- If-Match

async def test_if_match_and_body_version(client, admin):
    c = await create(client, admin)
    r = await client.patch(f"/v1/customers/{c['id']}", json={"name": "A"}, headers={**admin, "If-Match": '"7"'})
    assert assert_problem(r, 412, "version_conflict")["current_version"] == 1
    r = await client.patch(f"/v1/customers/{c['id']}", json={"name": "A", "version": 3}, headers=admin)
    assert_problem(r, 412, "version_conflict")
    r = await client.patch(f"/v1/customers/{c['id']}", json={"name": "A"}, headers={**admin, "If-Match": "nonsense"})
    assert_problem(r, 412, "version_conflict")
    r = await client.patch(f"/v1/customers/{c['id']}", json={"name": "A"}, headers={**admin, "If-Match": '"1"'})
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    r = await client.patch(f"/v1/customers/{c['id']}", json={"name": "B"}, headers={**admin, "If-Match": '"1"'})
    assert_problem(r, 412, "version_conflict")
    assert (await client.get(f"/v1/customers/{c['id']}", headers=admin)).json()["name"] == "A"


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize("body, field", [
    ({"email": "not-an-email"}, "email"),
    ({"email": "a b@example.com"}, "email"),
    ({"email": "anna@localhost"}, "email"),
    ({"email": " anna@example.com"}, "email"),
    ({"email": 5}, "email"),
    ({}, "email"),
    ({"email": "ok@example.com", "group": "no spaces"}, "group"),
    ({"email": "ok@example.com", "group": 1}, "group"),
    ({"email": "ok@example.com", "loyalty_card": "a_b"}, "loyalty_card"),
    ({"email": "ok@example.com", "loyalty_card": "x@y"}, "loyalty_card"),
    ({"email": "ok@example.com", "phone": "call me"}, "phone"),
    ({"email": "ok@example.com", "name": ""}, "name"),
    ({"email": "ok@example.com", "consents": {"marketing": 1}}, "consents.marketing"),
    ({"email": "ok@example.com", "consents": {"marketing": "true"}}, "consents.marketing"),
    ({"email": "ok@example.com", "consents": {"newsletter": True}}, "consents.newsletter"),
    ({"email": "ok@example.com", "addresses": [{"line1": "x", "city": "y", "country": "DE"}]}, "addresses[0].postal_code"),
    ({"email": "ok@example.com", "addresses": [{"line1": "x", "postal_code": "1", "city": "y", "country": "de"}]},
     "addresses[0].country"),
    ({"email": "ok@example.com", "addresses": {"line1": "x"}}, "addresses"),
    ({"email": "ok@example.com", "vip": True}, "vip"),
    ({"email": "ok@example.com", "name": "a\u0000b"}, None),
])
async def test_bad_input_is_a_422_naming_the_field(client, admin, body, field):
    r = await client.post("/v1/customers", json=body, headers=admin)
    problem = assert_problem(r, 422, "validation_error")
    if field is not None:
        assert field in [e["field"] for e in problem["errors"]], problem


async def test_bad_updates(client, admin):
    c = await create(client, admin)
    for body, field in (({"email": None}, "email"), ({"addresses": None}, "addresses"), ({"consents": None}, "consents"),
                        ({"consents": {"marketing": None}}, "consents.marketing"), ({"channel": "web"}, "channel"),
                        ({"version": True}, "version"), ({"email": "nope"}, "email")):
        r = await client.patch(f"/v1/customers/{c['id']}", json=body, headers=admin)
        assert field in [e["field"] for e in assert_problem(r, 422, "validation_error")["errors"]], body
    assert_problem(await client.patch("/v1/customers/cus_nobody", json={"name": "x"}, headers=admin), 404, "not_found")
    r = await client.post("/v1/customers", content=b"{", headers={**admin, "Content-Type": "application/json"})
    assert_problem(r, 400, "invalid_json")
    # an admin naming an unknown channel to register in
    r = await client.post("/v1/customers", json={"email": email(), "channel": "no-such-channel"}, headers=admin)
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "channel"
    for ref in ("nobody@example.com", "cus_nobody", "NO-CARD", "x" * 400, "a%00b"):
        assert_problem(await client.get(f"/v1/customers/{ref}", headers=admin), 404, "not_found")


# --------------------------------------------------------------------------- roles

async def test_role_matrix(client, admin, keys):
    k = keys
    # marketplace and dropshipper keys never see customer data
    mine = await create(client, admin, loyalty_card=card())
    for h in (k.marketplace, k.dropshipper):
        assert_problem(await client.post("/v1/customers", json={"email": email()}, headers=h), 403, "forbidden")
        assert_problem(await client.get("/v1/customers", params={"email": mine["email"]}, headers=h), 403, "forbidden")
        assert_problem(await client.get(f"/v1/customers/{mine['id']}", headers=h), 403, "forbidden")
        assert_problem(await client.patch(f"/v1/customers/{mine['id']}", json={"name": "x"}, headers=h), 403, "forbidden")
    assert_problem(await client.get("/v1/customers"), 401, "unauthenticated")

    # storefront: registers in its own channel, reads only its channel's customers
    shopper = await create(client, k.storefront, name="Web Shopper")
    assert shopper["channel"] == k.web
    r = await client.post("/v1/customers", json={"email": email(), "channel": k.web2}, headers=k.storefront)
    assert_problem(r, 404, "not_found")  # another channel
    assert (await create(client, k.storefront, channel=k.web))["channel"] == k.web
    for ref in (shopper["id"], shopper["email"]):
        assert (await client.get(f"/v1/customers/{ref}", headers=k.storefront)).json()["id"] == shopper["id"]
        assert_problem(await client.get(f"/v1/customers/{ref}", headers=k.storefront2), 404, "not_found")
    assert_problem(await client.get(f"/v1/customers/{mine['id']}", headers=k.storefront), 404, "not_found")
    r = await client.get("/v1/customers", params={"email": shopper["email"]}, headers=k.storefront)
    assert [c["id"] for c in r.json()["data"]] == [shopper["id"]]
    r = await client.get("/v1/customers", params={"email": shopper["email"]}, headers=k.storefront2)
    assert r.json()["data"] == []
    r = await client.get("/v1/customers", params={"email": mine["email"]}, headers=k.storefront)
    assert r.json()["data"] == []
    assert_problem(await client.get("/v1/customers", headers=k.storefront), 403, "forbidden")  # no browsing
    assert_problem(await client.get("/v1/customers", params={"q": "a"}, headers=k.storefront), 403, "forbidden")
    # the shop keeps its shopper's profile (account page), not another shop's, and never the group
    r = await client.patch(f"/v1/customers/{shopper['id']}", json={"name": "Web Shopper 2"}, headers=k.storefront)
    assert r.status_code == 200 and r.json()["name"] == "Web Shopper 2"
    r = await client.patch(f"/v1/customers/{shopper['id']}", json={"name": "x"}, headers=k.storefront2)
    assert_problem(r, 404, "not_found")
    r = await client.patch(f"/v1/customers/{shopper['id']}", json={"group": "vip"}, headers=k.storefront)
    assert assert_problem(r, 403, "forbidden")["errors"][0]["field"] == "group"
    for path in ("export", "consents"):
        assert (await client.get(f"/v1/customers/{shopper['id']}/{path}", headers=k.storefront)).status_code == 200
        assert_problem(await client.get(f"/v1/customers/{shopper['id']}/{path}", headers=k.storefront2), 404)
    assert_problem(await client.get(f"/v1/customers/{shopper['id']}/audit", headers=k.storefront), 403, "forbidden")
    assert_problem(await client.delete(f"/v1/customers/{shopper['id']}", headers=k.storefront), 403, "forbidden")
    r = await client.post(f"/v1/customers/{shopper['id']}/merge", json={"other": mine["id"]}, headers=k.storefront)
    assert_problem(r, 403, "forbidden")

    # POS: registers at the till (in its pos channel), looks up and reads any customer
    walk_in = await create(client, k.pos_bound, loyalty_card=card())
    assert walk_in["channel"] == k.pos_channel
    for ref in (shopper["id"], mine["email"], mine["loyalty_card"].lower()):
        assert (await client.get(f"/v1/customers/{ref}", headers=k.pos_bound)).status_code == 200
    r = await client.get("/v1/customers", params={"loyalty_card": mine["loyalty_card"].lower()}, headers=k.pos_bound)
    assert [c["id"] for c in r.json()["data"]] == [mine["id"]]
    r = await client.get("/v1/customers", params={"loyalty_card": "NO-SUCH-CARD"}, headers=k.pos_bound)
    assert r.json()["data"] == []
    assert_problem(await client.get("/v1/customers", headers=k.pos_bound), 403, "forbidden")
    # the till updates any customer's profile (a new phone number), never the group; no export, erasure, merge, audit
    r = await client.patch(f"/v1/customers/{shopper['id']}", json={"phone": "+49 40 555"}, headers=k.pos_bound)
    assert r.status_code == 200 and r.json()["phone"] == "+49 40 555"
    r = await client.patch(f"/v1/customers/{walk_in['id']}", json={"group": "b2b"}, headers=k.pos_bound)
    assert_problem(r, 403, "forbidden")
    assert (await client.get(f"/v1/customers/{shopper['id']}/consents", headers=k.pos_bound)).status_code == 200
    for path in ("export", "audit"):
        assert_problem(await client.get(f"/v1/customers/{walk_in['id']}/{path}", headers=k.pos_bound), 403, "forbidden")
    assert_problem(await client.delete(f"/v1/customers/{walk_in['id']}", headers=k.pos_bound), 403, "forbidden")
    # marketplace and dropshipper keys: none of the new endpoints either
    for h in (k.marketplace, k.dropshipper):
        for path in ("export", "consents", "audit", "orders"):
            assert_problem(await client.get(f"/v1/customers/{walk_in['id']}/{path}", headers=h), 403, "forbidden")
        assert_problem(await client.delete(f"/v1/customers/{walk_in['id']}", headers=h), 403, "forbidden")

    # admin: everything, including registering a customer in a channel
    c = await create(client, admin, channel=k.web2)
    assert c["channel"] == k.web2
    assert (await client.get(f"/v1/customers/{c['id']}", headers=k.storefront2)).status_code == 200
    r = await client.get("/v1/customers", params={"limit": 500}, headers=admin)
    assert r.status_code == 200 and len(r.json()["data"]) >= 5


# --------------------------------------------------------------------------- other domains

async def test_service_functions_for_orders_and_pricing(client, admin, keys):
    c = await create(client, admin, group="b2b", loyalty_card=card(), channel=keys.web)
    nogroup = await create(client, admin)
    async with unit_of_work() as session:
        for ref in (c["id"], c["email"].upper(), c["loyalty_card"].lower()):
            row = await service.resolve_customer(session, ref)
            assert row is not None and row.id == c["id"]
            assert await service.get_customer_group(session, ref) == "b2b"
        assert await service.resolve_customer(session, "nobody@example.com") is None
        assert await service.resolve_customer(session, c["id"], channel=keys.web2) is None
        assert (await service.resolve_customer(session, c["id"], channel=keys.web)).id == c["id"]
        assert await service.get_customer_group(session, nogroup["email"]) is None
        for ref in ("nobody@example.com", "cus_nobody", ""):
            with pytest.raises(ApiError) as err:
                await service.get_customer_group(session, ref)
            assert err.value.status == 404


async def test_quote_for_a_customer_uses_their_group(client, admin):
    letters = uid("x")[-2:].upper()
    country = "".join(ch if ch.isalpha() else chr(65 + int(ch)) for ch in letters)  # tax rates of its own
    web = (await create_channel(client, admin, "web", country=country))["code"]
    tee = sku("TEE")
    await create_product(client, admin, channels=[web], variants=[{"sku": tee}])
    r = await client.post("/v1/tax-rates", json={"country": country, "tax_class": "standard", "rate_bp": 1900}, headers=admin)
    assert r.status_code in (200, 201), r.text
    group = uid("vip")
    for code, customer_group, amount in ((uid("retail"), None, 2000), (uid("vip"), group, 1500)):
        body = {"code": code, "currency": "EUR", "channels": [web], **({"customer_group": customer_group} if customer_group else {})}
        assert (await client.post("/v1/price-lists", json=body, headers=admin)).status_code == 201
        r = await client.put(f"/v1/price-lists/{code}/prices", json=[{"sku": tee, "amount": amount}], headers=admin)
        assert r.status_code == 200, r.text
    vip = await create(client, admin, group=group, loyalty_card=card(), channel=web)  # registered in the web shop
    plain = await create(client, admin)
    lines = [{"sku": tee, "quantity": 2}]

    async def price(customer=None, headers=admin):
        body = {"channel": web, "lines": lines, **({"customer": customer} if customer else {})}
        r = await client.post("/v1/pricing/quote", json=body, headers=headers)
        assert r.status_code == 200, r.text
        return r.json()

    assert (await price())["lines"][0]["unit_price"] == 2000
    for ref in (vip["email"].upper(), vip["id"], vip["loyalty_card"]):
        q = await price(ref)
        assert q["customer_group"] == group and q["lines"][0]["unit_price"] == 1500 and q["total"] == 3000
    q = await price(plain["email"])
    assert q["customer_group"] is None and q["lines"][0]["unit_price"] == 2000
    # the shop's own storefront key prices for its shopper too
    shop = auth(await make_key("storefront", channel=web))
    assert (await price(vip["email"], shop))["lines"][0]["unit_price"] == 1500
    # another shop's key cannot price with (and so learn the group of) this shop's customer
    elsewhere = (await create_channel(client, admin, "web", country=country))["code"]
    other_shop = auth(await make_key("storefront", channel=elsewhere))
    r = await client.post("/v1/pricing/quote", json={"channel": elsewhere, "lines": lines, "customer": vip["email"]},
                          headers=other_shop)
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "customer"
    # a change of group prices at once
    r = await client.patch(f"/v1/customers/{plain['id']}", json={"group": group}, headers=admin)
    assert r.status_code == 200
    assert (await price(plain["email"]))["lines"][0]["unit_price"] == 1500
    r = await client.post("/v1/pricing/quote", json={"channel": web, "lines": lines, "customer": email("ghost")}, headers=admin)
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "customer"


async def test_seed_demo_is_idempotent(client, admin):
    from app.customers.seed import DEMO_CUSTOMERS, seed_demo
    from app.seed import seed_locations_and_channels

    async with unit_of_work() as session:
        await seed_locations_and_channels(session)
        await seed_demo(session)
    async with unit_of_work() as session:
        assert await seed_demo(session) == []
    anna = (await client.get(f"/v1/customers/{DEMO_CUSTOMERS[0]['loyalty_card']}", headers=admin)).json()
    assert anna["email"] == DEMO_CUSTOMERS[0]["email"] and anna["group"] == "loyalty" and anna["channel"] == "web-de"


async def test_concurrent_registrations_of_one_email(client, admin):
    """Many registrations of one email at once (any case): exactly one customer, the rest 409."""
    import asyncio

    mail = email("Rush")
    bodies = [{"email": mail.upper() if i % 2 else mail} for i in range(8)]
    answers = await asyncio.gather(*(client.post("/v1/customers", json=b, headers=admin) for b in bodies))
    assert sorted(r.status_code for r in answers) == [201] + [409] * 7
    for r in answers:
        if r.status_code == 409:
            assert_problem(r, 409, "duplicate_email")
    r = await client.get("/v1/customers", params={"email": mail}, headers=admin)
    assert len(r.json()["data"]) == 1


async def test_an_email_that_grows_when_lower_cased(client, admin):
    # U+0130 lower-cases to two characters: the normalized key still fits its column
    mail = "\u0130" * 60 + "@" + "\u0130" * 180 + ".de"
    assert len(mail) == 244 and len(service.email_key(mail)) > 320
    c = await create(client, admin, email=mail)
    assert (await client.get("/v1/customers", params={"email": mail}, headers=admin)).json()["data"][0]["id"] == c["id"]
