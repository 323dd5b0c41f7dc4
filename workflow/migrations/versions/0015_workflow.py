"""measure.extension_*: an extension request (延期申请) waiting for the leader's decision: the
date asked for, the reason, who asked and when (all NULL when none waits)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 14:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('measure', schema=None) as batch_op:
        batch_op.add_column(sa.Column('extension_deadline', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('extension_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('extension_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('extension_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key('fk_measure_extension_by', 'person', ['extension_by_id'],
                                    ['id'])


def downgrade() -> None:
    with op.batch_alter_table('measure', schema=None) as batch_op:
        batch_op.drop_constraint('fk_measure_extension_by', type_='foreignkey')
        batch_op.drop_column('extension_at')
        batch_op.drop_column('extension_by_id')
        batch_op.drop_column('extension_reason')
        batch_op.drop_column('extension_deadline')
