"""webhook endpoints, secrets (rotation) and deliveries

Revision ID: 0015
Revises: 0014

events gets `tx` (the commit-safe order GET /v1/events pages by: on PostgreSQL the writing
transaction's id, by default `txid_current()`) and `channels` (the channels whose keys may read
the event); `delivered` now means "fanned out to webhook deliveries", with a partial index on
the rows still to fan out. Events written before this revision are marked fanned out (no
endpoint existed to take them).
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import app.core.db

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
TS = app.core.db.UTCDateTime(timezone=True)


def _backfill_audience(bind) -> None:
    """channels of the events written before: their own channel, and for products and price
    lists the channels in their payload (drafts: none), as app.events.service.audience does."""
    import json

    bind.execute(sa.text("UPDATE events SET channels = ',' || channel || ',' WHERE channel IS NOT NULL"))
    rows = bind.execute(sa.text(
        "SELECT id, type, data, channel FROM events WHERE type LIKE 'product.%' OR type LIKE 'price\\_list.%' "
        "ESCAPE '\\'")).all()
    updates = []
    for r in rows:
        data = r.data if isinstance(r.data, dict) else json.loads(r.data or "{}")
        found = {r.channel} if r.channel else set()
        listed = data.get("channels") if isinstance(data, dict) else None
        if isinstance(listed, list) and not (r.type.startswith("product.") and data.get("status") == "draft"):
            found.update(c for c in listed if isinstance(c, str) and c)
        if found:
            updates.append({"id": r.id, "channels": "," + ",".join(sorted(found)) + ","})
    if updates:
        bind.execute(sa.text("UPDATE events SET channels = :channels WHERE id = :id"), updates)


def upgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == 'postgresql'
    with op.batch_alter_table('events') as batch:
        batch.add_column(sa.Column('tx', sa.BigInteger(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('channels', sa.Text(), nullable=True))
        batch.drop_index('ix_events_delivered')
    if pg:  # any INSERT that does not go through emit() still gets a commit-safe position
        op.alter_column('events', 'tx', server_default=sa.text('txid_current()'))
    _backfill_audience(bind)
    op.execute(sa.text("UPDATE events SET delivered = " + ("true" if pg else "1")))
    op.create_index('ix_events_tx', 'events', ['tx', 'id'])
    op.create_index('ix_events_undelivered', 'events', ['id'], postgresql_where=sa.text('NOT delivered'),
                    sqlite_where=sa.text('delivered = 0'))

    op.create_table(
        'webhook_endpoints',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('api_key_id', sa.String(40), sa.ForeignKey('api_keys.id'), nullable=False),
        sa.Column('url', sa.String(2000), nullable=False),
        sa.Column('description', sa.String(500)),
        sa.Column('events', JSON, nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('status', sa.String(10), nullable=False),
        sa.Column('secret', sa.String(100), nullable=False),
        sa.Column('previous_secret', sa.String(100)),
        sa.Column('previous_expires_at', TS),
        sa.Column('failing_since', TS),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('updated_at', TS, nullable=False),
    )
    op.create_index('ix_webhook_endpoints_api_key_id', 'webhook_endpoints', ['api_key_id'])
    op.create_table(
        'webhook_deliveries',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('endpoint_id', sa.String(40), sa.ForeignKey('webhook_endpoints.id'), nullable=False),
        sa.Column('event_id', sa.String(40), nullable=False),
        sa.Column('event_type', sa.String(60), nullable=False),
        sa.Column('status', sa.String(12), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('max_attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', TS),
        sa.Column('last_attempt_at', TS),
        sa.Column('last_status_code', sa.Integer()),
        sa.Column('last_error', sa.String(500)),
        sa.Column('last_latency_ms', sa.Integer()),
        sa.Column('delivered_at', TS),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('updated_at', TS, nullable=False),
        sa.UniqueConstraint('endpoint_id', 'event_id', name='uq_webhook_deliveries_endpoint_event'),
    )
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries', ['status', 'next_attempt_at'])
    op.create_index('ix_webhook_deliveries_endpoint', 'webhook_deliveries', ['endpoint_id', 'id'])


def downgrade() -> None:
    op.drop_table('webhook_deliveries')
    op.drop_table('webhook_endpoints')
    op.drop_index('ix_events_undelivered', table_name='events')
    op.drop_index('ix_events_tx', table_name='events')
    with op.batch_alter_table('events') as batch:
        batch.drop_column('channels')
        batch.drop_column('tx')
        batch.create_index('ix_events_delivered', ['delivered'])
