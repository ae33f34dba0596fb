"""customers: one record per shopper (email unique whatever its case, loyalty card, group)

`email_lower` holds the normalized email (computed by the app, so both databases compare
alike) under a unique index; `email` keeps the spelling given. Both nullable so a later
GDPR erasure can blank them and keep the row the orders point at.

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import app.core.db

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
TS = app.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'customers',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('email', sa.String(320)),
        sa.Column('email_lower', sa.String(1000)),
        sa.Column('name', sa.String(200)),
        sa.Column('phone', sa.String(40)),
        sa.Column('group', sa.String(100)),
        sa.Column('loyalty_card', sa.String(64)),
        sa.Column('addresses', JSON, nullable=False),
        sa.Column('consents', JSON, nullable=False),
        sa.Column('channel', sa.String(100)),
        sa.Column('api_key_id', sa.String(40)),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('updated_at', TS, nullable=False),
    )
    op.create_index('ix_customers_email_lower', 'customers', ['email_lower'], unique=True)
    op.create_index('ix_customers_loyalty_card', 'customers', ['loyalty_card'], unique=True)
    op.create_index('ix_customers_channel', 'customers', ['channel'])


def downgrade() -> None:
    op.drop_table('customers')
