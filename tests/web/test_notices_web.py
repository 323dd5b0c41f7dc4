"""督办 documents on the web: listed on the measure page for the leader, the 整改办 and the unit,
downloaded as Word, answered (回执) by a form or the API; refused to people of other units
(404) and of other roles (403)."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from docx import Document
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from workflow import db
from workflow.models import Measure, OfficialNotice
from workflow.policy import load_policy_file
from workflow.schedule import set_next_reminder
from workflow.services.sweep import reminder_context, sweep
from workflow.timeutil import SHANGHAI

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture
def notice(with_passwords: Any, sessions: sessionmaker[Session]) -> dict[str, Any]:
    """The cast's measure, due 2026-12-01, reached by the sweep two working days later."""
    cast = with_passwords
    now = datetime(2026, 12, 3, 9, 0, tzinfo=SHANGHAI)
    with db.transaction(sessions, write_lock=True) as session:
        session.execute(update(Measure).where(Measure.id == cast.measure.id).values(
            deadline=date(2026, 12, 1), original_deadline=date(2026, 12, 1)))
        set_next_reminder(session, [cast.measure.id], now - timedelta(minutes=1))
    with db.transaction(sessions, write_lock=True) as session:
        sweep(session, reminder_context(session, load_policy_file(None), frozenset()), now=now)
    with db.transaction(sessions) as session:
        [found] = session.scalars(select(OfficialNotice)).all()
        return {"id": found.id, "number": found.number, "measure_id": cast.measure.id}


def test_the_measure_page_lists_documents_for_leader_reviewer_and_unit(notice, browser) -> None:
    for role in ("leader", "reviewer", "owner", "secretary", "colleague"):
        page = browser(role).get(f"/measures/{notice['measure_id']}")
        assert page.status_code == 200
        assert "督办文书" in page.text and notice["number"] in page.text, role
        assert f'href="/notices/{notice["id"]}"' in page.text
    # the unit may record the reply; the leader sees the document without the form
    assert f'id="reply-{notice["id"]}"' in browser("owner").get(
        f"/measures/{notice['measure_id']}").text
    assert f'id="reply-{notice["id"]}"' not in browser("leader").get(
        f"/measures/{notice['measure_id']}").text
    # a viewer sees the measure, not its documents
    viewer_page = browser("viewer").get(f"/measures/{notice['measure_id']}")
    assert viewer_page.status_code == 200 and notice["number"] not in viewer_page.text


def test_download_is_scope_checked(notice, browser) -> None:
    response = browser("leader").get(f"/notices/{notice['id']}")
    assert response.status_code == 200
    assert response.headers["content-type"] == DOCX
    assert "attachment" in response.headers["content-disposition"]
    document = Document(io.BytesIO(response.content))
    assert [p.text for p in document.paragraphs[:2]] == ["督办通知书", notice["number"]]
    # another unit: it does not exist; a viewer: not permitted; nobody signed in: the login page
    assert browser("outsider").get(f"/notices/{notice['id']}").status_code == 404
    assert browser("viewer").get(f"/notices/{notice['id']}").status_code == 403
    assert browser("owner").get("/notices/999").status_code == 404
    anonymous = browser().get(f"/notices/{notice['id']}")
    assert anonymous.status_code in (302, 303) and "/login" in anonymous.headers["location"]


def test_the_notices_page_lists_what_each_may_read(notice, browser) -> None:
    assert notice["number"] in browser("reviewer").get("/notices").text
    assert notice["number"] in browser("owner").get("/notices").text
    outsider = browser("outsider").get("/notices")
    assert outsider.status_code == 200 and notice["number"] not in outsider.text
    assert browser("reviewer").get("/notices?campaign=999").status_code == 404


def test_a_reply_is_recorded_from_the_measure_page(notice, browser) -> None:
    owner = browser("owner")
    url = f"/notices/{notice['id']}/reply"
    # without the CSRF token: refused, nothing written
    assert owner.post(url, {"comment": "已整改"}, csrf=False).status_code in (400, 403)
    # by the leader (not the unit, not the 整改办): not permitted
    assert browser("leader").post(url, {"comment": "已整改"}).status_code == 403
    # by someone of another unit: it does not exist
    assert browser("outsider").post(url, {"comment": "已整改"}).status_code == 404
    # an empty reply is bad input
    assert owner.post(url, {"comment": " "}).status_code == 422
    page = owner.get(f"/measures/{notice['measure_id']}")
    assert f'id="reply-{notice["id"]}"' in page.text
    # the owner replies
    done = owner.post(url, {"comment": "已完成采购管理办法修订，正在报批"})
    assert done.status_code == 303 and done.headers["location"] == f"/measures/{notice['measure_id']}"
    page = browser("leader").get(f"/measures/{notice['measure_id']}")
    assert "已完成采购管理办法修订，正在报批" in page.text
    # once only
    assert browser("reviewer").post(url, {"comment": "补充"}).status_code == 422


def test_the_api_lists_downloads_and_records_replies(notice, api) -> None:
    leader = api("leader")
    listed = leader.get("/api/notices")
    assert listed.status_code == 200
    [shown] = listed.json()
    assert {k: shown[k] for k in ("id", "measure_id", "kind", "number", "stage")} == {
        "id": notice["id"], "measure_id": notice["measure_id"], "kind": "notice",
        "number": notice["number"], "stage": "overdue:1"}
    assert api("outsider").get("/api/notices").json() == []
    assert api("viewer").get("/api/notices").json() == []
    assert leader.get("/api/notices?campaign=999").status_code == 404
    # one document; its Word file
    assert leader.get(f"/api/notices/{notice['id']}").json()["number"] == notice["number"]
    assert api("outsider").get(f"/api/notices/{notice['id']}").status_code == 404
    assert api("viewer").get(f"/api/notices/{notice['id']}").status_code == 403
    document = leader.get(f"/api/notices/{notice['id']}/document")
    assert document.status_code == 200 and document.headers["content-type"] == DOCX
    # replies: the leader may not, an empty one is bad input, a colleague of the unit may
    url = f"/api/notices/{notice['id']}/reply"
    assert leader.post(url, json={"comment": "x"}).status_code == 403
    colleague = api("colleague")
    assert colleague.post(url, json={"comment": "  "}).status_code == 422
    assert colleague.post(url, json={}).status_code == 422
    replied = colleague.post(url, json={"comment": "已落实"})
    assert replied.status_code == 200, replied.text
    assert replied.json()["reply"]["by"] == "colleague@example.edu.cn"
    assert colleague.post(url, json={"comment": "again"}).status_code == 422
    assert colleague.post("/api/notices/999/reply", json={"comment": "x"}).status_code == 404
    assert api("owner").get("/api/notices", headers={"Authorization": "Bearer bad"}
                            ).status_code == 401
