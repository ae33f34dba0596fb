"""event indexes: the event stream by type and time, the listing feed's updated_since, retention;
a key's reservations

Revision ID: 0018
Revises: 0017

Indexes (each created only when missing):
- events (type, created_at): GET /v1/events?type= and the listing feed's "last price list
  change" (max(created_at) of one type); it replaces ix_events_type (type alone), which it covers;
- stock_levels (updated_at) and prices (updated_at): the listing feed's updated_since, an
  indexed range of what changed instead of a pass over every level and price;
- reservations (placed_by_key_id, status): the units a storefront or marketplace key holds
  (its cap, app/inventory/router.py).
Table event_retention, one row: the newest stream position (tx, event id) the retention job
has deleted (app/events/retention.py); GET /v1/events answers a cursor below it 410.
"""
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa

import app.core.db

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

TS = app.core.db.UTCDateTime(timezone=True)
INDEXES = (
    ('ix_events_type_created_at', 'events', ['type', 'created_at']),
    ('ix_stock_levels_updated_at', 'stock_levels', ['updated_at']),
    ('ix_prices_updated_at', 'prices', ['updated_at']),
    ('ix_reservations_placed_by', 'reservations', ['placed_by_key_id', 'status']),
)


def _indexes(table: str) -> set[str]:
    return {i['name'] for i in sa.inspect(op.get_bind()).get_indexes(table)}


def upgrade() -> None:
    for name, table, columns in INDEXES:
        if name not in _indexes(table):
            op.create_index(name, table, columns)
    if 'ix_events_type' in _indexes('events'):
        op.drop_index('ix_events_type', table_name='events')
    table = op.create_table(
        'event_retention',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tx', sa.BigInteger(), nullable=False),
        sa.Column('event_id', sa.String(length=40), nullable=False),
        sa.Column('updated_at', TS, nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.bulk_insert(table, [{'id': 1, 'tx': 0, 'event_id': '', 'updated_at': datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table('event_retention')
    if 'ix_events_type' not in _indexes('events'):
        op.create_index('ix_events_type', 'events', ['type'])
    for name, table, _ in reversed(INDEXES):
        if name in _indexes(table):
            op.drop_index(name, table_name=table)
