"""reservations: who placed a hold (API key, and the store of a POS key) and list indexes

Revision ID: 0015b
Revises: 0015

A POS key may hold stock at another store for the customer at its till; the hold remembers
the key and its store (`placed_from_location_id`), so that store's tills can list and release
it. Indexes serve GET /v1/reservations as each kind of key pages it (by id): per holding
location, per placing store, per channel.
"""
from alembic import op
import sqlalchemy as sa

revision = '0015b'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('reservations') as batch:
        batch.add_column(sa.Column('placed_by_key_id', sa.String(40), nullable=True))
        batch.add_column(sa.Column('placed_from_location_id', sa.String(40), nullable=True))
    op.create_index('ix_reservations_location', 'reservations', ['location_id', 'id'])
    op.create_index('ix_reservations_placed_from', 'reservations', ['placed_from_location_id', 'id'])
    op.create_index('ix_reservations_channel', 'reservations', ['channel', 'id'])


def downgrade() -> None:
    op.drop_index('ix_reservations_channel', table_name='reservations')
    op.drop_index('ix_reservations_placed_from', table_name='reservations')
    op.drop_index('ix_reservations_location', table_name='reservations')
    with op.batch_alter_table('reservations') as batch:
        batch.drop_column('placed_from_location_id')
        batch.drop_column('placed_by_key_id')
