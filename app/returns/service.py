"""Returns: received at a till or a warehouse, or authorized online and completed at any store.

    create(session, who, body)                 POST /v1/returns
    complete(session, who, ref, body, v)       POST /v1/returns/{id}/complete (an authorization)
    cancel(session, who, ref, body, v)         POST /v1/returns/{id}/cancel   (an authorization)

Receiving goods (a `completed` return, or completing an authorization), in the request's
transaction, in this order:
  1. the order row is locked (facts.lock_order): two returns of one order, whatever runs at
     once, read quantity_returned one after the other, so units never come back twice;
  2. the order's lines, shipments and earlier returns are read under that lock and the rules
     decide (rules.plan: unknown lines, quantities, the window; rules.price: refund, tax,
     charge-backs);
  3. the return and its lines are written;
  4. the refund (payment.refund -> the payments service): after the lock and the checks, before
     any stock row is locked; when it fails, everything rolls back;
  5. order_lines.quantity_returned and the order's version go up;
  6. resellable units go back on hand at the receiving location (inventory.receive_stock,
     movement `return`, bundles as their components); damaged units are recorded only;
  7. the event `return.created` (`return.completed` for an authorization) with the return.
An authorization does 1-3 only (its units count against what may be authorized or returned
again until it is completed, cancelled or runs out) and answers with a `code`.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.catalog.service import canonical, lookup_skus
from app.core import clock
from app.core.errors import ApiError
from app.core.ids import new_id
from app.events.service import emit
from app.inventory import service as inventory
from app.orders import reporting
from app.returns import facts, payment, rules, views
from app.returns.schemas import CreateStatus, ReturnCancel, ReturnComplete, ReturnCreate
from app.returns.states import Condition, ReturnStatus, check, effective_status

R = views.R
RL = views.RL
O = facts.O
OL = facts.OL
S = ReturnStatus
CODE_TRIES = 5


# --------------------------------------------------------------------------- who and where

def start_status(who: Principal, asked: CreateStatus | None) -> ReturnStatus:
    """Storefront keys open authorizations (the customer brings the goods later); POS keys receive
    goods at their till; admin does either (mail-in returns at a warehouse)."""
    if who.role == "storefront":
        if asked == CreateStatus.completed:
            raise ApiError(403, "forbidden", "A storefront key opens return authorizations (status authorized): "
                                             "the goods are received by a store or the back office.")
        return S.authorized
    if asked == CreateStatus.authorized and who.role != "admin":
        raise ApiError(403, "forbidden", f"The {who.role} role receives returns (status completed); authorizations "
                                         "are opened by the shop or the back office.")
    return S.authorized if asked == CreateStatus.authorized else S.completed


def _location_error(message: str) -> ApiError:
    return ApiError(422, "validation_error", message, errors=[{"field": "location", "message": message}])


async def receiving_location(session: AsyncSession, who: Principal, ref: str | None, *,
                             required: bool) -> inventory.Loc | None:
    """Where goods are received: a POS key's own store (another store: 404), or the location an
    admin names; it must be active and have the returns capability (422 naming `location`)."""
    if who.role == "pos":
        ref = ref or who.location
        who.location_or_404(ref, "Location")
    if ref is None:
        if required:
            raise _location_error("Name the location that receives the goods.")
        return None
    loc = (await inventory.locations_by_code(session, [ref])).get(ref)
    if loc is None:
        raise _location_error(f"Unknown location {ref!r}.")
    if not loc.active:
        raise _location_error(f"Location {loc.code!r} is inactive.")
    if not loc.can_return:
        raise _location_error(f"Location {loc.code!r} does not take returns (its returns capability is off).")
    return loc


def _need_conditions(body: ReturnCreate) -> None:
    errors = [{"field": f"lines[{i}].condition", "message": "Required when the goods are received: resellable "
                                                            "or damaged."}
              for i, ln in enumerate(body.lines) if ln.condition is None]
    if errors:
        raise ApiError(422, "validation_error", errors[0]["message"], errors=errors)


# --------------------------------------------------------------------------- create

async def create(session: AsyncSession, who: Principal, body: ReturnCreate) -> dict:
    status = start_status(who, body.status)
    if status == S.completed:
        _need_conditions(body)
    loc = await receiving_location(session, who, body.location, required=status == S.completed)
    order = await facts.lock_order(session, body.order, who)
    now = clock.now()
    days = await views.window_days(session, order.channel)
    known = await facts.load(session, order.id, now)
    wanted = [rules.Planned(i, ln.order_line_id, ln.quantity, ln.condition.value if ln.condition else None, ln.reason)
              for i, ln in enumerate(body.lines)]
    planned = rules.plan(known.lines, wanted, now=now, days=days)
    refund_total, tax_total = rules.price(known.lines, planned, loc.code if loc else None)
    row = {"id": new_id("ret"), "order_id": order.id, "order_number": order.number, "channel": order.channel,
           "seq": known.last_seq + 1, "status": status.value, "code": None,
           "location_id": loc.id if loc else None, "location": loc.code if loc else None,
           "refund_method": body.refund_method.value, "currency": order.currency, "refund_total": refund_total,
           "tax_total": tax_total, "refund_id": None, "refund": None, "expires_at": None, "completed_at": None,
           "cancelled_at": None, "api_key_id": who.key_id, "completed_by": None, "version": 1,
           "created_at": now, "updated_at": now}
    if status == S.authorized:
        row["code"] = await _unused_code(session)
        row["expires_at"] = rules.expires_at(planned, days)
    else:
        row["completed_at"], row["completed_by"] = now, who.key_id
    lines = _line_rows(row["id"], planned)
    await session.execute(insert(R).values(**row))
    await session.execute(insert(RL), lines)
    if status == S.completed:
        await _receive(session, who, order, row, lines, planned, loc)
    else:
        await _touch_order(session, order.id, {})
    answer = views.render(row, lines, now)
    await emit(session, "return.created", answer, channel=order.channel, location=row["location"])
    return answer


def _line_rows(return_id: str, planned: list[rules.Planned]) -> list[dict]:
    return [{"id": new_id("retl"), "return_id": return_id, "order_line_id": w.order_line_id, "position": pos,
             "sku": w.sku, "quantity": w.quantity, "reason": w.reason, "condition": w.condition,
             "refund_amount": w.refund, "tax_amount": w.tax, "sources": [p.source() for p in w.parts],
             "chargebacks": w.chargebacks}
            for pos, w in enumerate(planned)]


async def _unused_code(session: AsyncSession) -> str:
    """A fresh authorization code (the unique index is the last word; a clash is next to impossible)."""
    for _ in range(CODE_TRIES):
        code = rules.new_code()
        if (await session.execute(select(R.c.id).where(R.c.code == code))).first() is None:
            return code
    raise ApiError(503, "service_unavailable", "No free return code was found; retry.", headers={"Retry-After": "1"})


async def _receive(session: AsyncSession, who: Principal, order: Any, row: dict, lines: list[dict],
                   planned: list[rules.Planned], loc: inventory.Loc) -> None:
    """Steps 4 to 6 of the module doc for a return whose rows are written: refund, the order's
    counts, the stock. What could still refuse the stock is checked before any money moves."""
    back = [(ln["sku"], loc.code, ln["quantity"]) for ln in lines if ln["condition"] == Condition.resellable]
    await _restockable(session, lines)
    n = payment.refund_key(row["seq"], row["refund_method"], row["refund_total"],
                           [(ln["order_line_id"], ln["quantity"]) for ln in lines])
    refund = await payment.refund(session, order, row["refund_total"], method=row["refund_method"], n=n,
                                  return_id=row["id"], location=loc.code, who=who)
    if refund is not None:
        row["refund"], row["refund_id"] = refund, refund.get("id")
        await session.execute(update(R).where(R.c.id == row["id"]).values(refund=refund, refund_id=row["refund_id"]))
    returned: dict[str, int] = defaultdict(int)
    for w in planned:
        returned[w.order_line_id] += w.quantity
    await _touch_order(session, order.id, returned)
    if back:
        await inventory.receive_stock(session, back, reason="return", reference=row["id"])


async def _restockable(session: AsyncSession, lines: list[dict]) -> None:
    """422 naming a resellable line whose SKU has left the catalog (it cannot go back on hand:
    receive it as damaged)."""
    skus = {ln["sku"] for ln in lines if ln["condition"] == Condition.resellable}
    if not skus:
        return
    known = canonical(skus, await lookup_skus(session, skus))
    errors = [{"field": f"lines[{ln['position']}].condition",
               "message": f"{ln['sku']!r} is no longer in the catalog: it cannot go back on hand (receive it as "
                          f"damaged)."}
              for ln in lines if ln["condition"] == Condition.resellable and ln["sku"] not in known]
    if errors:
        raise ApiError(422, "validation_error", errors[0]["message"], errors=errors)


async def _touch_order(session: AsyncSession, order_id: str, returned: dict[str, int]) -> None:
    """quantity_returned of the order's lines up by `returned`, and the order's version (its
    answer lists its returns) and what it sold (counted again from its lines: app/orders/reporting.py)."""
    if returned:
        await session.execute(
            update(OL).where(OL.c.id == bindparam("k_id"))
            .values(quantity_returned=OL.c.quantity_returned + bindparam("k_q")),
            [{"k_id": k, "k_q": q} for k, q in sorted(returned.items())])
    await session.execute(update(O).where(O.c.id == order_id).values(version=O.c.version + 1, updated_at=clock.now(),
                                                                     **reporting.recount()))


# --------------------------------------------------------------------------- authorizations

async def _authorization(session: AsyncSession, ref: str, who: Principal, *, for_update: bool) -> tuple[Any, Any]:
    """(the return by id or code within `who`'s scope, its order row) — for a change the order
    is locked first and the return read again under that lock."""
    now = clock.now()
    stmt = select(R.c.id, R.c.order_id).where(views.ref_clause(ref))
    clause = views.scope(who, now)
    if clause is not None:
        stmt = stmt.where(clause)
    head = (await session.execute(stmt)).first()
    if head is None:
        raise views.not_found(ref)
    order = await facts.lock_order(session, head.order_id, None) if for_update else None
    row = (await session.execute(select(R).where(R.c.id == head.id))).first()
    return row, order


def _check_version(row: Any, expected: int | None) -> None:
    if expected is not None and expected != row.version:
        raise ApiError(412, "version_conflict", f"The return is at version {row.version}, the request expected "
                                                f"version {expected}.", current_version=row.version)


async def _flip(session: AsyncSession, row: Any, target: ReturnStatus, now, **values: Any) -> Any:
    """authorized -> target, conditionally (still authorized, not run out, same version)."""
    new = (await session.execute(
        update(R).where(R.c.id == row.id, R.c.status == S.authorized.value, R.c.version == row.version,
                        R.c.expires_at > now)
        .values(status=target.value, version=R.c.version + 1, updated_at=now, **values).returning(*R.c))).first()
    if new is None:  # changed since it was read (the order lock makes it next to impossible), or ran out
        fresh = (await session.execute(select(R).where(R.c.id == row.id))).first()
        if target == S.completed:
            _completable(fresh, now)
        check(effective_status(fresh.status, fresh.expires_at, now), target)
        _check_version(fresh, row.version)
        raise ApiError(409, "conflict", "The return changed while this request ran; retry.")
    return new


def _completable(row: Any, now) -> None:
    """An authorization whose window has closed cannot be completed: 422 return_window_expired;
    a completed or cancelled one: 409 invalid_transition."""
    if effective_status(row.status, row.expires_at, now) == S.expired:
        when = row.expires_at.isoformat().replace("+00:00", "Z") if row.expires_at else "?"
        raise ApiError(422, "return_window_expired", f"The return authorization expired on {when}: the return "
                                                     f"window of its units has closed.",
                       errors=[{"field": "id", "message": f"Expired on {when}."}], expires_at=when)
    check(row.status, S.completed)


def _conditions(rows: list[Any], body: ReturnComplete) -> dict[str, str]:
    """{return line id: condition}: as the store found it, else as authorized, else resellable."""
    by_line: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        by_line[r.order_line_id].append(r)
    out = {r.id: r.condition or Condition.resellable.value for r in rows}
    errors = []
    for i, ln in enumerate(body.lines or []):
        found = by_line.get(ln.order_line_id, [])
        if len(found) != 1:
            errors.append({"field": f"lines[{i}].order_line_id",
                           "message": "Not a line of this authorization." if not found else
                           "The authorization holds this order line twice (by condition): it keeps those."})
            continue
        out[found[0].id] = ln.condition.value
    if errors:
        raise ApiError(422, "validation_error", errors[0]["message"], errors=errors)
    return out


async def complete(session: AsyncSession, who: Principal, ref: str, body: ReturnComplete,
                   expected_version: int | None) -> dict:
    """An authorization's goods received at a store (any store) or a warehouse: refund and stock
    as for a return received at once; `return.completed`."""
    row, order = await _authorization(session, ref, who, for_update=True)
    now = clock.now()
    _check_version(row, expected_version)
    _completable(row, now)
    loc = await receiving_location(session, who, body.location or (row.location if who.role != "pos" else None),
                                   required=True)
    old = (await views.lines_of(session, [row.id]))[row.id]
    conditions = _conditions(old, body)
    known = await facts.load(session, order.id, now)
    planned = [rules.Planned(r.position, r.order_line_id, r.quantity, conditions[r.id], r.reason, r.sku,
                             rules.parts_of(r.sources or [])) for r in old]
    for line_id, q in _sum(planned).items():
        ln = known.lines[line_id]
        if ln.quantity_returned + q > ln.quantity_fulfilled:
            left = ln.quantity_fulfilled - ln.quantity_returned
            raise ApiError(409, "return_quantity_exceeded",
                           f"{q} unit(s) of {ln.sku!r} are authorized, but only {left} are not returned yet.",
                           errors=[{"field": "lines", "message": f"Line {line_id}: {left} returnable."}])
    refund_total, tax_total = rules.price(known.lines, planned, loc.code)
    method = body.refund_method.value if body.refund_method else row.refund_method
    new = await _flip(session, row, S.completed, now, location_id=loc.id, location=loc.code, refund_method=method,
                      refund_total=refund_total, tax_total=tax_total, completed_at=now, completed_by=who.key_id)
    lines = [{**dict(r._mapping), "condition": w.condition, "refund_amount": w.refund, "tax_amount": w.tax,
              "chargebacks": w.chargebacks} for r, w in zip(old, planned)]
    await session.execute(update(RL).where(RL.c.id == bindparam("k_id")).values(
        condition=bindparam("k_condition"), refund_amount=bindparam("k_refund"), tax_amount=bindparam("k_tax"),
        chargebacks=bindparam("k_chargebacks")),
        [{"k_id": ln["id"], "k_condition": ln["condition"], "k_refund": ln["refund_amount"],
          "k_tax": ln["tax_amount"], "k_chargebacks": ln["chargebacks"]} for ln in lines])
    out = dict(new._mapping)
    await _receive(session, who, order, out, lines, planned, loc)
    answer = views.render(out, lines, now)
    await emit(session, "return.completed", answer, channel=order.channel, location=loc.code)
    return answer


def _sum(planned: list[rules.Planned]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for w in planned:
        out[w.order_line_id] += w.quantity
    return out


async def cancel(session: AsyncSession, who: Principal, ref: str, body: ReturnCancel,
                 expected_version: int | None) -> dict:
    """An authorization called off: its units may be returned or authorized again. `return.cancelled`."""
    row, _ = await _authorization(session, ref, who, for_update=False)
    now = clock.now()
    _check_version(row, expected_version)
    check(effective_status(row.status, row.expires_at, now), S.cancelled)
    new = await _flip(session, row, S.cancelled, now, cancelled_at=now)
    await _touch_order(session, new.order_id, {})
    answer = views.render(new, (await views.lines_of(session, [new.id]))[new.id], now)
    if body.reason:
        answer["cancel_reason"] = body.reason
    await emit(session, "return.cancelled", answer, channel=new.channel, location=new.location)
    return answer


async def expire_due(session: AsyncSession, limit: int = 500) -> int:
    """The worker: authorizations past their window become expired (`return.expired`)."""
    now = clock.now()
    ids = list((await session.execute(
        select(R.c.id).where(R.c.status == S.authorized.value, R.c.expires_at <= now).order_by(R.c.id).limit(limit)
    )).scalars())
    if not ids:
        return 0
    rows = (await session.execute(
        update(R).where(R.c.id.in_(ids), and_(R.c.status == S.authorized.value, R.c.expires_at <= now))
        .values(status=S.expired.value, version=R.c.version + 1, updated_at=now).returning(*R.c))).all()
    lines = await views.lines_of(session, [r.id for r in rows])
    for r in rows:
        await emit(session, "return.expired", views.render(r, lines[r.id], now), channel=r.channel, location=r.location)
    return len(rows)
