"""PostgreSQL settings for the length of one report, set on the request's connection (reads run
in autocommit) and reset after, whatever happened:
- work_mem 64 MB: the aggregates over a year hash a few hundred thousand orders, which spill to
  disk in the default 4 MB;
- jit off: compiling costs more (a few hundred ms) than it saves at this size;
- plan_cache_mode force_custom_plan: the statements are prepared (asyncpg), and after five runs
  PostgreSQL may switch to a generic plan that does not know the period; for the sales report by
  source that plan took 48 s instead of 0.5 s (nested loops over a year). Planning with the real
  values costs a millisecond or two;
- `parallel=False`: no parallel workers, for a statement whose plan would build the same hash in
  every worker (the first fulfillments of the sales report by location): on two cores it runs
  faster alone (bench/bench_reports.py).
"""
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

WORK_MEM = "64MB"


@asynccontextmanager
async def report_settings(session: AsyncSession, pg: bool, *, parallel: bool = True):
    if not pg:
        yield
        return
    settings = {"work_mem": WORK_MEM, "jit": "off", "plan_cache_mode": "force_custom_plan",
                **({} if parallel else {"max_parallel_workers_per_gather": "0"})}
    for name, value in settings.items():
        await session.execute(text(f"SET {name} = '{value}'"))
    try:
        yield
    finally:
        try:
            for name in settings:
                await session.execute(text(f"RESET {name}"))
        except DBAPIError:  # the connection is gone (the pool drops it): the report's own error matters
            pass
