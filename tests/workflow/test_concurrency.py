"""Concurrent actions on one measure: exactly one wins, the others get a conflict, never a
silent overwrite; the history gains exactly one row and still verifies."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from workflow import db
from workflow.errors import ConflictError
from workflow.lifecycle import Action, State
from workflow.models import HistoryEntry, Measure, Person
from workflow.services.audit import verify_history
from workflow.services.measures import ActionRequest, perform

ON_POSTGRESQL = os.environ.get("RECTIFLOW_TEST_DB", "sqlite") == "postgresql"
postgresql_only = pytest.mark.skipif(
    not ON_POSTGRESQL,
    reason="20 writers at once need row locks and a pool of connections: PostgreSQL only "
           "(set RECTIFLOW_TEST_DB=postgresql); SQLite has its own two-writer test below")

ROUTE = {State.SUBMITTED: [Action.START, Action.SUBMIT],
         State.VERIFIED: [Action.START, Action.SUBMIT, Action.VERIFY]}


def walk_to(sessions: sessionmaker[Session], measure_id: int, state: State, admin: Person,
            now: datetime) -> None:
    for action in ROUTE[state]:
        with db.transaction(sessions) as session:
            perform(session, ActionRequest(measure_id, action, admin.email, comment="管理员推进"),
                    now=now)


@dataclass(frozen=True)
class Picture:
    state: str
    version: int
    history: int


def picture(sessions: sessionmaker[Session], measure_id: int) -> Picture:
    with db.transaction(sessions) as session:
        measure = session.get_one(Measure, measure_id)
        rows = session.scalar(select(func.count()).select_from(HistoryEntry)
                              .where(HistoryEntry.measure_id == measure_id)) or 0
        return Picture(str(measure.state), measure.version, rows)


def assert_history_verifies(sessions: sessionmaker[Session]) -> None:
    with db.transaction(sessions) as session:
        report = verify_history(session)
    assert report.ok, report.problems


@dataclass(frozen=True)
class Outcome:
    request: ActionRequest
    error: Exception | None


def race(sessions: sessionmaker[Session], requests: Sequence[ActionRequest],
         now: datetime) -> list[Outcome]:
    """Run each request in its own thread and session; all read the measure, then all write."""
    barrier = threading.Barrier(len(requests), timeout=30)

    def contend(request: ActionRequest) -> Outcome:
        try:
            with sessions() as session, session.begin():
                # Every contender reads the measure (and its version) before anyone writes
                seen = session.get_one(Measure, request.measure_id)
                barrier.wait()
                perform(session, request, now=now)
                assert seen.version is not None  # keeps what was read in the identity map
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test inspects
            return Outcome(request, exc)
        return Outcome(request, None)

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(contend, requests))


def split(outcomes: list[Outcome]) -> tuple[list[Outcome], list[Outcome]]:
    winners = [o for o in outcomes if o.error is None]
    losers = [o for o in outcomes if o.error is not None]
    return winners, losers


def assert_one_winner(outcomes: list[Outcome]) -> Outcome:
    winners, losers = split(outcomes)
    assert len(winners) == 1, [repr(o.error) for o in outcomes]
    unexpected = [repr(o.error) for o in losers if not isinstance(o.error, ConflictError)]
    assert unexpected == []
    for loser in losers:
        assert "已被他人修改，请刷新后重试（本次操作未生效）" in str(loser.error)
    return winners[0]


@postgresql_only
def test_twenty_closers_at_once_one_wins(sessions, cast, now):
    # Given a verified measure
    walk_to(sessions, cast.measure.id, State.VERIFIED, cast.admin, now)
    before = picture(sessions, cast.measure.id)
    signers = [cast.leader, cast.secretary, cast.admin]
    requests = [ActionRequest(cast.measure.id, Action.CLOSE, signers[i % 3].email)
                for i in range(20)]

    # When 20 people read it and then all try to close it at once
    outcomes = race(sessions, requests, now + timedelta(hours=1))

    # Then exactly one closes it, the other 19 get a conflict
    assert_one_winner(outcomes)
    assert len(split(outcomes)[1]) == 19
    # And the history gained exactly one row, and still verifies
    after = picture(sessions, cast.measure.id)
    assert after == Picture(State.CLOSED.value, before.version + 1, before.history + 1)
    assert_history_verifies(sessions)


@postgresql_only
def test_twenty_reviewers_verifying_and_rejecting_at_once_one_wins(sessions, cast, now):
    # Given a submitted measure
    walk_to(sessions, cast.measure.id, State.SUBMITTED, cast.admin, now)
    before = picture(sessions, cast.measure.id)
    requests = [
        ActionRequest(cast.measure.id, Action.VERIFY, cast.reviewer.email) if i % 2 == 0
        else ActionRequest(cast.measure.id, Action.REJECT, cast.leader.email,
                           comment=f"佐证材料不全（第 {i} 位）")
        for i in range(20)
    ]

    # When half try to verify it and half to reject it, all at once
    outcomes = race(sessions, requests, now + timedelta(hours=1))

    # Then one of them decides, the rest get a conflict
    winner = assert_one_winner(outcomes)
    expected_state = State.VERIFIED if winner.request.action is Action.VERIFY else State.IN_PROGRESS
    after = picture(sessions, cast.measure.id)
    assert after == Picture(expected_state.value, before.version + 1, before.history + 1)
    with db.transaction(sessions) as session:
        last = session.scalars(select(HistoryEntry).where(HistoryEntry.measure_id == cast.measure.id)
                               .order_by(HistoryEntry.seq.desc()).limit(1)).one()
        assert (last.action, last.comment) == (winner.request.action.value, winner.request.comment)
    assert_history_verifies(sessions)


def test_two_writers_in_threads_one_wins(sessions, cast, now):
    # Given a verified measure, on either backend
    walk_to(sessions, cast.measure.id, State.VERIFIED, cast.admin, now)
    before = picture(sessions, cast.measure.id)

    # When the leader and the first responsible read it and then both close it at once
    outcomes = race(sessions, [ActionRequest(cast.measure.id, Action.CLOSE, cast.leader.email),
                               ActionRequest(cast.measure.id, Action.CLOSE, cast.secretary.email)],
                    now + timedelta(hours=1))

    # Then one wins and the other gets a conflict (SQLite's "database is locked" included)
    assert_one_winner(outcomes)
    assert picture(sessions, cast.measure.id) == Picture(
        State.CLOSED.value, before.version + 1, before.history + 1)
    assert_history_verifies(sessions)


def test_two_sessions_interleaved_the_second_writer_conflicts(sessions, cast, now):
    # Given a verified measure read by two sessions
    walk_to(sessions, cast.measure.id, State.VERIFIED, cast.admin, now)
    before = picture(sessions, cast.measure.id)
    first, second = sessions(), sessions()
    try:
        first.begin()
        second.begin()
        # (held in variables: the session's identity map only keeps what is referenced)
        seen_by_first = first.get_one(Measure, cast.measure.id)
        seen_by_second = second.get_one(Measure, cast.measure.id)
        assert seen_by_first.version == seen_by_second.version == before.version
        # When the first closes it and commits
        perform(first, ActionRequest(cast.measure.id, Action.CLOSE, cast.leader.email), now=now)
        first.commit()
        # Then the second, still holding what it read, cannot reopen it behind the first's back
        with pytest.raises(ConflictError, match=f"措施 {cast.measure.id} 已被他人修改"):
            perform(second, ActionRequest(cast.measure.id, Action.REOPEN, cast.admin.email,
                                          comment="重新打开"), now=now)
        second.rollback()
    finally:
        first.close()
        second.close()
    assert picture(sessions, cast.measure.id) == Picture(
        State.CLOSED.value, before.version + 1, before.history + 1)
    assert_history_verifies(sessions)


def _act(sessions: sessionmaker[Session], request: ActionRequest, now: datetime) -> Callable[[], None]:
    def run() -> None:
        with db.transaction(sessions) as session:
            perform(session, request, now=now)
    return run


def test_a_stale_expected_version_is_a_conflict(sessions, cast, now):
    # Given the owner looked at the measure at version 1
    seen = picture(sessions, cast.measure.id)
    assert seen.version == 1
    # And meanwhile the leader reassigned it to a colleague
    _act(sessions, ActionRequest(cast.measure.id, Action.REASSIGN, cast.leader.email,
                                 owner=cast.colleague.email), now)()
    after_reassign = picture(sessions, cast.measure.id)

    # When the admin starts it, saying they act on version 1
    with pytest.raises(ConflictError, match="已被他人修改，请刷新后重试") as conflict:
        _act(sessions, ActionRequest(cast.measure.id, Action.START, cast.admin.email,
                                     expected_version=seen.version), now)()

    # Then nothing changed, and the error carries the version they had seen
    assert conflict.value.expected_version == 1
    assert picture(sessions, cast.measure.id) == after_reassign
    # And with the current version the same action goes through
    _act(sessions, ActionRequest(cast.measure.id, Action.START, cast.admin.email,
                                 expected_version=after_reassign.version), now)()
    assert picture(sessions, cast.measure.id).state == State.IN_PROGRESS.value


def test_the_cli_reports_a_stale_version_with_exit_code_4(rectiflow, sessions, cast, now):
    # Given the measure moved on from version 1
    _act(sessions, ActionRequest(cast.measure.id, Action.START, cast.owner.email), now)()
    # When someone acts on version 1 from the command line
    result = rectiflow("measure", "do", str(cast.measure.id), "submit", "--as", cast.owner.email,
                       "--comment", "已完成", "--version", "1", "--now", now.isoformat())
    # Then they are told someone else changed it, and nothing was written
    assert result.code == 4
    assert "已被他人修改" in result.err
    assert picture(sessions, cast.measure.id).state == State.IN_PROGRESS.value
