"""pricing: price lists, prices (tiers), tax rates, promotions

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import app.core.db

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
TS = app.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'price_lists',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('code', sa.String(length=100), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=True),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('channels', JSON, nullable=False),
        sa.Column('customer_group', sa.String(length=100), nullable=True),
        sa.Column('valid_from', TS, nullable=True),
        sa.Column('valid_to', TS, nullable=True),
        sa.Column('priority', sa.Integer(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('updated_at', TS, nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('price_lists') as b:
        b.create_index('ix_price_lists_code', ['code'], unique=True)
    op.create_table(
        'prices',
        sa.Column('price_list_id', sa.String(length=40), nullable=False),
        sa.Column('sku', sa.String(length=100), nullable=False),
        sa.Column('min_quantity', sa.Integer(), nullable=False),
        sa.Column('amount', sa.Integer(), nullable=False),
        sa.Column('updated_at', TS, nullable=False),
        sa.ForeignKeyConstraint(['price_list_id'], ['price_lists.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('price_list_id', 'sku', 'min_quantity'),
    )
    with op.batch_alter_table('prices') as b:
        b.create_index('ix_prices_sku', ['sku', 'price_list_id'], unique=False)
    op.create_table(
        'tax_rates',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('country', sa.String(length=2), nullable=False),
        sa.Column('tax_class', sa.String(length=10), nullable=False),
        sa.Column('rate_bp', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('updated_at', TS, nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('country', 'tax_class', name='uq_tax_rates_country_class'),
    )
    op.create_table(
        'promotions',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('code', sa.String(length=100), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('type', sa.String(length=20), nullable=False),
        sa.Column('params', JSON, nullable=False),
        sa.Column('skus', JSON, nullable=True),
        sa.Column('categories', JSON, nullable=True),
        sa.Column('channels', JSON, nullable=True),
        sa.Column('customer_groups', JSON, nullable=True),
        sa.Column('coupon_code', sa.String(length=100), nullable=True),
        sa.Column('valid_from', TS, nullable=True),
        sa.Column('valid_to', TS, nullable=True),
        sa.Column('priority', sa.Integer(), nullable=False),
        sa.Column('stackable', sa.Boolean(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('updated_at', TS, nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('promotions') as b:
        b.create_index('ix_promotions_code', ['code'], unique=True)
        b.create_index('ix_promotions_coupon_code', ['coupon_code'], unique=False)
        b.create_index('ix_promotions_active', ['active'], unique=False)


def downgrade() -> None:
    op.drop_table('promotions')
    op.drop_table('tax_rates')
    op.drop_table('prices')
    op.drop_table('price_lists')
