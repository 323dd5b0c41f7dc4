"""The history and the progress reports by time: a digest asks which measures changed after a
moment (to rewind them, and to count the others as they are), and without these indexes each
ask read the whole history

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 14:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_measure_history_at', 'measure_history', ['at', 'measure_id'])
    op.create_index('ix_progress_report_at', 'progress_report', ['at', 'measure_id'])


def downgrade() -> None:
    op.drop_index('ix_progress_report_at', table_name='progress_report')
    op.drop_index('ix_measure_history_at', table_name='measure_history')
