"""Fulfillments after checkout: what a store, a dropship partner or the back office does with them.

    ship      open -> shipped      stock leaves on_hand at the location (movement "sale")
    ready     open -> ready        a pickup is waiting: a pickup code and a hold until `expires_at`
    collect   ready -> collected   a pickup handed over against its code (POS of the store, admin);
              open -> collected    a reservation paid and taken at the till (external payment)
    decline   -> declined          the location cannot serve it: its stock is released and the
                                   lines are re-sourced at once elsewhere (or become unfulfillable)
    cancel    -> cancelled         its stock is released (the back office)
    expire    -> expired           the worker: pickups and reservations not collected in time

One path for every status change. `load` finds the fulfillment within the key's scope and
locks its order row first: order -> fulfillment -> stock levels is the lock order of every
fulfillment change (and of the expiry job), so two changes of one order never deadlock and
the order's derived status is computed under that lock. `apply` checks If-Match (412) and
the kind's transition table (states.py, 409 invalid_transition naming the current status),
flips the status with a conditional `UPDATE … WHERE status = :current AND version = :v
RETURNING`, moves its stock (STOCK_ON_ENTRY: the goods leave on shipped / collected, the hold
is released on cancelled / expired), runs the use case's own effects, writes the status-history
row and the outbox event `fulfillment.<status>` and re-derives the order's status
(views.order_status_update, `order.cancelled` when it became cancelled), all in the caller's
transaction (the request's, or the worker's unit of work). Nothing here commits.
resourcing.py decides where declined lines go; bulk_transitions.py cancels an order's
fulfillments and expires overdue ones in the same way, many at once.

Who may do what (the router asks for the role, `load` for the binding): POS keys work the
fulfillments of their store, dropshippers those of their partner location; another
location's answers 404. Admin keys may do everything.
"""
from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.channels.service import channel_row
from app.core import clock
from app.core.errors import ApiError, not_found, validation_error
from app.core.ids import new_id
from app.core.sql import where_in
from app.events.service import emit
from app.inventory import service as inventory
from app.orders import resourcing, states, views
from app.orders.models import Fulfillment, FulfillmentEvent, FulfillmentLine, Order, OrderLine
from app.orders.states import FulfillmentKind, FulfillmentStatus, TransitionError
from app.payments import service as payments

F = Fulfillment.__table__
FL = FulfillmentLine.__table__
FE = FulfillmentEvent.__table__
O = Order.__table__
OL = OrderLine.__table__
S = FulfillmentStatus
K = FulfillmentKind

LOCATION_ROLES = ("pos", "dropshipper")  # keys bound to one location: they see its fulfillments only
ORDER_COLS = (O.c.id, O.c.number, O.c.channel, O.c.status, O.c.payment_status, O.c.payment_provider,
              O.c.shipping_address, O.c.version)

# Pickup codes: 8 characters from 31 that cannot be misread (no 0/O, 1/I/L), drawn with
# `secrets`: 31^8 ≈ 8.5e11 codes, of which a guesser gets PICKUP_MAX_ATTEMPTS tries.
PICKUP_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
PICKUP_CODE_LENGTH = 8
PICKUP_MAX_ATTEMPTS = 5
DEFAULT_HOLD_DAYS = 3
PAID = ("paid", "authorized")  # payment statuses for which a hand-over takes no payment


# --------------------------------------------------------------------------- errors

class WrongPickupCode(ApiError):
    """422 invalid_pickup_code. The attempt is already counted: the caller keeps what was
    written (the request sets `commit_on_error`), unlike any other failure."""

    def __init__(self, attempts_left: int):
        super().__init__(422, "invalid_pickup_code",
                         "The pickup code does not match." + (f" {attempts_left} attempt(s) left." if attempts_left
                                                              else " No attempts left: the pickup is locked until "
                                                                   "the store issues a new code (POST …/ready)."),
                         errors=[{"field": "pickup_code", "message": "Does not match."}],
                         attempts_left=attempts_left)


def invalid_transition(exc: TransitionError) -> ApiError:
    return ApiError(409, "invalid_transition", exc.detail, current_status=exc.current, kind=exc.kind,
                    allowed=sorted(states.TRANSITIONS[FulfillmentKind(exc.kind)].get(exc.current, ())))


