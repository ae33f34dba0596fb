"""What each order sold (orders.live_units, live_total, live_discount_total, returned_units,
returned_total) always equals the sums over its lines, and each line carries its order's values
(order_created_at, order_channel, order_currency, order_location, order_coupon), as
app/orders/reporting.py keeps them, whatever happens to the order: checkout (Stripe pending, then
confirmed by the webhook, or expired unpaid), a split shipment, a fulfillment cancelled, declined
and re-sourced, declined with nothing left to serve it, an order cancelled, a pickup collected or
expired, a POS sale returned in part twice, a marketplace import at its own prices, two customers
merged. Checked after every step against the
lines read back, and at the end for every order in the database. Also: the migration builds the
covering indexes the models declare."""
from datetime import timedelta

import pytest
from sqlalchemy import inspect, select, update
from sqlmodel import SQLModel

import app.models_registry  # noqa: F401  (every table in the metadata)
from app.core import clock
from app.core.db import get_engine, sessionmaker, unit_of_work
from app.orders.jobs import expire_fulfillments
from app.orders.models import Order, OrderLine
from app.payments import jobs as payment_jobs
from app.payments import service as payments
from tests.conftest import uid
from tests.helpers import settings_env
from tests.orders.fulfillment_world import NEAR_HAMBURG, World, at
from tests.payments.fake_stripe import FakeStripe

FIGURES = ("live_units", "live_total", "live_discount_total", "returned_units", "returned_total")
SHIP = {"carrier": "DHL", "tracking_number": "00340434161094042557"}


@pytest.fixture(scope="module")
def stripe():
    fake = FakeStripe().start()
    try:
        with settings_env(STRIPE_API_BASE=fake.url):
            yield fake
    finally:
        fake.stop()


@pytest.fixture
async def w(client, admin):
    yield await World().setup(client, admin)
    clock.reset()


def expected(lines: list) -> dict[str, int]:
    """The definitions, line by line (floor of non-negative integers)."""
    out = dict.fromkeys(FIGURES, 0)
    for ln in lines:
        live = ln.quantity - ln.quantity_cancelled
        out["live_units"] += live
        out["live_total"] += ln.total * live // ln.quantity
        out["live_discount_total"] += ln.discount_total * live // ln.quantity
        out["returned_units"] += ln.quantity_returned
        out["returned_total"] += ln.total * ln.quantity_returned // ln.quantity
    return out


async def drift(order_ids: list[str] | None = None) -> list[tuple]:
    """(order, what it keeps, what its lines say) of every order (or of `order_ids`) where they
    differ: its figures against the sums over its lines, and each line's copy of the order."""
    o_where = [Order.id.in_(order_ids)] if order_ids is not None else []
    l_where = [OrderLine.order_id.in_(order_ids)] if order_ids is not None else []
    async with sessionmaker()() as s:
        orders = (await s.execute(select(Order).where(*o_where))).scalars().all()
        lines = (await s.execute(select(OrderLine).where(*l_where))).scalars().all()
    by_order: dict[str, list] = {}
    for ln in lines:
        by_order.setdefault(ln.order_id, []).append(ln)
    out = []
    for o in orders:
        mine = by_order.get(o.id, [])
        stored, counted = {f: getattr(o, f) for f in FIGURES}, expected(mine)
        if stored != counted:
            out.append((o.id, stored, counted))
        copy = (o.created_at, o.channel, o.currency, o.location, bool(o.coupon_codes))
        for ln in mine:
            on_line = (ln.order_created_at, ln.order_channel, ln.order_currency, ln.order_location, ln.order_coupon)
            if on_line != copy:
                out.append((o.id, copy, (ln.id, on_line)))
    return out


async def figures(order_id: str) -> dict[str, int]:
    async with sessionmaker()() as s:
        row = (await s.execute(select(*(getattr(Order, f) for f in FIGURES)).where(Order.id == order_id))).one()
    return dict(zip(FIGURES, row))


async def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


async def stripe_checkout(client, w, lines: dict[str, int]) -> dict:
    cart = await ok(await client.post("/v1/carts", headers=w.shop, json={
        "lines": [{"sku": s, "quantity": q} for s, q in lines.items()],
        "fulfillment": {"method": "ship", "address": NEAR_HAMBURG}}), 201)
    return await ok(await client.post(f"/v1/carts/{cart['id']}/checkout", headers=w.shop,
                                      json={"payment": {"provider": "stripe"}}), 201)


