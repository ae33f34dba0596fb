"""Catalog import jobs: a large `POST /v1/catalog/import` runs in the background.

The table keeps its name, `catalog_imports`, and its migration (0014_catalog_imports.py).

The uploaded file is kept in `payload` (at most importer.MAX_BYTES, 50 MB: a bytea / BLOB column
holds that comfortably) until the job ends, then set to NULL. Progress and the (bounded)
per-row errors are written with every committed chunk of rows, so `GET
/v1/catalog/imports/{id}` shows them while the job runs, and a job taken over after a crash
goes on after the last committed chunk (`chunks_done`).
"""
from datetime import datetime

from sqlalchemy import LargeBinary
from sqlmodel import Field, SQLModel

from app.core.models import id_field, json_field, ts_field


class CatalogImport(SQLModel, table=True):
    __tablename__ = "catalog_imports"

    id: str = id_field()
    status: str = Field(max_length=10, index=True)  # queued | running | succeeded | failed
    format: str = Field(max_length=10)  # ndjson | csv | shopify
    content_kind: str = Field(max_length=10)  # ndjson | csv (how to read the payload)
    options: dict = json_field(dict)  # {price_list, location}: the request's query parameters
    payload: bytes | None = Field(default=None, sa_type=LargeBinary, nullable=True)
    rows_total: int = 0
    rows_done: int = 0
    chunks_done: int = 0
    counts: dict = json_field(dict)  # created, updated, unchanged, failed, products_*, prices_set, stock_set
    errors: list = json_field(list)  # [{row, sku, field, message}], at most importer.MAX_REPORTED_ERRORS
    errors_truncated: bool = False
    unknown_columns: list = json_field(list)
    warnings: list = json_field(list)
    error: dict | None = json_field(lambda: None, nullable=True)  # why a failed job failed: {code, message}
    attempts: int = 0  # claims so far; also the fencing token of the runner that holds the job
    api_key_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = ts_field()
    started_at: datetime | None = ts_field(nullable=True)
    heartbeat_at: datetime | None = ts_field(nullable=True)  # the last committed chunk (or the claim)
    finished_at: datetime | None = ts_field(nullable=True)
