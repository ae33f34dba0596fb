"""reports: attribution columns, and indexes for set-based sales, customer and co-purchase reads

Revision ID: 0017
Revises: 0016

Attribution: carts and orders carry `source` and `campaign` (orders.source existed, unused);
a cart's pass to its order at checkout (app/reports/attribution.py has the rule that credits
an in-store sale to an earlier online touch).

Indexes:
- orders (customer_id, created_at): a customer's orders in time order (attribution's earlier
  online orders, the customer report's "bought before the period");
- carts (customer_id, created_at) of carts that carry a source (attribution's earlier carts);
- order_lines (sku, order_id): the latest orders that contain a product (recommendations);
- fulfillments (created_at): the period's fulfillments (sales by location: an order's first one).
PostgreSQL: statistics on the calendar day of orders.created_at in UTC and Europe/Berlin (the
sales report's group_by=day expression), so the planner knows a year holds ~366 days rather
than one group per order, and aggregates in parallel.
"""
from alembic import op
import sqlalchemy as sa

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

DAY_STATISTICS = (('st_orders_day_utc', 'UTC'), ('st_orders_day_berlin', 'Europe/Berlin'))


def upgrade() -> None:
    with op.batch_alter_table('carts') as batch:
        batch.add_column(sa.Column('source', sa.String(100), nullable=True))
        batch.add_column(sa.Column('campaign', sa.String(100), nullable=True))
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('campaign', sa.String(100), nullable=True))
    op.create_index('ix_orders_customer_created', 'orders', ['customer_id', 'created_at'])
    op.create_index('ix_carts_customer_source', 'carts', ['customer_id', 'created_at'],
                    postgresql_where=sa.text('source IS NOT NULL'), sqlite_where=sa.text('source IS NOT NULL'))
    op.create_index('ix_order_lines_sku_order', 'order_lines', ['sku', 'order_id'])
    op.create_index('ix_fulfillments_created_at', 'fulfillments', ['created_at'])
    if op.get_bind().dialect.name == 'postgresql':
        for name, zone in DAY_STATISTICS:
            op.execute(f"CREATE STATISTICS {name} ON ((timezone('{zone}'::text, created_at))::date) FROM orders")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for name, _ in DAY_STATISTICS:
            op.execute(f"DROP STATISTICS IF EXISTS {name}")
    op.drop_index('ix_fulfillments_created_at', table_name='fulfillments')
    op.drop_index('ix_order_lines_sku_order', table_name='order_lines')
    op.drop_index('ix_carts_customer_source', table_name='carts')
    op.drop_index('ix_orders_customer_created', table_name='orders')
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('campaign')
    with op.batch_alter_table('carts') as batch:
        batch.drop_column('campaign')
        batch.drop_column('source')
