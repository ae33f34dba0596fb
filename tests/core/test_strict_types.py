"""Request bodies take strict numbers and booleans, and every integer bound fits its column.

`true`, `"1"` and `100.0` are not integers (`amount: true` once set a price of 1 cent), `1` and
`"true"` are not booleans: 422 validation_error naming the field. A number the column cannot
hold is refused by the schema, naming the field (never an empty errors list from the database).
"""
import types
import typing
from typing import Annotated, Any

import pytest
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import BigInteger, Integer
from sqlmodel import SQLModel

import app.main  # noqa: F401  (every router, so every request schema, is loaded)
from app.core.schemas import INT32_MAX, INT32_MIN, MAX_AMOUNT, Input
from tests.catalog.builders import create_product, sku
from tests.conftest import uid
from tests.helpers import assert_problem, create_channel, create_location
from tests.inventory.builders import World, level, put_levels

def _fields(body: dict) -> list[str]:
    return [e["field"] for e in body["errors"]]


async def _priced_list(client, admin) -> tuple[str, str]:
    s = sku("P")
    await create_product(client, admin, variants=[{"sku": s}])
    code = uid("pl")
    r = await client.post("/v1/price-lists", json={"code": code, "currency": "EUR"}, headers=admin)
    assert r.status_code == 201, r.text
    return code, s


# --------------------------------------------------------------------------- strict through the API

@pytest.mark.parametrize("bad", [True, "1", 100.0])
async def test_price_amount_is_a_strict_integer(client, admin, bad):
    code, s = await _priced_list(client, admin)
    r = await client.put(f"/v1/price-lists/{code}/prices", json=[{"sku": s, "amount": bad}], headers=admin)
    assert _fields(assert_problem(r, 422, "validation_error")) == ["[0].amount"]
    r = await client.put(f"/v1/price-lists/{code}/prices", json=[{"sku": s, "amount": 1999, "min_quantity": bad}],
                         headers=admin)
    assert _fields(assert_problem(r, 422, "validation_error")) == ["[0].min_quantity"]
    r = await client.get(f"/v1/price-lists/{code}/prices", headers=admin)
    assert r.json()["data"] == []  # nothing was set
    r = await client.put(f"/v1/price-lists/{code}/prices", json=[{"sku": s, "amount": 100}], headers=admin)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("bad", [True, "1", 100.0])
async def test_adjustment_delta_is_a_strict_integer(client, admin, bad):
    w = await World().setup(client, admin)
    await put_levels(client, admin, w.wh, **{w.a: 10})
    r = await client.post("/v1/inventory/adjustments", headers=admin,
                          json={"location": w.wh, "sku": w.a, "delta": bad, "reason": "receipt"})
    assert _fields(assert_problem(r, 422, "validation_error")) == ["delta"]
    r = await client.post("/v1/inventory/adjustments", headers=admin,
                          json={"location": w.wh, "sku": w.a, "set": bad, "reason": "count"})
    assert _fields(assert_problem(r, 422, "validation_error")) == ["set"]
    r = await client.put("/v1/inventory/levels", headers=admin,
                         json={"location": w.wh, "levels": [{"sku": w.a, "on_hand": bad}]})
    assert _fields(assert_problem(r, 422, "validation_error")) == ["levels[0].on_hand"]
    assert (await level(client, admin, w.a, w.wh))["on_hand"] == 10  # stock did not move


@pytest.mark.parametrize("bad", [True, "1", 100.0])
async def test_reservation_quantity_is_a_strict_integer(client, admin, bad):
    w = await World().setup(client, admin)
    await put_levels(client, admin, w.wh, **{w.a: 10})
    r = await client.post("/v1/reservations", headers=admin, json={"sku": w.a, "location": w.wh, "quantity": bad})
    assert _fields(assert_problem(r, 422, "validation_error")) == ["quantity"]
    r = await client.post("/v1/reservations", headers=admin,
                          json={"sku": w.a, "location": w.wh, "quantity": 1, "ttl_seconds": bad})
    assert _fields(assert_problem(r, 422, "validation_error")) == ["ttl_seconds"]
    assert (await level(client, admin, w.a, w.wh))["reserved"] == 0


