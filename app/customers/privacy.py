"""GDPR: everything held on a customer (export) and its erasure.

This module is the customers domain's top: it reads and rewrites rows of the domains built on
customers (orders, carts, returns, store credit, the outbox, stored idempotent answers)
through their table objects, with set-based statements, so that no other domain has to know
about erasure. Nothing here commits.

Export (`GET /v1/customers/{id}/export`): the profile, the records merged into it, the consents
and their history, addresses, orders (with lines, fulfillments and returns), returns (with
lines), carts, store-credit balances and entries, and the audit trail — of this person only.

Erasure (`DELETE /v1/customers/{id}`), in one transaction, with the customer row (and the
records merged into it) locked:
- refused with 409 `customer_has_open_orders` while an order still has to be paid or
  delivered (its shipping address is still needed): cancel or fulfil it first;
- customers: email, name, phone, loyalty card, group, addresses and consents blank, status
  `erased`, `erased_at`; the row stays as an anonymous tombstone, so orders keep their
  `customer_id` and every total; its id answers 410 `customer_erased` from then on, its email
  and card are free to register again;
- orders: `email` blank, `shipping_address` reduced to its country (VAT and reports need it);
  totals, lines, taxes, payments and returns stay as they were;
- carts: the fulfillment address removed;
- the outbox (`events.data`) and stored idempotent answers (`idempotency_keys`): every row
  about the customer (naming one of its ids or emails, or about one of its orders or returns)
  is rewritten with its personal values blank (keys `email`, `phone`, `loyalty_card`; addresses
  reduced to their country; any text equal to one of the customer's personal strings, or
  containing an email or one of five characters or more, like a return reason naming the
  customer). Rows about something else are never touched, even when they happen to contain the
  customer's name (a product called like them). This scans those tables (no index finds text
  in a JSON document); erasure is rare and the idempotency table holds a day;
- free text linked to the customer (return reasons, store-credit notes, fulfillment reasons)
  is blanked where it contains one of the customer's personal strings;
- kept: consent history and audit trail (they hold no personal data), store-credit entries
  (amounts), payments, returns' figures;
- event `customer.erased` {id} and an audit row.
Not reachable from here: webhook receivers that already got an event, logs, backups.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any, Iterable

import orjson
from sqlalchemy import Text, bindparam, cast, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.db import is_postgres
from app.core.errors import ApiError
from app.core.idempotency import IdempotencyRecord
from app.core.responses import rfc3339
from app.core.sql import chunks, where_in
from app.customers import audit, consents, service
from app.customers.models import Customer, CustomerStatus
from app.events.models import Event
from app.events.service import emit
from app.orders import views as order_views
from app.orders.models import Cart, Fulfillment, Order
from app.payments.models import StoreCreditEntry
from app.returns import views as return_views
from app.returns.models import Return, ReturnLine

C = Customer.__table__
O = Order.__table__
CART = Cart.__table__
F = Fulfillment.__table__
SC = StoreCreditEntry.__table__
R = Return.__table__
RL = ReturnLine.__table__
E = Event.__table__
IDEM = IdempotencyRecord.__table__

OPEN_ORDER_STATUSES = ("pending_payment", "confirmed", "partially_fulfilled")
PERSONAL_KEYS = frozenset({"email", "phone", "loyalty_card"})
ADDRESS_KEYS = frozenset({"address", "shipping_address"})
ADDRESS_TEXT = ("name", "line1", "line2")
MIN_FREE_TEXT = 5  # personal strings at least this long are searched inside free text
ORDER_CHUNK = 500
IDEMPOTENCY_WINDOW = timedelta(days=2)  # stored answers are kept a day (app/core/idempotency.py): older ones are gone


# --------------------------------------------------------------------------- export

def _cart(c: Any) -> dict[str, Any]:
    m = c._mapping
    return {"id": c.id, "object": "cart", "channel": c.channel, "status": c.status, "order": c.order_id,
            "lines": list(c.lines or []), "coupon_codes": list(c.coupon_codes or []),
            "fulfillment": c.fulfillment or {}, "source": m.get("source"), "campaign": m.get("campaign"),
            "created_at": rfc3339(c.created_at), "updated_at": rfc3339(c.updated_at)}


async def export(session: AsyncSession, customer: Customer) -> dict[str, Any]:
    """Everything held on the customer (see the module doc), as one JSON object."""
    merged = await service.merged_ids(session, customer.id)
    ids = [customer.id, *merged]
    order_rows = list((await session.execute(select(O).where(where_in(session, O.c.customer_id, ids))
                                             .order_by(O.c.id))).all())
    orders: list[dict] = []
    for i in range(0, len(order_rows), ORDER_CHUNK):
        orders += await order_views.render_orders(session, order_rows[i:i + ORDER_CHUNK], None)
    order_ids = [o.id for o in order_rows]
    returns: list[dict] = []
    for i in range(0, len(order_ids), ORDER_CHUNK):
        rows = (await session.execute(select(R).where(where_in(session, R.c.order_id, order_ids[i:i + ORDER_CHUNK]))
                                      .order_by(R.c.id))).all()
        lines = await return_views.lines_of(session, [r.id for r in rows])
        returns += [return_views.render(r, lines.get(r.id, [])) for r in rows]
    carts = [_cart(c) for c in (await session.execute(select(CART).where(where_in(session, CART.c.customer_id, ids))
                                                        .order_by(CART.c.id))).all()]
    entries = (await session.execute(select(SC).where(where_in(session, SC.c.customer_id, ids))
                                     .order_by(SC.c.created_at, SC.c.id))).all()
    balances: dict[str, int] = defaultdict(int)
    for e in entries:
        balances[e.currency] += e.amount
    profile = service.render(customer)
    return {
        "object": "customer_export", "generated_at": rfc3339(clock.now()), "customer": profile,
        "merged_from": merged,
        "consents": {"current": profile["consents"], "history": await consents.history(session, ids)},
        "addresses": profile["addresses"], "orders": orders, "returns": returns, "carts": carts,
        "store_credit": {"balances": [{"amount": v, "currency": k} for k, v in sorted(balances.items())],
                         "entries": [{"id": e.id, "amount": {"amount": e.amount, "currency": e.currency},
                                      "order": e.order_id, "return": e.return_id, "note": e.note,
                                      "created_at": rfc3339(e.created_at)} for e in entries]},
        "audit": await audit.all_of(session, ids),
    }


# --------------------------------------------------------------------------- scrubbing JSON

class Personal:
    """The personal strings of one customer (lower-cased): exact values to blank wherever they
    appear in a JSON document, and the longer ones to look for inside free text."""

    def __init__(self, values: Iterable[str | None]):
        self.values = {v.strip().lower() for v in values if isinstance(v, str) and v.strip()}
        self.emails = {v for v in self.values if "@" in v}
        self.long = {v for v in self.values if len(v) >= MIN_FREE_TEXT} | self.emails

    def matches(self, s: str) -> bool:
        low = s.strip().lower()
        return low in self.values or any(v in low for v in self.long)

    def in_free_text(self) -> list[str]:
        return sorted(self.long)


def scrub(value: Any, personal: Personal) -> Any:
    """`value` (a JSON document) with its personal values blank: keys email / phone /
    loyalty_card, addresses reduced to their country, any string that is one of `personal`."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in PERSONAL_KEYS and v is not None:
                out[k] = None
            elif k in ADDRESS_KEYS and isinstance(v, dict):
                out[k] = {"country": v["country"]} if "country" in v else None
            elif k == "addresses" and isinstance(v, list):
                out[k] = []
            else:
                out[k] = scrub(v, personal)
        return out
    if isinstance(value, list):
        return [scrub(v, personal) for v in value]
    if isinstance(value, str) and personal.matches(value):
        return None
    return value


