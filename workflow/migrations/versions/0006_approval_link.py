"""approval_link: one-time approval links, stored as the SHA-256 of their token

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('approval_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('measure_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['measure_id'], ['measure.id'],
                            name=op.f('fk_approval_link_measure_id_measure')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'],
                            name=op.f('fk_approval_link_person_id_person')),
    sa.ForeignKeyConstraint(['message_id'], ['outbox_message.id'],
                            name=op.f('fk_approval_link_message_id_outbox_message')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approval_link')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_approval_link_token_sha256'))
    )
    with op.batch_alter_table('approval_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approval_link_measure_id'), ['measure_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('approval_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_approval_link_measure_id'))
    op.drop_table('approval_link')
