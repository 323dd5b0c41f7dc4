"""督办 documents (official_notice, numbered per kind and year through notice_counter) and the
campaign's report settings (主送机关, 落款, the editable report texts, the supervising office)

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-03 12:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.add_column(sa.Column('report_to', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('report_from', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('organisation_text', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('next_steps_text', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('supervising_office', sa.String(length=200), nullable=True))
    op.create_table(
        'official_notice',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('measure_id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('number', sa.String(length=40), nullable=False),
        sa.Column('stage', sa.String(length=32), nullable=False),
        sa.Column('stage_key', sa.String(length=200), nullable=False),
        sa.Column('facts', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reply_due', sa.Date(), nullable=True),
        sa.Column('reply_text', sa.Text(), nullable=True),
        sa.Column('replied_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('replied_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['measure_id'], ['measure.id'],
                                name=op.f('fk_official_notice_measure_id_measure')),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'],
                                name=op.f('fk_official_notice_campaign_id_campaign')),
        sa.ForeignKeyConstraint(['replied_by_id'], ['person.id'],
                                name=op.f('fk_official_notice_replied_by_id_person')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_official_notice')),
        sa.UniqueConstraint('kind', 'year', 'seq', name=op.f('uq_official_notice_kind')),
        sa.UniqueConstraint('stage_key', name=op.f('uq_official_notice_stage_key')),
    )
    op.create_index(op.f('ix_official_notice_measure_id'), 'official_notice', ['measure_id'])
    op.create_index('ix_official_notice_campaign', 'official_notice', ['campaign_id', 'id'])
    op.create_table(
        'notice_counter',
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('last', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('kind', 'year', name=op.f('pk_notice_counter')),
    )


def downgrade() -> None:
    op.drop_table('notice_counter')
    op.drop_index('ix_official_notice_campaign', table_name='official_notice')
    op.drop_index(op.f('ix_official_notice_measure_id'), table_name='official_notice')
    op.drop_table('official_notice')
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        for column in ('supervising_office', 'next_steps_text', 'organisation_text',
                       'report_from', 'report_to'):
            batch_op.drop_column(column)
