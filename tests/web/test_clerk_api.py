"""The clerk's JSON API over real HTTP (uvicorn + httpx): campaigns, imports with a dry run,
people, the report and the digest, each tried by every role of the cast."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from clerk_support import bad_rows, good_rows, ledger_csv
from live_server import serving
from sqlalchemy import func, select
from web_support import PASSWORD

from workflow import db
from workflow.models import Area, Campaign, Measure, Person

ROLES = ["secretary", "leader", "reviewer", "owner", "colleague", "outsider", "admin", "viewer"]
CLERKS = {"reviewer", "admin"}


@pytest.fixture
def base(app: Any, with_passwords: Any) -> Iterator[str]:
    with serving(app) as url:
        yield url


@pytest.fixture
def token(base: str, with_passwords: Any) -> Any:
    def issue(role: str) -> dict[str, str]:
        email = getattr(with_passwords, role).email
        answer = httpx.post(f"{base}/api/token", json={"email": email, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['token']}"}
    return issue


def count(sessions: Any, model: Any) -> int:
    with db.transaction(sessions) as session:
        return int(session.scalar(select(func.count()).select_from(model)))


@pytest.mark.parametrize("role", ROLES)
def test_only_reviewers_and_admins_create_campaigns(role: str, base: str, token: Any,
                                                    sessions: Any) -> None:
    before = count(sessions, Campaign)
    answer = httpx.post(f"{base}/api/campaigns", headers=token(role), json={
        "title": f"专项治理（{role}）", "first_responsible": "secretary@example.edu.cn",
        "feedback_date": "2026-12-01"})
    if role in CLERKS:
        assert answer.status_code == 201, answer.text
        new_id = answer.json()["id"]
        with db.transaction(sessions) as session:
            campaign = session.get(Campaign, new_id)
            assert campaign is not None and campaign.first_responsible is not None
            assert campaign.first_responsible.email == "secretary@example.edu.cn"
            assert campaign.feedback_date.isoformat() == "2026-12-01"
    else:
        assert answer.status_code == 403, answer.text
        assert "只有整改办、管理员可以" in answer.json()["detail"]
        assert count(sessions, Campaign) == before


@pytest.mark.parametrize(("body", "field", "status"), [
    ({"title": "   "}, "title", 422),
    ({"title": "第五轮巡察反馈问题整改"}, "title", 409),  # the cast's campaign
    ({"title": "新任务", "first_responsible": "nobody@example.edu.cn"}, "first_responsible", 422),
    ({"title": "新任务", "acceptors": ["Leader", "无此人"]}, "acceptors", 422),
])
def test_bad_campaigns_are_refused_naming_the_field(body: dict[str, Any], field: str,
                                                    status: int, base: str, token: Any,
                                                    sessions: Any) -> None:
    before = count(sessions, Campaign)
    answer = httpx.post(f"{base}/api/campaigns", headers=token("reviewer"), json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["field"] == field
    assert count(sessions, Campaign) == before


def test_no_token_is_401_and_a_session_post_needs_the_csrf_header(base: str) -> None:
    assert httpx.post(f"{base}/api/campaigns", json={"title": "x"}).status_code == 401
    with httpx.Client(base_url=base) as client:
        login = client.get("/login")
        csrf = login.text.split('name="csrf_token" value="')[1].split('"')[0]
        client.post("/login", data={"email": "reviewer@example.edu.cn", "password": PASSWORD,
                                    "csrf_token": csrf, "next": "/my"})
        csrf = client.get("/campaigns").text.split('name="csrf_token" value="')[1].split('"')[0]
        assert client.post("/api/campaigns", json={"title": "经会话"}).status_code == 403
        made = client.post("/api/campaigns", json={"title": "经会话"},
                           headers={"X-CSRF-Token": csrf})
        assert made.status_code == 201, made.text


def upload(base: str, headers: dict[str, str], campaign_id: int, content: bytes,
           name: str = "台账.csv", dry_run: str = "true") -> httpx.Response:
    return httpx.post(f"{base}/api/campaigns/{campaign_id}/imports?dry_run={dry_run}",
                      headers=headers, files={"file": (name, io.BytesIO(content), "text/csv")})


def test_import_dry_run_writes_nothing_then_the_import_writes(base: str, token: Any,
                                                               sessions: Any, cast: Any) -> None:
    headers = token("reviewer")
    before = count(sessions, Measure)
    preview = upload(base, headers, cast.campaign.id, ledger_csv(good_rows()))
    assert preview.status_code == 200, preview.text
    document = preview.json()
    assert (document["campaign_id"], document["areas"], document["problems"],
            document["measures"], document["dry_run"]) == (cast.campaign.id, 2, 2, 3, True)
    assert count(sessions, Measure) == before
    done = upload(base, headers, cast.campaign.id, ledger_csv(good_rows()), dry_run="false")
    assert done.status_code == 200, done.text
    assert done.json()["measures"] == 3 and done.json()["dry_run"] is False
    assert count(sessions, Measure) == before + 3


def test_a_bad_ledger_is_422_with_every_row_field_and_value(base: str, token: Any,
                                                            sessions: Any, cast: Any) -> None:
    before = (count(sessions, Measure), count(sessions, Area))
    for dry_run in ("true", "false"):
        answer = upload(base, token("admin"), cast.campaign.id, ledger_csv(bad_rows()),
                        dry_run=dry_run)
        assert answer.status_code == 422, answer.text
        errors = answer.json()["errors"]
        assert {(e["row"], e["field"], e["value"]) for e in errors} == {
            (3, "责任人", "陈新人"), (4, "完成时限", "2027-02-30")}
        assert all(e["message"] for e in errors)
        assert "未知人员「陈新人」" in next(e["message"] for e in errors if e["row"] == 3)
    assert (count(sessions, Measure), count(sessions, Area)) == before


def test_a_file_of_another_kind_or_a_missing_campaign(base: str, token: Any, cast: Any) -> None:
    headers = token("reviewer")
    wrong = upload(base, headers, cast.campaign.id, b"%PDF-1.4", name="台账.pdf")
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "file"
    assert upload(base, headers, 999, ledger_csv(good_rows())).status_code == 404
    missing = httpx.post(f"{base}/api/campaigns/{cast.campaign.id}/imports", headers=headers)
    assert missing.status_code == 422


@pytest.mark.parametrize("role", sorted(set(ROLES) - CLERKS))
def test_others_may_not_import_download_or_read_the_digest(role: str, base: str, token: Any,
                                                           cast: Any, sessions: Any) -> None:
    headers = token(role)
    before = count(sessions, Measure)
    assert upload(base, headers, cast.campaign.id, ledger_csv(good_rows()),
                  dry_run="false").status_code == 403
    assert count(sessions, Measure) == before
    for path in (f"/api/campaigns/{cast.campaign.id}/report?format=docx",
                 f"/api/campaigns/{cast.campaign.id}/digest", "/api/campaigns", "/api/people"):
        assert httpx.get(base + path, headers=headers).status_code == 403, path


def test_people_201_409_and_only_an_admin_adds_an_admin(base: str, token: Any,
                                                        sessions: Any) -> None:
    body = {"name": "陈新人", "email": "chen.xinren@example.edu.cn", "roles": ["责任人"],
            "unit": "后勤处", "password": "a-long-password"}
    made = httpx.post(f"{base}/api/people", headers=token("reviewer"), json=body)
    assert made.status_code == 201, made.text
    assert made.json()["roles"] == ["owner"] and made.json()["unit"] == "后勤处"
    again = httpx.post(f"{base}/api/people", headers=token("reviewer"),
                       json={**body, "email": "Chen.Xinren@example.edu.cn"})
    assert again.status_code == 409 and again.json()["field"] == "email"
    # The new person can sign in with the password given
    assert httpx.post(f"{base}/api/token", json={"email": body["email"],
                                                 "password": body["password"]}).status_code == 200
    boss = {"name": "新管理员", "email": "boss@example.edu.cn", "roles": ["admin"]}
    assert httpx.post(f"{base}/api/people", headers=token("reviewer"), json=boss).status_code == 403
    assert httpx.post(f"{base}/api/people", headers=token("owner"),
                      json={**body, "email": "x@example.edu.cn"}).status_code == 403
    assert httpx.post(f"{base}/api/people", headers=token("admin"), json=boss).status_code == 201
    bad = httpx.post(f"{base}/api/people", headers=token("admin"),
                     json={**body, "email": "not-an-email"})
    assert bad.status_code == 422 and bad.json()["field"] == "email"
    with db.transaction(sessions) as session:
        assert session.scalar(select(func.count()).select_from(Person).where(
            Person.email == "x@example.edu.cn")) == 0


def test_report_in_three_formats_and_the_digest(base: str, token: Any, cast: Any,
                                                tmp_path: Any) -> None:
    from docx import Document
    from openpyxl import load_workbook

    headers = token("reviewer")
    url = f"{base}/api/campaigns/{cast.campaign.id}"
    docx = httpx.get(f"{url}/report?format=docx", headers=headers)
    assert docx.status_code == 200
    assert "attachment" in docx.headers["content-disposition"]
    (tmp_path / "r.docx").write_bytes(docx.content)
    text = "\n".join(p.text for p in Document(str(tmp_path / "r.docx")).paragraphs)
    assert "第五轮巡察反馈问题整改" in text
    md = httpx.get(f"{url}/report?format=md", headers=headers)
    assert md.status_code == 200 and "修订食堂原材料采购管理办法" in md.text
    xlsx = httpx.get(f"{url}/report?format=xlsx", headers=headers)
    (tmp_path / "r.xlsx").write_bytes(xlsx.content)
    cells = [c for row in load_workbook(tmp_path / "r.xlsx").active.iter_rows(values_only=True)
             for c in row]
    assert "修订食堂原材料采购管理办法" in cells
    assert httpx.get(f"{url}/report?format=pdf", headers=headers).status_code == 422
    assert httpx.get(f"{base}/api/campaigns/999/report?format=md",
                     headers=headers).status_code == 404
    digest = httpx.get(f"{url}/digest", headers=headers)
    assert digest.status_code == 200
    document = digest.json()
    assert document["total"] == 1 and document["by_state"]["assigned"] == 1
    assert document["completion_rate"] == 0 and document["overdue"] == 0
    assert httpx.get(f"{base}/api/campaigns/999/digest", headers=headers).status_code == 404


FEEDBACK = """\
校党委第一巡察组关于巡察后勤处党委的反馈意见
一、贯彻落实党的路线方针政策方面存在的问题
（一）学习贯彻不深入。
1.理论学习中心组学习不规范。
2.传达学习上级精神不及时。
二、全面从严治党方面存在的问题
（一）廉洁风险防控不力。
1.采购程序不规范。
"""
SUMMARY = """\
2021年工作总结
一、落实主体责任情况
1.加强党史学习教育。组织集中学习12次。
2.推动巡察整改落实。巡察组反馈的五个方面17个问题已全部完成整改。
"""


def test_a_feedback_list_is_imported_and_another_document_refused(base: str, token: Any,
                                                                   sessions: Any) -> None:
    headers = token("reviewer")
    made = httpx.post(f"{base}/api/campaigns", headers=headers, json={"title": "后勤处党委巡察"})
    campaign_id = made.json()["id"]
    before = count(sessions, Measure)
    preview = upload(base, headers, campaign_id, FEEDBACK.encode(), name="反馈意见.txt")
    assert preview.status_code == 200, preview.text
    assert (preview.json()["areas"], preview.json()["measures"]) == (2, 3)
    assert count(sessions, Measure) == before
    done = upload(base, headers, campaign_id, FEEDBACK.encode(), name="反馈意见.txt",
                  dry_run="false")
    assert done.status_code == 200 and done.json()["campaign_id"] == campaign_id
    assert count(sessions, Measure) == before + 3
    refused = upload(base, headers, campaign_id, SUMMARY.encode(), name="工作总结.txt",
                     dry_run="false")
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "file"
    assert "没有找到可以导入的问题清单" in refused.json()["errors"][0]["message"]
    assert count(sessions, Measure) == before + 3