def version_conflict(current: int, expected: int, what: str = "fulfillment") -> ApiError:
    return ApiError(412, "version_conflict",
                    f"The {what} is at version {current}, the request expected version {expected}.",
                    current_version=current)


# --------------------------------------------------------------------------- scope and loading

@dataclass(slots=True)
class Target:
    """A fulfillment about to change (or just changed: `lines`), and its order (locked)."""

    row: Any
    order: Any
    lines: list[Any] = field(default_factory=list)


def visible(row: Any, who: Principal) -> bool:
    """Admin sees every fulfillment; POS and dropshipper keys those of their own location."""
    return who.is_admin or (who.role in LOCATION_ROLES and row.location_id == who.location_id)


def _scope(row: Any, who: Principal, ref: str) -> None:
    if not who.is_admin and who.role not in LOCATION_ROLES:
        raise ApiError(403, "forbidden", f"The {who.role} role may not work fulfillments.")
    if row is None or not visible(row, who):
        raise not_found("Fulfillment", ref)


async def get(session: AsyncSession, ref: str, who: Principal) -> Any:
    """The fulfillments row within the key's scope (404 outside it), for reads."""
    row = (await session.execute(select(F).where(F.c.id == ref))).first()
    _scope(row, who, ref)
    return row


async def load(session: AsyncSession, ref: str, who: Principal) -> Target:
    """For a change: lock the order first, then read the fulfillment (fresh under that lock)."""
    order = (await session.execute(
        select(*ORDER_COLS).where(O.c.id == select(F.c.order_id).where(F.c.id == ref).scalar_subquery())
        .with_for_update())).first()
    row = (await session.execute(select(F).where(F.c.id == ref))).first() if order is not None else None
    _scope(row, who, ref)
    return Target(row, order)


async def lines_of(session: AsyncSession, ids: Sequence[str]) -> dict[str, list[Any]]:
    """{fulfillment id: [(fulfillment_id, order_line_id, sku, quantity, title)]} in one statement."""
    out: dict[str, list[Any]] = defaultdict(list)
    if ids:
        rows = (await session.execute(
            select(FL.c.fulfillment_id, FL.c.order_line_id, FL.c.sku, FL.c.quantity, OL.c.title)
            .select_from(FL.outerjoin(OL, OL.c.id == FL.c.order_line_id))
            .where(where_in(session, FL.c.fulfillment_id, list(ids)))
            .order_by(FL.c.fulfillment_id, FL.c.order_line_id))).all()
        for r in rows:
            out[r.fulfillment_id].append(r)
    return out