@pytest.mark.parametrize("bad", [1, "true"])
async def test_booleans_are_strict(client, admin, bad):
    body = {"code": uid("web"), "name": "Strict", "type": "web", "currency": "EUR", "country": "DE",
            "prices_include_tax": bad}
    r = await client.post("/v1/channels", json=body, headers=admin)
    assert _fields(assert_problem(r, 422, "validation_error")) == ["prices_include_tax"]
    r = await client.post("/v1/products", headers=admin, json={
        "title": "Strict", "variants": [{"sku": sku("S"), "track_inventory": bad}]})
    assert _fields(assert_problem(r, 422, "validation_error")) == ["variants[0].track_inventory"]
    r = await client.post("/v1/locations", headers=admin, json={
        "code": uid("st"), "name": "Strict", "type": "store", "capabilities": {"pickup": bad}})
    assert _fields(assert_problem(r, 422, "validation_error")) == ["capabilities.pickup"]


async def test_other_integers_are_strict_too(client, admin):
    ch = await create_channel(client, admin)
    r = await client.patch(f"/v1/channels/{ch['code']}", json={"return_window_days": "14", "version": True},
                           headers=admin)
    assert sorted(_fields(assert_problem(r, 422, "validation_error"))) == ["return_window_days", "version"]
    r = await client.post("/v1/locations", headers=admin, json={"code": uid("st"), "name": "n", "type": "store",
                                                               "priority": 1.0, "lat": True, "lon": "9.9"})
    assert sorted(_fields(assert_problem(r, 422, "validation_error"))) == ["lat", "lon", "priority"]
    r = await client.post("/v1/tax-rates", headers=admin, json={"country": "DE", "tax_class": "standard", "rate_bp": "1900"})
    assert _fields(assert_problem(r, 422, "validation_error")) == ["rate_bp"]
    r = await client.post("/v1/products", headers=admin, json={
        "title": "Strict", "variants": [{"sku": sku("S"), "weight_grams": 250.0}]})
    assert _fields(assert_problem(r, 422, "validation_error")) == ["variants[0].weight_grams"]
    # integer latitudes are fine numbers; query parameters stay lenient (strings on the wire)
    await create_location(client, admin, lat=53, lon=10)
    r = await client.get("/v1/channels", params={"limit": "5"}, headers=admin)
    assert r.status_code == 200, r.text


# --------------------------------------------------------------------------- strict everywhere

def _input_models() -> list[type[Input]]:
    seen, stack = [], list(Input.__subclasses__())
    while stack:
        model = stack.pop()
        if model not in seen:
            seen.append(model)
            stack.extend(model.__subclasses__())
    return seen