def _like(s: str) -> str:
    return "%" + s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def _scrub_events(session: AsyncSession, needles: list[str], linked: list[str], personal: Personal) -> int:
    """Events mentioning the customer (`needles`: its ids and emails, anywhere in the payload) or
    about one of its orders or returns (`linked`: `data.id` or `data.order`), rewritten."""
    doc = cast(E.c.data, Text)
    about = [E.c.data["id"].as_string(), E.c.data["order"].as_string()]
    seen: dict[str, Any] = {}
    for part in chunks(linked) if linked else [[]]:
        clauses = [doc.ilike(_like(n), escape="\\") for n in needles]
        if part:
            clauses += [where_in(session, expr, part) for expr in about]
        for r in (await session.execute(select(E.c.id, E.c.data).where(or_(*clauses)))).all():
            seen[r.id] = r.data
    changed = []
    for event_id, data in seen.items():
        clean = scrub(data, personal)
        if clean != data:
            changed.append({"k_id": event_id, "k_data": clean})
    if changed:
        await session.execute(update(E).where(E.c.id == bindparam("k_id"))
                              .values(data=bindparam("k_data", type_=E.c.data.type)), changed)
    return len(changed)


async def _scrub_idempotent_answers(session: AsyncSession, needles: list[str], personal: Personal) -> int:
    """Stored answers mentioning one of `needles` (ids and emails of the customer, ids of its
    recent orders and returns), rewritten."""
    if is_postgres(session):
        body = func.convert_from(IDEM.c.response_body, "UTF8")
    else:
        body = cast(IDEM.c.response_body, Text)
    rows = (await session.execute(select(IDEM.c.api_key_id, IDEM.c.key, IDEM.c.response_body).where(
        IDEM.c.response_body.is_not(None), or_(*[body.ilike(_like(n), escape="\\") for n in needles])))).all()
    changed = []
    for r in rows:
        try:
            data = orjson.loads(r.response_body)
        except orjson.JSONDecodeError:
            changed.append({"k_api": r.api_key_id, "k_key": r.key, "k_body": b""})
            continue
        clean = scrub(data, personal)
        if clean != data:
            changed.append({"k_api": r.api_key_id, "k_key": r.key, "k_body": orjson.dumps(clean)})
    if changed:
        await session.execute(update(IDEM).where(IDEM.c.api_key_id == bindparam("k_api"),
                                                 IDEM.c.key == bindparam("k_key"))
                              .values(response_body=bindparam("k_body")), changed)
    return len(changed)


