"""The fake Stripe server, driven by the real `stripe` library (async methods, no retries): what
the payments code will see, errors included."""
import json
import time

import httpx
import pytest
import stripe

from tests.payments.fake_stripe import sign
from tests.payments.fake_stripe_objects import parse_form

DAY = 86400


@pytest.fixture
async def client(stripe_fake):
    http = stripe.HTTPXClient()
    yield stripe.StripeClient("sk_test_fake", base_addresses={"api": stripe_fake.url},
                              http_client=http, max_network_retries=0)
    await http.close_async()


async def create(client, amount=1000, key=None, **params):
    params = {"amount": amount, "currency": "eur", "capture_method": "manual", **params}
    options = {"idempotency_key": key} if key else {}
    return await client.v1.payment_intents.create_async(params=params, options=options)


def test_parse_form_nested_keys():
    pairs = [("metadata[order_id]", "o_1"), ("metadata[0]", "x"), ("payment_method_types[0]", "card"),
             ("payment_method_types[1]", "link"), ("expand[]", "latest_charge"),
             ("payment_method_options[card][request_multicapture]", "if_available"),
             ("items[0][sku]", "A"), ("items[1][sku]", "B"), ("amount", "10")]
    assert parse_form(pairs) == {
        "metadata": {"order_id": "o_1", "0": "x"}, "payment_method_types": ["card", "link"],
        "expand": ["latest_charge"], "amount": "10",
        "payment_method_options": {"card": {"request_multicapture": "if_available"}},
        "items": [{"sku": "A"}, {"sku": "B"}]}


