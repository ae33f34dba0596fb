"""returns and return lines (return-in-store, authorizations)

Revision ID: 0013
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import app.core.db

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
TS = app.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'returns',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('order_id', sa.String(40), sa.ForeignKey('orders.id'), nullable=False),
        sa.Column('order_number', sa.String(30), nullable=False),
        sa.Column('channel', sa.String(100), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(12), nullable=False),
        sa.Column('code', sa.String(12), unique=True),
        sa.Column('location_id', sa.String(40), sa.ForeignKey('locations.id')),
        sa.Column('location', sa.String(100)),
        sa.Column('refund_method', sa.String(12), nullable=False),
        sa.Column('currency', sa.String(3), nullable=False),
        sa.Column('refund_total', sa.BigInteger(), nullable=False),
        sa.Column('tax_total', sa.BigInteger(), nullable=False),
        sa.Column('refund_id', sa.String(40)),
        sa.Column('refund', JSON),
        sa.Column('expires_at', TS),
        sa.Column('completed_at', TS),
        sa.Column('cancelled_at', TS),
        sa.Column('api_key_id', sa.String(40)),
        sa.Column('completed_by', sa.String(40)),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('updated_at', TS, nullable=False),
        sa.UniqueConstraint('order_id', 'seq', name='uq_returns_order_seq'),
    )
    op.create_index('ix_returns_order_id', 'returns', ['order_id'])
    op.create_index('ix_returns_order_number', 'returns', ['order_number'])
    op.create_index('ix_returns_channel', 'returns', ['channel'])
    op.create_index('ix_returns_location_id', 'returns', ['location_id'])
    op.create_index('ix_returns_status_expires_at', 'returns', ['status', 'expires_at'])
    op.create_table(
        'return_lines',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('return_id', sa.String(40), sa.ForeignKey('returns.id'), nullable=False),
        sa.Column('order_line_id', sa.String(40), sa.ForeignKey('order_lines.id'), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('sku', sa.String(100), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(500)),
        sa.Column('condition', sa.String(12)),
        sa.Column('refund_amount', sa.BigInteger(), nullable=False),
        sa.Column('tax_amount', sa.BigInteger(), nullable=False),
        sa.Column('sources', JSON, nullable=False),
        sa.Column('chargebacks', JSON, nullable=False),
    )
    op.create_index('ix_return_lines_return_id', 'return_lines', ['return_id'])
    op.create_index('ix_return_lines_order_line_id', 'return_lines', ['order_line_id'])


def downgrade() -> None:
    op.drop_table('return_lines')
    op.drop_table('returns')
