"""Human order numbers: `WEB-000123`, unique across every channel, usable wherever an order id is.

The prefix says the channel's type (web WEB, app APP, pos POS, marketplace MKT, social SOC);
the number counts every order of the shop (one counter, so a number never repeats whatever
its prefix). PostgreSQL: the sequence `order_number_seq` (no lock, gaps when a transaction
rolls back). SQLite: the row `order_counters['orders']` bumped with UPDATE … RETURNING (SQLite
serializes writers, so the counter never hands out a number twice; a rollback returns it).
Six digits at least, more when the count outgrows them (`WEB-1000000`).

`number_value(session, channel_type)` gives what to write into `orders.number`: on PostgreSQL
an SQL expression evaluated by the INSERT itself (no statement of its own; read the number back
with RETURNING), on SQLite the string (one statement).
"""
from typing import Any

from sqlalchemy import Integer, String, cast, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import is_postgres

PREFIXES = {"web": "WEB", "app": "APP", "pos": "POS", "marketplace": "MKT", "social": "SOC"}
DIGITS = 6

_SQLITE_NEXT = text("UPDATE order_counters SET last = last + 1 WHERE name = 'orders' RETURNING last")


def prefix(channel_type: str) -> str:
    return PREFIXES.get(channel_type, "ORD")


def format_number(channel_type: str, n: int) -> str:
    return f"{prefix(channel_type)}-{n:0{DIGITS}d}"


def _pg_expression(channel_type: str) -> Any:
    """'WEB-' || lpad(n, max(6, length(n)), '0') over one nextval (a scalar subquery, so the
    sequence moves once)."""
    seq = select(cast(func.nextval("order_number_seq"), String).label("n")).subquery("seq")
    width = func.greatest(literal(DIGITS, Integer), func.length(seq.c.n))
    return select(literal(prefix(channel_type) + "-", String) + func.lpad(seq.c.n, width, "0")).scalar_subquery()


async def _sqlite_next(session: AsyncSession) -> int:
    n = (await session.execute(_SQLITE_NEXT)).scalar()
    if n is None:  # the counter row is missing (a database not made by the migrations)
        await session.execute(text("INSERT INTO order_counters (name, last) VALUES ('orders', 1)"))
        n = 1
    return int(n)


async def number_value(session: AsyncSession, channel_type: str) -> Any:
    """What to write into orders.number: an SQL expression on PostgreSQL, a string on SQLite."""
    if is_postgres(session):
        return _pg_expression(channel_type)
    return format_number(channel_type, await _sqlite_next(session))
