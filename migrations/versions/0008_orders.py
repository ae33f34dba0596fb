"""orders: carts, orders, order lines, fulfillments (+ lines, status history), order numbers

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import app.core.db

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
TS = app.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'carts',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('channel', sa.String(100), nullable=False, index=True),
        sa.Column('customer_id', sa.String(40)),
        sa.Column('coupon_codes', JSON, nullable=False),
        sa.Column('lines', JSON, nullable=False),
        sa.Column('fulfillment', JSON, nullable=False),
        sa.Column('status', sa.String(12), nullable=False),
        sa.Column('order_id', sa.String(40)),
        sa.Column('api_key_id', sa.String(40)),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('updated_at', TS, nullable=False),
    )
    op.create_table(
        'orders',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('number', sa.String(30), nullable=False),
        sa.Column('channel', sa.String(100), nullable=False),
        sa.Column('external_id', sa.String(200)),
        sa.Column('cart_id', sa.String(40), unique=True),
        sa.Column('customer_id', sa.String(40)),
        sa.Column('email', sa.String(320)),
        sa.Column('status', sa.String(20), nullable=False),
        sa.Column('payment_status', sa.String(20), nullable=False),
        sa.Column('payment_provider', sa.String(20)),
        sa.Column('payment_reference', sa.String(200)),
        sa.Column('price_source', sa.String(10), nullable=False),
        sa.Column('currency', sa.String(3), nullable=False),
        sa.Column('prices_include_tax', sa.Boolean(), nullable=False),
        sa.Column('subtotal', sa.BigInteger(), nullable=False),
        sa.Column('discount_total', sa.BigInteger(), nullable=False),
        sa.Column('tax_total', sa.BigInteger(), nullable=False),
        sa.Column('total', sa.BigInteger(), nullable=False),
        sa.Column('coupon_codes', JSON, nullable=False),
        sa.Column('promotions', JSON, nullable=False),
        sa.Column('fulfillment_method', sa.String(10), nullable=False),
        sa.Column('shipping_address', JSON),
        sa.Column('location', sa.String(100)),
        sa.Column('source', sa.String(100)),
        sa.Column('api_key_id', sa.String(40)),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('updated_at', TS, nullable=False),
        sa.UniqueConstraint('channel', 'external_id', name='uq_orders_channel_external_id'),
    )
    op.create_index('ix_orders_number', 'orders', ['number'], unique=True)
    op.create_index('ix_orders_channel', 'orders', ['channel'])
    op.create_index('ix_orders_customer_id', 'orders', ['customer_id'])
    op.create_index('ix_orders_created_at', 'orders', ['created_at'])
    op.create_table(
        'order_lines',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('order_id', sa.String(40), sa.ForeignKey('orders.id'), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('sku', sa.String(100), nullable=False),
        sa.Column('title', sa.String(500)),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('unit_price', sa.BigInteger(), nullable=False),
        sa.Column('subtotal', sa.BigInteger(), nullable=False),
        sa.Column('discounts', JSON, nullable=False),
        sa.Column('discount_total', sa.BigInteger(), nullable=False),
        sa.Column('total', sa.BigInteger(), nullable=False),
        sa.Column('tax_rate_bp', sa.Integer(), nullable=False),
        sa.Column('tax_amount', sa.BigInteger(), nullable=False),
        sa.Column('components', JSON),
        sa.Column('quantity_fulfilled', sa.Integer(), nullable=False),
        sa.Column('quantity_cancelled', sa.Integer(), nullable=False),
        sa.Column('quantity_returned', sa.Integer(), nullable=False),
    )
    op.create_index('ix_order_lines_order_id', 'order_lines', ['order_id'])
    op.create_table(
        'fulfillments',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('order_id', sa.String(40), sa.ForeignKey('orders.id'), nullable=False),
        sa.Column('location_id', sa.String(40), sa.ForeignKey('locations.id'), nullable=False),
        sa.Column('location', sa.String(100), nullable=False),
        sa.Column('method', sa.String(10), nullable=False),
        sa.Column('kind', sa.String(10), nullable=False),
        sa.Column('status', sa.String(12), nullable=False),
        sa.Column('sourcing', JSON, nullable=False),
        sa.Column('replaces', sa.String(40)),
        sa.Column('pickup_code', sa.String(12)),
        sa.Column('pickup_attempts', sa.Integer(), nullable=False),
        sa.Column('expires_at', TS),
        sa.Column('carrier', sa.String(100)),
        sa.Column('tracking_number', sa.String(200)),
        sa.Column('reason', sa.String(500)),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('updated_at', TS, nullable=False),
    )
    op.create_index('ix_fulfillments_order_id', 'fulfillments', ['order_id'])
    op.create_index('ix_fulfillments_location_status', 'fulfillments', ['location_id', 'status'])
    op.create_table(
        'fulfillment_lines',
        sa.Column('fulfillment_id', sa.String(40), sa.ForeignKey('fulfillments.id'), primary_key=True),
        sa.Column('order_line_id', sa.String(40), sa.ForeignKey('order_lines.id'), primary_key=True),
        sa.Column('sku', sa.String(100), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
    )
    op.create_table(
        'fulfillment_events',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('fulfillment_id', sa.String(40), sa.ForeignKey('fulfillments.id'), nullable=False),
        sa.Column('from_status', sa.String(12)),
        sa.Column('to_status', sa.String(12), nullable=False),
        sa.Column('api_key_id', sa.String(40)),
        sa.Column('note', sa.String(500)),
        sa.Column('created_at', TS, nullable=False),
    )
    op.create_index('ix_fulfillment_events_fulfillment_id', 'fulfillment_events', ['fulfillment_id'])
    op.create_table(
        'order_counters',
        sa.Column('name', sa.String(20), primary_key=True),
        sa.Column('last', sa.BigInteger(), nullable=False),
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE SEQUENCE order_number_seq')
    else:
        op.execute("INSERT INTO order_counters (name, last) VALUES ('orders', 0)")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP SEQUENCE IF EXISTS order_number_seq')
    for t in ('order_counters', 'fulfillment_events', 'fulfillment_lines', 'fulfillments', 'order_lines', 'orders', 'carts'):
        op.drop_table(t)
