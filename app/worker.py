"""Background work: one loop running every registered periodic job.

Domains register jobs with `@periodic(seconds)`; `python -m app.cli worker`
(or INLINE_WORKER=true inside the API process) runs them. Each job is an async
function taking no arguments that opens its own sessions and returns a count
of what it did.
"""
import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import delete

from app.core import clock
from app.core.db import dispose_engine, unit_of_work
from app.core.idempotency import IdempotencyRecord
from app.core.settings import get_settings

log = logging.getLogger("app.worker")
Job = Callable[[], Awaitable[int]]
JOBS: list[tuple[float, Job]] = []


def periodic(seconds: float):
    def register(fn: Job) -> Job:
        JOBS.append((seconds, fn))
        return fn

    return register


@periodic(300)
async def purge_idempotency_keys() -> int:
    cutoff = clock.now() - timedelta(seconds=get_settings().idempotency_ttl_seconds)
    async with unit_of_work() as session:
        res = await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff))
        return res.rowcount or 0


@periodic(600)
async def purge_rate_limit_counters() -> int:
    """Counters of windows that ended more than two days ago (no limit window is longer than a day)."""
    from app.auth.models import RateLimitCounter

    cutoff = int(clock.now().timestamp()) - 2 * 86400
    async with unit_of_work() as session:
        res = await session.execute(delete(RateLimitCounter).where(RateLimitCounter.window_start < cutoff))
        return res.rowcount or 0


def _load_jobs() -> None:
    """Import the modules that register jobs."""
    import importlib

    for mod in ("app.inventory.jobs", "app.orders.jobs", "app.payments.jobs", "app.returns.jobs",
                "app.imports.jobs", "app.events.delivery", "app.events.retention"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name is None or not mod.startswith(exc.name):
                raise


async def run_once() -> dict[str, int]:
    _load_jobs()
    done = {}
    for _, job in JOBS:
        try:
            done[job.__name__] = await job()
        except Exception:  # noqa: BLE001 - one failing job must not stop the others
            log.exception("job %s failed", job.__name__)
    return done


async def run(once: bool = False) -> None:
    _load_jobs()
    if once:
        print(await run_once())
        await dispose_engine()
        return
    tasks = [asyncio.create_task(_loop(seconds, job)) for seconds, job in JOBS]
    try:
        await asyncio.gather(*tasks)
    finally:
        await dispose_engine()


async def _loop(seconds: float, job: Job) -> None:
    while True:
        try:
            await job()
        except Exception:  # noqa: BLE001
            log.exception("job %s failed", job.__name__)
        await asyncio.sleep(seconds)


async def _run_all_loops() -> None:
    await asyncio.gather(*(_loop(s, j) for s, j in JOBS))


def start_inline() -> asyncio.Task:
    """The jobs inside the API process (INLINE_WORKER=true); the lifespan cancels the task on shutdown."""
    _load_jobs()
    return asyncio.get_running_loop().create_task(_run_all_loops())
