"""回头看, 三方验收 and 协办单位 through the JSON API and the measure page (issue 15): statuses
for every role, other units (404, not 403), bad input (422/409), nothing written on a refusal,
and the page's own buttons and facts."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from web_support import PASSWORD, state_of

from workflow import db
from workflow.lifecycle import Action
from workflow.models import Campaign, HistoryEntry, Measure
from workflow.services.measures import ActionRequest, perform

ROLES = ["secretary", "leader", "reviewer", "owner", "colleague", "outsider", "admin", "viewer"]
#: Who may record a 回头看, written out from the issue: the 整改办 (and an admin).
MAY_RECHECK = {"reviewer", "admin"}


def _written(sessions: Any, measure_id: int) -> tuple[int, int]:
    with db.transaction(sessions) as session:
        history = session.query(HistoryEntry).filter_by(measure_id=measure_id).count()
        return session.get_one(Measure, measure_id).version, history


def _walk(sessions: Any, measure_id: int, steps: list[str], who: str, now: Any) -> None:
    for step in steps:
        with db.transaction(sessions) as session:
            perform(session, ActionRequest(measure_id, Action(step), who, comment="推进"),
                    now=now)


@pytest.fixture
def closed(cast: Any, sessions: Any, now: Any) -> int:
    _walk(sessions, cast.measure.id, ["start", "submit", "verify", "close"],
          cast.admin.email, now)
    return cast.measure.id


# ------------------------------------------------------------------------------ 回头看, API


@pytest.mark.parametrize("role", ROLES)
def test_recheck_for_every_role(api: Any, closed: int, sessions: Any, role: str) -> None:
    before = _written(sessions, closed)
    response = api(role).post(f"/api/measures/{closed}/actions/recheck",
                              json={"result": "relapse", "comment": "台账又有漏登"})
    if role == "outsider":
        assert response.status_code == 404
    elif role in MAY_RECHECK:
        assert response.status_code == 200, response.text
        shown = response.json()
        assert shown["state"] == "in_progress"
        assert shown["rechecks"][0]["result"] == "relapse"
        assert shown["history"][-1]["data"]["result"] == "relapse"
        return
    else:
        assert response.status_code == 403, response.text
    assert _written(sessions, closed) == before


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"result": "relapse"}, 422, "说明/理由"),
    ({"result": "relapse", "comment": "   "}, 422, "说明/理由"),
    ({"comment": "x"}, 422, "回头看结论"),
    ({"result": "fine", "comment": "x"}, 422, "结论「fine」无效"),
])
def test_bad_rechecks_are_refused(api: Any, closed: int, sessions: Any, body: dict[str, str],
                                  status: int, words: str) -> None:
    before = _written(sessions, closed)
    response = api("reviewer").post(f"/api/measures/{closed}/actions/recheck", json=body)
    assert response.status_code == status and words in response.text, response.text
    assert _written(sessions, closed) == before


def test_a_recheck_of_an_open_measure_is_409(api: Any, cast: Any, sessions: Any) -> None:
    before = _written(sessions, cast.measure.id)
    response = api("reviewer").post(f"/api/measures/{cast.measure.id}/actions/recheck",
                                    json={"result": "ok"})
    assert response.status_code == 409 and "已销号" in response.text
    assert _written(sessions, cast.measure.id) == before


# ------------------------------------------------------------------------------ 回头看, page


def test_the_recheck_form_on_the_measure_page(browser: Any, closed: int, sessions: Any) -> None:
    page = f"/measures/{closed}"
    reviewer, owner = browser("reviewer"), browser("owner")
    shown = reviewer.get(page).text
    assert 'id="do-recheck"' in shown and 'name="result" value="relapse"' in shown
    assert "回头看结论（必选）" in shown
    assert 'id="do-recheck"' not in owner.get(page).text
    # A relapse without a reason is refused and changes nothing
    before = _written(sessions, closed)
    refused = reviewer.post(f"{page}/actions/recheck", {"result": "relapse"})
    assert refused.status_code == 422 and "说明/理由" in refused.text
    assert _written(sessions, closed) == before
    # An owner posting it is refused
    assert owner.post(f"{page}/actions/recheck", {"result": "ok"}).status_code == 403
    # With a reason the measure is open again and the page says why
    done = reviewer.post(f"{page}/actions/recheck", {"result": "relapse", "comment": "又有漏登"})
    assert done.status_code == 303
    assert state_of(sessions, closed) == "in_progress"
    after = reviewer.get(page).text
    assert 'id="rechecks"' in after and "出现反弹" in after and "又有漏登" in after


# ------------------------------------------------------------------------------ 三方验收


@pytest.fixture
def accepting(cast: Any, sessions: Any, now: Any) -> int:
    """Acceptors: the 整改办 and the Secretary by name; the measure submitted."""
    with db.transaction(sessions) as session:
        session.get_one(Campaign, cast.campaign.id).acceptors = ["reviewer", cast.secretary.id]
    _walk(sessions, cast.measure.id, ["start", "submit"], cast.owner.email, now)
    return cast.measure.id


def test_acceptances_through_the_api(api: Any, accepting: int, sessions: Any) -> None:
    path = f"/api/measures/{accepting}/actions/verify"
    # The leader is no acceptor here: 403, nothing written
    before = _written(sessions, accepting)
    assert api("leader").post(path, json={}).status_code == 403
    assert _written(sessions, accepting) == before
    first = api("secretary").post(path, json={})
    assert first.status_code == 200, first.text
    assert first.json()["state"] == "submitted"
    assert [a["by"] for a in first.json()["acceptances"]] == ["secretary@example.edu.cn"]
    # The same acceptor again: 409, nothing written
    before = _written(sessions, accepting)
    again = api("secretary").post(path, json={})
    assert again.status_code == 409 and "同一验收方不能重复验收" in again.text
    assert _written(sessions, accepting) == before
    last = api("reviewer").post(path, json={})
    assert last.status_code == 200 and last.json()["state"] == "verified"
    shown = api("owner").get(f"/api/measures/{accepting}").json()
    assert [(a["acceptor"], a["accepted"]) for a in shown["acceptors"]] == [
        ("整改办", True), ("Secretary", True)]


def test_the_acceptance_card_and_buttons(browser: Any, accepting: int) -> None:
    page = f"/measures/{accepting}"
    secretary, leader = browser("secretary"), browser("leader")
    shown = secretary.get(page).text
    assert 'id="acceptance"' in shown and "待验收" in shown
    assert 'id="do-verify"' in shown
    assert 'id="do-verify"' not in leader.get(page).text  # no acceptor here
    assert secretary.post(f"{page}/actions/verify", {}).status_code == 303
    after = secretary.get(page).text
    assert "已验收" in after
    assert 'id="do-verify"' not in after  # accepted once: no second button
    assert 'id="do-reject"' in after  # may still return it


# ------------------------------------------------------------------------------ 协办单位


@pytest.fixture
def assisted(ledger: Any, cast: Any, sessions: Any, password_hash: str) -> int:
    from sqlalchemy import update

    from workflow.models import Person

    ledger.person("Helper", "owner", unit="采购管理办公室")
    with db.transaction(sessions) as session:
        session.execute(update(Person).where(Person.email == "helper@example.edu.cn")
                        .values(password_hash=password_hash))
    [_, measure] = ledger.measures(cast.campaign, [{
        "leader": cast.leader, "owner": cast.owner, "unit": "饮食服务中心", "seq": "2",
        "assisting": ["采购管理办公室"]}])
    return measure.id


def test_assisting_members_see_the_measure_and_report_progress(app: Any, browser: Any,
                                                               assisted: int,
                                                               cast: Any) -> None:
    client = TestClient(app, base_url="http://testserver")
    token = client.post("/api/token", json={"email": "helper@example.edu.cn",
                                            "password": PASSWORD}).json()["token"]
    client.headers["Authorization"] = f"Bearer {token}"
    # They see the assisted measure, not the others of the owning unit
    assert [m["id"] for m in client.get("/api/measures").json()] == [assisted]
    shown = client.get(f"/api/measures/{assisted}").json()
    assert shown["assisting_units"] == ["采购管理办公室"]
    assert client.get(f"/api/measures/{cast.measure.id}").status_code == 404
    assert browser("outsider").get(f"/measures/{assisted}").status_code == 404
    # On the page: the assisting unit, the progress form, no buttons of the owner's
    helper = browser()
    assert helper.login("helper@example.edu.cn").status_code == 303
    page = helper.get(f"/measures/{assisted}").text
    assert 'id="assisting"' in page and "采购管理办公室" in page
    assert "协办单位成员" in page and "报送进展" in page
    assert 'id="do-start"' not in page
    posted = helper.post(f"/measures/{assisted}/progress", {"text": "已配合完成供应商比选"})
    assert posted.status_code == 303
    assert "已配合完成供应商比选" in helper.get(f"/measures/{assisted}").text


# ------------------------------------------------------------------------------ 我的事项


def test_my_work_lists_due_rechecks_and_submissions_for_acceptors(browser: Any, cast: Any,
                                                                  sessions: Any, now: Any,
                                                                  runtime: Any) -> None:
    from datetime import timedelta

    # Given a measure closed seven months ago
    _walk(sessions, cast.measure.id, ["start", "submit", "verify", "close"], cast.admin.email,
          now - timedelta(days=215))
    reviewer = browser("reviewer")
    page = reviewer.get("/my").text
    assert "待回头看" in page and f"/measures/{cast.measure.id}" in page
    assert "待回头看" not in browser("leader").get("/my").text
    # Once re-checked it leaves the list
    assert reviewer.post(f"/measures/{cast.measure.id}/actions/recheck",
                         {"result": "ok"}).status_code == 303
    assert "待回头看" not in reviewer.get("/my").text


def test_an_acceptor_finds_the_submission_in_my_work_until_accepted(browser: Any,
                                                                    accepting: int) -> None:
    secretary = browser("secretary")
    assert "需要我核验" in secretary.get("/my").text
    assert secretary.post(f"/measures/{accepting}/actions/verify", {}).status_code == 303
    assert "需要我核验" not in secretary.get("/my").text