async def _scrub_free_text(session: AsyncSession, column, link, personal: Personal) -> None:
    """`column` NULL where it contains one of the customer's longer personal strings."""
    needles = personal.in_free_text()
    if needles:
        await session.execute(update(column.table).where(link, or_(*[column.ilike(_like(n), escape="\\")
                                                                     for n in needles])).values({column.name: None}))


# --------------------------------------------------------------------------- erasure

def _personal_values(customers: list[Any], orders: list[Any], carts: list[Any]) -> list[str | None]:
    """What is personal about this person, wherever it was written: the customer records' email,
    name, phone, card and address lines, and the contact and addresses its orders and carts took."""
    values: list[str | None] = []
    for row in customers:
        values += [row.email, row.name, row.phone, row.loyalty_card]
        values += [a.get(k) for a in (row.addresses or []) for k in ADDRESS_TEXT]
    for o in orders:
        values.append(o.email)
        if isinstance(o.shipping_address, dict):
            values += [o.shipping_address.get(k) for k in ADDRESS_TEXT]
    for c in carts:
        address = (c.fulfillment or {}).get("address")
        if isinstance(address, dict):
            values += [address.get(k) for k in ADDRESS_TEXT]
    return values


def _orders_statement(pg: bool) -> str:
    """email blank, shipping address reduced to its country (JSON null and no address stay)."""
    if pg:
        address = ("CASE WHEN jsonb_typeof(shipping_address) = 'object' "
                   "THEN jsonb_build_object('country', shipping_address -> 'country') ELSE shipping_address END")
    else:
        address = ("CASE WHEN json_type(shipping_address) = 'object' "
                   "THEN json_object('country', json_extract(shipping_address, '$.country')) ELSE shipping_address END")
    return f"UPDATE {O.name} SET email = NULL, shipping_address = {address} WHERE customer_id IN :ids"


