"""Payments end to end: checkout with Stripe (the real library against the fake), the signed
webhook, captures when goods leave, voids and refunds when units are cancelled, expiry of
unpaid orders, store credit, and what happens when Stripe is down."""
import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.core import clock
from app.core.db import sessionmaker, unit_of_work
from app.orders.models import Order
from app.payments import jobs, service
from app.payments.models import PaymentOperation, StoreCreditEntry
from tests.conftest import uid
from tests.helpers import assert_problem, settings_env
from tests.inventory.builders import ledger_matches
from tests.orders.fulfillment_world import World, at, events

WEBHOOK = "/v1/payments/stripe/webhook"


@pytest.fixture
async def w(client, admin):
    return await World().setup(client, admin)


@pytest.fixture
def multicapture():
    with settings_env(STRIPE_MULTICAPTURE="true"):
        yield


async def cart(client, w, lines: dict, *, method="ship", location=None, shop=None, customer=None) -> str:
    fulfillment = {"method": method, **({"location": location} if location else {})}
    if method == "ship":
        fulfillment["address"] = {"line1": "Jungfernstieg 1", "postal_code": "20095", "city": "Hamburg",
                                  "country": "DE", "lat": 53.553, "lon": 9.992}
    body = {"channel": w.web, "lines": [{"sku": s, "quantity": q} for s, q in lines.items()], "fulfillment": fulfillment}
    if customer:
        body["customer"] = customer
    r = await client.post("/v1/carts", headers=shop or w.shop, json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def stripe_order(client, w, lines: dict, **kw) -> dict:
    cart_id = await cart(client, w, lines, **kw)
    r = await client.post(f"/v1/carts/{cart_id}/checkout", headers=w.shop, json={"payment": {"provider": "stripe"}})
    assert r.status_code == 201, r.text
    return r.json()


async def deliver(client, fake, pi_id: str, type_: str):
    body, headers = fake.signed(fake.webhook_for(pi_id, type_))
    return await client.post(WEBHOOK, content=body, headers=headers)


async def authorized_order(client, w, fake, lines: dict, **kw) -> dict:
    order = await stripe_order(client, w, lines, **kw)
    pi = order["payment"]["reference"]
    fake.pay(pi)
    r = await deliver(client, fake, pi, "payment_intent.amount_capturable_updated")
    assert r.status_code == 200 and r.json()["outcome"] == "authorized", r.text
    return await w.order(client, order["id"])


async def post(client, path, headers, body=None):
    return await client.post(path, headers=headers, json=body or {})


async def settle_now() -> None:
    """What the commit kicked off, and anything due (as the worker would)."""
    await service.drain()
    await service.run_pending()


async def ops(order_id: str) -> list:
    async with sessionmaker()() as s:
        return (await s.execute(select(PaymentOperation).where(PaymentOperation.order_id == order_id)
                                .order_by(PaymentOperation.created_at))).scalars().all()


# --------------------------------------------------------------------------- checkout and webhook

async def test_stripe_checkout_waits_for_the_webhook(client, w, stripe_fake):
    await w.stock(client, w.wh, **{w.a: 5})
    cart_id = await cart(client, w, {w.a: 2})
    key = {"Idempotency-Key": uid("idem")}
    r = await client.post(f"/v1/carts/{cart_id}/checkout", headers={**w.shop, **key}, json={"payment": {"provider": "stripe"}})
    assert r.status_code == 201, r.text
    order = r.json()
    pay = order["payment"]
    assert (order["status"], order["payment_status"], pay["provider"]) == ("pending_payment", "unpaid", "stripe")
    pi = stripe_fake.payment_intent(pay["reference"])
    assert (pi["amount"], pi["currency"], pi["capture_method"]) == (order["totals"]["total"], "eur", "manual")
    assert pi["metadata"]["order_id"] == order["id"] and pay["client_secret"] == pi["client_secret"]
    assert pay["expires_at"] is not None
    # the stock is allocated already (never "paid but unallocatable")
    assert (await w.level(client, w.a, w.wh))["reserved"] == 2
    # a replay never shows the secret again; the payment session does
    again = await client.post(f"/v1/carts/{cart_id}/checkout", headers={**w.shop, **key},
                              json={"payment": {"provider": "stripe"}})
    assert again.headers.get("idempotent-replayed") == "true" and again.json()["payment"]["client_secret"] is None
    assert len([c for c in stripe_fake.calls("POST") if c.path == "/v1/payment_intents"]) == 1
    r = await post(client, f"/v1/orders/{order['number']}/payment-session", w.shop)
    assert r.status_code == 200 and r.json()["client_secret"] == pi["client_secret"], r.text
    # goods wait for the payment
    f = order["fulfillments"][0]
    r = await post(client, f"/v1/fulfillments/{f['id']}/ship", w.admin, {"carrier": "DHL", "tracking_number": "1"})
    assert assert_problem(r, 409, "payment_pending")
    # the shopper pays; Stripe says so
    stripe_fake.pay(pay["reference"])
    r = await deliver(client, stripe_fake, pay["reference"], "payment_intent.amount_capturable_updated")
    assert r.status_code == 200 and r.json()["outcome"] == "authorized", r.text
    o = await w.order(client, order["id"])
    assert (o["status"], o["payment_status"]) == ("confirmed", "authorized")
    assert o["payment"]["authorized"]["amount"] == order["totals"]["total"] and o["payment"]["capture_before"]
    assert o["payment"]["expires_at"] is None
    assert len(await events("order.confirmed", id=order["id"])) == 1
    # the same event again, and an older one after it: nothing happens twice
    body, headers = stripe_fake.signed(stripe_fake.events[-1])
    r = await client.post(WEBHOOK, content=body, headers=headers)
    assert r.status_code == 200 and r.json()["duplicate"] is True
    r = await client.post(f"/v1/orders/{order['id']}/payment-session", headers=w.shop)
    assert_problem(r, 409, "invalid_transition")
    assert len(await events("order.confirmed", id=order["id"])) == 1


async def test_webhook_signature_and_unknown_events(client, w, stripe_fake):
    await w.stock(client, w.wh, **{w.a: 1})
    order = await stripe_order(client, w, {w.a: 1})
    pi = order["payment"]["reference"]
    stripe_fake.pay(pi)
    event = stripe_fake.webhook_for(pi, "payment_intent.amount_capturable_updated")
    body, headers = stripe_fake.signed(event, secret="whsec_someone_else")
    assert_problem(await client.post(WEBHOOK, content=body, headers=headers), 400, "invalid_signature")
    body, headers = stripe_fake.signed(event)
    assert_problem(await client.post(WEBHOOK, content=body.replace(b'"amount"', b'"amount" '), headers=headers), 400,
                   "invalid_signature")
    assert_problem(await client.post(WEBHOOK, content=body, headers={"Content-Type": "application/json"}), 400,
                   "invalid_signature")
    assert (await w.order(client, order["id"]))["status"] == "pending_payment"  # nothing happened
    # an event we do not act on is acknowledged (Stripe stops sending it)
    body, headers = stripe_fake.signed(stripe_fake.event("customer.created", {"id": "cus_1", "object": "customer"}))
    r = await client.post(WEBHOOK, content=body, headers=headers)
    assert r.status_code == 200 and r.json()["outcome"] == "ignored"
    # Stripe cannot be re-read: 503, and the redelivery is handled in full
    stripe_fake.down()
    body, headers = stripe_fake.signed(event)
    assert_problem(await client.post(WEBHOOK, content=body, headers=headers), 503, "payment_provider_unavailable")
    stripe_fake.up()
    r = await client.post(WEBHOOK, content=body, headers=headers)
    assert r.status_code == 200 and r.json()["outcome"] == "authorized", r.text


async def test_out_of_order_events_follow_stripe(client, w, stripe_fake):
    """A payment_failed that arrives after the later successful attempt does not cancel."""
    await w.stock(client, w.wh, **{w.a: 1})
    order = await stripe_order(client, w, {w.a: 1})
    pi = order["payment"]["reference"]
    stripe_fake.pay(pi, decline="insufficient_funds")
    failed = stripe_fake.webhook_for(pi, "payment_intent.payment_failed")
    stripe_fake.pay(pi)
    r = await deliver(client, stripe_fake, pi, "payment_intent.amount_capturable_updated")
    assert r.json()["outcome"] == "authorized"
    body, headers = stripe_fake.signed(failed)
    r = await client.post(WEBHOOK, content=body, headers=headers)
    assert r.status_code == 200 and r.json()["outcome"] == "authorized"  # re-read: it is authorized
    assert (await w.order(client, order["id"]))["status"] == "confirmed"


async def test_failed_payment_cancels_and_releases(client, w, stripe_fake):
    await w.stock(client, w.wh, **{w.a: 3})
    order = await stripe_order(client, w, {w.a: 3})
    pi = order["payment"]["reference"]
    assert (await w.level(client, w.a, w.wh))["reserved"] == 3
    stripe_fake.pay(pi, decline="generic_decline")
    r = await deliver(client, stripe_fake, pi, "payment_intent.payment_failed")
    assert r.status_code == 200 and r.json()["outcome"] == "order_cancelled", r.text
    await settle_now()
    o = await w.order(client, order["id"])
    assert o["status"] == "cancelled" and o["payment_status"] == "unpaid"
    assert (await w.level(client, w.a, w.wh))["reserved"] == 0
    assert stripe_fake.payment_intent(pi)["status"] == "canceled"  # it cannot be paid later
    assert [(op.kind, op.status) for op in await ops(order["id"])] == [("void", "succeeded")]
    assert await ledger_matches([w.a]) == []


async def test_unpaid_orders_expire(client, w, stripe_fake):
    await w.stock(client, w.wh, **{w.a: 2})
    order = await stripe_order(client, w, {w.a: 2})
    pi = order["payment"]["reference"]
    assert await jobs.expire_unpaid_orders() == 0  # not yet due
    async with unit_of_work() as s:
        await s.execute(update(Order).where(Order.id == order["id"]).values(payment_expires_at=clock.now()))
    assert await jobs.expire_unpaid_orders() == 1
    await settle_now()
    o = await w.order(client, order["id"])
    assert o["status"] == "cancelled" and (await w.level(client, w.a, w.wh))["reserved"] == 0
    assert stripe_fake.payment_intent(pi)["status"] == "canceled"
    # the shopper pays a moment too late: nothing is taken, the authorization is released
    assert await jobs.expire_unpaid_orders() == 0


async def test_late_authorization_of_a_cancelled_order_is_voided(client, w, stripe_fake):
    await w.stock(client, w.wh, **{w.a: 1})
    order = await stripe_order(client, w, {w.a: 1})
    pi = order["payment"]["reference"]
    r = await post(client, f"/v1/orders/{order['id']}/cancel", w.admin, {"reason": "customer called"})
    assert r.status_code == 200, r.text
    stripe_fake.pay(pi)  # the void has not run yet: the shopper still got to pay
    r = await deliver(client, stripe_fake, pi, "payment_intent.amount_capturable_updated")
    assert r.status_code == 200, r.text
    await settle_now()
    assert stripe_fake.payment_intent(pi)["status"] == "canceled"
    assert stripe_fake.payment_intent(pi)["amount_received"] == 0


# --------------------------------------------------------------------------- captures

async def test_ship_captures_what_left(client, w, stripe_fake):
    await w.stock(client, w.wh, **{w.a: 2, w.b: 1})
    order = await authorized_order(client, w, stripe_fake, {w.a: 2, w.b: 1})
    f = order["fulfillments"][0]
    r = await post(client, f"/v1/fulfillments/{f['id']}/ship", w.admin, {"carrier": "DHL", "tracking_number": "1"})
    assert r.status_code == 200, r.text
    await settle_now()
    pi = order["payment"]["reference"]
    assert [c["amount"] for c in stripe_fake.captures(pi)] == [order["totals"]["total"]]
    o = await w.order(client, order["id"])
    assert (o["status"], o["payment_status"], o["payment"]["captured"]["amount"]) == (
        "fulfilled", "paid", order["totals"]["total"])
    assert len(await events("payment.captured", order=order["id"])) == 1
    r = await client.get(f"/v1/orders/{order['id']}/payments", headers=w.admin)
    assert [(p["kind"], p["status"], p["amount"]["amount"]) for p in r.json()["data"]] == [
        ("capture", "succeeded", order["totals"]["total"])]
    # running the queue again does nothing
    await settle_now()
    assert len(stripe_fake.calls("POST", "/v1/payment_intents/*/capture")) == 1


async def test_split_order_single_capture_refunds_the_unfulfillable(client, w, stripe_fake):
    """Without multicapture: the first shipment captures the whole order; what is then declined
    with nowhere else to go is refunded."""
    await w.stock(client, w.wh, **{w.a: 1})
    await w.stock(client, w.be, **{w.a: 1})
    order = await authorized_order(client, w, stripe_fake, {w.a: 2})
    assert len(order["fulfillments"]) == 2
    first, second = order["fulfillments"]
    r = await post(client, f"/v1/fulfillments/{first['id']}/ship", w.admin, {"carrier": "DHL", "tracking_number": "1"})
    assert r.status_code == 200, r.text
    await settle_now()
    pi = order["payment"]["reference"]
    total = order["totals"]["total"]
    assert [c["amount"] for c in stripe_fake.captures(pi)] == [total]
    r = await post(client, f"/v1/fulfillments/{second['id']}/decline", w.admin, {"reason": "broken"})
    assert r.status_code == 200, r.text
    await settle_now()
    o = await w.order(client, order["id"])
    unit = o["lines"][0]["total"] - o["lines"][0]["total"] // 2  # the second unit's share
    assert [re["amount"] for re in stripe_fake.refunds_for(pi)] == [unit]
    assert (o["payment_status"], o["payment"]["captured"]["amount"], o["payment"]["refunded"]["amount"]) == (
        "partially_refunded", total, unit)
    assert len(await events("refund.created", order=order["id"])) == 1


async def test_multicapture_captures_each_shipment(client, w, stripe_fake, multicapture):
    await w.stock(client, w.wh, **{w.a: 1})
    await w.stock(client, w.be, **{w.a: 2})
    order = await authorized_order(client, w, stripe_fake, {w.a: 3})
    assert order["payment"]["multicapture"] is True
    by_loc = {f["location"]: f for f in order["fulfillments"]}
    total, line = order["totals"]["total"], order["lines"][0]
    r = await post(client, f"/v1/fulfillments/{by_loc[w.be]['id']}/ship", w.admin, {"carrier": "DHL", "tracking_number": "1"})
    assert r.status_code == 200, r.text
    await settle_now()
    pi = order["payment"]["reference"]
    first = line["total"] * 2 // 3
    assert [(c["amount"], c["final_capture"]) for c in stripe_fake.captures(pi)] == [(first, False)]
    r = await post(client, f"/v1/fulfillments/{by_loc[w.wh]['id']}/ship", w.admin, {"carrier": "DHL", "tracking_number": "2"})
    assert r.status_code == 200, r.text
    await settle_now()
    assert [(c["amount"], c["final_capture"]) for c in stripe_fake.captures(pi)] == [(first, False), (total - first, True)]
    o = await w.order(client, order["id"])
    assert (o["payment_status"], o["payment"]["captured"]["amount"]) == ("paid", total)
    assert stripe_fake.payment_intent(pi)["status"] == "succeeded"


async def test_multicapture_releases_the_rest_when_the_last_part_is_cancelled(client, w, stripe_fake, multicapture):
    await w.stock(client, w.wh, **{w.a: 1})
    await w.stock(client, w.be, **{w.a: 1})
    order = await authorized_order(client, w, stripe_fake, {w.a: 2})
    first, second = order["fulfillments"]
    r = await post(client, f"/v1/fulfillments/{first['id']}/ship", w.admin, {"carrier": "DHL", "tracking_number": "1"})
    assert r.status_code == 200
    r = await post(client, f"/v1/fulfillments/{second['id']}/cancel", w.admin, {"reason": "lost"})
    assert r.status_code == 200, r.text
    await settle_now()
    pi = order["payment"]["reference"]
    line = order["lines"][0]["total"]
    assert [c["amount"] for c in stripe_fake.captures(pi)] == [line // 2]
    assert stripe_fake.payment_intent(pi)["amount_received"] == line // 2
    assert stripe_fake.payment_intent(pi)["amount_capturable"] == 0  # released
    assert [(op.kind, op.status) for op in await ops(order["id"])] == [("capture", "succeeded"), ("void", "succeeded")]


async def test_order_cancel_after_authorization_voids(client, w, stripe_fake):
    await w.stock(client, w.wh, **{w.a: 1})
    order = await authorized_order(client, w, stripe_fake, {w.a: 1})
    r = await post(client, f"/v1/orders/{order['id']}/cancel", w.admin, {"reason": "customer called"})
    assert r.status_code == 200, r.text
    await settle_now()
    pi = order["payment"]["reference"]
    assert stripe_fake.payment_intent(pi)["status"] == "canceled" and stripe_fake.captures(pi) == []
    assert len(await events("payment.voided", order=order["id"])) == 1


async def test_collect_captures_a_pickup(client, w, stripe_fake):
    await w.stock(client, w.hh, **{w.b: 1})
    order = await authorized_order(client, w, stripe_fake, {w.b: 1}, method="pickup", location=w.hh)
    f = at(order, w.hh)
    r = await post(client, f"/v1/fulfillments/{f['id']}/ready", w.pos_hh)
    assert r.status_code == 200, r.text
    code = (await w.order(client, order["id"]))["fulfillments"][0]["pickup_code"]
    r = await post(client, f"/v1/fulfillments/{f['id']}/collect", w.pos_hh, {"pickup_code": code})
    assert r.status_code == 200, r.text
    await settle_now()
    assert [c["amount"] for c in stripe_fake.captures(order["payment"]["reference"])] == [order["totals"]["total"]]


# --------------------------------------------------------------------------- Stripe in trouble

async def test_stripe_down_at_checkout_writes_nothing(client, w, stripe_fake):
    await w.stock(client, w.wh, **{w.a: 1})
    cart_id = await cart(client, w, {w.a: 1})
    stripe_fake.down()
    r = await client.post(f"/v1/carts/{cart_id}/checkout", headers=w.shop, json={"payment": {"provider": "stripe"}})
    assert_problem(r, 503, "payment_provider_unavailable")
    stripe_fake.up()
    assert (await client.get(f"/v1/carts/{cart_id}", headers=w.shop)).json()["status"] == "open"
    assert (await w.level(client, w.a, w.wh))["reserved"] == 0
    # Stripe refuses the request itself (not the client's fault): 502
    stripe_fake.fail_next("/v1/payment_intents", status=400, code="parameter_invalid_integer")
    r = await client.post(f"/v1/carts/{cart_id}/checkout", headers=w.shop, json={"payment": {"provider": "stripe"}})
    assert_problem(r, 502, "payment_provider_error")
    r = await client.post(f"/v1/carts/{cart_id}/checkout", headers=w.shop, json={"payment": {"provider": "stripe"}})
    assert r.status_code == 201, r.text


async def test_no_stock_cancels_the_payment_intent(client, w, stripe_fake):
    cart_id = await cart(client, w, {w.p: 1})  # no stock anywhere
    r = await client.post(f"/v1/carts/{cart_id}/checkout", headers=w.shop, json={"payment": {"provider": "stripe"}})
    assert_problem(r, 409, "insufficient_stock")
    created = [c for c in stripe_fake.calls("POST") if c.path == "/v1/payment_intents"]
    assert len(created) == 1
    cancelled = stripe_fake.calls("POST", "/v1/payment_intents/*/cancel")
    assert len(cancelled) == 1


async def test_capture_retried_after_an_outage_and_a_lost_answer(client, w, stripe_fake):
    """Stripe down: the capture waits and is retried with its key; an answer lost after Stripe
    captured is repeated with the same key and captures nothing twice."""
    await w.stock(client, w.wh, **{w.a: 1})
    order = await authorized_order(client, w, stripe_fake, {w.a: 1})
    f = order["fulfillments"][0]
    stripe_fake.down()
    r = await post(client, f"/v1/fulfillments/{f['id']}/ship", w.admin, {"carrier": "DHL", "tracking_number": "1"})
    assert r.status_code == 200, r.text  # the goods left: that is not up to Stripe
    await service.drain()
    [op] = await ops(order["id"])
    assert (op.kind, op.status, op.attempts) == ("capture", "pending", 1) and op.next_attempt_at > clock.now()
    stripe_fake.up()
    stripe_fake.drop_next("/v1/payment_intents/*/capture", execute=True)  # Stripe captures, the answer is lost
    async with unit_of_work() as s:
        await s.execute(update(PaymentOperation).where(PaymentOperation.id == op.id)
                        .values(next_attempt_at=clock.now()))
    await service.run_pending()
    [op] = await ops(order["id"])
    assert op.status == "pending" and op.attempts == 2
    async with unit_of_work() as s:
        await s.execute(update(PaymentOperation).where(PaymentOperation.id == op.id)
                        .values(next_attempt_at=clock.now()))
    await service.run_pending()
    [op] = await ops(order["id"])
    assert op.status == "succeeded"
    pi = order["payment"]["reference"]
    assert [c["amount"] for c in stripe_fake.captures(pi)] == [order["totals"]["total"]]  # once
    assert len({c.idempotency_key for c in stripe_fake.calls("POST", "/v1/payment_intents/*/capture")}) == 1


async def test_declined_capture_is_reported(client, w, stripe_fake):
    await w.stock(client, w.wh, **{w.a: 1})
    order = await authorized_order(client, w, stripe_fake, {w.a: 1})
    stripe_fake.fail_next("/v1/payment_intents/*/capture", status=402, code="card_declined", decline_code="expired_card")
    r = await post(client, f"/v1/fulfillments/{order['fulfillments'][0]['id']}/ship", w.admin,
                   {"carrier": "DHL", "tracking_number": "1"})
    assert r.status_code == 200
    await settle_now()
    [op] = await ops(order["id"])
    assert op.status == "failed" and "declined" in op.error
    [event] = await events("payment.operation_failed", order=order["id"])
    assert event["kind"] == "capture"
    assert (await w.order(client, order["id"]))["payment_status"] == "authorized"


async def test_stripe_not_configured(client, w):
    with settings_env(STRIPE_API_KEY="sk_test_unset"):
        await w.stock(client, w.wh, **{w.a: 1})
        cart_id = await cart(client, w, {w.a: 1})
        r = await client.post(f"/v1/carts/{cart_id}/checkout", headers=w.shop, json={"payment": {"provider": "stripe"}})
        assert "not configured" in assert_problem(r, 503, "payment_provider_unavailable")["detail"]


# --------------------------------------------------------------------------- store credit

async def test_store_credit_pays_and_comes_back(client, w, admin):
    await w.stock(client, w.wh, **{w.a: 3})
    email = f"{uid('sc')}@example.com"
    r = await client.post("/v1/customers", headers=w.shop, json={"email": email, "name": "Kim"})
    assert r.status_code == 201, r.text
    customer = r.json()["id"]
    r = await client.post(f"/v1/customers/{customer}/store-credit", headers=admin,
                          json={"amount": 2500, "currency": "EUR", "note": "goodwill"})
    assert r.status_code == 201 and r.json()["balance"]["amount"] == 2500, r.text
    cart_id = await cart(client, w, {w.a: 3}, customer=customer)
    r = await client.post(f"/v1/carts/{cart_id}/checkout", headers=w.shop, json={"payment": {"provider": "store_credit"}})
    body = assert_problem(r, 409, "insufficient_store_credit")
    assert body["balance"] == {"amount": 2500, "currency": "EUR"}
    cart_id = await cart(client, w, {w.a: 2}, customer=customer)
    r = await client.post(f"/v1/carts/{cart_id}/checkout", headers=w.shop, json={"payment": {"provider": "store_credit"}})
    assert r.status_code == 201, r.text
    order = r.json()
    assert (order["status"], order["payment_status"]) == ("confirmed", "paid")
    r = await client.get(f"/v1/customers/{customer}/store-credit", headers=w.pos_hh)
    assert r.json()["balances"] == [{"amount": 2500 - order["totals"]["total"], "currency": "EUR"}]
    # the order is cancelled: the credit comes back at once
    r = await post(client, f"/v1/orders/{order['id']}/cancel", admin, {"reason": "changed mind"})
    assert r.status_code == 200, r.text
    r = await client.get(f"/v1/customers/{customer}/store-credit", headers=w.pos_hh)
    assert r.json()["balances"] == [{"amount": 2500, "currency": "EUR"}]
    o = await w.order(client, order["id"])
    assert (o["payment_status"], o["payment"]["refunded"]["amount"]) == ("refunded", order["totals"]["total"])
    # no customer, no store credit; no debit below zero
    cart_id = await cart(client, w, {w.a: 1})
    r = await client.post(f"/v1/carts/{cart_id}/checkout", headers=w.shop, json={"payment": {"provider": "store_credit"}})
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "payment.provider"
    r = await client.post(f"/v1/customers/{customer}/store-credit", headers=admin,
                          json={"amount": -2501, "currency": "EUR", "note": "too much"})
    assert_problem(r, 409, "insufficient_store_credit")
    assert_problem(await client.get(f"/v1/customers/{customer}/store-credit", headers=w.shop), 403)


async def test_concurrent_store_credit_checkouts_never_overspend(client, w, admin, backend):
    if backend != "postgres":
        pytest.skip("SQLite serializes writers; the race needs PostgreSQL's row locks")
    await w.stock(client, w.wh, **{w.a: 20})
    r = await client.post("/v1/customers", headers=w.shop, json={"email": f"{uid('sc')}@example.com"})
    customer = r.json()["id"]
    r = await client.post(f"/v1/customers/{customer}/store-credit", headers=admin,
                          json={"amount": 3000, "currency": "EUR", "note": "voucher"})
    carts = [await cart(client, w, {w.a: 1}, customer=customer) for _ in range(8)]  # 1000 each, 3 fit
    results = await asyncio.gather(*(client.post(f"/v1/carts/{c}/checkout", headers=w.shop,
                                                 json={"payment": {"provider": "store_credit"}}) for c in carts))
    codes = sorted(r.status_code for r in results)
    assert codes.count(201) == 3 and codes.count(409) == 5, [r.text for r in results]
    async with sessionmaker()() as s:
        entries = (await s.execute(select(StoreCreditEntry.amount).where(StoreCreditEntry.customer_id == customer)))
        assert sum(entries.scalars()) == 0


async def test_concurrent_redeliveries_and_workers_act_once(client, w, stripe_fake, backend):
    """Ten deliveries of one event at once confirm the order once; five workers running the queue
    at once capture once (each operation is claimed by one of them)."""
    if backend != "postgres":
        pytest.skip("SQLite serializes writers; the race needs PostgreSQL")
    await w.stock(client, w.wh, **{w.a: 1})
    order = await stripe_order(client, w, {w.a: 1})
    pi = order["payment"]["reference"]
    stripe_fake.pay(pi)
    body, headers = stripe_fake.signed(stripe_fake.webhook_for(pi, "payment_intent.amount_capturable_updated"))
    results = await asyncio.gather(*(client.post(WEBHOOK, content=body, headers=headers) for _ in range(10)))
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    assert sorted(r.json()["duplicate"] for r in results) == [False] + [True] * 9
    assert len(await events("order.confirmed", id=order["id"])) == 1
    stripe_fake.down()  # the first try right after the commit fails: the workers take it up
    r = await post(client, f"/v1/fulfillments/{order['fulfillments'][0]['id']}/ship", w.admin,
                   {"carrier": "DHL", "tracking_number": "1"})
    assert r.status_code == 200
    await service.drain()
    stripe_fake.up()
    async with unit_of_work() as s:
        await s.execute(update(PaymentOperation).where(PaymentOperation.order_id == order["id"])
                        .values(next_attempt_at=clock.now()))
    await asyncio.gather(*(service.run_pending() for _ in range(5)))
    assert len([c for c in stripe_fake.calls("POST", "/v1/payment_intents/*/capture") if c.reached]) == 1
    assert [op.status for op in await ops(order["id"])] == ["succeeded"]


async def test_kill_9_after_the_commit_leaves_the_capture_to_the_worker(client, w, stripe_fake):
    """The server dies right after committing a shipment, before it could call Stripe: the
    capture is a committed pending operation, and the worker carries it out exactly once."""
    from tests.conftest import Server

    await w.stock(client, w.wh, **{w.a: 1})
    order = await authorized_order(client, w, stripe_fake, {w.a: 1})
    server = Server(env={"UC_TEST_CRASH_POINTS": "1", "STRIPE_API_BASE": stripe_fake.url}).start()
    try:
        import httpx

        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            with pytest.raises(httpx.TransportError):
                await http.post(f"/v1/fulfillments/{order['fulfillments'][0]['id']}/ship",
                                json={"carrier": "DHL", "tracking_number": "1"},
                                headers={**w.admin, "X-Test-Crash": "after_commit"})
        server.proc.wait(10)
    finally:
        server.kill()
    o = await w.order(client, order["id"])
    assert o["fulfillments"][0]["status"] == "shipped" and o["payment_status"] == "authorized"
    [op] = await ops(order["id"])
    assert (op.kind, op.status) == ("capture", "pending")
    assert await service.run_pending() == 1
    assert [c["amount"] for c in stripe_fake.captures(order["payment"]["reference"])] == [order["totals"]["total"]]
    assert (await w.order(client, order["id"]))["payment_status"] == "paid"


async def test_lapsing_authorization_is_announced_once(client, w, stripe_fake):
    await w.stock(client, w.wh, **{w.a: 1})
    order = await authorized_order(client, w, stripe_fake, {w.a: 1})
    assert order["payment"]["capture_before"] is not None
    await jobs.warn_lapsing_authorizations()
    assert await events("payment.authorization_expiring", order=order["id"]) == []  # 7 days ahead
    async with unit_of_work() as s:
        await s.execute(update(Order).where(Order.id == order["id"])
                        .values(capture_before=clock.now() + timedelta(hours=3)))
    assert await jobs.warn_lapsing_authorizations() >= 1
    assert await jobs.warn_lapsing_authorizations() == 0
    [event] = await events("payment.authorization_expiring", order=order["id"])
    assert event["uncaptured"] == {"amount": order["totals"]["total"], "currency": "EUR"}