def check_version(row: Any, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != row.version:
        raise version_conflict(row.version, expected_version)


def check_paid(order: Any, target: str) -> None:
    """Goods wait while the order waits for its online payment: no ready, ship or collect."""
    if order.status == "pending_payment" and target in (S.ready, S.shipped, S.collected):
        raise ApiError(409, "payment_pending", f"Order {order.number} waits for its payment: the goods may not "
                                               f"be handed over or shipped yet.", current_status=order.status)


def check_move(row: Any, target: str) -> None:
    try:
        states.check(row.kind, row.status, target)
    except TransitionError as exc:
        raise invalid_transition(exc) from None


# --------------------------------------------------------------------------- the one transition

Effects = Callable[[Any, list[Any]], Awaitable[dict | None]]

# What entering a status does to the fulfillment's stock at its location, beside the transition
# tables: the goods leave (on_hand and reserved go down, ledger movement "sale"), or the hold is
# released. A decline releases inside its re-sourcing (resourcing.resource); `ready` keeps it.
STOCK_ON_ENTRY = {S.shipped: "commit", S.collected: "commit", S.cancelled: "release", S.expired: "release"}
STOCK_REASON = {S.shipped: "sale", S.collected: "sale", S.cancelled: "cancel", S.expired: "expired"}
NEEDS_USE_CASE = {S.ready: "ready", S.declined: "decline"}  # a code to issue, lines to re-source


async def move_stock(session: AsyncSession, target: str, lines: list[tuple[str, str, int]],
                     reference: str | None) -> None:
    """STOCK_ON_ENTRY for inventory lines [(sku, location id, quantity)]: one call, any number."""
    action = STOCK_ON_ENTRY.get(FulfillmentStatus(target))
    if action == "commit":
        await inventory.commit_stock(session, lines, reference=reference, reason=STOCK_REASON[target])
    elif action == "release":
        await inventory.release_stock(session, lines, reference=reference, reason=STOCK_REASON[target])


async def transition(session: AsyncSession, fulfillment_id: str, target: str, *, who: Principal,
                     expected_version: int | None, note: str | None = None, **changes: Any) -> Target:
    """Move one fulfillment to `target` (see the module doc), its stock with it (STOCK_ON_ENTRY):
    its new row, its lines, its order. `ready` and `declined` need their use case (a pickup code
    to issue, lines to re-source): `ready()`, `decline()`."""
    if target in NEEDS_USE_CASE:
        raise ValueError(f"a fulfillment becomes {target} through {NEEDS_USE_CASE[target]}()")
    return await apply(session, await load(session, fulfillment_id, who), target, who=who,
                       expected_version=expected_version, note=note, **changes)


async def apply(session: AsyncSession, t: Target, target: str, *, who: Principal | None,
                expected_version: int | None, note: str | None = None, effects: Effects | None = None,
                repeat: bool = False, known_lines: list[Any] | None = None, **changes: Any) -> Target:
    """The transition of a loaded fulfillment. After the status flipped its stock moves
    (STOCK_ON_ENTRY), then `effects(new_row, lines)` runs (it may return extra event data), then
    the history, the event and the order status. `repeat`: the move to the status it already
    has is allowed (a pickup code re-issued: no stock moves). `known_lines`: the fulfillment's
    lines when the caller read them already (under the lock)."""
    row = t.row
    again = repeat and row.status == target
    check_version(row, expected_version)
    check_paid(t.order, target)
    if not again:
        check_move(row, target)
    now = clock.now()
    new = (await session.execute(
        update(F).where(F.c.id == row.id, F.c.status == row.status, F.c.version == row.version)
        .values(status=str(target), version=F.c.version + 1, updated_at=now, **changes)
        .returning(*F.c))).first()
    if new is None:  # changed after it was read (under the order lock next to impossible): say how
        fresh = (await session.execute(select(F).where(F.c.id == row.id))).first()
        if expected_version is None:
            check_move(fresh, target)  # 409 naming the status it has now
        raise version_conflict(fresh.version, expected_version if expected_version is not None else row.version)
    lines = known_lines if known_lines is not None else (await lines_of(session, [new.id]))[new.id]
    if not again:
        await move_stock(session, target, stock_lines(new, lines), reference=new.id)
    extra = (await effects(new, lines)) if effects is not None else None
    await history(session, [(row.status, new)], who, note)
    await emit(session, f"fulfillment.{target}", {**event_data(new, t.order, lines, row.status), **(extra or {})},
               channel=t.order.channel, location=new.location)
    await rederive(session, t.order)
    return Target(new, t.order, lines)


ORDER_EVENTS = {"cancelled": "order.cancelled", "confirmed": "order.confirmed"}


async def rederive(session: AsyncSession, order: Any) -> dict:
    """The order's status and line quantities again from its fulfillments (views), the payment
    operations now due (payments.settle: carried out after the commit), and the order event when
    its status became cancelled (or confirmed)."""
    result = await views.order_status_update(session, order.id)
    if getattr(order, "payment_provider", "stripe") in payments.SETTLED_BY_OPERATIONS:
        await payments.settle(session, order.id)  # what the payment must do now (capture, void, refund)
    status = result["status"]
    if status != result["previous_status"] and status in ORDER_EVENTS:
        await emit(session, ORDER_EVENTS[status],
                   {"id": order.id, "number": order.number, "channel": order.channel, "status": status,
                    "previous_status": result["previous_status"], "version": result["version"]},
                   channel=order.channel)
    return result


async def history(session: AsyncSession, moves: Iterable[tuple[str, Any]], who: Principal | None,
                  note: str | None) -> None:
    """The status-history rows of (previous status, new row) moves: one statement."""
    now = clock.now()
    rows = [{"id": new_id("fev"), "fulfillment_id": new.id, "from_status": str(before), "to_status": new.status,
             "api_key_id": who.key_id if who else None, "note": note[:500] if note else None, "created_at": now}
            for before, new in moves]
    if rows:
        await session.execute(insert(FE), rows)


def event_data(new: Any, order: Any, lines: Sequence[Any], previous: str) -> dict:
    """The payload of fulfillment.<status> events. Never the pickup code: the customer reads it
    from the order (GET /v1/orders/{id}), and an event stream may be read by store staff."""
    data = {"id": new.id, "order": order.id, "order_number": order.number, "channel": order.channel,
            "location": new.location, "method": new.method, "kind": new.kind, "status": new.status,
            "previous_status": str(previous), "version": new.version,
            "lines": [{"order_line_id": ln.order_line_id, "sku": ln.sku, "quantity": ln.quantity} for ln in lines]}
    for name in ("carrier", "tracking_number", "reason", "replaces"):
        if getattr(new, name) is not None:
            data[name] = getattr(new, name)
    if new.expires_at is not None:
        data["expires_at"] = new.expires_at.isoformat().replace("+00:00", "Z")
    return data


def stock_lines(row: Any, lines: Iterable[Any]) -> list[tuple[str, str, int]]:
    """The fulfillment's lines as inventory lines at its location (bundles expand there)."""
    return [(ln.sku, row.location_id, ln.quantity) for ln in lines if ln.quantity > 0]


# --------------------------------------------------------------------------- the use cases

async def ship(session: AsyncSession, ref: str, who: Principal, *, expected_version: int | None,
               carrier: str, tracking_number: str) -> Target:
    """open -> shipped: the goods leave the location (on_hand and reserved go down, movement "sale")."""
    return await apply(session, await load(session, ref, who), S.shipped, who=who, expected_version=expected_version,
                       carrier=carrier, tracking_number=tracking_number)


def new_pickup_code() -> str:
    return "".join(secrets.choice(PICKUP_ALPHABET) for _ in range(PICKUP_CODE_LENGTH))


def normalize_code(code: str) -> str:
    """What the customer reads out, as the code is stored: upper case, no spaces or dashes."""
    return "".join(ch for ch in code.upper() if ch not in " -")


async def ready(session: AsyncSession, ref: str, who: Principal, *,
                expected_version: int | None) -> Target:
    """open -> ready: the pickup waits at the counter with a new pickup code until now +
    the channel's pickup_hold_days. On a pickup that is already ready it re-issues the code
    (the old one stops working, wrong tries start again from zero; the hold is not extended):
    how a store unlocks a pickup after too many wrong codes."""
    t = await load(session, ref, who)
    code = new_pickup_code()
    if t.row.status == S.ready and t.row.kind == K.pickup:
        return await apply(session, t, S.ready, who=who, expected_version=expected_version, repeat=True,
                           note="pickup code re-issued", pickup_code=code, pickup_attempts=0)
    channel = await channel_row(session, t.order.channel)
    hold = channel.pickup_hold_days if channel is not None else DEFAULT_HOLD_DAYS
    return await apply(session, t, S.ready, who=who, expected_version=expected_version,
                       pickup_code=code, pickup_attempts=0, expires_at=clock.now() + timedelta(days=hold))


async def collect(session: AsyncSession, ref: str, who: Principal, *, expected_version: int | None,
                  pickup_code: str | None, payment_reference: str | None) -> Target:
    """-> collected: a ready pickup against its code (every try counted, PICKUP_MAX_ATTEMPTS
    wrong ones lock it: 409 pickup_locked until /ready re-issues), or a reservation paid at the
    till. `payment_reference` names the external payment taken at the till, which marks the order
    paid: required for a reservation of an unpaid order, optional for a pickup ("pay at pickup"),
    refused when the order is paid already (no second charge). The goods leave on_hand."""
    t = await load(session, ref, who)
    row = t.row
    check_version(row, expected_version)
    check_move(row, S.collected)
    unpaid = t.order.payment_status not in PAID
    if payment_reference is not None and not unpaid:
        raise validation_error("payment_reference", f"The order is {t.order.payment_status} already: take no payment.")
    if row.kind != K.pickup:
        if pickup_code is not None:
            raise validation_error("pickup_code", "A reservation has no pickup code: it is paid and taken at the till.")
        if unpaid and payment_reference is None:
            raise validation_error("payment_reference", "The order is unpaid: name the payment taken at the till.")
    else:
        if pickup_code is None:
            raise validation_error("pickup_code", "The pickup code is required to hand over a pickup.")
        # count the try first (conditionally: never more than the limit, whatever runs at once)
        tries = (await session.execute(
            update(F).where(F.c.id == row.id, F.c.status == S.ready, F.c.pickup_attempts < PICKUP_MAX_ATTEMPTS)
            .values(pickup_attempts=F.c.pickup_attempts + 1).returning(F.c.pickup_attempts))).scalar()
        if tries is None:
            raise ApiError(409, "pickup_locked",
                           f"Too many wrong pickup codes ({PICKUP_MAX_ATTEMPTS}): the store issues a new code "
                           f"with POST /v1/fulfillments/{row.id}/ready.")
        if not row.pickup_code or not secrets.compare_digest(normalize_code(pickup_code).encode(),
                                                             row.pickup_code.encode()):
            raise WrongPickupCode(PICKUP_MAX_ATTEMPTS - tries)
    paid = payment_reference

    async def effects(new, lines):
        if paid is not None:
            await session.execute(update(O).where(O.c.id == new.order_id).values(
                payment_status="paid", payment_provider="external", payment_reference=paid,
                amount_authorized=O.c.total, amount_captured=O.c.total,
                updated_at=clock.now()))  # (rederive bumps the version)
            return {"payment_reference": paid}
        return None

    return await apply(session, t, S.collected, who=who, expected_version=expected_version, effects=effects)


async def cancel(session: AsyncSession, ref: str, who: Principal, *, expected_version: int | None,
                 reason: str | None) -> Target:
    """-> cancelled: its stock is released and its units will not come (quantity_cancelled)."""
    return await apply(session, await load(session, ref, who), S.cancelled, who=who,
                       expected_version=expected_version, note=reason, reason=reason)


# --------------------------------------------------------------------------- decline and re-source

@dataclass(slots=True)
class Declined(Target):
    """What a decline did: besides the declined fulfillment, the new ones that took its lines
    over (re-sourced elsewhere; on a partial decline the rest kept where it was) and what no
    location can serve ([{order_line_id, sku, quantity}])."""

    resourced: list[dict] = field(default_factory=list)
    kept: list[dict] = field(default_factory=list)
    unfulfillable: list[dict] = field(default_factory=list)


async def decline(session: AsyncSession, ref: str, who: Principal, *, expected_version: int | None,
                  reason: str, lines: Sequence[tuple[str, int | None]] | None = None) -> Declined:
    """-> declined by the location that holds it (or admin). In the same transaction the stock of
    the declined lines is released and they are re-sourced at once (resourcing.py); with `lines`
    [(sku, quantity or None: all)] only those, the rest stays here in a new open fulfillment.
    The order's status follows (units no location can serve count as cancelled)."""
    t = await load(session, ref, who)
    check_version(t.row, expected_version)
    check_move(t.row, S.declined)
    held = (await lines_of(session, [t.row.id]))[t.row.id]
    gone, stay = resourcing.split_lines(held, lines)
    out = Declined(t.row, t.order)

    async def effects(new, _lines):
        if stay:
            out.kept = await resourcing.keep(session, new, stay)
        out.resourced, out.unfulfillable = await resourcing.resource(session, t.order.id, new, gone, reason)
        await resourcing.emit_created(session, t.order, out.kept + out.resourced)
        return {"declined_lines": [{"order_line_id": k, "sku": s, "quantity": q} for k, s, q in gone],
                "resourced_to": [r["id"] for r in out.resourced], "kept_in": [r["id"] for r in out.kept],
                "unfulfillable": out.unfulfillable}

    done = await apply(session, t, S.declined, who=who, expected_version=expected_version, effects=effects,
                       known_lines=held, note=reason, reason=reason)
    out.row, out.lines = done.row, done.lines
    return out
