"""PostgreSQL settings for the length of one report: the aggregates over a year of order lines
hash a few hundred thousand orders, which spill to disk in the default 4 MB of work_mem, and
JIT compilation costs more (a few hundred ms) than it saves at this size. Set on the request's
connection (reads run in autocommit) and reset after, whatever happened."""
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

WORK_MEM = "64MB"


@asynccontextmanager
async def report_settings(session: AsyncSession, pg: bool):
    if not pg:
        yield
        return
    await session.execute(text(f"SET work_mem = '{WORK_MEM}'"))
    await session.execute(text("SET jit = off"))
    try:
        yield
    finally:
        try:
            await session.execute(text("RESET work_mem"))
            await session.execute(text("RESET jit"))
        except DBAPIError:  # the connection is gone (the pool drops it): the report's own error matters
            pass
