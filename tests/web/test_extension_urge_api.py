"""延期申请 and 催办 through the JSON API (issue 15): statuses for every role, other units (404,
not 403), the cool-down's 429, and nothing written on a refusal."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from web_support import state_of

from workflow import db
from workflow.lifecycle import Action
from workflow.models import Measure
from workflow.services.measures import ActionRequest, perform

ROLES = ["secretary", "leader", "reviewer", "owner", "colleague", "outsider", "admin", "viewer"]
#: Who may urge, written out from the issue: the 整改办, the leader, the first responsible.
MAY_URGE = {"reviewer", "leader", "secretary", "admin"}
MAY_REQUEST = {"owner", "admin"}
MAY_DECIDE = {"leader", "admin"}


def _version(sessions: Any, measure_id: int) -> int:
    with db.transaction(sessions) as session:
        return session.get_one(Measure, measure_id).version


def _request(sessions: Any, cast: Any, now: Any) -> None:
    with db.transaction(sessions) as session:
        perform(session, ActionRequest(cast.measure.id, Action.REQUEST_EXTENSION,
                                       cast.owner.email, comment="招标延后",
                                       deadline=date(2027, 1, 29)),
                now=now)


@pytest.mark.parametrize("role", ROLES)
def test_urge_for_every_role(api: Any, cast: Any, sessions: Any, role: str) -> None:
    before = _version(sessions, cast.measure.id)
    response = api(role).post(f"/api/measures/{cast.measure.id}/urge",
                              json={"comment": "请本周内报送进展"})
    if role == "outsider":
        assert response.status_code == 404  # another unit: the measure does not exist for them
    elif role in MAY_URGE:
        assert response.status_code == 200, response.text
        shown = response.json()
        assert shown["urges"] == 1
        assert shown["history"][-1]["action"] == "urge"
        assert shown["history"][-1]["actor"] == f"{role}@example.edu.cn"
        return
    else:
        assert response.status_code == 403, response.text
        assert "无权" in response.json()["detail"]
    assert _version(sessions, cast.measure.id) == before


def test_a_second_urge_inside_the_cool_down_is_429(api: Any, cast: Any, sessions: Any,
                                                   clock: Any) -> None:
    client = api("reviewer")
    assert client.post(f"/api/measures/{cast.measure.id}/urge",
                       json={"comment": "请抓紧"}).status_code == 200
    before = _version(sessions, cast.measure.id)
    again = api("leader").post(f"/api/measures/{cast.measure.id}/urge",
                               json={"comment": "再次催办"})
    assert again.status_code == 429
    assert "2026-12-07 13:30 之后才能再次催办" in again.json()["detail"]
    assert _version(sessions, cast.measure.id) == before
    clock.now = clock.now.replace(hour=13, minute=30)
    assert api("leader").post(f"/api/measures/{cast.measure.id}/urge",
                              json={"comment": "再次催办"}).json()["urges"] == 2


@pytest.mark.parametrize("body", [{}, {"comment": ""}, {"comment": "   "}, {"comment": "a\x00"}])
def test_urge_without_a_text_is_422(api: Any, cast: Any, sessions: Any,
                                    body: dict[str, Any]) -> None:
    before = _version(sessions, cast.measure.id)
    assert api("reviewer").post(f"/api/measures/{cast.measure.id}/urge",
                                json=body).status_code == 422
    assert _version(sessions, cast.measure.id) == before


def test_urge_of_a_missing_measure_is_404(api: Any) -> None:
    assert api("admin").post("/api/measures/999/urge", json={"comment": "x"}).status_code == 404


@pytest.mark.parametrize("role", ROLES)
def test_request_extension_for_every_role(api: Any, cast: Any, sessions: Any,
                                          role: str) -> None:
    before = state_of(sessions, cast.measure.id), _version(sessions, cast.measure.id)
    response = api(role).post(f"/api/measures/{cast.measure.id}/actions/request_extension",
                              json={"deadline": "2027-01-29", "comment": "招标延后"})
    if role == "outsider":
        assert response.status_code == 404
    elif role in MAY_REQUEST:
        assert response.status_code == 200, response.text
        assert response.json()["extension_request"]["deadline"] == "2027-01-29"
        assert response.json()["extension_request"]["by"] == f"{role}@example.edu.cn"
        return
    else:
        assert response.status_code == 403
    assert (state_of(sessions, cast.measure.id), _version(sessions, cast.measure.id)) == before


@pytest.mark.parametrize("action", ["approve_extension", "decline_extension"])
@pytest.mark.parametrize("role", ROLES)
def test_deciding_a_request_for_every_role(api: Any, cast: Any, sessions: Any, now: Any,
                                           role: str, action: str) -> None:
    _request(sessions, cast, now)
    before = _version(sessions, cast.measure.id)
    response = api(role).post(f"/api/measures/{cast.measure.id}/actions/{action}",
                              json={"comment": "按期完成有困难，同意" if action == "approve_extension"
                                    else "可先行启动采购"})
    if role == "outsider":
        assert response.status_code == 404
    elif role in MAY_DECIDE:
        assert response.status_code == 200, response.text
        shown = response.json()
        assert shown["extension_request"] is None
        assert shown["deadline"] == ("2027-01-29" if action == "approve_extension"
                                     else "2026-12-31")
        assert shown["original_deadline"] == "2026-12-31"
        return
    else:
        assert response.status_code == 403
    assert _version(sessions, cast.measure.id) == before


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"deadline": "2026-12-01", "comment": "x"}, 422, "deadline"),
    ({"deadline": "2026-12-31", "comment": "x"}, 422, "deadline"),
    ({"deadline": "2027-01-29"}, 422, "comment"),
    ({"comment": "x"}, 422, "deadline"),
])
def test_bad_requests_are_422_and_write_nothing(api: Any, cast: Any, sessions: Any,
                                                body: dict[str, Any], status: int,
                                                field: str) -> None:
    before = _version(sessions, cast.measure.id)
    response = api("owner").post(f"/api/measures/{cast.measure.id}/actions/request_extension",
                                 json=body)
    assert response.status_code == status and response.json()["field"] == field
    assert _version(sessions, cast.measure.id) == before


def test_a_double_request_and_a_late_one_are_409(api: Any, cast: Any, sessions: Any, now: Any,
                                                 clock: Any) -> None:
    _request(sessions, cast, now)
    before = _version(sessions, cast.measure.id)
    again = api("owner").post(f"/api/measures/{cast.measure.id}/actions/request_extension",
                              json={"deadline": "2027-02-26", "comment": "再延"})
    assert again.status_code == 409 and "已有一项延期申请" in again.json()["detail"]
    decline = api("leader").post(f"/api/measures/{cast.measure.id}/actions/decline_extension",
                                 json={"comment": "不同意"})
    assert decline.status_code == 200
    nothing = api("leader").post(f"/api/measures/{cast.measure.id}/actions/approve_extension")
    assert nothing.status_code == 409 and "没有待审批的延期申请" in nothing.json()["detail"]
    clock.now = clock.now.replace(year=2027, month=1, day=4)
    late = api("owner").post(f"/api/measures/{cast.measure.id}/actions/request_extension",
                             json={"deadline": "2027-02-26", "comment": "来不及"})
    assert late.status_code == 409 and "已过" in late.json()["detail"]
    assert _version(sessions, cast.measure.id) == before + 1  # only the decline was written
