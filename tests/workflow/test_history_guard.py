"""Nobody the application runs as can wipe the history: PostgreSQL refuses TRUNCATE by trigger,
the application can run as a role that does not own the tables, and doctor warns when it does.

Raw SQL goes to the database past the services, as an attacker holding the application's
database password would send it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from dbfixtures import application_role
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from workflow import db
from workflow.lifecycle import Action
from workflow.services.audit import verify_history
from workflow.services.measures import ActionRequest, perform


@pytest.fixture
def pg(database):
    if database.backend != "postgresql":
        pytest.skip("PostgreSQL only (set RECTIFLOW_TEST_DB=postgresql)")
    return database


def history_count(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(text("SELECT count(*) FROM measure_history"))


@pytest.mark.parametrize("statement", [
    "TRUNCATE measure_history CASCADE",
    "TRUNCATE measure_history, history_origin",
    "TRUNCATE measure, measure_history CASCADE",
    "TRUNCATE measure CASCADE",  # cascades into the history
])
def test_postgresql_refuses_truncate_of_the_history(pg, cast, statement):
    # Given a measure with its history
    before = history_count(pg.engine)
    assert before >= 1
    # When the owner of the tables tries to empty it in one statement
    with pytest.raises(DBAPIError, match="append-only: TRUNCATE refused"):
        with pg.engine.begin() as conn:
            conn.execute(text(statement))
    # Then nothing is gone and the chain still verifies
    assert history_count(pg.engine) == before
    with db.transaction(pg.sessions) as session:
        assert verify_history(session).ok


def test_the_application_role_works_but_cannot_wipe_the_history(pg, cast, now, rectiflow,
                                                                 monkeypatch, tmp_path):
    with application_role(pg) as url:
        # The everyday commands work as the application role
        monkeypatch.setenv("RECTIFLOW_DATABASE_URL", url)
        monkeypatch.setenv("RECTIFLOW_AUDIT_KEY", "k" * 32)
        later = (now + timedelta(days=30)).isoformat()
        for args in (["measure", "list", "--json"], ["sweep", "--now", later],
                     ["deliver", "--now", later], ["outbox", "retry", "--all-dead"],
                     ["audit", "verify"],
                     ["audit", "checkpoint", "--out", str(tmp_path / "c.json")],
                     ["audit", "verify", "--checkpoint", str(tmp_path / "c.json")]):
            result = rectiflow(*args)
            assert result.code == 0, (args, result.err)
        engine = db.make_engine(url)
        try:
            # Given the application connected as a role that does not own the tables
            sessions = db.session_factory(engine)
            with engine.connect() as conn:
                assert conn.scalar(text("SELECT current_user")).startswith("rf_app_")
            # When it works normally, it may act on measures (history rows are appended)
            with db.transaction(sessions) as session:
                perform(session, ActionRequest(cast.measure.id, Action.START, cast.owner.email),
                        now=now + timedelta(hours=1))
            before = history_count(engine)
            assert before == 2
            # But every way of wiping or disabling the guard is refused
            for statement, refusal in [
                ("TRUNCATE measure_history", "permission denied"),
                ("TRUNCATE measure CASCADE", "permission denied"),
                ("DROP TABLE measure_history CASCADE", "must be owner"),
                ("ALTER TABLE measure_history DISABLE TRIGGER ALL", "must be owner"),
                ("DROP TRIGGER measure_history_no_change ON measure_history", "must be owner"),
                ("DELETE FROM measure_history", "permission denied"),
                ("UPDATE measure_history SET comment = 'x'", "permission denied"),
                ("SET session_replication_role = replica", "permission denied"),
            ]:
                with pytest.raises(DBAPIError, match=refusal):
                    with engine.begin() as conn:
                        conn.execute(text(statement))
            assert history_count(engine) == before
        finally:
            engine.dispose()


def test_doctor_warns_when_the_application_owns_the_history(pg, cast, rectiflow, monkeypatch):
    # Given doctor run as the owner (a superuser here): a warning that names the role
    result = rectiflow("doctor", "--json")
    [guard] = [c for c in result.json() if c["name"] == "history_guard"]
    assert guard["status"] == "warn"
    assert "postgres" in guard["message"] and "rectiflow db grant" in guard["message"]
    # When it runs as an application role instead, the check passes
    with application_role(pg) as url:
        monkeypatch.setenv("RECTIFLOW_DATABASE_URL", url)
        result = rectiflow("doctor", "--json")
    [guard] = [c for c in result.json() if c["name"] == "history_guard"]
    assert guard["status"] == "ok", guard
    assert "不拥有历史表" in guard["message"]


def test_doctor_fails_when_the_truncate_trigger_is_off(pg, cast, rectiflow):
    with pg.engine.begin() as conn:
        conn.execute(text("ALTER TABLE measure_history DISABLE TRIGGER measure_history_no_truncate"))
    try:
        result = rectiflow("doctor", "--json")
    finally:
        with pg.engine.begin() as conn:
            conn.execute(text("ALTER TABLE measure_history ENABLE TRIGGER measure_history_no_truncate"))
    [guard] = [c for c in result.json() if c["name"] == "history_guard"]
    assert guard["status"] == "fail" and "TRUNCATE" in guard["message"]


def test_db_grant_names_a_missing_role_and_refuses_sqlite(database, rectiflow):
    result = rectiflow("db", "grant", "no_such_role_xyz")
    assert result.code == 2
    if database.backend == "postgresql":
        assert "数据库角色「no_such_role_xyz」不存在" in result.err
    else:
        assert "只有 PostgreSQL 有数据库角色" in result.err
    assert rectiflow("db", "grant", "bad;name").code == 2
