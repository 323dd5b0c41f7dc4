"""reminder_schedule: each measure's next_reminder_at, moved off the measure row into a narrow
table keyed by measure id, with the sweep's partial index (next_reminder_at, measure_id).

A burst sweep moves the time of every due measure on; on the measure row each such UPDATE
rewrote the whole row and an entry in each of its seven indexes (the index on the column itself
rules out HOT updates). Existing times are copied over; measures without one get no row.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 19:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

_DUE = sa.text('next_reminder_at IS NOT NULL')


def upgrade() -> None:
    op.create_table(
        'reminder_schedule',
        sa.Column('measure_id', sa.Integer(), nullable=False),
        sa.Column('next_reminder_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['measure_id'], ['measure.id'],
                                name=op.f('fk_reminder_schedule_measure_id_measure'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('measure_id', name=op.f('pk_reminder_schedule')),
    )
    op.execute('INSERT INTO reminder_schedule (measure_id, next_reminder_at) '
               'SELECT id, next_reminder_at FROM measure WHERE next_reminder_at IS NOT NULL')
    op.create_index('ix_reminder_schedule_due', 'reminder_schedule',
                    ['next_reminder_at', 'measure_id'],
                    postgresql_where=_DUE, sqlite_where=_DUE)
    op.drop_index('ix_measure_next_reminder', table_name='measure')
    # In place on SQLite too (3.35+): batch mode would copy the measure table and drop the old
    # one, and dropping a table deletes its rows first, which the foreign keys of
    # reminder_schedule (and of every other table pointing at measures) would act on.
    op.execute('ALTER TABLE measure DROP COLUMN next_reminder_at')


def downgrade() -> None:
    op.add_column('measure', sa.Column('next_reminder_at', sa.DateTime(timezone=True),
                                       nullable=True))
    op.execute('UPDATE measure SET next_reminder_at = (SELECT s.next_reminder_at '
               'FROM reminder_schedule AS s WHERE s.measure_id = measure.id)')
    op.create_index('ix_measure_next_reminder', 'measure', ['next_reminder_at', 'id'],
                    postgresql_where=_DUE, sqlite_where=_DUE)
    op.drop_index('ix_reminder_schedule_due', table_name='reminder_schedule')
    op.drop_table('reminder_schedule')
