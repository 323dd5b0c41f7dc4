"""Pages for people: login, sessions and CSRF; every page for every role, including other
units' measures (IDOR); escaping of user text; the ledger's filters, colours, counts, pages and
export; evidence upload and download; bulk closure; the admin pages."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select, update
from web_support import PASSWORD, bring, csrf_of, state_of

from workflow import db
from workflow.lifecycle import State
from workflow.models import Evidence, Measure, OutboxMessage, Person

ROLES = ["secretary", "leader", "reviewer", "owner", "colleague", "outsider", "admin", "viewer"]
PAGES = ["/my", "/ledger", "/ledger.xlsx", "/to-close", "/measures/{id}"]
ADMIN_PAGES = ["/admin", "/admin/calendar", "/admin/policy", "/admin/outbox",
               "/admin/sweep-preview"]
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
SCRIPT = "<script>alert('x')</script>"


# ------------------------------------------------------------------ login, sessions, CSRF


@pytest.mark.parametrize("path", PAGES + ADMIN_PAGES)
def test_pages_need_a_login(app: Any, cast: Any, path: str) -> None:
    response = TestClient(app).get(path.format(id=cast.measure.id), follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


def test_login_sets_a_safe_session_cookie(browser: Any) -> None:
    b = browser()
    response = b.login("owner@example.edu.cn")
    assert response.status_code == 303 and response.headers["location"] == "/my"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie


def test_cookie_is_secure_when_served_over_https(database: Any, web_settings: Any, sessions: Any, clock: Any,
                                                 with_passwords: Any) -> None:
    from dataclasses import replace

    from workflow.runtime import Runtime
    from workflow.web.app import create_app

    app = create_app(Runtime(replace(web_settings, base_url="https://zg.example.edu.cn"),
                             engine=database.engine, clock=clock))
    client = TestClient(app, base_url="https://testserver")
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"email": "owner@example.edu.cn", "password": PASSWORD,
                                           "csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert "secure" in response.headers["set-cookie"].lower()


def test_wrong_password_is_refused_then_rate_limited(browser: Any) -> None:
    b = browser()
    for _ in range(5):
        response = b.login("owner@example.edu.cn", "not-the-password")
        assert response.status_code == 401 and "邮箱或密码不正确" in response.text
    blocked = b.login("owner@example.edu.cn")
    assert blocked.status_code == 429 and "登录失败次数过多" in blocked.text
    assert "Retry-After" in blocked.headers


def test_login_without_csrf_token_is_refused(app: Any, with_passwords: Any) -> None:
    client = TestClient(app)
    client.get("/login")
    for data in ({}, {"csrf_token": "forged"}):
        response = client.post("/login", data={"email": "owner@example.edu.cn",
                                               "password": PASSWORD, **data},
                               follow_redirects=False)
        assert response.status_code == 403
    assert client.get("/my", follow_redirects=False).status_code == 303  # still logged out


def test_login_redirects_only_to_local_paths(browser: Any) -> None:
    b = browser()
    token = csrf_of(b.client.get("/login").text)
    response = b.client.post("/login", data={
        "email": "owner@example.edu.cn", "password": PASSWORD, "csrf_token": token,
        "next": "//evil.example.com/x"}, follow_redirects=False)
    assert response.headers["location"] == "/my"


@pytest.mark.parametrize("path,data", [
    ("/measures/{id}/actions/start", {}),
    ("/measures/{id}/progress", {"text": "进展"}),
    ("/to-close", {"pick": "{id}:1"}),
    ("/logout", {}),
])
def test_forms_without_csrf_token_are_refused(browser: Any, cast: Any, sessions: Any,
                                              path: str, data: dict[str, str]) -> None:
    b = browser("owner")
    form = {k: v.format(id=cast.measure.id) for k, v in data.items()}
    for token in (None, "forged", b.csrf[:-2]):
        sent = {**form, **({"csrf_token": token} if token else {})}
        response = b.post(path.format(id=cast.measure.id), sent, csrf=False)
        assert response.status_code == 403, path
    assert state_of(sessions, cast.measure.id) == "assigned"
    assert b.get("/my").status_code == 200  # the logout was refused too


def test_admin_forms_without_csrf_token_are_refused(browser: Any, cast: Any) -> None:
    b = browser("admin")
    for path, data in (("/admin/delegation", {"person": "leader@example.edu.cn"}),
                       ("/admin/calendar", {"day": "2027-02-10", "kind": "holiday"}),
                       ("/admin/units", {"name": "新部门"}),
                       ("/admin/outbox/1/retry", {})):
        assert b.post(path, data, csrf=False).status_code == 403, path


def test_logout_ends_the_session(browser: Any) -> None:
    b = browser("owner")
    assert b.post("/logout").status_code == 303
    assert b.get("/my").status_code == 303


def test_session_ends_when_the_password_changes(browser: Any, sessions: Any) -> None:
    b = browser("owner")
    with db.transaction(sessions) as session:
        session.execute(update(Person).where(Person.email == "owner@example.edu.cn")
                        .values(password_hash="changed"))
    assert b.get("/my").status_code == 303


# ------------------------------------------------------------------ every page × every role


@pytest.mark.parametrize("role", ROLES)
def test_pages_for_every_role(browser: Any, cast: Any, role: str) -> None:
    b = browser(role)
    for path in PAGES:
        response = b.get(path.format(id=cast.measure.id))
        if path == "/measures/{id}" and role == "outsider":
            assert response.status_code == 404  # another unit's measure does not exist for them
            assert cast.measure.title not in response.text
        else:
            assert response.status_code == 200, (path, response.text[:500])
    for path in ADMIN_PAGES:
        assert b.get(path).status_code == (200 if role == "admin" else 403)


@pytest.mark.parametrize("role", ROLES)
def test_ledger_lists_only_what_the_person_may_see(browser: Any, cast: Any, role: str) -> None:
    b = browser(role)
    ledger = b.get("/ledger").text
    export = load_workbook(io.BytesIO(b.get("/ledger.xlsx").content)).active
    assert export is not None
    rows = list(export.iter_rows(min_row=2, values_only=True))
    if role == "outsider":
        assert cast.measure.title not in ledger and rows == []
    else:
        assert cast.measure.title in ledger and [r[4] for r in rows] == [cast.measure.title]


# (action, state before, role allowed, role refused with 403, form)
ACTIONS = [
    ("start", State.ASSIGNED, "colleague", "leader", {}),
    ("submit", State.IN_PROGRESS, "owner", "colleague", {"comment": "已完成"}),
    ("reject", State.SUBMITTED, "reviewer", "owner", {"comment": "材料不全"}),
    ("verify", State.SUBMITTED, "leader", "viewer", {}),
    ("close", State.VERIFIED, "secretary", "reviewer", {}),
    ("reopen", State.CLOSED, "leader", "secretary", {"comment": "回头看发现反弹"}),
    ("extend", State.IN_PROGRESS, "leader", "owner",
     {"deadline": "2027-01-20", "comment": "跨年度"}),
    ("reassign", State.ASSIGNED, "admin", "owner", {"owner": "colleague@example.edu.cn"}),
]


@pytest.mark.parametrize("action,state,allowed,refused,form", ACTIONS)
def test_action_forms(browser: Any, cast: Any, sessions: Any, now: Any, action: str,
                      state: State, allowed: str, refused: str, form: dict[str, str]) -> None:
    bring(sessions, cast.measure.id, state, cast.admin, now)
    path = f"/measures/{cast.measure.id}/actions/{action}"
    # Someone of another unit: 404, as if there were no such measure
    assert browser("outsider").post(path, form).status_code == 404
    # Someone who sees it but may not do it: 403, and the page does not offer the button
    no = browser(refused)
    assert f'id="do-{action}"' not in no.get(f"/measures/{cast.measure.id}").text
    assert no.post(path, form).status_code == 403
    assert state_of(sessions, cast.measure.id) == state.value
    # Someone who may: the button is there and the form works
    yes = browser(allowed)
    assert f'id="do-{action}"' in yes.get(f"/measures/{cast.measure.id}").text
    done = yes.post(path, {**form, "version": ""})
    assert done.status_code == 303, done.text
    assert "已" in yes.get(f"/measures/{cast.measure.id}").text


def test_reason_and_date_are_required(browser: Any, cast: Any, sessions: Any, now: Any) -> None:
    bring(sessions, cast.measure.id, State.IN_PROGRESS, cast.admin, now)
    b = browser("leader")
    path = f"/measures/{cast.measure.id}/actions/extend"
    assert b.post(path, {"deadline": "2027-01-20"}).status_code == 422
    bad = b.post(path, {"deadline": "2027-02-30", "comment": "x"})
    assert bad.status_code == 422 and "日期" in bad.text
    assert b.post(path, {"comment": "x"}).status_code == 422


def test_a_stale_form_is_409(browser: Any, cast: Any) -> None:
    b = browser("owner")
    response = b.post(f"/measures/{cast.measure.id}/actions/start", {"version": "0"})
    assert response.status_code == 409 and "已被他人修改" in response.text


def test_wrong_state_is_409_with_a_clear_message(browser: Any, cast: Any) -> None:
    response = browser("leader").post(f"/measures/{cast.measure.id}/actions/close")
    assert response.status_code == 409 and "不能执行「销号」" in response.text


# ------------------------------------------------------------------ escaping


def test_a_script_title_is_escaped_on_every_page(app: Any, browser: Any, cast: Any,
                                                 sessions: Any, now: Any, clock: Any) -> None:
    from notifications.channels.base import MemoryChannel
    from notifications.deliverer import Deliverer

    with db.transaction(sessions) as session:
        session.execute(update(Measure).values(title=SCRIPT))
        session.execute(update(Person).where(Person.email == "owner@example.edu.cn")
                        .values(name=SCRIPT))
    bring(sessions, cast.measure.id, State.SUBMITTED, cast.admin, now)
    # Verified by the reviewer: the leader's message carries an approval link
    assert browser("reviewer").post(f"/measures/{cast.measure.id}/actions/verify").status_code == 303
    channel = MemoryChannel("file")
    Deliverer(sessions, {"file": channel}, base_url="http://testserver",
              link_maker=app.state.web.runtime.link_maker).run(clock)
    links = [r.url for r in channel.sent if "/approve/" in r.url]
    assert links
    pages = {role: [p.format(id=cast.measure.id) for p in PAGES if p != "/ledger.xlsx"]
             for role in ("owner", "leader", "admin")}
    pages["admin"] += ADMIN_PAGES
    for role, paths in pages.items():
        b = browser(role)
        for path in paths:
            text = b.get(path).text
            assert SCRIPT not in text, (role, path)
            if path in ("/ledger", f"/measures/{cast.measure.id}", "/to-close"):
                assert "&lt;script&gt;" in text, (role, path)
    # (销号 links ask for the leader's own session: the policy's default)
    approve = browser("leader").get(links[0].removeprefix("http://testserver")).text
    assert SCRIPT not in approve and "&lt;script&gt;" in approve


# ------------------------------------------------------------------ the ledger


@pytest.fixture
def many(ledger: Any, cast: Any, sessions: Any, now: Any) -> list[Measure]:
    """60 more measures: 20 overdue, 20 due within a week, 20 due later; two units."""
    today = now.date()
    rows = []
    for i in range(60):
        deadline = (today - timedelta(days=3) if i < 20 else
                    today + timedelta(days=2) if i < 40 else today + timedelta(days=60))
        rows.append({"leader": cast.leader, "owner": cast.owner if i % 2 else cast.colleague,
                     "unit": "饮食服务中心", "title": f"批量措施{i:02d}", "deadline": deadline,
                     "area": "作风建设" if i % 3 else "学习传达有差距", "seq": f"b{i:02d}"})
    campaign = ledger.campaign("第六轮巡察反馈问题整改")
    return ledger.measures(campaign, rows)


def test_ledger_counts_colours_pages_and_sorting(browser: Any, many: Any) -> None:
    b = browser("owner")
    text = b.get("/ledger").text
    assert "全部<b>61</b>" in text and "逾期<b>20</b>" in text and "7 天内到期<b>20</b>" in text
    assert "第 1 / 2 页" in text
    assert text.count('<tr class="red">') == 20 and text.count('<tr class="yellow">') == 20
    second = b.get("/ledger?page=2").text
    assert second.count("<tr class=") == 11
    latest_first = b.get("/ledger?sort=deadline&dir=desc").text
    earliest_first = b.get("/ledger?sort=deadline&dir=asc").text
    assert "批量措施00" not in latest_first and "批量措施00" in earliest_first
    assert latest_first.index("批量措施40") < latest_first.index(cast_title := "修订食堂原材料")
    assert earliest_first.index("批量措施19") < earliest_first.index(cast_title)


def test_ledger_filters(browser: Any, many: Any, cast: Any, sessions: Any) -> None:
    b = browser("admin")
    with db.transaction(sessions) as session:
        campaign_id = session.scalar(select(Measure.campaign_id).where(
            Measure.title == "批量措施00"))
    text = b.get(f"/ledger?campaign={campaign_id}").text
    assert "全部<b>60</b>" in text
    assert "全部<b>20</b>" in b.get("/ledger?overdue=1").text
    assert "全部<b>0</b>" in b.get("/ledger?state=closed").text
    assert "全部<b>61</b>" in b.get("/ledger?state=bogus&page=x").text  # bad values are ignored
    assert "全部<b>0</b>" in b.get("/ledger?kind=long_term").text
    assert f"全部<b>{61}</b>" in b.get(f"/ledger?leader={cast.leader.id}").text


def test_excel_export_follows_the_filters(browser: Any, many: Any) -> None:
    b = browser("admin")
    response = b.get("/ledger.xlsx?overdue=1")
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml")
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:5] == ("编号", "序号", "方面", "问题", "整改措施")
    assert len(rows) == 21 and all(r[12] == "是" for r in rows[1:])


# ------------------------------------------------------------------ evidence


def test_submit_with_evidence_then_download(browser: Any, cast: Any, sessions: Any,
                                            now: Any) -> None:
    bring(sessions, cast.measure.id, State.IN_PROGRESS, cast.admin, now)
    b = browser("owner")
    response = b.post(f"/measures/{cast.measure.id}/actions/submit",
                      {"comment": "已印发新办法"}, files=[("evidence", ("办法.pdf", PDF,
                                                                     "application/pdf"))])
    assert response.status_code == 303, response.text
    with db.transaction(sessions) as session:
        evidence_id = session.scalar(select(Evidence.id))
    page = b.get(f"/measures/{cast.measure.id}").text
    assert "办法.pdf" in page and f"/evidence/{evidence_id}" in page
    download = b.get(f"/evidence/{evidence_id}")
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["x-content-type-options"] == "nosniff"
    # Another unit's person cannot fetch it, even knowing the number
    assert browser("outsider").get(f"/evidence/{evidence_id}").status_code == 404
    assert browser("leader").get(f"/evidence/{evidence_id}").status_code == 200


@pytest.mark.parametrize("name,content,reason", [
    ("病毒.exe", b"MZ\x90\x00", "不支持的文件类型"),
    ("伪装.pdf", b"not a pdf at all", "内容与扩展名不符"),
    ("太大.pdf", b"%PDF" + b"0" * 70_000, "超过大小上限"),
])
def test_bad_evidence_is_refused_and_nothing_is_written(browser: Any, cast: Any, sessions: Any,
                                                        now: Any, tmp_path: Any, name: str,
                                                        content: bytes, reason: str) -> None:
    bring(sessions, cast.measure.id, State.IN_PROGRESS, cast.admin, now)
    response = browser("owner").post(f"/measures/{cast.measure.id}/actions/submit",
                                     {"comment": "已完成"},
                                     files=[("evidence", (name, content, "application/pdf"))])
    assert response.status_code == 422 and reason in response.text
    assert state_of(sessions, cast.measure.id) == "in_progress"
    stored = [p for p in (tmp_path / "evidence").rglob("*") if p.is_file()]
    assert stored == []


def test_progress_report_with_evidence(browser: Any, cast: Any, sessions: Any) -> None:
    b = browser("colleague")
    response = b.post(f"/measures/{cast.measure.id}/progress", {"text": "完成初稿"},
                      files=[("evidence", ("初稿.txt", "初稿内容".encode(), "text/plain"))])
    assert response.status_code == 303
    assert "完成初稿" in b.get(f"/measures/{cast.measure.id}").text
    assert browser("viewer").post(f"/measures/{cast.measure.id}/progress",
                                  {"text": "x"}).status_code == 403


# ------------------------------------------------------------------ 我的事项, 待我销号


def test_my_items_per_role(browser: Any, cast: Any, sessions: Any, now: Any) -> None:
    assert "需要我整改" in browser("owner").get("/my").text
    assert "本部门待开始" in browser("colleague").get("/my").text
    assert "目前没有需要您办理的事项" in browser("outsider").get("/my").text
    bring(sessions, cast.measure.id, State.SUBMITTED, cast.admin, now)
    assert "需要我核验" in browser("reviewer").get("/my").text
    assert "需要我核验" in browser("leader").get("/my").text
    bring(sessions, cast.measure.id, State.VERIFIED, cast.admin, now)
    assert "需要我销号" in browser("leader").get("/my").text
    assert "需要我销号" in browser("secretary").get("/my").text


def test_bulk_closure(browser: Any, many: Any, cast: Any, sessions: Any, now: Any) -> None:
    for measure in many[:3]:
        bring(sessions, measure.id, State.VERIFIED, cast.admin, now)
    b = browser("leader")
    queue = b.get("/to-close").text
    assert "待我销号（3）" in queue and "批量措施00" in queue
    assert browser("owner").get("/to-close").text.count('name="pick"') == 0
    # The third changed since the page was shown: its stale version is refused, others close
    picks = [f"{many[0].id}:4", f"{many[1].id}:4", f"{many[2].id}:3"]
    response = b.post("/to-close", {"pick": picks})
    assert response.status_code == 303
    after = b.get("/to-close").text
    assert "已销号 2 项" in after and "已被他人修改" in after
    assert [state_of(sessions, m.id) for m in many[:3]] == ["closed", "closed", "verified"]


# ------------------------------------------------------------------ admin


def test_admin_sets_and_clears_a_delegation(browser: Any, cast: Any, sessions: Any,
                                            now: Any) -> None:
    b = browser("admin")
    until = (now.date() + timedelta(days=10)).isoformat()
    response = b.post("/admin/delegation", {"person": "leader@example.edu.cn",
                                            "delegate": "secretary@example.edu.cn",
                                            "until": until})
    assert response.status_code == 303
    assert f"Secretary 至 {until}" in b.get("/admin").text
    assert b.post("/admin/delegation", {"person": "leader@example.edu.cn",
                                        "delegate": "secretary@example.edu.cn",
                                        "until": "2020-01-01"}).status_code == 422
    assert b.post("/admin/delegation", {"person": "leader@example.edu.cn"}).status_code == 303
    with db.transaction(sessions) as session:
        assert session.get(Person, cast.leader.id).delegate_id is None  # type: ignore[union-attr]


def test_admin_calendar(browser: Any) -> None:
    b = browser("admin")
    assert b.post("/admin/calendar", {"day": "2027-02-10", "kind": "holiday",
                                      "note": "2027年春节"}).status_code == 303
    assert "<td>2027年春节</td>" in b.get("/admin/calendar").text
    assert b.post("/admin/calendar/2027-02-10/delete").status_code == 303
    assert "<td>2027年春节</td>" not in b.get("/admin/calendar").text
    assert b.post("/admin/calendar/2027-02-11/delete").status_code == 404


def test_admin_retries_a_dead_message(browser: Any, sessions: Any, now: Any) -> None:
    with db.transaction(sessions) as session:
        message = OutboxMessage(channel="email", recipient="owner@example.edu.cn", subject="提醒",
                                payload={"items": []}, key="dead-1", status="dead", attempts=9,
                                not_before=now, created_at=now, last_error="550 无此用户")
        session.add(message)
        session.flush()
        message_id = message.id
    b = browser("admin")
    assert "550 无此用户" in b.get("/admin/outbox").text
    assert b.post(f"/admin/outbox/{message_id}/retry").status_code == 303
    with db.transaction(sessions) as session:
        row = session.get(OutboxMessage, message_id)
        assert row is not None and (row.status, row.attempts) == ("pending", 0)
    assert browser("leader").post(f"/admin/outbox/{message_id}/retry").status_code == 403


def test_sweep_preview_writes_nothing(browser: Any, cast: Any, sessions: Any) -> None:
    # Given the measure due tomorrow-ish: the owner is reminded
    with db.transaction(sessions) as session:
        session.execute(update(Measure).values(deadline=date(2026, 12, 9)))
        before = session.scalar(select(func.count()).select_from(OutboxMessage))
    text = browser("admin").get("/admin/sweep-preview").text
    assert "owner@example.edu.cn" in text and "仅预览" in text
    with db.transaction(sessions) as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == before
