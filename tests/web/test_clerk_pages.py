"""The 整改办's pages (TestClient): who may open and post them, CSRF, refused forms that keep
what was typed, the import preview that keeps the upload, people, the holiday notice and the
outbox's bulk retry."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from clerk_support import NOTICE_2027, bad_rows, good_rows, ledger_csv
from sqlalchemy import func, select
from web_support import PASSWORD

from workflow import db
from workflow.lifecycle import OutboxStatus
from workflow.models import CalendarDay, Campaign, Measure, OutboxMessage, Person

NOT_CLERKS = ["secretary", "leader", "owner", "colleague", "outsider", "viewer"]
PAGES = ["/campaigns", "/campaigns/{id}", "/campaigns/{id}/import", "/campaigns/{id}/digest",
         "/people", "/people/{pid}", "/people/import/file", "/calendar", "/outbox"]
POSTS = [("/campaigns", {"title": "越权新建"}),
         ("/campaigns/{id}/import/confirm", {"upload": "x" * 32}),
         ("/campaigns/{id}/digest/send", {}),
         ("/people", {"name": "越权", "email": "yq@example.edu.cn", "roles": "owner"}),
         ("/people/{pid}", {"name": "改名", "roles": "admin"}),
         ("/people/{pid}/active", {"active": "0"}),
         ("/people/{pid}/password", {}),
         ("/people/{pid}/delegate", {"delegate": ""}),
         ("/calendar", {"year": "2027", "notice": NOTICE_2027, "confirm": "1"}),
         ("/outbox/retry", {})]


def count(sessions: Any, model: Any) -> int:
    with db.transaction(sessions) as session:
        return int(session.scalar(select(func.count()).select_from(model)))


def paths(template: str, cast: Any) -> str:
    return template.format(id=cast.campaign.id, pid=cast.admin.id)


@pytest.mark.parametrize("role", NOT_CLERKS)
def test_only_reviewers_and_admins_open_or_post(role: str, browser: Any, cast: Any,
                                                sessions: Any) -> None:
    b = browser(role)
    for template in PAGES:
        assert b.get(paths(template, cast)).status_code == 403, template
    before = {m: count(sessions, m) for m in (Campaign, Person, CalendarDay)}
    for template, data in POSTS:
        assert b.post(paths(template, cast), data).status_code == 403, template
    assert {m: count(sessions, m) for m in before} == before
    assert "整改办</a>" not in b.get("/my").text  # no link to pages they may not open


def test_pages_need_a_session_and_forms_a_csrf_token(browser: Any, cast: Any) -> None:
    anonymous = browser()
    for template in PAGES:
        answer = anonymous.get(paths(template, cast))
        assert answer.status_code == 303 and "/login" in answer.headers["location"]
    b = browser("reviewer")
    for template, data in POSTS:
        assert b.post(paths(template, cast), data, csrf=False).status_code == 403, template
    assert 'href="/campaigns"' in b.get("/my").text


@pytest.mark.parametrize("role", ["reviewer", "admin"])
def test_every_page_opens_for_the_clerk(role: str, browser: Any, cast: Any) -> None:
    b = browser(role)
    for template in PAGES:
        answer = b.get(paths(template, cast))
        assert answer.status_code == 200, (template, answer.text[:500])
    assert b.get("/campaigns/999").status_code == 404
    assert b.get("/people/999").status_code == 422


def test_a_refused_campaign_form_keeps_what_was_typed(browser: Any, sessions: Any) -> None:
    b = browser("reviewer")
    before = count(sessions, Campaign)
    answer = b.post("/campaigns", {"title": "  ", "first_responsible": "Secretary",
                                   "feedback_date": "2026-12-01", "acceptors": "Leader、Admin"})
    assert answer.status_code == 422
    assert "整改任务名称不能为空" in answer.text
    for typed in ('value="Secretary"', 'value="2026-12-01"', 'value="Leader、Admin"'):
        assert typed in answer.text
    answer = b.post("/campaigns", {"title": "巡察整改", "first_responsible": "无名氏"})
    assert answer.status_code == 422 and 'id="first_responsible-error"' in answer.text
    assert 'value="巡察整改"' in answer.text
    assert count(sessions, Campaign) == before
    made = b.post("/campaigns", {"title": "巡察整改", "first_responsible": "Secretary",
                                 "acceptors": "Leader、Admin", "feedback_date": "2026-12-01"})
    assert made.status_code == 303
    with db.transaction(sessions) as session:
        campaign = session.scalar(select(Campaign).where(Campaign.title == "巡察整改"))
        assert campaign is not None and campaign.first_responsible.name == "Secretary"
        names = set(session.scalars(select(Person.name).where(Person.id.in_(campaign.acceptors))))
        assert names == {"Leader", "Admin"}
        assert made.headers["location"] == f"/campaigns/{campaign.id}/import"


def upload(b: Any, campaign_id: int, content: bytes, name: str = "台账.csv") -> Any:
    return b.post(f"/campaigns/{campaign_id}/import", files={"file": (name, content, "text/csv")})


def test_preview_lists_problems_keeps_the_file_and_imports_after_a_fix(
        browser: Any, cast: Any, sessions: Any) -> None:
    b = browser("reviewer")
    before = count(sessions, Measure)
    # Given a ledger with an unknown owner (row 3) and an impossible date (row 4)
    sent = upload(b, cast.campaign.id, ledger_csv(bad_rows()))
    assert sent.status_code == 303
    preview_url = sent.headers["location"]
    token = preview_url.split("upload=")[1]
    preview = b.get(preview_url)
    # Then every problem is listed with its row, column and value, and nothing is written
    assert preview.status_code == 200
    assert re.search(r"<td[^>]*>3</td><td[^>]*>责任人</td>\s*<td[^>]*>陈新人</td>", preview.text)
    assert re.search(r"<td[^>]*>4</td><td[^>]*>完成时限</td>\s*<td[^>]*>2027-02-30</td>",
                     preview.text)
    assert "确认导入" not in preview.text
    assert count(sessions, Measure) == before
    # And confirming anyway writes nothing and shows the problems again
    again = b.post(f"/campaigns/{cast.campaign.id}/import/confirm", {"upload": token})
    assert again.status_code == 303 and token in again.headers["location"]
    assert count(sessions, Measure) == before
    # When the clerk adds 陈新人 from the preview, with a bad email first
    add = f"/campaigns/{cast.campaign.id}/import/person"
    refused = b.post(add, {"upload": token, "key": "陈新人", "name": "陈新人",
                           "email": "chen-at-example", "role": "owner", "unit": "党委办公室"})
    assert refused.status_code == 422 and "邮箱格式不正确" in refused.text
    assert 'value="chen-at-example"' in refused.text and 'value="党委办公室"' in refused.text
    added = b.post(add, {"upload": token, "key": "陈新人", "name": "陈新人",
                         "email": "chen@example.edu.cn", "role": "owner", "unit": "党委办公室"})
    assert added.status_code == 303
    # Then the same kept file is checked again: only the date is left
    preview = b.get(preview_url)
    assert "陈新人</td>" not in preview.text and "2027-02-30" in preview.text
    # When the fixed file is uploaded, the preview shows what will be created
    fixed = ledger_csv([r if r[0] != "13" else [*r[:7], "2027-02-26", "限期整改"]
                        for r in bad_rows()])
    preview = b.get(upload(b, cast.campaign.id, fixed).headers["location"])
    assert "确认导入 3 项整改措施" in preview.text
    assert count(sessions, Measure) == before
    new_token = re.search(r'name="upload" value="([^"]+)"', preview.text).group(1)
    done = b.post(f"/campaigns/{cast.campaign.id}/import/confirm", {"upload": new_token})
    assert done.status_code == 303 and done.headers["location"] == f"/campaigns/{cast.campaign.id}"
    assert count(sessions, Measure) == before + 3
    assert "已导入「台账.csv」" in b.get(done.headers["location"]).text
    # And the confirmed upload is gone from the server
    assert b.post(f"/campaigns/{cast.campaign.id}/import/confirm",
                  {"upload": new_token}).status_code == 404


def test_an_upload_is_only_the_uploaders(browser: Any, cast: Any, sessions: Any) -> None:
    mine = browser("reviewer")
    token = upload(mine, cast.campaign.id, ledger_csv(good_rows())).headers["location"]
    token = token.split("upload=")[1]
    other = browser("admin")
    assert other.get(f"/campaigns/{cast.campaign.id}/import?upload={token}").status_code == 404
    assert other.post(f"/campaigns/{cast.campaign.id}/import/confirm",
                      {"upload": token}).status_code == 404
    assert mine.get(f"/campaigns/{cast.campaign.id}/import?upload=../../etc").status_code == 404


def test_a_file_of_another_kind_is_refused_on_the_form(browser: Any, cast: Any) -> None:
    b = browser("reviewer")
    answer = upload(b, cast.campaign.id, b"%PDF-1.4", name="台账.pdf")
    assert answer.status_code == 422 and "不支持的文件类型" in answer.text


def test_people_add_edit_deactivate_delegate_and_reset(browser: Any, app: Any,
                                                       sessions: Any, cast: Any) -> None:
    b = browser("reviewer")
    refused = b.post("/people", {"name": "陈新人", "email": "owner@example.edu.cn",
                                 "roles": "owner", "unit": "后勤处"})
    assert refused.status_code == 409 and "已被使用" in refused.text
    assert 'value="陈新人"' in refused.text and 'value="后勤处"' in refused.text
    assert b.post("/people", {"name": "陈新人", "email": "chen@example.edu.cn"}).status_code == 422
    assert b.post("/people", {"name": "陈新人", "email": "chen@example.edu.cn",
                              "roles": ["owner", "leader"]}).status_code == 303
    with db.transaction(sessions) as session:
        chen = session.scalar(select(Person).where(Person.email == "chen@example.edu.cn"))
        assert chen.roles == ["owner", "leader"]
        chen_id = chen.id
    # Edit: name, unit and roles
    assert b.post(f"/people/{chen_id}", {"name": "陈欣然", "unit": "组织部", "roles": "owner",
                                         "channel": "email"}).status_code == 303
    # Delegate, then reset the password and sign in with it
    until = (date(2026, 12, 7) + timedelta(days=10)).isoformat()
    assert b.post(f"/people/{chen_id}/delegate", {"delegate": "colleague@example.edu.cn",
                                                  "until": until}).status_code == 303
    reset = b.post(f"/people/{chen_id}/password")
    assert reset.status_code == 200 and reset.headers["cache-control"] == "no-store"
    password = re.search(r'id="new-password">.*?<b[^>]*>([^<]+)</b>', reset.text, re.S).group(1)
    from fastapi.testclient import TestClient
    assert TestClient(app).post("/api/token", json={"email": "chen@example.edu.cn",
                                                    "password": password}).status_code == 200
    # Deactivate: the account can no longer sign in
    assert b.post(f"/people/{chen_id}/active", {"active": "0"}).status_code == 303
    with db.transaction(sessions) as session:
        chen = session.get(Person, chen_id)
        assert (chen.name, chen.unit.name, chen.roles, chen.channel_preference, chen.active) == (
            "陈欣然", "组织部", ["owner"], "email", False)
        assert chen.delegate.email == "colleague@example.edu.cn"
        assert chen.delegate_until.isoformat() == until
    assert TestClient(app).post("/api/token", json={"email": "chen@example.edu.cn",
                                                    "password": password}).status_code == 401


def test_a_reviewer_cannot_touch_an_admin_or_make_one(browser: Any, cast: Any,
                                                      sessions: Any) -> None:
    b = browser("reviewer")
    admin_id = cast.admin.id
    for path, data in ((f"/people/{admin_id}/password", {}),
                       (f"/people/{admin_id}/active", {"active": "0"}),
                       (f"/people/{admin_id}", {"name": "x", "roles": "owner"}),
                       (f"/people/{cast.owner.id}", {"name": "Owner", "roles": ["owner", "admin"]}),
                       ("/people", {"name": "y", "email": "y@example.edu.cn", "roles": "admin"})):
        assert b.post(path, data).status_code == 403, path
    with db.transaction(sessions) as session:
        assert session.get(Person, cast.owner.id).roles == ["owner"]
        assert session.get(Person, admin_id).active
    # An admin may
    assert browser("admin").post(f"/people/{cast.owner.id}",
                                 {"name": "Owner", "roles": ["owner", "admin"]}).status_code == 303


def test_people_file_preview_then_import(browser: Any, sessions: Any, cast: Any) -> None:
    b = browser("reviewer")
    bad = ("姓名,邮箱,部门,角色\n陈新人,chen@example.edu.cn,组织部,责任人\n李四,li-at,组织部,责任人\n"
           "张三,zhang@example.edu.cn,组织部,检查员\n")
    sent = b.post("/people/import/file", files={"file": ("名单.csv", bad.encode("gbk"), "text/csv")})
    preview = b.get(sent.headers["location"])
    assert "发现 2 处问题" in preview.text and "已上传「<b>名单.csv</b>」" in preview.text
    assert re.search(r"<td[^>]*>3</td><td[^>]*>邮箱</td>\s*<td[^>]*>li-at</td>", preview.text)
    assert re.search(r"<td[^>]*>4</td><td[^>]*>角色</td>\s*<td[^>]*>检查员</td>", preview.text)
    before = count(sessions, Person)
    good = ("姓名,邮箱,部门,角色\n陈新人,chen@example.edu.cn,组织部,责任人\n"
            "李四,li@example.edu.cn,组织部,责任领导、整改办\n")
    sent = b.post("/people/import/file", files={"file": ("名单.csv", good.encode(), "text/csv")})
    preview = b.get(sent.headers["location"])
    assert "确认导入 2 人" in preview.text and count(sessions, Person) == before
    token = re.search(r'name="upload" value="([^"]+)"', preview.text).group(1)
    assert b.post("/people/import/confirm", {"upload": token}).status_code == 303
    assert count(sessions, Person) == before + 2
    admin_file = "姓名,邮箱,角色\n王五,wang5@example.edu.cn,管理员\n"
    sent = b.post("/people/import/file", files={"file": ("名单.csv", admin_file.encode(), "text/csv")})
    assert "只有管理员可以添加管理员" in b.get(sent.headers["location"]).text


def test_a_year_of_holidays_pasted_moves_the_deadlines_counted_from_feedback(
        browser: Any, sessions: Any, cast: Any) -> None:
    b = browser("reviewer")
    # Given a campaign fed back on 2027-01-25 whose measure is due 15 working days after
    assert b.post("/campaigns", {"title": "2027年专项治理", "feedback_date": "2027-01-25"}
                  ).status_code == 303
    with db.transaction(sessions) as session:
        campaign_id = session.scalar(select(Campaign.id).where(Campaign.title == "2027年专项治理"))
    rows = [[*good_rows()[0][:7], "反馈后15个工作日", "限期整改"]]
    token = upload(b, campaign_id, ledger_csv(rows)).headers["location"].split("upload=")[1]
    assert b.post(f"/campaigns/{campaign_id}/import/confirm", {"upload": token}).status_code == 303
    with db.transaction(sessions) as session:
        measure = session.scalar(select(Measure).where(Measure.campaign_id == campaign_id))
        assert measure.deadline == date(2027, 2, 15) and measure.deadline_provisional
    # When the 2027 notice is pasted, the preview shows the festivals and the moved deadline
    page = b.get("/calendar")
    assert "2027 年" in page.text and "未覆盖" in page.text
    preview = b.post("/calendar", {"year": "", "notice": NOTICE_2027})
    assert preview.status_code == 200
    assert "2027-02-06 至 2027-02-14，共 9 天" in preview.text and "2027-02-20" in preview.text
    assert "2027-02-15" in preview.text and "<b>2027-02-20</b>" in preview.text
    assert "2027 年录入后按「管理员录入」计算（放假 12 天、调休上班 1 天）" in preview.text
    assert count(sessions, CalendarDay) == 0
    # And confirming enters them and moves the deadline, the notice text kept on the page
    done = b.post("/calendar", {"year": "2027", "notice": NOTICE_2027, "confirm": "1"})
    assert done.status_code == 200 and "已录入" in done.text
    assert count(sessions, CalendarDay) == 13
    with db.transaction(sessions) as session:
        measure = session.get(Measure, measure.id)
        assert measure.deadline == date(2027, 2, 20) and not measure.deadline_provisional
        assert session.get(CalendarDay, date(2027, 2, 20)).is_workday
        assert session.get(CalendarDay, date(2027, 2, 20)).note == "春节调休上班"


def test_a_notice_that_cannot_be_read_names_the_line_and_keeps_the_text(
        browser: Any, sessions: Any) -> None:
    b = browser("reviewer")
    text = "一、元旦：1月1日至3日放假，共3天。\n二、春节：2月30日至14日放假调休。\n三、清明节：放假3天。"
    answer = b.post("/calendar", {"year": "2027", "notice": text, "confirm": "1"})
    assert answer.status_code == 422
    assert "「2月30日」不是有效日期" in answer.text and "读不出日期" in answer.text
    assert "二、春节：2月30日至14日放假调休。" in answer.text  # the textarea keeps it
    assert count(sessions, CalendarDay) == 0
    assert b.post("/calendar", {"year": "20x7", "notice": text}).status_code == 422


def dead(session: Any, n: int, channel: str, error: str, now: Any) -> None:
    session.add(OutboxMessage(channel=channel, recipient=f"p{n}@example.edu.cn", subject=f"提醒 {n}",
                              key=f"dead-{n}", status=OutboxStatus.DEAD, attempts=9,
                              not_before=now, last_error=error, created_at=now))


def test_outbox_explains_and_retries_dead_messages_in_bulk(browser: Any, sessions: Any,
                                                           now: Any) -> None:
    with db.transaction(sessions) as session:
        dead(session, 1, "email", "email 发送失败，永久性错误：收件人 p1@example.edu.cn 被拒收：{...}", now)
        dead(session, 2, "email", "email 发送失败，可重试错误：无法连接 SMTP 服务器 mail:25：timed out", now)
        dead(session, 3, "wecom",
             "wecom 发送失败（错误码 60020），永久性错误：not allow to access from your ip", now)
    b = browser("reviewer")
    page = b.get("/outbox")
    assert "对方邮箱拒收" in page.text and "连不上邮件服务器" in page.text
    assert "可信 IP" in page.text and "全部重试（3 条）" in page.text
    filtered = b.get("/outbox", params={"channel": "email", "error": "拒收"})
    assert "全部重试（1 条，仅筛选出的）" in filtered.text
    assert b.post("/outbox/retry", {"channel": "email"}).status_code == 303
    with db.transaction(sessions) as session:
        statuses = dict(session.execute(select(OutboxMessage.key, OutboxMessage.status).where(
            OutboxMessage.key.like("dead-%"))).all())
        attempts = session.scalar(select(OutboxMessage.attempts).where(OutboxMessage.key == "dead-1"))
    assert statuses == {"dead-1": "pending", "dead-2": "pending", "dead-3": "dead"}
    assert attempts == 0
    again = b.post("/outbox/retry", {"channel": "email"})
    assert again.status_code == 303, again.text
    shown = b.get(again.headers["location"]).text
    assert "没有符合条件" in shown


def test_campaign_page_sends_the_weekly_digest_once(browser: Any, sessions: Any,
                                                    cast: Any) -> None:
    b = browser("reviewer")
    page = b.get(f"/campaigns/{cast.campaign.id}")
    assert "下载整改情况报告（Word）" in page.text and "发送本周周报" in page.text
    assert "整改" in b.get(f"/campaigns/{cast.campaign.id}/digest").text
    before = count(sessions, OutboxMessage)
    sent = b.post(f"/campaigns/{cast.campaign.id}/digest/send")
    assert sent.status_code == 303
    assert "本周周报已写入发件箱" in b.get(sent.headers["location"]).text
    written = count(sessions, OutboxMessage) - before
    assert written >= 1
    b.post(f"/campaigns/{cast.campaign.id}/digest/send")
    assert count(sessions, OutboxMessage) - before == written
    assert PASSWORD  # the cast signs in with the shared test password
