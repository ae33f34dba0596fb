"""The pure rules of returns (app/returns/rules.py): which units, the window, the money."""
import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from app.core.errors import ApiError
from app.returns import rules, states

T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)


def _line(quantity=5, total=4999, tax=798, fulfilled=None, returned=0, shipments=()) -> rules.Line:
    ln = rules.Line("ol_1", "SKU-1", quantity, total, tax, fulfilled if fulfilled is not None else quantity, returned)
    ln.shipments = list(shipments)
    return ln


def _ship(fid, qty, days_ago, kind="ship", location="wh") -> rules.Shipment:
    return rules.Shipment(fid, location, kind, qty, T0 - timedelta(days=days_ago))


def _want(qty, i=0, condition="resellable") -> rules.Planned:
    return rules.Planned(i, "ol_1", qty, condition)


def test_units_come_from_the_newest_shipment_first_and_stay_taken():
    ln = _line(shipments=[_ship("f_old", 3, 20), _ship("f_new", 2, 2)])
    (w,) = rules.plan({"ol_1": ln}, [_want(3)], now=T0, days=30)
    assert [(p.shipment.fulfillment_id, p.quantity) for p in w.parts] == [("f_new", 2), ("f_old", 1)]
    assert ln.taken == {"f_new": 2, "f_old": 1}
    assert rules.taken_by([[p.source() for p in w.parts]]) == {"f_new": 2, "f_old": 1}


def test_units_past_their_window_are_not_returnable():
    ln = _line(shipments=[_ship("f_old", 3, 40), _ship("f_new", 2, 2)])
    assert ln.returnable(T0, 30)[:2] == (2, 3)
    assert rules.plan({"ol_1": ln}, [_want(2)], now=T0, days=30)[0].parts[0].shipment.fulfillment_id == "f_new"
    ln = _line(shipments=[_ship("f_old", 3, 40), _ship("f_new", 2, 2)])
    with pytest.raises(ApiError) as exc:
        rules.plan({"ol_1": ln}, [_want(3)], now=T0, days=30)
    assert exc.value.code == "return_window_expired" and "only 2 unit(s)" in exc.value.detail
    with pytest.raises(ApiError) as exc:
        rules.plan({"ol_1": ln}, [_want(6)], now=T0, days=30)
    assert exc.value.code == "return_quantity_exceeded"


def test_authorized_and_returned_units_count():
    ln = _line(returned=1, shipments=[_ship("f", 5, 1)])
    ln.taken, ln.authorized = {"f": 3}, 2
    assert ln.returnable(T0, 30)[0] == 2
    with pytest.raises(ApiError) as exc:
        rules.plan({"ol_1": ln}, [_want(3)], now=T0, days=30)
    assert exc.value.extra["returnable"][0]["quantity_authorized"] == 2


def test_nothing_fulfilled_unknown_and_duplicate_lines():
    with pytest.raises(ApiError) as exc:
        rules.plan({"ol_1": _line(fulfilled=0)}, [_want(1)], now=T0, days=30)
    assert exc.value.code == "order_not_fulfilled"
    with pytest.raises(ApiError) as exc:
        rules.plan({"ol_1": _line()}, [rules.Planned(0, "ol_x", 1), _want(1, 1), _want(1, 2)], now=T0, days=30)
    assert [e["field"] for e in exc.value.errors] == ["lines[0].order_line_id", "lines[2].order_line_id"]


def test_every_way_of_returning_a_line_refunds_it_to_the_cent():
    rng = random.Random(7)
    for _ in range(200):
        q = rng.randint(1, 9)
        total, tax = rng.randint(0, 99_999), rng.randint(0, 9_999)
        cuts = sorted(rng.sample(range(1, q), rng.randint(0, q - 1))) if q > 1 else []
        sizes = [b - a for a, b in itertools.pairwise([0, *cuts, q])]
        ln = _line(q, total, tax, shipments=[_ship("f", q, 1)])
        paid = taxed = 0
        for size in sizes:
            planned = rules.plan({"ol_1": ln}, [_want(size)], now=T0, days=30)
            refund, t = rules.price({"ol_1": ln}, planned, None)
            ln.quantity_returned += size
            paid, taxed = paid + refund, taxed + t
        assert (paid, taxed) == (total, tax)


def test_dropshipped_units_are_charged_back_with_their_share():
    ln = _line(3, 1000, 160, shipments=[_ship("f_own", 1, 5), _ship("f_drop", 2, 1, "dropship", "partner-1")])
    planned = rules.plan({"ol_1": ln}, [_want(3)], now=T0, days=30)
    refund, _ = rules.price({"ol_1": ln}, planned, "store-1")
    assert refund == 1000
    # the two dropshipped units are the newest: units 1 and 2 of 3 -> ⌊1000·2/3⌋ = 666
    assert planned[0].chargebacks == [{"location": "partner-1", "quantity": 2, "amount": 666}]
    # brought back to the partner itself: nothing to charge back
    ln = _line(3, 1000, 160, shipments=[_ship("f_drop", 3, 1, "dropship", "partner-1")])
    planned = rules.plan({"ol_1": ln}, [_want(1)], now=T0, days=30)
    rules.price({"ol_1": ln}, planned, "partner-1")
    assert planned[0].chargebacks == []


def test_an_authorization_runs_out_with_its_oldest_units():
    ln = _line(shipments=[_ship("f_old", 3, 20), _ship("f_new", 2, 2)])
    planned = rules.plan({"ol_1": ln}, [_want(3)], now=T0, days=30)
    assert rules.expires_at(planned, 30) == T0 - timedelta(days=20) + timedelta(days=30)
    assert [p.source() for p in rules.parts_of([p.source() for p in planned[0].parts])] == \
        [p.source() for p in planned[0].parts]


def test_codes_and_states():
    codes = {rules.new_code() for _ in range(200)}
    assert len(codes) == 200 and all(rules.looks_like_code(c) for c in codes)
    c = next(iter(codes))
    assert rules.normalize_code(f" {c[:5].lower()}-{c[5:]} ") == c and rules.looks_like_code(c.lower())
    assert not rules.looks_like_code("ret_01abc") and not rules.looks_like_code("RETURNABLE")
    assert states.effective_status("authorized", T0, T0) == "expired"
    assert states.effective_status("authorized", T0 + timedelta(seconds=1), T0) == "authorized"
    states.check("authorized", "completed")
    with pytest.raises(ApiError) as exc:
        states.check("completed", "cancelled")
    assert exc.value.status == 409 and exc.value.extra["current_status"] == "completed"
