"""campaign.acceptors: the people named on the campaign form as acceptors (三方验收), kept as a
list of person ids for the acceptance issue to use

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 12:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.add_column(sa.Column('acceptors', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.drop_column('acceptors')
