"""`POST /v1/catalog/import` and `GET /v1/catalog/imports/{id}`: the import use case (app/imports/jobs.py).

Thin: streams the body within importer.MAX_BYTES, reads the query, answers 200 (inline) or 202
(a job, with `Location`). The paths and the `catalog` tag are the catalog's, as before the use
case moved out of app/catalog.
"""
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import ADMIN, Principal
from app.catalog import importer
from app.catalog.codes import checked_text
from app.catalog.import_formats import content_kind
from app.catalog.import_rows import ImportOptions
from app.core.db import get_session
from app.core.errors import ApiError
from app.core.responses import json_response
from app.imports import jobs

router = APIRouter(tags=["catalog"])
Session = Annotated[AsyncSession, Depends(get_session)]


IMPORT_BODY = {
    "required": True,
    "content": {
        "application/x-ndjson": {"schema": {"type": "string"}, "example":
            '{"sku": "TS-BLK-M", "product_handle": "organic-tee", "product_title": "Organic Tee", '
            '"options": {"size": "M", "colour": "black"}, "gtin": "4006381333931", "status": "active", '
            '"channels": ["web-de"]}\n'},
        "text/csv": {"schema": {"type": "string"}, "example":
            "sku,product_handle,product_title,option.size,option.colour,gtin,status,channels\n"
            "TS-BLK-M,organic-tee,Organic Tee,M,black,4006381333931,active,web-de|pos-de\n"},
    },
}


IMPORT_DESCRIPTION = """
One variant a row, upserted by `sku`; idempotent; per-row errors without rejecting the good rows.

* **Formats**: NDJSON, our CSV (`option.<name>`, `attr.<name>`, `product_attr.<name>` columns;
  pipe-separated `channels` and `components`), and Shopify's product CSV export as it is
  (detected by its header: Handle, Title, Option1 Name/Value, Variant SKU, Variant Barcode,
  Variant Price, Variant Grams, Variant Inventory Qty, Status …; the rows of one Handle are one
  product). The answer's `format` says which was read.
* **Price and stock**: `price` (a decimal in the list's currency, "19.99") goes into the price
  list of the row's `price_list` or `?price_list=`; `stock` sets the on-hand count at the row's
  `location` or `?location=` (a `count` movement in the stock ledger). Shopify's Variant Price
  and Variant Inventory Qty are read when the query names the list and location.
* **Unknown columns** are not imported and are listed once in `unknown_columns`.
* **Size**: a file of at most IMPORT_INLINE_MAX_ROWS rows (default 5,000) is answered `200` with
  the counts. A larger one, or any with `Prefer: respond-async`, is answered `202 Accepted` with
  `Location: /v1/catalog/imports/{id}`: it runs in the background, chunk by chunk, each chunk
  committed on its own (poll for status, progress and errors). At most 50 MB and 200,000 rows.
"""


@router.post("/v1/catalog/import", response_model=jobs.ImportResult, openapi_extra={"requestBody": IMPORT_BODY},
             responses={202: {"model": jobs.ImportJobOut,
                              "description": "A large file, queued as a job: poll `Location` (GET /v1/catalog/imports/{id})."}},
             summary="Bulk upsert variants by sku from NDJSON, CSV or a Shopify export (per-row errors; idempotent)",
             description=IMPORT_DESCRIPTION)
async def import_catalog(
    request: Request, session: Session,
    price_list: Annotated[str | None, Query(max_length=100, description="Price list (code) of the `price` column")] = None,
    location: Annotated[str | None, Query(max_length=100, description="Location (code) of the `stock` column")] = None,
    who: Principal = Depends(ADMIN),
):
    kind = content_kind(request.headers.get("content-type"))
    too_large = ApiError(413, "payload_too_large", f"An import is at most {importer.MAX_BYTES // (1024 * 1024)} MB; split the file.")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > importer.MAX_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > importer.MAX_BYTES:
            raise too_large
        chunks.append(chunk)
    options = ImportOptions(price_list=checked_text("price_list", price_list) or None, location=checked_text("location", location) or None)
    force_job = "respond-async" in request.headers.get("prefer", "").lower()
    status, answer = await jobs.submit(session, b"".join(chunks), kind, options, api_key_id=who.key_id,
                                              force_job=force_job)
    if status == 202:
        return json_response(answer, 202, headers={"Location": f"/v1/catalog/imports/{answer['id']}", "Retry-After": "1"})
    return json_response(answer)


@router.get("/v1/catalog/imports/{import_id}", response_model=jobs.ImportJobOut,
            summary="A background catalog import: status, progress, per-row errors")
async def get_import(import_id: str, session: Session, _: Principal = Depends(ADMIN)):
    return json_response(await jobs.get(session, checked_text("import_id", import_id[:100])))
