"""payments, payment operations (captures, refunds, voids), Stripe webhook events, store credit

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa

import app.core.db

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

TS = app.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('amount_authorized', sa.BigInteger(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('amount_captured', sa.BigInteger(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('amount_refunded', sa.BigInteger(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('multicapture', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('capture_before', TS, nullable=True))
        batch.add_column(sa.Column('authorization_warned_at', TS, nullable=True))
        batch.add_column(sa.Column('payment_expires_at', TS, nullable=True))
    op.create_index('ix_orders_payment_reference', 'orders', ['payment_reference'])
    with op.batch_alter_table('channels') as batch:
        batch.add_column(sa.Column('payment_timeout_minutes', sa.Integer(), nullable=False, server_default='60'))
    op.create_table(
        'payment_operations',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('order_id', sa.String(40), sa.ForeignKey('orders.id'), nullable=False),
        sa.Column('provider', sa.String(20), nullable=False),
        sa.Column('kind', sa.String(10), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(3), nullable=False),
        sa.Column('final', sa.Boolean(), nullable=False),
        sa.Column('reason', sa.String(30), nullable=False),
        sa.Column('status', sa.String(12), nullable=False),
        sa.Column('idempotency_key', sa.String(120), nullable=False, unique=True),
        sa.Column('reference', sa.String(200)),
        sa.Column('return_id', sa.String(40)),
        sa.Column('location', sa.String(100)),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', TS),
        sa.Column('error', sa.String(500)),
        sa.Column('api_key_id', sa.String(40)),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('updated_at', TS, nullable=False),
    )
    op.create_index('ix_payment_operations_order_id', 'payment_operations', ['order_id'])
    op.create_index('ix_payment_operations_return_id', 'payment_operations', ['return_id'])
    op.create_index('ix_payment_operations_due', 'payment_operations', ['status', 'next_attempt_at'])
    op.create_table(
        'stripe_events',
        sa.Column('id', sa.String(255), primary_key=True),
        sa.Column('type', sa.String(100), nullable=False),
        sa.Column('payment_intent', sa.String(255)),
        sa.Column('order_id', sa.String(40)),
        sa.Column('outcome', sa.String(40), nullable=False),
        sa.Column('received_at', TS, nullable=False),
    )
    op.create_table(
        'store_credit_entries',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('customer_id', sa.String(40), nullable=False),
        sa.Column('currency', sa.String(3), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('order_id', sa.String(40)),
        sa.Column('return_id', sa.String(40)),
        sa.Column('note', sa.String(200)),
        sa.Column('api_key_id', sa.String(40)),
        sa.Column('created_at', TS, nullable=False),
    )
    op.create_index('ix_store_credit_customer', 'store_credit_entries', ['customer_id', 'currency'])


def downgrade() -> None:
    op.drop_table('store_credit_entries')
    op.drop_table('stripe_events')
    op.drop_table('payment_operations')
    with op.batch_alter_table('channels') as batch:
        batch.drop_column('payment_timeout_minutes')
    op.drop_index('ix_orders_payment_reference', 'orders')
    with op.batch_alter_table('orders') as batch:
        for name in ('payment_expires_at', 'authorization_warned_at', 'capture_before', 'multicapture',
                     'amount_refunded', 'amount_captured', 'amount_authorized'):
            batch.drop_column(name)
