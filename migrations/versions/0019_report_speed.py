"""report speed: what each order sold on the order row, the order on its lines; covering indexes
for the sales report

Revision ID: 0019
Revises: 0018

app/orders/reporting.py says what these are and how they are kept; here they are filled from the
orders and lines there are:
- orders: live_units, live_total, live_discount_total, returned_units, returned_total, the sums
  over their lines that the sales report adds up (its per-order groups read `orders` alone);
- order_lines: order_created_at, order_channel, order_currency, order_location, order_coupon,
  the order's values that never change after checkout (the report by SKU reads the lines alone).

Indexes (INCLUDE columns on PostgreSQL only: SQLite has none, and gets the same keys):
- ix_orders_report: orders (created_at) INCLUDE (every column the sales report reads of an
  order): a period's orders in one index-only range scan. It replaces ix_orders_created_at (the
  same key);
- ix_orders_channel_created: orders (channel, created_at) INCLUDE (id, customer_id, source,
  status, location): attribution's in-store sales (the period's orders of the `pos` channels),
  index-only. It replaces ix_orders_channel (its first column);
- ix_orders_touches: orders (created_at) INCLUDE (customer_id, channel, source, campaign) of the
  orders with a source by a known customer: attribution's online touches, index-only (a small
  part of the orders);
- ix_order_lines_sku_order (sku, order_id) gains INCLUDE (the line's quantities and totals, the
  order's values on it): the report by SKU reads the lines in SKU order without visiting a table.

The backfill rewrites every order and order line once (PostgreSQL: plan for the time and for a
VACUUM after it on a large database).
"""
from alembic import op
import sqlalchemy as sa

import app.core.db

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

TS = app.core.db.UTCDateTime(timezone=True)
FIGURES = (('live_units', sa.Integer()), ('live_total', sa.BigInteger()), ('live_discount_total', sa.BigInteger()),
           ('returned_units', sa.Integer()), ('returned_total', sa.BigInteger()))
# per line (all operands non-negative: integer division is the floor on both databases)
SUMS = {'live_units': 'quantity - quantity_cancelled',
        'live_total': 'total * (quantity - quantity_cancelled) / quantity',
        'live_discount_total': 'discount_total * (quantity - quantity_cancelled) / quantity',
        'returned_units': 'quantity_returned',
        'returned_total': 'total * quantity_returned / quantity'}
ON_LINES = (('order_created_at', TS, 'created_at'), ('order_channel', sa.String(100), 'channel'),
            ('order_currency', sa.String(3), 'currency'), ('order_location', sa.String(100), 'location'))
TOUCHES = 'source IS NOT NULL AND customer_id IS NOT NULL'
CHANNEL_INCLUDE = ['id', 'customer_id', 'source', 'status', 'location']
LINE_INCLUDE = ['quantity', 'quantity_cancelled', 'quantity_returned', 'total', 'discount_total', 'order_created_at',
                'order_channel', 'order_currency', 'order_location', 'order_coupon']
REPORT_INCLUDE = ['id', 'status', 'channel', 'currency', 'location', 'source', 'campaign', 'customer_id',
                  'coupon_codes', 'live_units', 'live_total', 'live_discount_total', 'returned_units',
                  'returned_total']


def upgrade() -> None:
    pg = op.get_bind().dialect.name == 'postgresql'
    with op.batch_alter_table('orders') as batch:
        for name, type_ in FIGURES:
            batch.add_column(sa.Column(name, type_, nullable=False, server_default='0'))
    with op.batch_alter_table('order_lines') as batch:
        for name, type_, _ in ON_LINES:
            batch.add_column(sa.Column(name, type_, nullable=True))
        batch.add_column(sa.Column('order_coupon', sa.Boolean(), nullable=True))
    if pg:
        op.execute("UPDATE orders o SET " + ", ".join(f"{k} = t.{k}" for k in SUMS)
                   + " FROM (SELECT order_id, " + ", ".join(f"sum({v}) AS {k}" for k, v in SUMS.items())
                   + " FROM order_lines GROUP BY order_id) t WHERE t.order_id = o.id")
        op.execute("UPDATE order_lines l SET " + ", ".join(f"{line} = o.{order}" for line, _, order in ON_LINES)
                   + ", order_coupon = jsonb_array_length(o.coupon_codes) > 0 FROM orders o WHERE o.id = l.order_id")
    else:
        op.execute("UPDATE orders SET " + ", ".join(
            f"{k} = coalesce((SELECT sum({v}) FROM order_lines WHERE order_id = orders.id), 0)"
            for k, v in SUMS.items()))
        op.execute("UPDATE order_lines SET " + ", ".join(
            f"{line} = (SELECT {order} FROM orders WHERE orders.id = order_lines.order_id)" for line, _, order in ON_LINES)
            + ", order_coupon = (SELECT json_array_length(coupon_codes) > 0 FROM orders"
              " WHERE orders.id = order_lines.order_id)")
    with op.batch_alter_table('order_lines') as batch:
        for name, type_, _ in ON_LINES:
            if name != 'order_location':
                batch.alter_column(name, existing_type=type_, nullable=False)
        batch.alter_column('order_coupon', existing_type=sa.Boolean(), nullable=False)
    op.drop_index('ix_orders_created_at', table_name='orders')
    op.create_index('ix_orders_report', 'orders', ['created_at'], postgresql_include=REPORT_INCLUDE)
    op.drop_index('ix_orders_channel', table_name='orders')
    op.create_index('ix_orders_channel_created', 'orders', ['channel', 'created_at'],
                    postgresql_include=CHANNEL_INCLUDE)
    op.create_index('ix_orders_touches', 'orders', ['created_at'],
                    postgresql_include=['customer_id', 'channel', 'source', 'campaign'],
                    postgresql_where=sa.text(TOUCHES), sqlite_where=sa.text(TOUCHES))
    op.drop_index('ix_order_lines_sku_order', table_name='order_lines')
    op.create_index('ix_order_lines_sku_order', 'order_lines', ['sku', 'order_id'], postgresql_include=LINE_INCLUDE)


def downgrade() -> None:
    op.drop_index('ix_order_lines_sku_order', table_name='order_lines')
    op.create_index('ix_order_lines_sku_order', 'order_lines', ['sku', 'order_id'])
    op.drop_index('ix_orders_touches', table_name='orders')
    op.drop_index('ix_orders_channel_created', table_name='orders')
    op.create_index('ix_orders_channel', 'orders', ['channel'])
    op.drop_index('ix_orders_report', table_name='orders')
    op.create_index('ix_orders_created_at', 'orders', ['created_at'])
    with op.batch_alter_table('order_lines') as batch:
        batch.drop_column('order_coupon')
        for name, _, _ in reversed(ON_LINES):
            batch.drop_column(name)
    with op.batch_alter_table('orders') as batch:
        for name, _ in reversed(FIGURES):
            batch.drop_column(name)
