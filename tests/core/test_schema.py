"""The migrations build exactly what the models declare, for every table (a model index without
its migration, or the other way round, fails here), and the indexes the feeds need (migration
0018): GET /v1/events by type and time, the listing feed's updated_since over stock levels and
prices."""
import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import app.models_registry  # noqa: F401  (every table in the metadata)
from app.core.db import get_engine


async def test_migrations_match_the_models():
    async with get_engine().connect() as conn:
        def compare(sync):
            with warnings.catch_warnings():  # SQLite cannot reflect the expression index on lower(sku)
                warnings.simplefilter("ignore")
                return compare_metadata(MigrationContext.configure(sync, opts={"compare_type": False}), SQLModel.metadata)

        diffs = await conn.run_sync(compare)
        indexes = await conn.run_sync(lambda sync: {t: {i["name"]: i["column_names"] for i in inspect(sync).get_indexes(t)}
                                                    for t in ("events", "stock_levels", "prices")})
    assert diffs == []
    assert indexes["events"]["ix_events_type_created_at"] == ["type", "created_at"]
    assert "ix_events_type" not in indexes["events"]  # covered by (type, created_at)
    assert indexes["stock_levels"]["ix_stock_levels_updated_at"] == ["updated_at"]
    assert indexes["prices"]["ix_prices_updated_at"] == ["updated_at"]
