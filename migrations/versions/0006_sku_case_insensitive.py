"""SKUs are unique whatever their case: a unique index on lower(sku)

`ts-blk-m` could be created beside `TS-BLK-M`. The index makes the database refuse it (the API
answers 409 duplicate_sku before that) and serves the case-insensitive lookups
(`lower(sku) = ANY(…)` / `IN (…)`). SKUs keep the spelling they were created with.

Both databases support indexes on expressions (SQLite since 3.9). A database that already
holds SKUs differing only in case cannot take the index: the upgrade stops and names them,
to be renamed (PATCH is not possible for a SKU: re-import under another SKU, or delete the
variant) before migrating again.

Note for later SQLite batch migrations of `variants`: SQLAlchemy does not reflect expression
indexes, so a batch copy of the table must create this index again.

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    clashes = op.get_bind().execute(sa.text(
        "SELECT lower(sku) AS k, count(*) AS n FROM variants GROUP BY lower(sku) HAVING count(*) > 1 "
        "ORDER BY lower(sku) LIMIT 20")).all()
    if clashes:
        raise RuntimeError(
            "SKUs that differ only in case exist (" + ", ".join(f"{k!r} x{n}" for k, n in clashes)
            + "); give all but one of each another SKU, then migrate again.")
    op.create_index('ux_variants_sku_lower', 'variants', [sa.text('lower(sku)')], unique=True)


def downgrade() -> None:
    op.drop_index('ux_variants_sku_lower', table_name='variants')
