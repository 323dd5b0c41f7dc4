"""campaign.inspected_unit_id: the unit a campaign's inspection (巡察) looked at; people's
reviewer, leader and viewer rights reach the campaigns of their own inspected unit (NULL: the
campaign belongs to the whole installation, as before)

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-03 15:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.add_column(sa.Column('inspected_unit_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(op.f('fk_campaign_inspected_unit_id_unit'), 'unit',
                                    ['inspected_unit_id'], ['id'])
        batch_op.create_index('ix_campaign_inspected_unit', ['inspected_unit_id'])
    with op.batch_alter_table('unit', schema=None) as batch_op:
        batch_op.create_index('ix_unit_parent', ['parent_id'])


def downgrade() -> None:
    with op.batch_alter_table('unit', schema=None) as batch_op:
        batch_op.drop_index('ix_unit_parent')
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_inspected_unit')
        batch_op.drop_constraint('fk_campaign_inspected_unit_id_unit', type_='foreignkey')
        batch_op.drop_column('inspected_unit_id')
