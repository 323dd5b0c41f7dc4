"""workflow.pg.sweep keeps its contract: on PostgreSQL a sweep through ``PostgresSweepStore``
leaves exactly the outbox rows and reminder times the portable ``SweepStore`` leaves."""

from __future__ import annotations

import os
from datetime import date, datetime

import pytest
from sqlalchemy import select

from workflow import db
from workflow.lifecycle import Action
from workflow.models import Measure, OutboxItem, OutboxMessage
from workflow.pg.sweep import PostgresSweepStore
from workflow.policy import load_policy_file
from workflow.schedule import set_next_reminder
from workflow.services.measures import ActionRequest, perform
from workflow.services.people import set_delegate
from workflow.services.sweep import SweepStore, reminder_context, store_for, sweep
from workflow.timeutil import SHANGHAI

pytestmark = pytest.mark.skipif(os.environ.get("RECTIFLOW_TEST_DB", "sqlite") != "postgresql",
                                reason="the adapter is for PostgreSQL")

POLICIES = load_policy_file(None)
BOTH = frozenset({"email", "wecom"})


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


def what_the_sweep_left(session) -> dict[str, object]:
    """Every outbox row and reminder time, without the ids a sequence hands out."""
    messages = session.scalars(select(OutboxMessage).order_by(OutboxMessage.key)).all()
    key_of = {m.id: m.key for m in messages}
    return {
        "messages": [(m.key, m.channel, m.kind, m.recipient_id, m.recipient, m.subject,
                      m.payload, m.status, m.attempts, m.not_before, m.created_at, m.info)
                     for m in messages],
        "items": sorted((key_of[i.message_id], i.measure_id, i.rule, i.key)
                        for i in session.scalars(select(OutboxItem))),
        "reminders": session.execute(select(Measure.id, Measure.version, Measure.next_reminder_at)
                                     .order_by(Measure.id)).all(),
    }


def sweep_and_look(sessions, now: datetime, make_store) -> tuple[dict[str, int], dict[str, object]]:
    """A sweep read 2 measures at a time, what it left, and then nothing kept."""
    with sessions() as session, session.begin():
        ctx = reminder_context(session, POLICIES, BOTH)
        result = sweep(session, ctx, now=now, batch=2, make_store=make_store)
        left = what_the_sweep_left(session)
        session.rollback()
    return result.as_json(), left


def test_postgresql_is_given_the_adapter():
    engine = db.make_engine("postgresql+psycopg://nobody@localhost/none")
    with db.session_factory(engine)() as session:
        assert type(store_for(session)) is PostgresSweepStore


def test_the_adapter_leaves_exactly_what_the_portable_store_leaves(sessions, ledger):
    # Given a ledger with every kind of notice: overdue escalations to a first responsible, a
    # measure waiting for review, an immediate one, a leader away with a deputy, people
    # reached by email, WeCom or both
    ledger.now = at("2026-09-01 10:00")
    secretary = ledger.person("Secretary", "leader")
    leader = ledger.person("Leader", "leader", wecom_id="leader")
    deputy = ledger.person("Deputy", "leader")
    owners = [ledger.person(f"Owner{i}", "owner", wecom_id=f"owner{i}" if i % 2 else None)
              for i in range(3)]
    ledger.person("Reviewer", "reviewer", wecom_id="reviewer")
    campaign = ledger.campaign(first_responsible=secretary)
    measures = ledger.measures(campaign, [
        {"leader": leader, "owner": owners[i % 3], "title": f"措施{i}",
         "deadline": date(2026, 10, 9) if i < 5 else date(2026, 10, 21),
         "kind": "immediate" if i == 6 else "deadline"} for i in range(8)])
    with db.transaction(sessions) as session:
        perform(session, ActionRequest(measures[7].id, Action.START, owners[1].email),
                now=at("2026-10-09 11:00"))
        perform(session, ActionRequest(measures[7].id, Action.SUBMIT, owners[1].email,
                                       comment="已整改"), now=at("2026-10-09 11:30"))
        set_delegate(session, session.merge(leader), session.merge(deputy), date(2026, 10, 31))
    # And some of its reminders written before, by a sweep a week earlier, then every measure
    # due again (as after a crash between writing and moving on)
    with db.transaction(sessions, write_lock=True) as session:
        sweep(session, reminder_context(session, POLICIES, BOTH), now=at("2026-10-13 09:00"))
        set_next_reminder(session, session.scalars(select(Measure.id)).all(),
                          at("2026-10-13 09:00"))
        written_before = len(session.scalars(select(OutboxItem.key)).all())
    # When the same sweep runs through each store
    now = at("2026-10-20 10:00")
    portable = sweep_and_look(sessions, now, SweepStore)
    adapter = sweep_and_look(sessions, now, PostgresSweepStore)
    # Then both planned every measure and wrote the same messages, items and reminder times
    assert portable[0]["measures"] == 8 and portable[0]["messages"] > 0
    assert adapter == portable
    # (the scenario met keys written before, and new ones)
    assert 0 < written_before < len(portable[1]["items"])
