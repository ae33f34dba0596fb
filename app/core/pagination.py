"""Keyset (cursor) pagination over time-ordered ids.

A cursor is the opaque, url-safe encoding of the last id returned. Because ids
only ever grow and pages are `WHERE id > :after ORDER BY id`, concurrent inserts
never shift a page: nothing is skipped or repeated.
"""
import base64
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select

from app.core.errors import validation_error

MAX_LIMIT = 500


class PageParams(BaseModel):
    limit: int
    after: str | None


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        pad = "=" * (-len(cursor) % 4)
        value = base64.urlsafe_b64decode(cursor + pad).decode()
    except Exception:
        raise validation_error("cursor", "Invalid cursor.") from None
    if not value or len(value) > 64 or "_" not in value:
        raise validation_error("cursor", "Invalid cursor.")
    return value


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (max 500)")] = 50,
    cursor: Annotated[str | None, Query(max_length=200, pattern=r"^[A-Za-z0-9_-]+$",
                                        description="`next_cursor` of the previous page (opaque, url-safe)")] = None,
) -> PageParams:
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


def apply_page(stmt: Select, id_column, page: PageParams) -> Select:
    if page.after:
        stmt = stmt.where(id_column > page.after)
    return stmt.order_by(id_column).limit(page.limit + 1)


def page_result(rows: list[Any], page: PageParams, render, id_of=lambda r: r.id) -> dict[str, Any]:
    has_more = len(rows) > page.limit
    rows = rows[: page.limit]
    return {
        "data": [render(r) for r in rows],
        "next_cursor": encode_cursor(id_of(rows[-1])) if has_more and rows else None,
    }
