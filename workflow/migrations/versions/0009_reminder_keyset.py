"""ix_measure_next_reminder on (next_reminder_at, id): a sweep reads a burst of due measures in
batches by position (the last row's time and id), and the index gives that order directly

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


def downgrade() -> None:
    op.drop_index('ix_measure_next_reminder', table_name='measure')
    _index(['next_reminder_at'])
