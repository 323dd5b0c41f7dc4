"""outbox, campaign policy overrides, reminder index on every planned measure

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('recipient_id', sa.Integer(), nullable=True),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('info', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['recipient_id'], ['person.id'],
                            name=op.f('fk_outbox_message_recipient_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_message')),
    sa.UniqueConstraint('key', name=op.f('uq_outbox_message_key'))
    )
    op.create_index('ix_outbox_due', 'outbox_message', ['status', 'not_before'])
    op.create_table('outbox_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('measure_id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['measure_id'], ['measure.id'],
                            name=op.f('fk_outbox_item_measure_id_measure')),
    sa.ForeignKeyConstraint(['message_id'], ['outbox_message.id'],
                            name=op.f('fk_outbox_item_message_id_outbox_message')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_item')),
    sa.UniqueConstraint('key', name=op.f('uq_outbox_item_key'))
    )
    op.create_index(op.f('ix_outbox_item_message_id'), 'outbox_item', ['message_id'])
    op.create_index(op.f('ix_outbox_item_measure_id'), 'outbox_item', ['measure_id'])
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.add_column(sa.Column('policy', sa.JSON(), nullable=True))
    op.drop_index('ix_measure_next_reminder_open', table_name='measure')
    op.create_index('ix_measure_next_reminder', 'measure', ['next_reminder_at'],
                    postgresql_where=sa.text('next_reminder_at IS NOT NULL'),
                    sqlite_where=sa.text('next_reminder_at IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_measure_next_reminder', table_name='measure')
    op.create_index('ix_measure_next_reminder_open', 'measure', ['next_reminder_at'],
                    postgresql_where=sa.text("next_reminder_at IS NOT NULL AND state <> 'closed'"),
                    sqlite_where=sa.text("next_reminder_at IS NOT NULL AND state <> 'closed'"))
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.drop_column('policy')
    op.drop_index(op.f('ix_outbox_item_measure_id'), table_name='outbox_item')
    op.drop_index(op.f('ix_outbox_item_message_id'), table_name='outbox_item')
    op.drop_table('outbox_item')
    op.drop_index('ix_outbox_due', table_name='outbox_message')
    op.drop_table('outbox_message')
