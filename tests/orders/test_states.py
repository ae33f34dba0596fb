"""Fulfillment transition tables and the derived order status: pure, table-driven."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.orders.states import (
    TRANSITIONS, FulfillmentKind, FulfillmentMethod, FulfillmentStatus, LineProgress, OrderStatus, TransitionError,
    allowed, check, derive_order_status, is_final, kind_for, line_progress, validate_tables,
)

F = FulfillmentStatus

# The spec (API.md section 8), written out once more so a table edit must be deliberate.
SPEC = {
    "ship": {("open", "shipped"), ("open", "declined"), ("open", "cancelled")},
    "dropship": {("open", "shipped"), ("open", "declined"), ("open", "cancelled")},
    "pickup": {("open", "ready"), ("open", "declined"), ("open", "cancelled"), ("ready", "collected"),
               ("ready", "expired"), ("ready", "cancelled"), ("ready", "declined")},
    "reserve": {("open", "collected"), ("open", "expired"), ("open", "cancelled"), ("open", "declined")},
}


def test_enums():
    assert [s.value for s in FulfillmentStatus] == ["open", "ready", "shipped", "collected", "declined", "cancelled",
                                                    "expired"]
    assert [s.value for s in OrderStatus] == ["pending_payment", "confirmed", "partially_fulfilled", "fulfilled",
                                              "cancelled"]
    assert [m.value for m in FulfillmentMethod] == ["ship", "pickup", "reserve"]
    assert set(TRANSITIONS) == set(FulfillmentKind) == set(SPEC)
    assert json.dumps([F.open, OrderStatus.confirmed]) == '["open", "confirmed"]'


@pytest.mark.parametrize("kind", sorted(SPEC))
def test_tables_match_the_spec(kind):
    for current in FulfillmentStatus:
        for target in FulfillmentStatus:
            assert allowed(kind, current, target) is ((current, target) in SPEC[kind]), (kind, current, target)
            assert allowed(kind, current.value, target.value) is ((current, target) in SPEC[kind])


@pytest.mark.parametrize("kind, final", [
    ("ship", {"shipped", "declined", "cancelled"}),
    ("dropship", {"shipped", "declined", "cancelled"}),
    ("pickup", {"collected", "expired", "cancelled", "declined"}),
    ("reserve", {"collected", "expired", "cancelled", "declined"}),
])
def test_final_states(kind, final):
    assert {s for s in TRANSITIONS[FulfillmentKind(kind)] if is_final(kind, s)} == final
    assert not is_final(kind, "open")


def test_check_names_the_current_state():
    check("pickup", "ready", "collected")  # allowed: no error
    with pytest.raises(TransitionError) as e:
        check("ship", "shipped", "cancelled")
    err = e.value
    assert (err.current, err.target, err.kind, err.code) == ("shipped", "cancelled", "ship", "invalid_transition")
    assert "is shipped" in str(err) and "final" in str(err)
    with pytest.raises(TransitionError) as e:
        check(FulfillmentKind.pickup, F.open, F.collected)
    assert "is open" in e.value.detail and "ready" in e.value.detail  # says where it can go
    assert e.value.current == "open"


def test_unknown_states_are_not_allowed_and_unknown_kinds_are_errors():
    assert not allowed("ship", "open", "teleported")
    assert not allowed("ship", "limbo", "shipped")
    with pytest.raises(TransitionError):
        check("ship", "open", "teleported")
    with pytest.raises(ValueError):
        allowed("carrier_pigeon", "open", "shipped")


@pytest.mark.parametrize("tables, message", [
    ({"ship": {"open": {"shipped", "lost"}, "shipped": set()}}, "unknown target"),
    ({"ship": {"open": {"shipped"}, "shipped": set(), "limbo": set()}}, "unknown states"),
    ({"ship": {"open": {"shipped"}, "shipped": set(), "cancelled": set()}}, "unreachable"),
    ({"pickup": {"open": {"cancelled"}, "cancelled": set(), "ready": {"collected"}, "collected": set()}}, "unreachable"),
    ({"ship": {"shipped": set()}}, "initial"),
])
def test_validate_tables_rejects_broken_tables(tables, message):
    with pytest.raises(ValueError, match=message):
        validate_tables(tables)


def test_validate_tables_accepts_ours():
    validate_tables()
    validate_tables(TRANSITIONS)


@pytest.mark.parametrize("method, location_type, kind", [
    ("ship", "warehouse", "ship"), ("ship", "store", "ship"), ("ship", "partner", "dropship"),
    ("pickup", "store", "pickup"), ("reserve", "store", "reserve"),
])
def test_kind_for(method, location_type, kind):
    assert kind_for(method, location_type) == kind


def test_kind_for_unknown_method():
    with pytest.raises(ValueError):
        kind_for("dropship", "partner")  # a method is what the customer chose; dropship is not one


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(SPEC)), st.lists(st.sampled_from(list(FulfillmentStatus)), max_size=8))
def test_any_walk_follows_the_table(kind, attempts):
    """Whatever is attempted, the state moves only along the table and stays put once final."""
    state = F.open
    for target in attempts:
        if allowed(kind, state, target):
            assert (state, target) in SPEC[kind]
            state = target
        else:
            with pytest.raises(TransitionError):
                check(kind, state, target)
    if is_final(kind, state):
        assert not any(allowed(kind, state, t) for t in FulfillmentStatus)


# --------------------------------------------------------------------------- order status

def lp(ordered, fulfilled=0, cancelled=0) -> LineProgress:
    return LineProgress(ordered, fulfilled, cancelled)


@pytest.mark.parametrize("lines, pending, status", [
    ([lp(2), lp(1)], False, "confirmed"),
    ([lp(2, cancelled=1), lp(1)], False, "confirmed"),
    ([lp(2, fulfilled=1), lp(1)], False, "partially_fulfilled"),
    ([lp(2, fulfilled=2), lp(1)], False, "partially_fulfilled"),
    ([lp(2, fulfilled=2), lp(1, fulfilled=1)], False, "fulfilled"),
    ([lp(2, fulfilled=1, cancelled=1), lp(1, cancelled=1)], False, "fulfilled"),
    ([lp(2, cancelled=2), lp(1, cancelled=1)], False, "cancelled"),
    ([lp(2, cancelled=2), lp(1)], False, "confirmed"),
    ([lp(2), lp(1)], True, "pending_payment"),
    ([lp(2, fulfilled=2)], True, "pending_payment"),
    ([lp(2, cancelled=2)], True, "cancelled"),  # nothing left to pay for
])
def test_derive_order_status(lines, pending, status):
    assert derive_order_status(lines, payment_pending=pending) == status


@pytest.mark.parametrize("lines", [[], [lp(0)], [lp(2, fulfilled=2, cancelled=1)], [lp(2, fulfilled=-1)],
                                   [lp(2, cancelled=-1)]])
def test_derive_order_status_rejects_inconsistent_lines(lines):
    with pytest.raises(ValueError):
        derive_order_status(lines)


def test_line_progress_from_fulfillments():
    ordered = {"a": 3, "b": 2, "c": 1}
    fulfillments = [
        ("shipped", [("a", 2)]),
        ("collected", [("b", 1)]),
        ("declined", [("a", 1)]),     # re-sourced: counts as neither
        ("cancelled", [("a", 1)]),
        ("expired", [("b", 1)]),
        ("open", [("c", 1)]),
        ("ready", [("c", 1)]),
    ]
    progress = line_progress(ordered, fulfillments)
    assert progress == {"a": lp(3, 2, 1), "b": lp(2, 1, 1), "c": lp(1)}
    assert derive_order_status(progress.values()) == "partially_fulfilled"


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=5),
       st.booleans())
def test_order_status_properties(raw, pending):
    lines = [lp(o, min(f, o), min(c, o - min(f, o))) for o, f, c in raw]
    status = derive_order_status(lines, payment_pending=pending)
    ordered = sum(ln.ordered for ln in lines)
    fulfilled = sum(ln.fulfilled for ln in lines)
    cancelled = sum(ln.cancelled for ln in lines)
    assert (status == OrderStatus.cancelled) == (cancelled == ordered)
    if status == OrderStatus.pending_payment:
        assert pending
    if status == OrderStatus.fulfilled:
        assert fulfilled == ordered - cancelled > 0
    if status == OrderStatus.partially_fulfilled:
        assert 0 < fulfilled < ordered - cancelled
    if status == OrderStatus.confirmed:
        assert fulfilled == 0 < ordered - cancelled
    assert derive_order_status(list(reversed(lines)), payment_pending=pending) == status
