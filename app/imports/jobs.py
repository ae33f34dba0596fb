"""`POST /v1/catalog/import` as a use case: small files answered inline, large ones as a job.

The use case composes the catalog's bulk upsert (app/catalog/importer.py, fed by import_formats.py
and import_rows.py) with the pricing and inventory services (stock_prices.py): it lives above
all three, in app/imports/, so that the catalog never imports pricing or inventory.

`submit` reads the file in a worker thread (parsing and validation never run on the event
loop). A file of at most IMPORT_INLINE_MAX_ROWS rows (setting `import_inline_max_rows`,
default 5,000) is written in the request's transaction (chunk by chunk, so no stretch of
Python work holds the loop for long) and answered `200` with the counts.
A larger one (or any one sent with `Prefer: respond-async`) is stored as a job row with its
file and answered `202 Accepted` (`Location: /v1/catalog/imports/{id}`); nothing of it is
written in the request. The file waits in `catalog_imports.payload` (bytea / BLOB: an import is
at most importer.MAX_BYTES, 50 MB, which a column holds comfortably) and is deleted when the
job ends.

A job runs
* in the API process, started by a callback once the request's transaction has committed;
* and, recoverably, in the worker (`python -m app.cli worker`, or INLINE_WORKER): every few
  seconds it takes over queued jobs and running ones whose last chunk committed more than
  `import_stale_seconds` ago (their process died). The claim is one conditional UPDATE that
  bumps `attempts`; every later write of the runner names that attempt, so a runner that lost
  the job to another one stops at its next chunk instead of writing beside it. A job claimed
  a fourth time fails ("gave up").

The job reads its file again (in a thread), cuts the rows into chunks of `import_chunk_rows`
(default 1,000; the rows of one product together) and writes each chunk in its own
transaction together with the job's progress, counts and errors: progress is visible while it
runs, and a job taken over goes on after the last committed chunk. A job that fails says why (`error: {code, message}`); the
chunks committed before stay (the import is an idempotent upsert: send the file again).
"""
import asyncio
import logging
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import anyio
from pydantic import BaseModel
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import import_formats as formats
from app.catalog import import_rows, importer
from app.catalog.import_rows import ImportOptions
from app.core import clock
from app.core.db import on_commit, unit_of_work
from app.core.errors import ApiError
from app.core.ids import new_id
from app.core.responses import rfc3339
from app.core.settings import get_settings
from app.core.transaction import unavailable_problem
from app.imports.models import CatalogImport
from app.imports.stock_prices import StockAndPrices
from app.inventory import service as inventory
from app.pricing import service as pricing
from app.worker import periodic

log = logging.getLogger("app.catalog.import")  # the name operators know (it predates app/imports)
CI = CatalogImport.__table__
MAX_ATTEMPTS = 3
INLINE_REFERENCE = "catalog-import"  # the stock ledger's reference of inline imports (jobs: their id)


class ImportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# --------------------------------------------------------------------------- answers (OpenAPI)

class FieldError(BaseModel):
    field: str
    message: str


class RowErrors(BaseModel):
    row: int
    sku: str | None
    errors: list[FieldError]


class ImportResult(BaseModel):
    """The inline answer (200)."""

    format: str
    created: int
    updated: int
    unchanged: int
    failed: int
    products_created: int
    products_updated: int
    prices_set: int
    stock_set: int
    errors: list[RowErrors]
    errors_truncated: bool
    unknown_columns: list[str]
    warnings: list[str]


class ImportProgress(BaseModel):
    rows_total: int
    rows_done: int
    created: int
    updated: int
    unchanged: int
    failed: int
    products_created: int
    products_updated: int
    prices_set: int
    stock_set: int


class JobRowError(BaseModel):
    row: int
    sku: str | None
    field: str
    message: str


class JobError(BaseModel):
    code: str
    message: str


class ImportJobOut(BaseModel):
    """A background import (202 and GET /v1/catalog/imports/{id})."""

    id: str
    object: str = "catalog_import"
    status: ImportStatus
    format: str
    options: dict[str, str | None]
    progress: ImportProgress
    errors: list[JobRowError]
    errors_truncated: bool
    unknown_columns: list[str]
    warnings: list[str]
    error: JobError | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


# --------------------------------------------------------------------------- the request

