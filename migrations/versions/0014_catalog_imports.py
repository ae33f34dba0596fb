"""catalog import jobs (large imports run in the background)

Revision ID: 0014
Revises: 0013
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import app.core.db

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
TS = app.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'catalog_imports',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('status', sa.String(10), nullable=False),
        sa.Column('format', sa.String(10), nullable=False),
        sa.Column('content_kind', sa.String(10), nullable=False),
        sa.Column('options', JSON, nullable=False),
        sa.Column('payload', sa.LargeBinary(), nullable=True),
        sa.Column('rows_total', sa.Integer(), nullable=False),
        sa.Column('rows_done', sa.Integer(), nullable=False),
        sa.Column('chunks_done', sa.Integer(), nullable=False),
        sa.Column('counts', JSON, nullable=False),
        sa.Column('errors', JSON, nullable=False),
        sa.Column('errors_truncated', sa.Boolean(), nullable=False),
        sa.Column('unknown_columns', JSON, nullable=False),
        sa.Column('warnings', JSON, nullable=False),
        sa.Column('error', JSON, nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('api_key_id', sa.String(40), nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('started_at', TS, nullable=True),
        sa.Column('heartbeat_at', TS, nullable=True),
        sa.Column('finished_at', TS, nullable=True),
    )
    op.create_index('ix_catalog_imports_status', 'catalog_imports', ['status'])


def downgrade() -> None:
    op.drop_index('ix_catalog_imports_status', table_name='catalog_imports')
    op.drop_table('catalog_imports')
