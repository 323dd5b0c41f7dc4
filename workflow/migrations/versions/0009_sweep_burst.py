"""What a burst sweep writes, made cheaper:
- ix_measure_next_reminder on (next_reminder_at, id): a sweep reads a burst of due measures in
  batches by position (the last row's time and id), and the index gives that order directly;
- outbox_item keeps its indexes on message_id and measure_id but loses the two foreign keys:
  checking both cost half of inserting a quarter of a million items, and the only writer of
  items (``OutboxWriter``) points them at messages it has just inserted and measures it has just
  read in the same transaction; neither table is ever deleted from (empty placeholder messages
  never get items)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def _index(columns: list[str]) -> None:
    op.create_index('ix_measure_next_reminder', 'measure', columns,
                    postgresql_where=sa.text('next_reminder_at IS NOT NULL'),
                    sqlite_where=sa.text('next_reminder_at IS NOT NULL'))


def upgrade() -> None:
    op.drop_index('ix_measure_next_reminder', table_name='measure')
    _index(['next_reminder_at', 'id'])
    with op.batch_alter_table('outbox_item', schema=None) as batch_op:
        batch_op.drop_constraint('fk_outbox_item_measure_id_measure', type_='foreignkey')
        batch_op.drop_constraint('fk_outbox_item_message_id_outbox_message', type_='foreignkey')


def downgrade() -> None:
    with op.batch_alter_table('outbox_item', schema=None) as batch_op:
        batch_op.create_foreign_key('fk_outbox_item_measure_id_measure', 'measure',
                                    ['measure_id'], ['id'])
        batch_op.create_foreign_key('fk_outbox_item_message_id_outbox_message',
                                    'outbox_message', ['message_id'], ['id'])
    op.drop_index('ix_measure_next_reminder', table_name='measure')
    _index(['next_reminder_at'])
