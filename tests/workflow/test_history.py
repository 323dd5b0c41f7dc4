"""The history is append-only in the database itself, and tampering behind its back is found.

Raw SQL goes straight to the engine here, past the services, as someone with database access
would. To tamper at all the test must first switch the append-only triggers off; it switches them
back on afterwards because on PostgreSQL the schema is shared by every test of the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from workflow import db
from workflow.lifecycle import Action
from workflow.models import Measure
from workflow.services.audit import verify_history
from workflow.services.measures import (
    ActionRequest,
    mark_deadline_provisional,
    perform,
    report_progress,
)


@pytest.fixture
def worked_measure(sessions, cast, now) -> int:
    """The cast's measure, started and submitted: history seq 1 create, 2 start, 3 submit."""
    for hours, (action, extra) in enumerate([(Action.START, {}),
                                             (Action.SUBMIT, {"comment": "已修订采购管理办法"})]):
        with db.transaction(sessions) as session:
            perform(session, ActionRequest(cast.measure.id, action, cast.owner.email, **extra),
                    now=now + timedelta(hours=hours))
    return cast.measure.id


def history_rows(engine: Engine, measure_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(
            text("SELECT seq, action, comment, hash FROM measure_history "
                 "WHERE measure_id = :m ORDER BY seq"), {"m": measure_id})]


def execute(engine: Engine, sql: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


@contextmanager
def append_only_triggers_off(engine: Engine) -> Iterator[None]:
    """Switch the append-only triggers off, and always back on again."""
    if engine.dialect.name == "postgresql":
        execute(engine, "ALTER TABLE measure_history DISABLE TRIGGER measure_history_no_change")
        try:
            yield
        finally:
            execute(engine, "ALTER TABLE measure_history ENABLE TRIGGER measure_history_no_change")
        return
    with engine.connect() as conn:
        triggers = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                                     "AND tbl_name = 'measure_history'")).all()
    assert {name for name, _ in triggers} == {"measure_history_no_update",
                                              "measure_history_no_delete"}
    for name, _ in triggers:
        execute(engine, f"DROP TRIGGER {name}")
    try:
        yield
    finally:
        for _, sql in triggers:
            execute(engine, sql)


# ----------------------------------------------------------------------- the database refuses


@pytest.mark.parametrize("statement", [
    "UPDATE measure_history SET comment = '改写后的说明' WHERE measure_id = :m AND seq = 3",
    "UPDATE measure_history SET to_state = 'closed' WHERE measure_id = :m",
    "DELETE FROM measure_history WHERE measure_id = :m AND seq = 3",
    "DELETE FROM measure_history",
])
def test_the_database_refuses_to_change_or_remove_history(database, worked_measure, statement):
    # Given a measure with three history rows
    before = history_rows(database.engine, worked_measure)
    assert [r["action"] for r in before] == ["create", "start", "submit"]
    # When someone with database access tries to rewrite or remove them
    with pytest.raises(DBAPIError, match="append-only"):
        execute(database.engine, statement, m=worked_measure)
    # Then the rows are as they were
    assert history_rows(database.engine, worked_measure) == before


def test_appending_is_still_allowed(sessions, database, worked_measure, cast, now):
    # The triggers refuse changes, not new rows: the service keeps writing history
    with db.transaction(sessions) as session:
        perform(session, ActionRequest(worked_measure, Action.VERIFY, cast.reviewer.email),
                now=now + timedelta(days=1))
    assert [r["action"] for r in history_rows(database.engine, worked_measure)] == [
        "create", "start", "submit", "verify"]


# ------------------------------------------------------------------- tampering is detected

