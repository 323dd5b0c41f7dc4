"""history_origin: the ids an imported history row was hashed over in the installation that
wrote it (``rectiflow import archive`` gives records fresh ids but keeps their hashes)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('history_origin',
    sa.Column('history_id', sa.Integer(), nullable=False),
    sa.Column('measure_id', sa.Integer(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('on_behalf_of_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['history_id'], ['measure_history.id'],
                            name=op.f('fk_history_origin_history_id_measure_history')),
    sa.PrimaryKeyConstraint('history_id', name=op.f('pk_history_origin'))
    )


def downgrade() -> None:
    op.drop_table('history_origin')
