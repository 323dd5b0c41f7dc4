"""workflow.pg.actions keeps its contract: one statement leaves the measure and history rows the
portable UPDATE and INSERT leave, and a stale version writes neither."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from workflow import db
from workflow.lifecycle import Action
from workflow.models import HistoryEntry, Measure, ProgressReport, ReminderSchedule
from workflow.pg import actions as pg_actions
from workflow.services import measures as measure_service
from workflow.services.audit import verify_history
from workflow.services.measures import ActionRequest, load_for_action, new_history_entry, perform

pytestmark = pytest.mark.skipif(os.environ.get("RECTIFLOW_TEST_DB", "sqlite") != "postgresql",
                                reason="the one-statement write is PostgreSQL's")

WALK = [(Action.START, "owner", {}), (Action.SUBMIT, "owner", {"comment": "已修订办法"}),
        (Action.REJECT, "reviewer", {"comment": "佐证不足"}),
        (Action.EXTEND, "leader", {"comment": "需要更多时间"}),
        (Action.SUBMIT, "owner", {"comment": "已补充佐证"}), (Action.VERIFY, "reviewer", {}),
        (Action.CLOSE, "leader", {})]


def measure_row(session, measure_id: int) -> dict:
    """The measure's columns, and its next reminder time (kept in ``reminder_schedule``)."""
    measure = session.get(Measure, measure_id)
    return {**{c.key: getattr(measure, c.key) for c in Measure.__table__.columns
               if c.key not in ("id", "seq", "title", "position")},
            "next_reminder_at": schedule_of(session, measure_id)}


def schedule_of(session, measure_id: int):
    return session.scalar(select(ReminderSchedule.next_reminder_at)
                          .where(ReminderSchedule.measure_id == measure_id))


def progress_rows(session, measure_id: int) -> list[tuple]:
    return [(p.author_id, p.text, p.at, len(p.evidence))
            for p in session.scalars(select(ProgressReport)
                                     .where(ProgressReport.measure_id == measure_id)
                                     .order_by(ProgressReport.id))]


def history_rows(session, measure_id: int) -> list[tuple]:
    return [(h.seq, h.action, h.from_state, h.to_state, h.actor_id, h.comment, h.data, h.at)
            for h in session.scalars(select(HistoryEntry)
                                     .where(HistoryEntry.measure_id == measure_id)
                                     .order_by(HistoryEntry.seq))]


def test_one_statement_leaves_what_the_portable_statements_leave(sessions, cast, ledger, now,
                                                                 monkeypatch):
    # Given two like measures
    [twin] = [m for m in ledger.measures(cast.campaign, [
        {"leader": cast.leader, "owner": cast.owner, "unit": "饮食服务中心", "title": "双胞胎",
         "seq": "2"}])
        if m.id != cast.measure.id]
    people = {"owner": cast.owner, "reviewer": cast.reviewer, "leader": cast.leader}
    deadline = cast.measure.deadline.replace(year=cast.measure.deadline.year + 1)
    later = now + timedelta(hours=2)  # after the import planned the measures

    def walk(measure_id: int) -> None:
        for action, who, extra in WALK:
            if action is Action.EXTEND:
                extra = {**extra, "deadline": deadline}
            with db.transaction(sessions) as session:
                perform(session, ActionRequest(measure_id, action, people[who], **extra),
                        now=later)

    # When one walks the lifecycle through the one-statement write and the other through the
    # portable statements
    walk(cast.measure.id)
    monkeypatch.setattr(measure_service, "_on_postgresql", lambda session: False)
    walk(twin.id)

    # Then both leave the same measure and the same history, and the chains verify
    with sessions() as session:
        assert measure_row(session, cast.measure.id) == measure_row(session, twin.id)
        # (the last action asked the sweep to plan the measure again from now)
        assert schedule_of(session, cast.measure.id) == later
        assert history_rows(session, cast.measure.id) == history_rows(session, twin.id)
        assert len(history_rows(session, twin.id)) == len(WALK) + 1
        assert progress_rows(session, cast.measure.id) == progress_rows(session, twin.id)
        assert [text for _, text, _, _ in progress_rows(session, twin.id)] == ["已修订办法",
                                                                             "已补充佐证"]
        assert verify_history(session).ok


def test_a_stale_version_writes_neither_row(sessions, cast, now):
    # Given a measure at some version
    with db.transaction(sessions) as session:
        measure, prev_hash = load_for_action(session, cast.measure.id)
        version = measure.version
        count = session.scalar(select(func.count()).select_from(HistoryEntry))
        scheduled = schedule_of(session, cast.measure.id)
    entry = new_history_entry(measure_id=cast.measure.id, seq=version, action="start",
                              from_state="assigned", to_state="in_progress",
                              actor_id=cast.owner.id, on_behalf_of_id=None, comment=None,
                              data={}, at=now, prev_hash=prev_hash)
    # When the write names an older version
    with db.transaction(sessions) as session:
        written = pg_actions.write_action(session, cast.measure.id, version - 1,
                                          {"state": "in_progress"}, entry,
                                          {"author_id": cast.owner.id, "text": "进展", "at": now},
                                          (now + timedelta(days=3),))
    # Then nothing is written
    assert written is None
    with sessions() as session:
        assert session.get(Measure, cast.measure.id).state == "assigned"
        assert session.get(Measure, cast.measure.id).version == version
        assert session.scalar(select(func.count()).select_from(HistoryEntry)) == count
        assert session.scalar(select(func.count()).select_from(ProgressReport)) == 0
        assert schedule_of(session, cast.measure.id) == scheduled