def _base_types(tp: Any) -> set:
    """int | None, Annotated[int, …], Optional[Annotated[bool, …]] -> {int} / {bool}; others as found."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _base_types(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_base_types(a) for a in typing.get_args(tp))) - {type(None)}
    return {tp}


def test_every_request_number_and_boolean_is_strict():
    models = _input_models()
    assert len(models) >= 20
    checked, loose = 0, []
    for model in models:
        for name, field in model.model_fields.items():
            kinds = _base_types(field.annotation)
            if kinds not in ({int}, {bool}, {float}):
                continue
            adapter = TypeAdapter(Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation)
            bad = {int: [True, "1", 1.0], bool: [1, "true"], float: [True, "1.5"]}[kinds.pop()]
            checked += 1
            for value in bad:
                try:
                    adapter.validate_python(value)
                except ValidationError:
                    continue
                loose.append(f"{model.__name__}.{name} accepts {value!r}")
    assert checked >= 40
    assert not loose, loose


# --------------------------------------------------------------------------- schema bounds vs columns

# Every integer column, and the request fields that end up in it (those without one are
# written by the server only). Adding an integer column means adding it here.
COLUMNS: dict[str, list[str]] = {
    "channels.return_window_days": ["ChannelCreate.return_window_days", "ChannelUpdate.return_window_days"],
    "channels.pickup_hold_days": ["ChannelCreate.pickup_hold_days", "ChannelUpdate.pickup_hold_days"],
    "channels.max_splits": ["ChannelCreate.max_splits", "ChannelUpdate.max_splits"],
    "channels.payment_timeout_minutes": ["ChannelCreate.payment_timeout_minutes",
                                         "ChannelUpdate.payment_timeout_minutes"],
    "orders.amount_authorized": [], "orders.amount_captured": [], "orders.amount_refunded": [],
    "payment_operations.amount": [], "payment_operations.attempts": [],
    "store_credit_entries.amount": ["StoreCreditIn.amount"],
    "locations.priority": ["LocationCreate.priority", "LocationUpdate.priority"],
    "variants.weight_grams": ["VariantIn.weight_grams", "VariantUpdate.weight_grams"],
    "variants.position": [],
    "bundle_components.quantity": ["ComponentIn.quantity"],
    "price_lists.priority": ["PriceListCreate.priority", "PriceListUpdate.priority"],
    "prices.min_quantity": ["PriceIn.min_quantity"],
    "prices.amount": ["PriceIn.amount"],
    "tax_rates.rate_bp": ["TaxRateCreate.rate_bp", "TaxRateUpdate.rate_bp"],
    "promotions.priority": ["PromotionCreate.priority", "PromotionUpdate.priority"],
    "stock_levels.on_hand": ["AdjustmentIn.set", "LevelIn.on_hand"],  # deltas add up: checked by the service
    "stock_levels.reserved": ["ReservationIn.quantity"],
    "stock_levels.safety_stock": ["AdjustmentIn.safety_stock", "LevelIn.safety_stock"],
    "stock_movements.quantity": ["AdjustmentIn.delta", "AdjustmentIn.set", "LevelIn.on_hand", "TransferLineIn.quantity"],
    "reservations.quantity": ["ReservationIn.quantity"],
    "reservation_items.quantity": ["ReservationIn.quantity*ComponentIn.quantity"],  # a bundle holds its components
    "idempotency_keys.response_status": [],
    "rate_limit_counters.window_start": [],
    "rate_limit_counters.hits": [],
    "order_lines.quantity": ["LineIn.quantity", "OrderLineIn.quantity"],
    "order_lines.unit_price": ["OrderLineIn.unit_price"],
    "order_lines.position": [], "order_lines.subtotal": [], "order_lines.discount_total": [], "order_lines.total": [],
    "order_lines.tax_rate_bp": [], "order_lines.tax_amount": [], "order_lines.quantity_fulfilled": [],
    "order_lines.quantity_cancelled": [], "order_lines.quantity_returned": [],
    "orders.subtotal": [], "orders.discount_total": [], "orders.tax_total": [], "orders.total": [],
    "orders.live_units": [], "orders.live_total": [], "orders.live_discount_total": [],  # sums of the lines
    "orders.returned_units": [], "orders.returned_total": [],
    "fulfillments.pickup_attempts": [], "fulfillment_lines.quantity": [], "order_counters.last": [],
    "returns.seq": [], "returns.refund_total": [], "returns.tax_total": [], "return_lines.position": [],
    "return_lines.quantity": ["ReturnLineIn.quantity"], "return_lines.refund_amount": [], "return_lines.tax_amount": [],
    "catalog_imports.rows_total": [], "catalog_imports.rows_done": [], "catalog_imports.chunks_done": [],
    "catalog_imports.attempts": [],
    "events.tx": [], "webhook_deliveries.attempts": [], "webhook_deliveries.max_attempts": [],
    "webhook_deliveries.last_status_code": [], "webhook_deliveries.last_latency_ms": [],
    "event_retention.id": [], "event_retention.tx": [],
}
VERSIONED = ("ChannelUpdate", "LocationUpdate", "ProductUpdate", "VariantCreate", "VariantUpdate", "PriceListUpdate",
             "TaxRateUpdate", "PromotionUpdate", "CartUpdate", "CustomerUpdate")


def _bounds(ref: str) -> tuple[int, int]:
    models = {m.__name__: m for m in _input_models()}
    lo, hi = 1, 1
    for part in ref.split("*"):
        model, field = part.split(".")
        prop = models[model].model_json_schema()["properties"][models[model].model_fields[field].alias or field]
        prop = next((p for p in prop.get("anyOf", [prop]) if p.get("type") == "integer"), prop)
        assert prop.get("type") == "integer", (ref, prop)
        assert "minimum" in prop and "maximum" in prop, f"{part} has no bounds"
        products = [a * b for a in (lo, hi) for b in (prop["minimum"], prop["maximum"])]
        lo, hi = min(products), max(products)
    return lo, hi


def test_every_integer_column_is_listed_and_every_bound_fits_it():
    columns = {}
    for table in SQLModel.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, Integer):
                columns[f"{table.name}.{column.name}"] = column
    ints = {k for k in columns if not k.endswith(".version")}
    assert ints == set(COLUMNS), f"integer columns not listed here: {ints - set(COLUMNS)}; gone: {set(COLUMNS) - ints}"
    assert isinstance(columns["prices.amount"].type, BigInteger), "money columns are 64-bit"
    for name, refs in COLUMNS.items():
        big = isinstance(columns[name].type, BigInteger)
        top = MAX_AMOUNT if big else INT32_MAX
        for ref in refs:
            lo, hi = _bounds(ref)
            assert INT32_MIN <= lo and hi <= top, f"{ref} allows {lo}..{hi}, more than {name} holds"
    for model in VERSIONED:
        lo, hi = _bounds(f"{model}.version")
        assert 0 <= lo and hi <= INT32_MAX


# --------------------------------------------------------------------------- 64-bit money, 32-bit quantities

async def test_a_price_above_32_bits_is_stored_and_read_back(client, admin):
    code, s = await _priced_list(client, admin)
    big = 2**31  # 2147483648: one more than a 32-bit column holds
    r = await client.put(f"/v1/price-lists/{code}/prices", headers=admin,
                         json=[{"sku": s, "amount": big}, {"sku": s, "amount": MAX_AMOUNT, "min_quantity": 10}])
    assert r.status_code == 200, r.text
    r = await client.get(f"/v1/price-lists/{code}/prices", headers=admin)
    assert [(p["min_quantity"], p["amount"]) for p in r.json()["data"]] == [(1, big), (10, MAX_AMOUNT)]
    r = await client.put(f"/v1/price-lists/{code}/prices", headers=admin, json=[{"sku": s, "amount": MAX_AMOUNT + 1}])
    body = assert_problem(r, 422, "validation_error")
    assert _fields(body) == ["[0].amount"]


async def test_numbers_beyond_their_column_name_the_field(client, admin):
    w = await World().setup(client, admin)
    await put_levels(client, admin, w.wh, **{w.a: 10})
    too_big = 2**31
    cases = [
        ("post", "/v1/reservations", {"sku": w.a, "location": w.wh, "quantity": too_big}, ["quantity"]),
        ("post", "/v1/inventory/adjustments", {"location": w.wh, "sku": w.a, "delta": too_big, "reason": "receipt"},
         ["delta"]),
        ("put", "/v1/inventory/levels", {"location": w.wh, "levels": [{"sku": w.a, "on_hand": too_big}]},
         ["levels[0].on_hand"]),
        ("post", "/v1/locations", {"code": uid("st"), "name": "n", "type": "store", "priority": too_big}, ["priority"]),
        ("post", "/v1/products", {"title": "Heavy", "variants": [{"sku": sku("H"), "weight_grams": too_big}]},
         ["variants[0].weight_grams"]),
        ("post", "/v1/inventory/transfers", {"from": w.wh, "to": w.hh, "lines": [{"sku": w.a, "quantity": too_big}]},
         ["lines[0].quantity"]),
    ]
    for method, url, body, fields in cases:
        r = await getattr(client, method)(url, json=body, headers=admin)
        assert _fields(assert_problem(r, 422, "validation_error")) == fields, url


async def test_on_hand_cannot_grow_beyond_its_column(client, admin):
    w = await World().setup(client, admin)
    for _ in range(2):
        r = await client.post("/v1/inventory/adjustments", headers=admin,
                              json={"location": w.wh, "sku": w.a, "delta": 10**9, "reason": "receipt"})
        assert r.status_code == 201, r.text
    r = await client.post("/v1/inventory/adjustments", headers=admin,
                          json={"location": w.wh, "sku": w.a, "delta": 10**9, "reason": "receipt"})
    body = assert_problem(r, 422, "validation_error")
    assert _fields(body) == ["delta"]
    assert (await level(client, admin, w.a, w.wh))["on_hand"] == 2 * 10**9


# --------------------------------------------------------------------------- rules across fields

async def test_transfer_needs_two_locations(client, admin):
    w = await World().setup(client, admin)
    r = await client.post("/v1/inventory/transfers", headers=admin,
                          json={"from": w.wh, "to": w.wh, "lines": [{"sku": w.a, "quantity": 1}]})
    body = assert_problem(r, 422, "validation_error")
    assert _fields(body) == ["to"]
    assert "from" in body["errors"][0]["message"]


async def test_adjustment_takes_one_of_delta_and_set(client, admin):
    w = await World().setup(client, admin)
    for extra in ({}, {"delta": 1, "set": 1}):
        r = await client.post("/v1/inventory/adjustments", headers=admin,
                              json={"location": w.wh, "sku": w.a, "reason": "receipt", **extra})
        assert _fields(assert_problem(r, 422, "validation_error")) == ["delta"]
