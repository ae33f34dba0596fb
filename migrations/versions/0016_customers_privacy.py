"""customers: consent history, audit trail of customer data access, merges and erasure

customers gets `status` (active | merged | erased), `merged_into` (a merged record's survivor)
and `erased_at`. `customer_consents` keeps every grant and withdrawal of a consent (purpose,
channel, API key, time); the rows already registered get one row per consent they hold now
(source `registration`, at their registration time). `customer_audit` records which API key
read or changed which customer's data.

Revision ID: 0016
Revises: 0015b
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import app.core.db

revision = '0016'
down_revision = '0015b'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
TS = app.core.db.UTCDateTime(timezone=True)


def _backfill_consents(bind) -> None:
    """One history row per consent a customer holds now (they were given at registration or
    through a PATCH before the history existed: the registration time is the best known)."""
    import json

    from app.core.ids import new_id

    rows = bind.execute(sa.text("SELECT id, consents, channel, api_key_id, created_at FROM customers")).all()
    records = []
    for r in rows:
        consents = r.consents if isinstance(r.consents, dict) else json.loads(r.consents or "{}")
        for purpose in ("marketing", "personalization"):
            if consents.get(purpose) is True:
                records.append({"id": new_id("ccn"), "customer_id": r.id, "purpose": purpose, "granted": True,
                                "channel": r.channel, "api_key_id": r.api_key_id, "source": "registration",
                                "created_at": r.created_at})
    if records:
        table = sa.table('customer_consents', *(sa.column(c) for c in records[0]))
        bind.execute(sa.insert(table), records)


def upgrade() -> None:
    op.add_column('customers', sa.Column('status', sa.String(10), nullable=False, server_default='active'))
    op.add_column('customers', sa.Column('merged_into', sa.String(40), nullable=True))
    op.add_column('customers', sa.Column('erased_at', TS, nullable=True))
    op.create_index('ix_customers_merged_into', 'customers', ['merged_into'])

    op.create_table(
        'customer_consents',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('customer_id', sa.String(40), nullable=False),
        sa.Column('purpose', sa.String(20), nullable=False),
        sa.Column('granted', sa.Boolean(), nullable=False),
        sa.Column('channel', sa.String(100)),
        sa.Column('api_key_id', sa.String(40)),
        sa.Column('source', sa.String(20), nullable=False),
        sa.Column('created_at', TS, nullable=False),
    )
    op.create_index('ix_customer_consents_customer', 'customer_consents', ['customer_id', 'id'])

    op.create_table(
        'customer_audit',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('customer_id', sa.String(40), nullable=False),
        sa.Column('action', sa.String(20), nullable=False),
        sa.Column('api_key_id', sa.String(40)),
        sa.Column('role', sa.String(20)),
        sa.Column('channel', sa.String(100)),
        sa.Column('location', sa.String(100)),
        sa.Column('request_id', sa.String(100)),
        sa.Column('detail', JSON, nullable=False),
        sa.Column('created_at', TS, nullable=False),
    )
    op.create_index('ix_customer_audit_customer', 'customer_audit', ['customer_id', 'id'])
    _backfill_consents(op.get_bind())


def downgrade() -> None:
    op.drop_table('customer_audit')
    op.drop_table('customer_consents')
    op.drop_index('ix_customers_merged_into', table_name='customers')
    with op.batch_alter_table('customers') as batch:
        batch.drop_column('erased_at')
        batch.drop_column('merged_into')
        batch.drop_column('status')