async def submit(session: AsyncSession, body: bytes, kind: str, options: ImportOptions, *, api_key_id: str | None,
                 force_job: bool = False) -> tuple[int, dict]:
    """-> (200, the counts) for an inline import, (202, the job) for a queued one."""
    await _check_options(session, options)
    parsed = await anyio.to_thread.run_sync(formats.parse, body, kind, options)
    if len(parsed.rows) > importer.MAX_ROWS:
        raise ApiError(413, "payload_too_large", f"At most {importer.MAX_ROWS} rows per import; split the file.")
    settings = get_settings()
    if not force_job and len(parsed.rows) <= settings.import_inline_max_rows:
        rows = await anyio.to_thread.run_sync(import_rows.prepare, parsed)
        # in the request's one transaction, chunk by chunk: the loop is never held for long
        counts = dict.fromkeys(importer.COUNTS, 0)
        extras = StockAndPrices(options, INLINE_REFERENCE)
        for chunk in importer.plan_chunks(rows, max(1, settings.import_chunk_rows)):
            for k, v in (await importer.apply_rows(session, chunk, extras)).items():
                counts[k] += v
        if counts["created"] >= importer.ANALYZE_AFTER:
            await importer.analyze(session)
        return 200, inline_answer(parsed, rows, counts)
    job_id = new_id("imp")
    now = clock.now()
    await session.execute(insert(CI).values(
        id=job_id, status=ImportStatus.QUEUED, format=parsed.format, content_kind=kind, options=options.as_dict(),
        payload=body, rows_total=len(parsed.rows), rows_done=0, chunks_done=0, counts=dict.fromkeys(importer.COUNTS, 0),
        errors=[], errors_truncated=False, unknown_columns=parsed.unknown_columns, warnings=parsed.warnings,
        error=None, attempts=0, api_key_id=api_key_id, created_at=now))
    await on_commit(session, lambda: start(job_id))
    return 202, await get(session, job_id)


async def _check_options(session: AsyncSession, options: ImportOptions) -> None:
    """?price_list= and ?location= name things that exist (else 422 for the whole file)."""
    errors = []
    if options.price_list is not None and not await pricing.existing_price_list_codes(session, [options.price_list]):
        errors.append({"field": "price_list", "message": f"Unknown price list {options.price_list!r}."})
    if options.location is not None and options.location not in await inventory.locations_by_code(session, [options.location]):
        errors.append({"field": "location", "message": f"Unknown location {options.location!r}."})
    if errors:
        raise ApiError(422, "validation_error", errors[0]["message"], errors=errors)


def inline_answer(parsed: import_rows.ParsedFile, rows: list[import_rows.Row], counts: dict[str, int]) -> dict:
    failed = importer.row_errors(rows, parsed.aliases)
    return {
        "format": parsed.format, **counts,
        "errors": [{"row": r.line, "sku": r.sku, "errors": errs} for r, errs in failed[:importer.MAX_REPORTED_ERRORS]],
        "errors_truncated": len(failed) > importer.MAX_REPORTED_ERRORS,
        "unknown_columns": parsed.unknown_columns, "warnings": parsed.warnings,
    }


# --------------------------------------------------------------------------- reading a job

_COLUMNS = [c for c in CI.columns if c.name != "payload"]


def render(j: Any) -> dict:
    return {
        "id": j.id, "object": "catalog_import", "status": j.status, "format": j.format, "options": dict(j.options),
        "progress": {"rows_total": j.rows_total, "rows_done": j.rows_done,
                     **{k: (j.counts or {}).get(k, 0) for k in importer.COUNTS}},
        "errors": list(j.errors), "errors_truncated": j.errors_truncated,
        "unknown_columns": list(j.unknown_columns), "warnings": list(j.warnings), "error": j.error,
        "created_at": rfc3339(j.created_at), "started_at": rfc3339(j.started_at), "finished_at": rfc3339(j.finished_at),
    }


async def get(session: AsyncSession, job_id: str) -> dict:
    row = (await session.execute(select(*_COLUMNS).where(CI.c.id == job_id))).first()
    if row is None:
        raise ApiError(404, "not_found", f"Import {job_id!r} was not found.")
    return render(row)


# --------------------------------------------------------------------------- running a job

_tasks: set[asyncio.Task] = set()  # the API process's running jobs (a reference keeps them alive)


def start(job_id: str) -> None:
    """Run the job in this process, now (called once the request that queued it has committed)."""
    task = asyncio.get_running_loop().create_task(run_job(job_id), name=f"catalog import {job_id}")
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def run_pending() -> int:
    """The worker's round: every queued job, and every running one whose runner went silent."""
    done = 0
    while True:
        async with unit_of_work() as session:
            ids = (await session.execute(select(CI.c.id).where(_claimable()).order_by(CI.c.created_at).limit(10))).scalars().all()
        if not ids:
            return done
        ran = 0
        for job_id in ids:
            if await run_job(job_id):
                ran += 1
        done += ran
        if not ran:  # another runner took them meanwhile
            return done


def _claimable():
    stale = clock.now() - timedelta(seconds=get_settings().import_stale_seconds)
    return or_(CI.c.status == ImportStatus.QUEUED,
               and_(CI.c.status == ImportStatus.RUNNING, or_(CI.c.heartbeat_at.is_(None), CI.c.heartbeat_at < stale)))


class _Superseded(Exception):
    """Another runner claimed the job (this one was taken for dead)."""


async def run_job(job_id: str) -> bool:
    """Claim the job and run it to its end; False when it was not claimable (done, or held by a live runner)."""
    try:
        claim = await _claim(job_id)
    except Exception:  # noqa: BLE001 - the worker will try again
        log.exception("claiming import %s failed", job_id)
        return False
    if claim is None:
        return False
    try:
        await _run(claim)
    except _Superseded:
        log.warning("import %s was taken over by another runner", job_id)
    except Exception as exc:  # noqa: BLE001 - recorded on the job
        await _fail(claim, exc)
    return True


