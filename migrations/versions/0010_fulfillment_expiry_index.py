"""fulfillments: index for the expiry job (status, expires_at)

Revision ID: 0010
Revises: 0009
"""
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_fulfillments_status_expires_at', 'fulfillments', ['status', 'expires_at'])


def downgrade() -> None:
    op.drop_index('ix_fulfillments_status_expires_at', table_name='fulfillments')