async def test_create_retrieve_update(client, stripe_fake):
    pi = await create(client, metadata={"order_id": "ord_1", "channel": "web"},
                      payment_method_types=["card"],
                      payment_method_options={"card": {"request_multicapture": "if_available"}})
    assert pi.id.startswith("pi_") and pi.object == "payment_intent"
    assert pi.client_secret.startswith(f"{pi.id}_secret_")
    assert (pi.status, pi.amount, pi.currency, pi.capture_method) == (
        "requires_payment_method", 1000, "eur", "manual")
    assert (pi.amount_capturable, pi.amount_received, pi.latest_charge) == (0, 0, None)
    assert pi.metadata.to_dict() == {"order_id": "ord_1", "channel": "web"}
    assert pi.payment_method_options.card.request_multicapture == "if_available"
    assert abs(pi.created - time.time()) < 5
    sent = stripe_fake.calls("POST", "/v1/payment_intents")[0]
    assert sent.params["metadata"] == {"order_id": "ord_1", "channel": "web"}
    assert sent.params["payment_method_types"] == ["card"]
    assert sent.idempotency_key  # the library sends one on every POST

    pi = await client.v1.payment_intents.update_async(
        pi.id, params={"amount": 1500, "metadata": {"channel": "", "note": "gift"}})
    assert pi.amount == 1500 and pi.metadata.to_dict() == {"order_id": "ord_1", "note": "gift"}

    stripe_fake.pay(pi.id)
    pi = await client.v1.payment_intents.retrieve_async(pi.id, params={"expand": ["latest_charge"]})
    assert pi.status == "requires_capture" and pi.latest_charge.object == "charge"
    assert stripe_fake.calls("GET")[0].params == {"expand": ["latest_charge"]}
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.payment_intents.update_async(pi.id, params={"amount": 2000})
    assert exc.value.code == "payment_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.payment_intents.retrieve_async("pi_missing")
    assert (exc.value.http_status, exc.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await create(client, amout=5)
    assert (exc.value.code, exc.value.param) == ("parameter_unknown", "amout")


async def test_pay_then_single_capture(client, stripe_fake):
    pi = await create(client)
    paid = stripe_fake.pay(pi.id)
    assert (paid["status"], paid["amount_capturable"]) == ("requires_capture", 1000)
    charge = await client.v1.charges.retrieve_async(paid["latest_charge"])
    card = charge.payment_method_details.card
    assert charge.id.startswith("ch_") and charge.status == "succeeded" and not charge.captured
    assert card.capture_before == charge.created + 7 * DAY
    assert card.multicapture.status == "unavailable"

    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.payment_intents.capture_async(pi.id, params={"final_capture": False})
    assert exc.value.param == "final_capture"
    pi = await client.v1.payment_intents.capture_async(
        pi.id, params={"amount_to_capture": 600, "expand": ["latest_charge"]})
    assert (pi.status, pi.amount_received, pi.amount_capturable) == ("succeeded", 600, 0)
    assert pi.latest_charge.amount_captured == 600 and pi.latest_charge.captured
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.payment_intents.capture_async(pi.id)
    assert exc.value.code == "payment_intent_unexpected_state"
    assert [c["amount"] for c in stripe_fake.captures(pi.id)] == [600]


async def test_multicapture_partial_then_final(client, stripe_fake):
    pi = await create(client, payment_method_options={"card": {"request_multicapture": "if_available"}})
    stripe_fake.pay(pi.id)
    pi = await client.v1.payment_intents.retrieve_async(pi.id, params={"expand": ["latest_charge"]})
    assert pi.latest_charge.payment_method_details.card.multicapture.status == "available"

    pi = await client.v1.payment_intents.capture_async(
        pi.id, params={"amount_to_capture": 300, "final_capture": False})
    assert (pi.status, pi.amount_received, pi.amount_capturable) == ("requires_capture", 300, 700)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.payment_intents.capture_async(pi.id, params={"amount_to_capture": 701})
    assert (exc.value.code, exc.value.param) == ("amount_too_large", "amount_to_capture")
    pi = await client.v1.payment_intents.capture_async(
        pi.id, params={"amount_to_capture": 200, "final_capture": False, "metadata": {"shipment": "2"}})
    assert (pi.status, pi.amount_received, pi.amount_capturable) == ("requires_capture", 500, 500)
    pi = await client.v1.payment_intents.capture_async(pi.id, params={"amount_to_capture": 100})
    assert (pi.status, pi.amount_received, pi.amount_capturable) == ("succeeded", 600, 0)
    assert pi.metadata["shipment"] == "2"
    assert [(c["amount"], c["final_capture"]) for c in stripe_fake.captures(pi.id)] == [
        (300, False), (200, False), (100, True)]
    assert len(stripe_fake.calls("POST", "/v1/payment_intents/*/capture")) == 4  # one refused


async def test_refunds(client, stripe_fake):
    pi = await create(client, capture_method="automatic")
    with pytest.raises(stripe.InvalidRequestError):  # nothing paid yet
        await client.v1.refunds.create_async(params={"payment_intent": pi.id})
    paid = stripe_fake.pay(pi.id)
    assert (paid["status"], paid["amount_received"]) == ("succeeded", 1000)

    refund = await client.v1.refunds.create_async(
        params={"payment_intent": pi.id, "amount": 300, "reason": "requested_by_customer",
                "metadata": {"return": "ret_1"}}, options={"idempotency_key": "refund-1"})
    assert refund.id.startswith("re_") and refund.object == "refund"
    assert (refund.amount, refund.currency, refund.status) == (300, "eur", "succeeded")
    assert (refund.payment_intent, refund.charge) == (pi.id, paid["latest_charge"])
    assert refund.metadata["return"] == "ret_1"
    assert stripe_fake.charge(paid["latest_charge"])["amount_refunded"] == 300

    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.refunds.create_async(params={"payment_intent": pi.id, "amount": 701})
    assert (exc.value.http_status, exc.value.code) == (400, "amount_too_large")
    rest = await client.v1.refunds.create_async(params={"charge": paid["latest_charge"]})
    assert rest.amount == 700
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.refunds.create_async(params={"payment_intent": pi.id, "amount": 1})
    assert exc.value.code == "charge_already_refunded"
    again = await client.v1.refunds.retrieve_async(refund.id)
    assert again.id == refund.id and again.amount == 300
    charge = stripe_fake.charge(paid["latest_charge"])
    assert (charge["amount_refunded"], charge["refunded"]) == (1000, True)


async def test_idempotency(client, stripe_fake):
    first = await create(client, key="order-1")
    again = await create(client, key="order-1")
    assert again.id == first.id and len(stripe_fake.ledger.payment_intents) == 1
    assert stripe_fake.requests[-1].replayed
    with pytest.raises(stripe.IdempotencyError) as exc:
        await create(client, amount=2000, key="order-1")
    assert (exc.value.http_status, exc.value.error.type) == (400, "idempotency_error")
    with pytest.raises(stripe.IdempotencyError):  # same key, another endpoint
        await client.v1.payment_intents.cancel_async(first.id, options={"idempotency_key": "order-1"})

    stripe_fake.pay(first.id)
    for _ in range(2):
        pi = await client.v1.payment_intents.capture_async(
            first.id, params={"amount_to_capture": 400}, options={"idempotency_key": "cap-1"})
        assert (pi.status, pi.amount_received) == ("succeeded", 400)
    assert len(stripe_fake.captures(first.id)) == 1


async def test_card_decline(client, stripe_fake):
    pi = await create(client)
    with pytest.raises(stripe.CardError) as exc:
        await client.v1.payment_intents.confirm_async(
            pi.id, params={"payment_method": "pm_card_chargeDeclined"})
    assert (exc.value.http_status, exc.value.code) == (402, "card_declined")
    assert exc.value.error.decline_code == "generic_decline"
    pi = await client.v1.payment_intents.retrieve_async(pi.id)
    assert pi.status == "requires_payment_method" and pi.last_payment_error.code == "card_declined"

    declined = stripe_fake.pay(pi.id, decline="insufficient_funds")
    assert declined["last_payment_error"]["decline_code"] == "insufficient_funds"
    pi = await client.v1.payment_intents.confirm_async(pi.id, params={"payment_method": "pm_card_visa"})
    assert (pi.status, pi.last_payment_error) == ("requires_capture", None)


async def test_injected_errors(client, stripe_fake):
    stripe_fake.fail_next("/v1/payment_intents", status=500)
    with pytest.raises(stripe.APIError) as exc:
        await create(client, key="k-500")
    assert exc.value.http_status == 500
    pi = await create(client, key="k-500")  # the failure was not stored under the key
    assert stripe_fake.calls()[-1].status == 200

    stripe_fake.pay(pi.id)
    stripe_fake.fail_next("/v1/payment_intents/*/capture", status=402)
    with pytest.raises(stripe.CardError):
        await client.v1.payment_intents.capture_async(pi.id)
    stripe_fake.fail_next(status=429, method="GET")
    with pytest.raises(stripe.RateLimitError):
        await client.v1.payment_intents.retrieve_async(pi.id)
    assert (await client.v1.payment_intents.capture_async(pi.id)).status == "succeeded"


async def test_down_and_lost_answers(client, stripe_fake):
    stripe_fake.down()
    with pytest.raises(stripe.APIConnectionError):
        await create(client)
    assert not stripe_fake.requests[-1].reached and not stripe_fake.ledger.payment_intents
    stripe_fake.up()
    pi = await create(client)

    stripe_fake.pay(pi.id)
    stripe_fake.drop_next("/v1/payment_intents/*/capture", execute=True)
    with pytest.raises(stripe.APIConnectionError):
        await client.v1.payment_intents.capture_async(pi.id, options={"idempotency_key": "cap"})
    assert stripe_fake.payment_intent(pi.id)["status"] == "succeeded"  # Stripe did capture
    again = await client.v1.payment_intents.capture_async(pi.id, options={"idempotency_key": "cap"})
    assert again.status == "succeeded" and stripe_fake.requests[-1].replayed


async def test_authentication(stripe_fake):
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{stripe_fake.url}/v1/payment_intents", data={"amount": "1"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"
    http_client = stripe.HTTPXClient()
    bad = stripe.StripeClient("pk_test_nope", base_addresses={"api": stripe_fake.url},
                              http_client=http_client, max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError):
        await bad.v1.payment_intents.retrieve_async("pi_1")
    await http_client.close_async()


async def test_cancel_and_expiry(client, stripe_fake):
    pi = await create(client)
    stripe_fake.pay(pi.id)
    pi = await client.v1.payment_intents.cancel_async(
        pi.id, params={"cancellation_reason": "requested_by_customer"})
    assert (pi.status, pi.cancellation_reason, pi.amount_capturable) == (
        "canceled", "requested_by_customer", 0)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.payment_intents.cancel_async(pi.id)
    assert exc.value.code == "payment_intent_unexpected_state"

    late = await create(client)
    stripe_fake.pay(late.id)
    stripe_fake.advance(7 * DAY + 1)
    late = await client.v1.payment_intents.retrieve_async(late.id)
    assert (late.status, late.cancellation_reason) == ("canceled", "expired")


async def test_webhook_signatures(stripe_fake):
    pi_id = stripe_fake.ledger.create_payment_intent({"amount": "700", "currency": "eur"})["id"]
    stripe_fake.pay(pi_id)
    event = stripe_fake.webhook_for(pi_id, "payment_intent.succeeded")
    assert event["id"].startswith("evt_") and event["object"] == "event"
    assert (event["livemode"], event["api_version"]) == (False, stripe.api_version)
    payload = json.dumps(event).encode()
    header = sign(payload, "whsec_test_fake")
    parsed = stripe.Webhook.construct_event(payload, header, "whsec_test_fake")
    assert parsed.type == "payment_intent.succeeded"
    assert parsed.data.object.id == pi_id and parsed.data.object.amount_received == 700

    t = int(time.time())
    assert sign(payload, "whsec_x", t) == stripe.WebhookSignature.generate_signature_header(
        payload.decode(), "whsec_x", t)
    body, headers = stripe_fake.signed(stripe_fake.event("charge.refunded", {"id": "ch_1"}))
    client = stripe.StripeClient("sk_test_fake")
    assert client.construct_event(body, headers["Stripe-Signature"], "whsec_test_fake").type == (
        "charge.refunded")

    tampered = payload.replace(b'"amount_received": 700', b'"amount_received": 1')
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(tampered, header, "whsec_test_fake")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, header, "whsec_other")
    with pytest.raises(stripe.SignatureVerificationError):  # older than the 300 s tolerance
        stripe.Webhook.construct_event(payload, sign(payload, "whsec_test_fake", t - 600),
                                       "whsec_test_fake")


