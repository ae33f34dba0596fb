"""channels: sourcing_strategy and max_splits (which strategy ships a channel's orders)

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('channels') as batch:
        batch.add_column(sa.Column('sourcing_strategy', sa.String(20), nullable=False, server_default='default'))
        batch.add_column(sa.Column('max_splits', sa.Integer(), nullable=False, server_default='3'))


def downgrade() -> None:
    with op.batch_alter_table('channels') as batch:
        batch.drop_column('max_splits')
        batch.drop_column('sourcing_strategy')
