"""measure.rechecked_at (回头看) and measure_assisting_unit (协办单位: units assisting a
measure besides its 责任部门)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 15:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('measure', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rechecked_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'measure_assisting_unit',
        sa.Column('measure_id', sa.Integer(), nullable=False),
        sa.Column('unit_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['measure_id'], ['measure.id'],
                                name=op.f('fk_measure_assisting_unit_measure_id_measure')),
        sa.ForeignKeyConstraint(['unit_id'], ['unit.id'],
                                name=op.f('fk_measure_assisting_unit_unit_id_unit')),
        sa.PrimaryKeyConstraint('measure_id', 'unit_id', name=op.f('pk_measure_assisting_unit')),
    )
    op.create_index(op.f('ix_measure_assisting_unit_unit_id'), 'measure_assisting_unit',
                    ['unit_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_measure_assisting_unit_unit_id'), table_name='measure_assisting_unit')
    op.drop_table('measure_assisting_unit')
    with op.batch_alter_table('measure', schema=None) as batch_op:
        batch_op.drop_column('rechecked_at')
