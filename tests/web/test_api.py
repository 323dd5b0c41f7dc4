"""The JSON API per design.md: tokens, visibility (404 for measures one may not see), and every
action × every role with the contract's statuses."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from web_support import PASSWORD, bring, state_of

from workflow import db
from workflow.lifecycle import State
from workflow.models import Person

ROLES = ["secretary", "leader", "reviewer", "owner", "colleague", "outsider", "admin", "viewer"]
#: Who sees the cast's measure: everyone but the outsider (another unit, no relation).
SEES = {role: role != "outsider" for role in ROLES}
#: Who may do each action, written out by hand from design.md (not read from the table).
ALLOWED = {
    "start": {"owner", "colleague", "admin"},
    "submit": {"owner", "admin"},
    "reject": {"reviewer", "leader", "admin"},
    "verify": {"reviewer", "leader", "admin"},
    "close": {"leader", "secretary", "admin"},
    "reopen": {"leader", "admin"},
    "extend": {"leader", "admin"},
    "reassign": {"leader", "admin"},
}
#: The state each action is tried from, and the inputs it needs.
SETUP: dict[str, tuple[State, dict[str, Any]]] = {
    "start": (State.ASSIGNED, {}),
    "submit": (State.IN_PROGRESS, {"comment": "已完成"}),
    "reject": (State.SUBMITTED, {"comment": "佐证材料不全"}),
    "verify": (State.SUBMITTED, {}),
    "close": (State.VERIFIED, {}),
    "reopen": (State.VERIFIED, {"comment": "回头看发现反弹"}),
    "extend": (State.IN_PROGRESS, {"deadline": "2027-01-15", "comment": "需跨年度完成"}),
    "reassign": (State.IN_PROGRESS, {"owner": "colleague@example.edu.cn"}),
}


def test_token_for_good_password_and_401_otherwise(app: Any, with_passwords: Any) -> None:
    client = TestClient(app)
    good = client.post("/api/token", json={"email": "owner@example.edu.cn", "password": PASSWORD})
    assert good.status_code == 200 and good.json()["token"]
    for body in ({"email": "owner@example.edu.cn", "password": "wrong-password"},
                 {"email": "nobody@example.edu.cn", "password": PASSWORD}):
        response = client.post("/api/token", json=body)
        assert response.status_code == 401
        assert "邮箱或密码不正确" in response.json()["detail"]


def test_failed_token_requests_are_rate_limited(app: Any, with_passwords: Any) -> None:
    # Given five wrong passwords for one email from one address
    client = TestClient(app)
    for _ in range(5):
        assert client.post("/api/token", json={"email": "owner@example.edu.cn",
                                               "password": "guess-guess"}).status_code == 401
    # Then even the right password is refused for a while, with Retry-After
    blocked = client.post("/api/token", json={"email": "owner@example.edu.cn",
                                              "password": PASSWORD})
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    # And another account from the same address is not affected
    assert client.post("/api/token", json={"email": "leader@example.edu.cn",
                                           "password": PASSWORD}).status_code == 200


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/measures"), ("GET", "/api/measures/1"),
    ("POST", "/api/measures/1/actions/start")])
@pytest.mark.parametrize("header", [None, "Bearer not-a-token", "Basic b3duZXI6cHc="])
def test_no_or_bad_token_is_401(app: Any, with_passwords: Any, method: str, path: str,
                                header: str | None) -> None:
    client = TestClient(app)
    headers = {"Authorization": header} if header else {}
    response = client.request(method, path, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_token_stops_working_when_the_password_changes(api: Any, sessions: Any) -> None:
    client = api("owner")
    assert client.get("/api/measures").status_code == 200
    with db.transaction(sessions) as session:
        session.execute(update(Person).where(Person.email == "owner@example.edu.cn")
                        .values(password_hash="changed"))
    assert client.get("/api/measures").status_code == 401


def test_token_of_a_deactivated_person_is_refused(api: Any, sessions: Any) -> None:
    client = api("owner")
    with db.transaction(sessions) as session:
        session.execute(update(Person).where(Person.email == "owner@example.edu.cn")
                        .values(active=False))
    assert client.get("/api/measures").status_code == 401


@pytest.mark.parametrize("role", ROLES)
def test_visibility(api: Any, cast: Any, role: str) -> None:
    client = api(role)
    listed = [m["id"] for m in client.get("/api/measures").json()]
    shown = client.get(f"/api/measures/{cast.measure.id}")
    if SEES[role]:
        assert listed == [cast.measure.id]
        assert shown.status_code == 200
        assert shown.json()["history"][0]["action"] == "create"
    else:
        assert listed == []
        assert shown.status_code == 404  # not 403: existence is not leaked


def test_missing_measure_is_404(api: Any) -> None:
    assert api("admin").get("/api/measures/999").status_code == 404


def test_unit_above_sees_measures_of_units_below(api: Any, ledger: Any, cast: Any,
                                                 sessions: Any) -> None:
    # Given 后勤处 (the leader's unit) is the parent of 饮食服务中心
    from workflow.models import Unit

    with db.transaction(sessions) as session:
        parent = session.query(Unit).filter_by(name="后勤处").one()
        session.query(Unit).filter_by(name="饮食服务中心").one().parent_id = parent.id
        session.query(Unit).filter_by(name="物业管理科").one().parent_id = None
    boss = ledger.person("Boss", "owner", unit="后勤处")
    with db.transaction(sessions) as session:
        session.execute(update(Person).where(Person.id == boss.id)
                        .values(password_hash=session.get(Person, cast.owner.id).password_hash))
    client = api("owner")  # a client of the app; the boss's token replaces the owner's
    response = client.post("/api/token", json={"email": "boss@example.edu.cn",
                                                "password": PASSWORD})
    client.headers["Authorization"] = f"Bearer {response.json()['token']}"
    # Then the head of the unit above sees the measure, and the outsider still does not
    assert client.get(f"/api/measures/{cast.measure.id}").status_code == 200
    assert api("outsider").get(f"/api/measures/{cast.measure.id}").status_code == 404


def test_filters(api: Any, cast: Any, now: Any, sessions: Any) -> None:
    client = api("admin")
    assert len(client.get("/api/measures", params={"state": "assigned"}).json()) == 1
    assert client.get("/api/measures", params={"state": "closed"}).json() == []
    assert client.get("/api/measures", params={"state": "nonsense"}).status_code == 422
    assert client.get("/api/measures", params={"overdue": "true"}).json() == []


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(ALLOWED))
def test_every_action_for_every_role(api: Any, cast: Any, sessions: Any, now: Any,
                                     action: str, role: str) -> None:
    # Given the measure in the state the action starts from
    state, body = SETUP[action]
    bring(sessions, cast.measure.id, state, cast.admin, now)
    before = state_of(sessions, cast.measure.id)
    # When this person asks for the action with the inputs it needs
    response = api(role).post(f"/api/measures/{cast.measure.id}/actions/{action}", json=body)
    # Then: 200 and the new measure if allowed; 404 if they cannot see it; 403 otherwise
    if not SEES[role]:
        assert response.status_code == 404
    elif role in ALLOWED[action]:
        assert response.status_code == 200, response.text
        shown = response.json()
        assert shown["history"][-1]["action"] == action
        assert shown["history"][-1]["actor"] == f"{role}@example.edu.cn"
    else:
        assert response.status_code == 403, response.text
        assert "无权" in response.json()["detail"]
    if response.status_code != 200:
        assert state_of(sessions, cast.measure.id) == before  # nothing written


def test_409_when_not_allowed_in_this_state(api: Any, cast: Any) -> None:
    response = api("leader").post(f"/api/measures/{cast.measure.id}/actions/close")
    assert response.status_code == 409
    assert "当前状态为「已交办」" in response.json()["detail"]


def test_409_when_changed_meanwhile(api: Any, cast: Any) -> None:
    client = api("owner")
    version = client.get(f"/api/measures/{cast.measure.id}").json()["version"]
    assert client.post(f"/api/measures/{cast.measure.id}/actions/start",
                       json={"version": version}).status_code == 200
    stale = api("leader").post(f"/api/measures/{cast.measure.id}/actions/extend",
                               json={"version": version, "deadline": "2027-02-01",
                                     "comment": "延期"})
    assert stale.status_code == 409
    assert "已被他人修改" in stale.json()["detail"]


@pytest.mark.parametrize("action,body,field", [
    ("reject", {}, "comment"),
    ("reject", {"comment": "   "}, "comment"),
    ("extend", {"comment": "需要延期"}, "deadline"),
    ("extend", {"deadline": "2020-01-01", "comment": "过去的日期"}, "deadline"),
    ("reassign", {"owner": "nobody@example.edu.cn"}, "owner"),
    ("reassign", {"owner": "owner@example.edu.cn"}, "owner"),
])
def test_422_bad_input(api: Any, cast: Any, sessions: Any, now: Any, action: str,
                       body: dict[str, Any], field: str) -> None:
    bring(sessions, cast.measure.id,
          State.SUBMITTED if action == "reject" else State.IN_PROGRESS, cast.admin, now)
    response = api("leader").post(f"/api/measures/{cast.measure.id}/actions/{action}",
                                  json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


def test_422_bad_date_and_unknown_action(api: Any, cast: Any) -> None:
    client = api("leader")
    bad_date = client.post(f"/api/measures/{cast.measure.id}/actions/extend",
                           json={"deadline": "2026-13-45", "comment": "x"})
    assert bad_date.status_code == 422
    assert client.post(f"/api/measures/{cast.measure.id}/actions/fly").status_code == 422


def test_submit_shows_progress_in_the_answer(api: Any, cast: Any, sessions: Any,
                                             now: Any) -> None:
    bring(sessions, cast.measure.id, State.IN_PROGRESS, cast.admin, now)
    shown = api("owner").post(f"/api/measures/{cast.measure.id}/actions/submit",
                              json={"comment": "办法已印发"}).json()
    assert shown["state"] == "submitted"
    assert shown["progress"][-1]["text"] == "办法已印发"
    assert shown["deadline"] == date(2026, 12, 31).isoformat()


def test_openapi_is_served(app: Any) -> None:
    spec = TestClient(app).get("/openapi.json").json()
    assert "/api/measures/{measure_id}/actions/{action}" in spec["paths"]
    assert "/api/token" in spec["paths"]
