"""``rectiflow serve --demo``'s data: every state and kind, overdue and due-soon measures, and a
login for every role; loading twice adds nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from web_support import csrf_of

from workflow import db
from workflow.lifecycle import Kind, State
from workflow.models import Measure
from workflow.web.demo import DEMO_PASSWORD, load_demo


def test_demo_has_every_state_and_logins_work(app: Any, sessions: Any, now: Any) -> None:
    from fastapi.testclient import TestClient

    with db.transaction(sessions) as session:
        logins = load_demo(session, now)
    with db.transaction(sessions) as session:
        again = load_demo(session, now)
        states = set(session.scalars(select(Measure.state)))
        kinds = set(session.scalars(select(Measure.kind)))
        count = session.scalar(select(func.count()).select_from(Measure))
        overdue = session.scalar(select(func.count()).where(
            Measure.deadline < now.date(), Measure.state.in_(["assigned", "in_progress"])))
    assert states == {s.value for s in State} and kinds == {k.value for k in Kind}
    assert count == 12 and overdue and again == logins
    assert {login.role for login in logins} >= {"第一责任人", "责任领导", "整改办（核验）", "管理员",
                                                 "巡察办（督导催办）"}
    for login in logins:
        client = TestClient(app)
        response = client.post("/login", data={
            "email": login.email, "password": DEMO_PASSWORD,
            "csrf_token": csrf_of(client.get("/login").text)}, follow_redirects=False)
        assert response.status_code == 303, login
        assert client.get("/ledger").status_code == 200
