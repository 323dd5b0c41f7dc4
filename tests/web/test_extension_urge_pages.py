"""The measure page and 我的事项 for 延期申请 and 催办 (issue 15): who is offered which button,
the waiting request shown on the measure and in the leader's queue, the forms working, and the
refusals' statuses (other units 404, not permitted 403, the cool-down 429)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from test_approve import confirm, sent_link
from web_support import state_of

from workflow import db
from workflow.ledger import measure_detail
from workflow.lifecycle import Action
from workflow.services.measures import ActionRequest, perform


def test_an_extension_request_from_the_page_to_the_leaders_queue_and_back(
        browser: Any, cast: Any, sessions: Any) -> None:
    page = f"/measures/{cast.measure.id}"
    owner, leader, reviewer = browser("owner"), browser("leader"), browser("reviewer")
    # Only the owner is offered the request, and the leader has nothing to decide yet
    assert 'id="do-request_extension"' in owner.get(page).text
    assert 'id="do-request_extension"' not in leader.get(page).text
    assert 'id="do-approve_extension"' not in leader.get(page).text
    # Someone of another unit cannot post it (404); the leader may not ask (403)
    form = {"deadline": "2027-01-29", "comment": "招标延后，需跨年度完成"}
    path = f"{page}/actions/request_extension"
    assert browser("outsider").post(path, form).status_code == 404
    assert leader.post(path, form).status_code == 403
    # When the owner asks from the page
    assert owner.post(path, form).status_code == 303
    # Then the measure shows the request to everyone who sees it, and no second request
    shown = owner.get(page).text
    assert 'id="extension-request"' in shown and "2027-01-29" in shown
    assert "招标延后，需跨年度完成" in shown and "等待责任领导审批" in shown
    assert 'id="do-request_extension"' not in shown
    again = owner.post(path, {"deadline": "2027-02-26", "comment": "再延"})
    assert again.status_code == 409 and "已有一项延期申请" in again.text
    # The leader has the buttons, the reviewer does not
    lead = leader.get(page).text
    assert 'id="do-approve_extension"' in lead and 'id="do-decline_extension"' in lead
    assert 'id="do-approve_extension"' not in reviewer.get(page).text
    # And the request is in the leader's queue with the date asked for
    queue = leader.get("/my").text
    assert "待我审批延期" in queue and "申请延至 2027-01-29" in queue
    assert f"/measures/{cast.measure.id}#do-approve_extension" in queue
    assert "待我审批延期" not in reviewer.get("/my").text
    # A decline without a reason is refused
    assert leader.post(f"{page}/actions/decline_extension", {}).status_code == 422
    # When the leader approves
    assert leader.post(f"{page}/actions/approve_extension", {}).status_code == 303
    # Then the deadline moved, the request is gone from the page and the queue
    after = leader.get(page).text
    assert 'id="extension-request"' not in after and "2027-01-29" in after
    assert "待我审批延期" not in leader.get("/my").text


def test_the_urge_button_and_its_cool_down(browser: Any, cast: Any, sessions: Any,
                                           clock: Any) -> None:
    page = f"/measures/{cast.measure.id}"
    path = f"{page}/actions/urge"
    # The 整改办, the leader and the first responsible are offered it; the owner is not
    for role in ("reviewer", "leader", "secretary"):
        assert 'id="do-urge"' in browser(role).get(page).text, role
    owner = browser("owner")
    assert 'id="do-urge"' not in owner.get(page).text
    assert owner.post(path, {"comment": "自己催自己"}).status_code == 403
    assert browser("outsider").post(path, {"comment": "x"}).status_code == 404
    before = state_of(sessions, cast.measure.id)
    # When the 整改办 urges from the page
    reviewer = browser("reviewer")
    assert reviewer.post(path, {"comment": "请于本周五前报送进展"}).status_code == 303
    shown = reviewer.get(page).text
    assert 'id="urges"' in shown and "已催办 1 次" in shown
    assert "请于本周五前报送进展" in shown  # in the history table
    # A second urge inside the cool-down is 429 and says when it will be allowed
    leader = browser("leader")
    too_soon = leader.post(path, {"comment": "再催"})
    assert too_soon.status_code == 429 and "2026-12-07 13:30 之后才能再次催办" in too_soon.text
    assert "已催办 1 次" in leader.get(page).text
    assert state_of(sessions, cast.measure.id) == before  # an urge moves no state


def test_the_leader_approves_a_request_by_the_link_in_the_message(app: Any, cast: Any,
                                                                  sessions: Any, now: Any,
                                                                  clock: Any) -> None:
    # Given the owner asked for a later date: the leader's message carries a link
    ask_for_later(sessions, cast, now)
    token, sent = sent_link(app, sessions, clock)
    [to_leader] = [r for r in sent if r.recipient == "leader@example.edu.cn"]
    assert "招标延后" in to_leader.text
    # When the leader opens it: the page says what was asked and changes nothing
    client = TestClient(app, base_url="http://testserver")
    page, csrf = confirm(client, token)
    assert page.status_code == 200 and 'id="extension-request"' in page.text
    assert "2027-01-29" in page.text and "招标延后" in page.text
    assert "确认批准延期" in page.text
    # And confirms it: the deadline is the one asked for
    done = client.post(f"/approve/{token}", data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code in (200, 303), done.text
    shown = browser_free_show(app, cast)
    assert (shown["deadline"], shown["extension_request"]) == ("2027-01-29", None)
    assert shown["history"][-1]["action"] == "approve_extension"


def test_the_leader_declines_a_request_by_the_link_with_a_reason(app: Any, cast: Any,
                                                                  sessions: Any, now: Any,
                                                                  clock: Any) -> None:
    # Given the owner asked for a later date and the leader opened the message's link
    ask_for_later(sessions, cast, now)
    token, _sent = sent_link(app, sessions, clock)
    client = TestClient(app, base_url="http://testserver")
    page, csrf = confirm(client, token)
    assert "不同意延期</button>" in page.text and 'name="reason"' in page.text
    # A decline without a reason is refused (422) and the request still waits
    empty = client.post(f"/approve/{token}", data={"csrf_token": csrf, "decision": "refuse",
                                                   "reason": ""})
    assert empty.status_code == 422
    assert browser_free_show(app, cast)["extension_request"] is not None
    # With a reason it is declined: the deadline stays, the owner hears why
    done = client.post(f"/approve/{token}", data={"csrf_token": csrf, "decision": "refuse",
                                                  "reason": "请按原时限完成招标"})
    assert done.status_code == 200 and "已不同意延期" in done.text
    shown = browser_free_show(app, cast)
    assert (shown["deadline"], shown["extension_request"]) == ("2026-12-31", None)
    assert shown["history"][-1]["action"] == "decline_extension"
    assert shown["history"][-1]["comment"] == "请按原时限完成招标"


def ask_for_later(sessions: Any, cast: Any, now: Any) -> None:
    """The owner asks for 2027-01-29 instead (延期申请), giving the reason 招标延后."""
    with db.transaction(sessions) as session:
        perform(session, ActionRequest(cast.measure.id, Action.REQUEST_EXTENSION,
                                       cast.owner.email, comment="招标延后",
                                       deadline=date(2027, 1, 29)), now=now)


def browser_free_show(app: Any, cast: Any) -> dict[str, Any]:
    web = app.state.web
    with web.transaction() as session:
        return measure_detail(session, cast.measure.id, web.today())