def _carts_statement(pg: bool) -> str:
    remove = "fulfillment - 'address'" if pg else "json_remove(fulfillment, '$.address')"
    return f"UPDATE {CART.name} SET fulfillment = {remove} WHERE customer_id IN :ids"


async def erase(session: AsyncSession, ref: str, *, actor: audit.Actor, expected_version: int | None = None) -> str:
    """Erase the customer's personal data everywhere (see the module doc). Returns its id.
    404 unknown, 410 customer_erased already, 409 customer_has_open_orders, 412 on If-Match."""
    found = await service.find(session, ref, lock=False)  # carts and orders are locked first (service.py)
    if found is None:
        raise ApiError(404, "not_found", f"Customer {ref!r} was not found.")
    if found.status == service.ERASED:
        raise service.erased(found)
    known = [found.id, *await service.merged_ids(session, found.id)]
    await session.execute(select(CART.c.id).where(where_in(session, CART.c.customer_id, known)).with_for_update())
    await session.execute(select(O.c.id).where(where_in(session, O.c.customer_id, known)).with_for_update())
    customer = await service.get_or_404(session, found.id, for_update=True)
    service.check_version(customer.version, (expected_version,))
    merged = list((await session.execute(select(C).where(C.c.merged_into == customer.id).order_by(C.c.id)
                                         .with_for_update())).all())
    ids = [customer.id, *(m.id for m in merged)]
    open_orders = (await session.execute(select(O.c.id, O.c.number, O.c.status).where(
        where_in(session, O.c.customer_id, ids), O.c.status.in_(OPEN_ORDER_STATUSES)).order_by(O.c.id).limit(20))).all()
    if open_orders:
        listed = [{"id": o.id, "number": o.number, "status": o.status} for o in open_orders]
        raise ApiError(409, "customer_has_open_orders",
                       "The customer has orders still to be paid or delivered (their shipping address is still "
                       "needed): " + ", ".join(o.number for o in open_orders) + ". Cancel or fulfil them first.",
                       orders=listed)

    orders = (await session.execute(select(O.c.id, O.c.created_at, O.c.email, O.c.shipping_address)
                                    .where(where_in(session, O.c.customer_id, ids)))).all()
    carts = (await session.execute(select(CART.c.fulfillment).where(where_in(session, CART.c.customer_id, ids)))).all()
    personal = Personal(_personal_values([customer, *merged], orders, carts))
    needles = sorted({*ids, *personal.emails})
    returns = (await session.execute(select(R.c.id, R.c.created_at).where(
        R.c.order_id.in_(select(O.c.id).where(O.c.customer_id.in_(ids)))))).all()
    linked = sorted(r.id for r in (*orders, *returns))
    recent = clock.now() - IDEMPOTENCY_WINDOW
    recent_ids = [r.id for r in (*orders, *returns) if r.created_at >= recent]

    now = clock.now()
    await session.execute(update(C).where(where_in(session, C.c.id, ids)).values(
        email=None, email_lower=None, name=None, phone=None, loyalty_card=None, group=None, addresses=[],
        consents={}, status=CustomerStatus.erased.value, erased_at=now, version=C.c.version + 1, updated_at=now))
    pg = is_postgres(session)
    for statement in (_orders_statement(pg), _carts_statement(pg)):
        await session.execute(text(statement).bindparams(bindparam("ids", expanding=True)), {"ids": ids})
    await _scrub_events(session, needles, linked, personal)
    await _scrub_idempotent_answers(session, [*needles, *recent_ids], personal)
    their_orders = select(O.c.id).where(O.c.customer_id.in_(ids))
    await _scrub_free_text(session, RL.c.reason, RL.c.return_id.in_(select(R.c.id).where(R.c.order_id.in_(their_orders))),
                           personal)
    await _scrub_free_text(session, F.c.reason, F.c.order_id.in_(their_orders), personal)
    await _scrub_free_text(session, SC.c.note, SC.c.customer_id.in_(ids), personal)

    await audit.record(session, actor, audit.AuditAction.erase, ids)
    await emit(session, "customer.erased", {"id": customer.id, "merged": ids[1:], "version": customer.version + 1},
               channel=customer.channel)
    return customer.id
