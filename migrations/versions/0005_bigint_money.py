"""money columns are 64-bit: prices.amount INTEGER -> BIGINT

The request schemas allow an amount up to 10^13 minor units (app.core.schemas.MAX_AMOUNT);
a 32-bit column stopped at 2,147,483,647 (21 million in a two-decimal currency).

PostgreSQL: ALTER COLUMN … TYPE BIGINT (a rewrite of the table under an exclusive lock).
SQLite stores every INTEGER in up to 8 bytes already; the batch copy only changes the
declared type, so the database matches the models (autogenerate sees no difference).

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column('prices', 'amount', type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=False)
    else:
        with op.batch_alter_table('prices') as b:
            b.alter_column('amount', type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=False)


def downgrade() -> None:
    # Fails (on PostgreSQL) while a price above 2^31-1 exists: lower or delete those first.
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column('prices', 'amount', type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=False)
    else:
        with op.batch_alter_table('prices') as b:
            b.alter_column('amount', type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=False)
