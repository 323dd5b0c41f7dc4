"""measure.deadline_workdays, measure.deadline_counted_from: the rule of a deadline given as
"N working days after feedback", so it can be counted again once the year's holidays are known

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('measure', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deadline_workdays', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('deadline_counted_from', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('measure', schema=None) as batch_op:
        batch_op.drop_column('deadline_counted_from')
        batch_op.drop_column('deadline_workdays')