async def test_concurrent_retries_with_one_key_capture_once(client, stripe_fake):
    import asyncio

    pi = await create(client, payment_method_options={"card": {"request_multicapture": "if_available"}})
    stripe_fake.pay(pi.id)
    results = await asyncio.gather(*(
        client.v1.payment_intents.capture_async(
            pi.id, params={"amount_to_capture": 250, "final_capture": False},
            options={"idempotency_key": "ship-1"}) for _ in range(6)))
    assert {r.amount_received for r in results} == {250}
    assert len(stripe_fake.captures(pi.id)) == 1
    assert sum(r.replayed for r in stripe_fake.calls("POST", "/v1/payment_intents/*/capture")) == 5


async def test_confirm_on_create_and_cancel_after_partial_capture(client, stripe_fake):
    with pytest.raises(stripe.CardError) as exc:
        await create(client, confirm=True, payment_method="pm_card_chargeDeclinedInsufficientFunds",
                     allowed_payment_method_types=["card"])
    assert exc.value.error.payment_intent.status == "requires_payment_method"
    assert exc.value.error.decline_code == "insufficient_funds"

    pi = await create(client, confirm=True, payment_method="pm_card_visa",
                      payment_method_options={"card": {"request_multicapture": "if_available"}})
    assert pi.status == "requires_capture"
    await client.v1.payment_intents.capture_async(
        pi.id, params={"amount_to_capture": 400, "final_capture": False})
    pi = await client.v1.payment_intents.cancel_async(pi.id)  # releases the rest, keeps the 400
    assert (pi.status, pi.amount_received, pi.amount_capturable) == ("succeeded", 400, 0)

    stripe_fake.drop_next(method="GET")  # not executed, no answer
    with pytest.raises(stripe.APIConnectionError):
        await client.v1.payment_intents.retrieve_async(pi.id)
    assert [r.reached for r in stripe_fake.requests[-1:]] == [False]