async def test_the_figures_follow_every_flow(client, w, stripe):
    placed: list[str] = []

    async def check(*orders: dict) -> None:
        placed.extend(o["id"] for o in orders if o["id"] not in placed)
        assert await drift(placed) == []

    await w.stock(client, w.wh, **{w.a: 20, w.b: 5})
    await w.stock(client, w.hh, **{w.b: 5, w.p: 3})

    # Stripe: waiting for the payment (not a sale yet, its figures are there already), then paid
    paid = await stripe_checkout(client, w, {w.a: 2, w.b: 1})
    assert paid["status"] == "pending_payment"
    await check(paid)
    assert (await figures(paid["id"]))["live_total"] == paid["totals"]["total"]
    pi = paid["payment"]["reference"]
    stripe.pay(pi)
    body, headers = stripe.signed(stripe.webhook_for(pi, "payment_intent.amount_capturable_updated"))
    await ok(await client.post("/v1/payments/stripe/webhook", content=body, headers=headers))
    assert (await w.order(client, paid["id"]))["status"] == "confirmed"
    await check(paid)

    # Stripe, never paid: expired and cancelled, nothing sold
    unpaid = await stripe_checkout(client, w, {w.a: 1})
    async with unit_of_work() as s:
        await s.execute(update(Order).where(Order.id == unpaid["id"]).values(payment_expires_at=clock.now()))
    assert await payment_jobs.expire_unpaid_orders() == 1
    await payments.drain()
    assert (await w.order(client, unpaid["id"]))["status"] == "cancelled"
    await check(unpaid)
    assert (await figures(unpaid["id"]))["live_units"] == 0

    # a split shipment (A from wh, P from hh): one part shipped, the other cancelled
    split = await w.place(client, {w.a: 3, w.p: 2})
    assert {f["location"] for f in split["fulfillments"]} == {w.wh, w.hh}
    await check(split)
    await ok(await client.post(f"/v1/fulfillments/{at(split, w.wh)['id']}/ship", headers=w.admin, json=SHIP))
    await check(split)
    await ok(await client.post(f"/v1/fulfillments/{at(split, w.hh)['id']}/cancel", headers=w.admin, json={}))
    assert (await figures(split["id"]))["live_units"] == 3  # P's two units cancelled
    await check(split)

    # declined at the warehouse and re-sourced (hh has B), then declined there with nowhere left
    moved = await w.place(client, {w.b: 2})
    declined = await ok(await client.post(f"/v1/fulfillments/{at(moved, w.wh)['id']}/decline", headers=w.admin,
                                          json={"reason": "damaged"}))
    assert [f["location"] for f in declined["resourced"]] == [w.hh]
    await check(moved)
    again = await ok(await client.post(f"/v1/fulfillments/{declined['resourced'][0]['id']}/decline",
                                       headers=w.admin, json={"reason": "lost"}))
    assert again["resourced"] == [] and again["unfulfillable"]
    await check(moved)
    assert (await figures(moved["id"]))["live_units"] == 0

    # an order cancelled by the back office
    cancelled = await w.place(client, {w.a: 1, w.b: 1})
    await ok(await client.post(f"/v1/orders/{cancelled['id']}/cancel", headers=w.admin, json={}))
    await check(cancelled)

    # pickups: one collected with its code, one not collected in time (expired)
    await w.stock(client, w.hh, **{w.a: 5})
    pickup = await w.place(client, {w.a: 1}, method="pickup", location=w.hh)
    code = (await ok(await client.post(f"/v1/fulfillments/{at(pickup, w.hh)['id']}/ready",
                                       headers=w.pos_hh)))["pickup_code"]
    await ok(await client.post(f"/v1/fulfillments/{at(pickup, w.hh)['id']}/collect", headers=w.pos_hh,
                               json={"pickup_code": code}))
    await check(pickup)
    late = await w.place(client, {w.p: 1}, method="pickup", location=w.hh)
    await ok(await client.post(f"/v1/fulfillments/{at(late, w.hh)['id']}/ready", headers=w.pos_hh))
    clock.advance(timedelta(days=3))
    assert await expire_fulfillments() >= 1
    clock.reset()
    assert (await w.order(client, late["id"]))["status"] == "cancelled"
    await check(late)

    # a POS sale of 3 + 1, returned at the till in two goes (the refunds are each unit's share)
    sale = await ok(await client.post("/v1/orders", headers=w.pos_hh, json={
        "lines": [{"sku": w.a, "quantity": 3}, {"sku": w.b, "quantity": 1}], "coupon_codes": []}), 201)
    await check(sale)
    line = next(ln for ln in sale["lines"] if ln["sku"] == w.a)
    refunded = 0
    for quantity in (1, 2):
        ret = await ok(await client.post("/v1/returns", headers=w.pos_hh, json={
            "order": sale["number"], "refund_method": "cash",
            "lines": [{"order_line_id": line["id"], "quantity": quantity, "condition": "resellable"}]}), 201)
        refunded += ret["refund_total"]["amount"]
        await check(sale)
    assert (await figures(sale["id"]))["returned_total"] == refunded  # to the cent what the returns refunded

    # a marketplace import at its own prices
    imported = await ok(await client.post("/v1/orders", headers=w.marketplace, json={
        "external_id": uid("AMZ"), "fulfillment": {"method": "ship", "address": NEAR_HAMBURG},
        "lines": [{"sku": w.a, "quantity": 2, "unit_price": 777}]}), 201)
    await check(imported)
    assert (await figures(imported["id"]))["live_total"] == imported["totals"]["total"]

    # two customers merged: their orders move, their figures stay
    kim = [await ok(await client.post("/v1/customers", headers=w.admin, json={
        "email": f"{uid('kim')}@example.com", "name": "Kim", "channel": w.web}), 201) for _ in range(2)]
    theirs = []
    for c in kim:
        cart = await ok(await client.post("/v1/carts", headers=w.shop, json={
            "lines": [{"sku": w.a, "quantity": 1}], "customer": c["id"],
            "fulfillment": {"method": "ship", "address": NEAR_HAMBURG}}), 201)
        theirs.append(await ok(await client.post(f"/v1/carts/{cart['id']}/checkout", headers=w.shop,
                                                 json={"payment": {"provider": "none"}}), 201))
    before = [await figures(o["id"]) for o in theirs]
    await ok(await client.post(f"/v1/customers/{kim[0]['id']}/merge", headers=w.admin, json={"other": kim[1]["id"]}))
    assert [(await w.order(client, o["id"]))["customer"] for o in theirs] == [kim[0]["id"]] * 2
    assert [await figures(o["id"]) for o in theirs] == before
    await check(*theirs)


