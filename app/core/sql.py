"""Generic SQL helpers for set-based statements on both databases."""
from collections.abc import Iterable, Sequence

from sqlalchemy import any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY as PG_ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import is_postgres

IN_CHUNK = 5000  # values per IN (...) list: far below SQLite's and asyncpg's parameter limits


def where_in(session: AsyncSession, column, values: Iterable):
    """`column IN (...)`; on PostgreSQL `column = ANY(:array)`: one parameter, and a plan that
    stays an index scan when the prepared statement switches to a generic plan (a generic
    plan of `IN ($1 … $5000)` on a not-yet-analysed table degrades to a sequential scan
    comparing every row with every parameter)."""
    values = list(values)
    if is_postgres(session):
        return column == any_(bindparam(None, values, type_=PG_ARRAY(column.type), unique=True))
    return column.in_(values)


def in_param(pg: bool, column, name: str):
    """`column IN :name` for a statement built once and run with a list bound to `name`:
    PostgreSQL `= ANY(:name)` (one array parameter), elsewhere an expanding IN."""
    if pg:
        return column == any_(bindparam(name, type_=PG_ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def insert_ignore(session: AsyncSession, table, conflict: list[str]):
    """`INSERT … ON CONFLICT (conflict) DO NOTHING` on either database: a row whose key exists
    is skipped (a concurrent inserter's row wins; on PostgreSQL this waits for its commit)."""
    if is_postgres(session):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing(index_elements=conflict)


def chunks(values: Sequence, size: int = IN_CHUNK):
    for i in range(0, len(values), size):
        yield values[i:i + size]
