"""The history's relapses (回头看 that reopened a measure) by a partial index: every digest and
the 巡察办's comparison count them, and without it each count read the whole history

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 20:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

#: as workflow.models.RELAPSE_ROWS when this revision was written
RELAPSE_ROWS = "action = 'recheck' AND to_state = 'in_progress'"


def upgrade() -> None:
    op.create_index('ix_measure_history_relapse', 'measure_history', ['measure_id'],
                    postgresql_where=sa.text(RELAPSE_ROWS), sqlite_where=sa.text(RELAPSE_ROWS))


def downgrade() -> None:
    op.drop_index('ix_measure_history_relapse', table_name='measure_history')