async def test_every_order_in_the_database_matches_its_lines():
    """Whatever the tests before this one did (here: every report test's orders)."""
    assert await drift() == []


async def test_the_migration_builds_the_covering_indexes_the_models_declare(backend):
    """tests/core/test_schema.py compares columns and index keys; autogenerate leaves out INCLUDE
    columns and a partial index's condition, so they are compared here."""
    indexes = {"orders": ("ix_orders_report", "ix_orders_channel_created", "ix_orders_touches"),
               "order_lines": ("ix_order_lines_sku_order",)}
    replaced = {"ix_orders_created_at", "ix_orders_channel"}  # ix_orders_report and …_channel_created have their keys
    async with get_engine().connect() as conn:
        built = await conn.run_sync(lambda sync: {i["name"]: i for t in indexes for i in inspect(sync).get_indexes(t)})
    assert not replaced & set(built)
    declared = {i.name: i for t in indexes for i in SQLModel.metadata.tables[t].indexes}
    for name in (n for names in indexes.values() for n in names):
        index, options = declared[name], built[name].get("dialect_options", {})
        assert built[name]["column_names"] == [c.name for c in index.columns], name
        if backend == "postgres":
            assert options.get("postgresql_include", []) == list(index.dialect_options["postgresql"]["include"]), name
            where = index.dialect_options["postgresql"]["where"]
            assert _bare(options.get("postgresql_where")) == _bare(str(where) if where is not None else None), name


def _bare(sql: str | None) -> str | None:
    return None if sql is None else "".join(ch for ch in sql.lower() if ch not in "() ")
