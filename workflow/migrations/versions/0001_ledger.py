"""ledger

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 17:53:48.773908
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('unit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['parent_id'], ['unit.id'], name=op.f('fk_unit_parent_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unit')),
    sa.UniqueConstraint('name', name=op.f('uq_unit_name'))
    )
    op.create_table('person',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('wecom_id', sa.String(length=64), nullable=True),
    sa.Column('mobile', sa.String(length=32), nullable=True),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('delegate_id', sa.Integer(), nullable=True),
    sa.Column('delegate_until', sa.Date(), nullable=True),
    sa.Column('channel_preference', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['delegate_id'], ['person.id'], name=op.f('fk_person_delegate_id_person')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_person_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_person')),
    sa.UniqueConstraint('email', name=op.f('uq_person_email'))
    )
    op.create_table('campaign',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('feedback_date', sa.Date(), nullable=True),
    sa.Column('first_responsible_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['first_responsible_id'], ['person.id'], name=op.f('fk_campaign_first_responsible_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign')),
    sa.UniqueConstraint('title', name=op.f('uq_campaign_title'))
    )
    op.create_table('area',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_area_campaign_id_campaign')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_area')),
    sa.UniqueConstraint('campaign_id', 'title', name=op.f('uq_area_campaign_id'))
    )
    with op.batch_alter_table('area', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_area_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('problem',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['area_id'], ['area.id'], name=op.f('fk_problem_area_id_area')),
    sa.ForeignKeyConstraint(['parent_id'], ['problem.id'], name=op.f('fk_problem_parent_id_problem')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_problem'))
    )
    with op.batch_alter_table('problem', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_problem_area_id'), ['area_id'], unique=False)

    op.create_table('measure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('problem_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('seq', sa.String(length=32), nullable=True),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=True),
    sa.Column('original_deadline', sa.Date(), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('leader_id', sa.Integer(), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('next_reminder_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_progress_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_measure_campaign_id_campaign')),
    sa.ForeignKeyConstraint(['leader_id'], ['person.id'], name=op.f('fk_measure_leader_id_person')),
    sa.ForeignKeyConstraint(['owner_id'], ['person.id'], name=op.f('fk_measure_owner_id_person')),
    sa.ForeignKeyConstraint(['problem_id'], ['problem.id'], name=op.f('fk_measure_problem_id_problem')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_measure_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_measure')),
    sa.UniqueConstraint('campaign_id', 'seq', name=op.f('uq_measure_campaign_id'))
    )
    with op.batch_alter_table('measure', schema=None) as batch_op:
        batch_op.create_index('ix_measure_campaign_state', ['campaign_id', 'state'], unique=False)
        batch_op.create_index('ix_measure_leader', ['leader_id'], unique=False)
        batch_op.create_index('ix_measure_next_reminder_open', ['next_reminder_at'], unique=False, postgresql_where=sa.text("next_reminder_at IS NOT NULL AND state <> 'closed'"), sqlite_where=sa.text("next_reminder_at IS NOT NULL AND state <> 'closed'"))
        batch_op.create_index('ix_measure_owner', ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_measure_problem_id'), ['problem_id'], unique=False)
        batch_op.create_index('ix_measure_unit', ['unit_id'], unique=False)

    op.create_table('measure_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('measure_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('from_state', sa.String(length=16), nullable=True),
    sa.Column('to_state', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('on_behalf_of_id', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['person.id'], name=op.f('fk_measure_history_actor_id_person')),
    sa.ForeignKeyConstraint(['measure_id'], ['measure.id'], name=op.f('fk_measure_history_measure_id_measure')),
    sa.ForeignKeyConstraint(['on_behalf_of_id'], ['person.id'], name=op.f('fk_measure_history_on_behalf_of_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_measure_history')),
    sa.UniqueConstraint('measure_id', 'seq', name=op.f('uq_measure_history_measure_id'))
    )
    op.create_table('progress_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('measure_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['person.id'], name=op.f('fk_progress_report_author_id_person')),
    sa.ForeignKeyConstraint(['measure_id'], ['measure.id'], name=op.f('fk_progress_report_measure_id_measure')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_progress_report'))
    )
    with op.batch_alter_table('progress_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_progress_report_measure_id'), ['measure_id'], unique=False)

    op.create_table('evidence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('stored_path', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['progress_report.id'], name=op.f('fk_evidence_report_id_progress_report')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence'))
    )
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_report_id'), ['report_id'], unique=False)


    _create_history_triggers()


def downgrade() -> None:
    _drop_history_triggers()
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_report_id'))

    op.drop_table('evidence')
    with op.batch_alter_table('progress_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_progress_report_measure_id'))

    op.drop_table('progress_report')
    op.drop_table('measure_history')
    with op.batch_alter_table('measure', schema=None) as batch_op:
        batch_op.drop_index('ix_measure_unit')
        batch_op.drop_index(batch_op.f('ix_measure_problem_id'))
        batch_op.drop_index('ix_measure_owner')
        batch_op.drop_index('ix_measure_next_reminder_open', postgresql_where=sa.text("next_reminder_at IS NOT NULL AND state <> 'closed'"), sqlite_where=sa.text("next_reminder_at IS NOT NULL AND state <> 'closed'"))
        batch_op.drop_index('ix_measure_leader')
        batch_op.drop_index('ix_measure_campaign_state')

    op.drop_table('measure')
    with op.batch_alter_table('problem', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_problem_area_id'))

    op.drop_table('problem')
    with op.batch_alter_table('area', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_area_campaign_id'))

    op.drop_table('area')
    op.drop_table('campaign')
    op.drop_table('person')
    op.drop_table('unit')


# History is append-only: the database itself refuses UPDATE and DELETE on measure_history.
_SQLITE_TRIGGERS = [
    """CREATE TRIGGER measure_history_no_update BEFORE UPDATE ON measure_history
       BEGIN SELECT RAISE(ABORT, 'measure_history is append-only'); END""",
    """CREATE TRIGGER measure_history_no_delete BEFORE DELETE ON measure_history
       BEGIN SELECT RAISE(ABORT, 'measure_history is append-only'); END""",
]
_PG_TRIGGERS = [
    """CREATE OR REPLACE FUNCTION measure_history_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'measure_history is append-only'; END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER measure_history_no_change BEFORE UPDATE OR DELETE ON measure_history
       FOR EACH ROW EXECUTE FUNCTION measure_history_append_only()""",
]


def _create_history_triggers() -> None:
    statements = _PG_TRIGGERS if op.get_bind().dialect.name == "postgresql" else _SQLITE_TRIGGERS
    for statement in statements:
        op.execute(statement)


def _drop_history_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS measure_history_no_change ON measure_history")
        op.execute("DROP FUNCTION IF EXISTS measure_history_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS measure_history_no_update")
        op.execute("DROP TRIGGER IF EXISTS measure_history_no_delete")