TAMPERING = {
    "a comment rewritten": (
        ["UPDATE measure_history SET comment = '已全部整改到位' WHERE measure_id = :m AND seq = 3"],
        ["第 3 条内容被篡改（哈希不符）"]),
    "the actor erased": (
        ["UPDATE measure_history SET actor_id = NULL WHERE measure_id = :m AND seq = 2"],
        ["第 2 条内容被篡改（哈希不符）"]),
    "the last row deleted": (
        ["DELETE FROM measure_history WHERE measure_id = :m AND seq = 3"],
        ["版本为 3，但历史只到第 2 条", "当前状态 submitted 与最后一条历史的 in_progress 不符"]),
    "a middle row deleted": (
        ["DELETE FROM measure_history WHERE measure_id = :m AND seq = 2"],
        ["历史第 2 条缺失（见到第 3 条）", "第 3 条与上一条的链接不符"]),
    "the state set directly": (
        ["UPDATE measure SET state = 'closed' WHERE id = :m"],
        ["当前状态 closed 与最后一条历史的 submitted 不符"]),
    "the version bumped directly": (
        ["UPDATE measure SET version = 9 WHERE id = :m"],
        ["版本为 9，但历史只到第 3 条"]),
    "the whole history deleted": (
        ["DELETE FROM measure_history WHERE measure_id = :m"],
        ["没有任何历史记录"]),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampering_is_reported_by_the_service_and_the_cli(database, sessions, rectiflow,
                                                          worked_measure, case):
    statements, expected_problems = TAMPERING[case]
    # Given a history that verifies
    with db.transaction(sessions) as session:
        assert verify_history(session).ok
    assert rectiflow("audit", "verify").code == 0

    # When someone switches the triggers off and tampers with it
    with append_only_triggers_off(database.engine):
        for statement in statements:
            execute(database.engine, statement, m=worked_measure)

    # Then the service reports each problem, naming the measure
    with db.transaction(sessions) as session:
        report = verify_history(session)
    assert not report.ok
    for problem in expected_problems:
        assert f"措施 {worked_measure}：{problem}" in report.problems
    # And the command fails with exit code 1 and says what is wrong, in Chinese
    result = rectiflow("audit", "verify")
    assert result.code == 1
    assert "历史记录校验失败" in result.err
    assert all(problem in result.err for problem in expected_problems)
    # And the JSON document says ok=false with the same problems
    result = rectiflow("audit", "verify", "--json")
    assert result.code == 1
    document = result.json()
    assert document["ok"] is False
    assert document["problems"] == report.problems


def test_the_triggers_are_back_after_tampering(database, worked_measure):
    # Given the triggers were switched off and on again
    with append_only_triggers_off(database.engine):
        pass
    # Then changing history is refused again
    with pytest.raises(DBAPIError, match="append-only"):
        execute(database.engine, "DELETE FROM measure_history WHERE measure_id = :m",
                m=worked_measure)


def test_an_intact_history_verifies(rectiflow, worked_measure):
    result = rectiflow("audit", "verify")
    assert result.code == 0
    assert "校验通过：1 项措施、3 条历史记录，哈希链完整" in result.out
    assert rectiflow("audit", "verify", "--json").json() == {
        "ok": True, "measures": 1, "entries": 3, "problems": []}


def test_verifying_one_measure_ignores_the_others(database, sessions, rectiflow, ledger, cast,
                                                  worked_measure):
    # Given a second measure whose history was tampered with
    [_, other] = ledger.measures(cast.campaign, [{"leader": cast.leader, "owner": cast.owner,
                                                 "seq": "2", "title": "另一项措施"}])
    with append_only_triggers_off(database.engine):
        execute(database.engine, "UPDATE measure_history SET comment = 'x' WHERE measure_id = :m",
                m=other.id)
    # Then the first still verifies on its own, and the whole ledger does not
    assert rectiflow("audit", "verify", "--measure", str(worked_measure)).code == 0
    result = rectiflow("audit", "verify", "--measure", str(other.id), "--json")
    assert (result.code, result.json()["ok"]) == (1, False)
    assert rectiflow("audit", "verify").code == 1


# ----------------------------------------------------------------------- writes that are not actions


def test_writes_that_are_not_actions_leave_the_version_and_the_chain_alone(
        sessions, rectiflow, cast, worked_measure, now):
    # Given the worked measure at version 3, the seq of its last history row
    # When it is written without an action: through the ORM (a reminder time moved on, as the
    # sweep does, and a corrected title), by a progress report and by a provisional mark
    with db.transaction(sessions) as session:
        measure = session.get(Measure, worked_measure)
        assert measure is not None and measure.version == 3
        measure.next_reminder_at = now + timedelta(days=1)
        measure.title = "修订食堂原材料采购管理办法（更正）"
    with db.transaction(sessions) as session:
        report_progress(session, measure_id=worked_measure, actor=cast.owner.email,
                        text="补充了验收记录", files=[], now=now + timedelta(hours=3))
        mark_deadline_provisional(session, worked_measure, True)
    # Then the version is still 3 and the history still verifies
    with sessions() as session:
        measure = session.get(Measure, worked_measure)
        assert measure is not None
        assert (measure.version, measure.title) == (3, "修订食堂原材料采购管理办法（更正）")
        assert verify_history(session).ok
    assert rectiflow("audit", "verify").code == 0
    # And the next action, made against version 3, is history seq 4 and verifies too
    with db.transaction(sessions) as session:
        outcome = perform(session, ActionRequest(worked_measure, Action.VERIFY,
                                                 cast.reviewer.email, expected_version=3),
                          now=now + timedelta(hours=4))
        assert (outcome.entry.seq, outcome.measure.version) == (4, 4)
    assert rectiflow("audit", "verify").code == 0