async def _claim(job_id: str) -> Any:
    now = clock.now()
    async with unit_of_work() as session:
        claimed = (await session.execute(
            update(CI).where(CI.c.id == job_id, _claimable())
            .values(status=ImportStatus.RUNNING, attempts=CI.c.attempts + 1, heartbeat_at=now)
            .returning(CI.c.attempts))).scalar_one_or_none()
        if claimed is None:
            return None
        if claimed > MAX_ATTEMPTS:
            await _finish(session, job_id, claimed, ImportStatus.FAILED, error={
                "code": "import_abandoned",
                "message": f"Gave up after {MAX_ATTEMPTS} attempts: the process running the import stopped each time "
                           "(out of memory?). The rows counted in progress were imported; split the file."})
            return None
        await session.execute(update(CI).where(CI.c.id == job_id, CI.c.started_at.is_(None)).values(started_at=now))
        return (await session.execute(
            select(CI.c.id, CI.c.attempts, CI.c.payload, CI.c.content_kind, CI.c.options, CI.c.chunks_done,
                   CI.c.rows_done, CI.c.counts, CI.c.errors, CI.c.errors_truncated).where(CI.c.id == job_id))).one()


async def _run(job: Any) -> None:
    settings = get_settings()
    options = ImportOptions(**job.options)
    parsed = await anyio.to_thread.run_sync(formats.parse, job.payload, job.content_kind, options)
    rows = await anyio.to_thread.run_sync(import_rows.prepare, parsed)
    chunks = importer.plan_chunks(rows, max(1, settings.import_chunk_rows))
    counts = {k: (job.counts or {}).get(k, 0) for k in importer.COUNTS}
    errors, truncated = list(job.errors), job.errors_truncated
    rows_done = job.rows_done
    for i in range(job.chunks_done, len(chunks)):
        chunk = chunks[i]
        last = i == len(chunks) - 1
        async with unit_of_work() as session:
            before = counts["created"]
            got = await importer.apply_rows(session, chunk, StockAndPrices(options, job.id))
            for k, v in got.items():
                counts[k] += v
            if counts["created"] >= importer.ANALYZE_AFTER and (last or before < importer.ANALYZE_AFTER):
                await importer.analyze(session)  # once the bulk load is large, and at its end
            for r, errs in importer.row_errors(chunk, parsed.aliases):
                for e in errs:
                    if len(errors) < importer.MAX_REPORTED_ERRORS:
                        errors.append({"row": r.line, "sku": r.sku, **e})
                    else:
                        truncated = True
            rows_done += len(chunk)
            values: dict[str, Any] = {"chunks_done": i + 1, "rows_done": rows_done, "counts": counts, "errors": errors,
                                      "errors_truncated": truncated, "heartbeat_at": clock.now()}
            if last:
                values.update(status=ImportStatus.SUCCEEDED, finished_at=clock.now(), payload=None)
            res = await session.execute(update(CI).where(CI.c.id == job.id, CI.c.status == ImportStatus.RUNNING,
                                                         CI.c.attempts == job.attempts).values(**values))
            if res.rowcount != 1:
                raise _Superseded()
        await asyncio.sleep(0)
    if not chunks:  # cannot happen (an empty file is refused), but never leave a job running
        async with unit_of_work() as session:
            await _finish(session, job.id, job.attempts, ImportStatus.SUCCEEDED)


async def _finish(session: AsyncSession, job_id: str, attempt: int, status: ImportStatus, error: dict | None = None) -> None:
    await session.execute(update(CI).where(CI.c.id == job_id, CI.c.attempts == attempt).values(
        status=status, error=error, finished_at=clock.now(), heartbeat_at=clock.now(), payload=None))


async def _fail(job: Any, exc: Exception) -> None:
    if isinstance(exc, ApiError):
        error = {"code": exc.code, "message": exc.detail}
    elif unavailable_problem(exc) is not None:
        # the database is away: leave the job running; it is taken over once its heartbeat is stale
        log.warning("import %s paused: the database is unavailable (%s)", job.id, exc)
        return
    else:
        log.exception("import %s failed", job.id, exc_info=exc)
        error = {"code": "internal_error",
                 "message": f"The import stopped on an unexpected error ({type(exc).__name__}). The rows counted in "
                            "progress were imported; the others were not."}
    try:
        async with unit_of_work() as session:
            await _finish(session, job.id, job.attempts, ImportStatus.FAILED, error)
    except Exception:  # noqa: BLE001 - left running: the worker takes it over when it is stale
        log.exception("recording the failure of import %s failed", job.id)


@periodic(5)
async def run_catalog_imports() -> int:
    """The worker's share (`python -m app.cli worker`): queued jobs and jobs whose runner died."""
    return await run_pending()
