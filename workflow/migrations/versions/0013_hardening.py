"""Hardening:
- PostgreSQL refuses ``TRUNCATE measure_history`` by a statement trigger (UPDATE and DELETE were
  already refused per row); an application role that does not own the tables cannot switch it
  off (see ``rectiflow db grant``);
- person.session_version: bumped by logout, a password change and deactivation, so every
  session cookie signed before that stops opening pages at once;
- outbox_message.failing_since: when a message's current run of failures began; a temporary
  failure is retried until it is both old enough and tried often enough before it is ``dead``

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 12:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_PG_TRUNCATE = [
    """CREATE OR REPLACE FUNCTION measure_history_no_truncate() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'measure_history is append-only: TRUNCATE refused'; END; $$
       LANGUAGE plpgsql""",
    """CREATE TRIGGER measure_history_no_truncate BEFORE TRUNCATE ON measure_history
       FOR EACH STATEMENT EXECUTE FUNCTION measure_history_no_truncate()""",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in _PG_TRUNCATE:
            op.execute(statement)
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), nullable=False,
                                      server_default='0'))
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_column('failing_since')
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_column('session_version')
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS measure_history_no_truncate ON measure_history")
        op.execute("DROP FUNCTION IF EXISTS measure_history_no_truncate()")
