"""Messages that are always true and always useful (issue 14), read as the people receive them.

Every case drives the real runtime: actions through ``perform`` in sessions whose events reach
the outbox, sweeps through the sweep service, and the runtime's deliverer sending by SMTP to an
aiosmtpd server on this machine (or to the local WeCom server); then the mail that arrived is
parsed and read. On SQLite and on PostgreSQL (``RECTIFLOW_TEST_DB``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from fakes.clock import Clock
from fakes.wecom_server import FakeWeCom
from sqlalchemy import select
from test_email import SmtpServer, parts

from config.settings import load_settings
from workflow.lifecycle import Action
from workflow.models import ApprovalLink, Measure, OutboxMessage, Person
from workflow.runtime import Runtime
from workflow.services.measures import ActionRequest, perform
from workflow.services.sweep import sweep
from workflow.timeutil import SHANGHAI

BASE_URL = "https://duban.example.edu.cn"


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


@pytest.fixture
def smtp() -> Any:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@dataclass
class Office:
    """One campaign's people and a runtime that mails them through the local SMTP server."""

    runtime: Runtime
    clock: Clock
    smtp: SmtpServer
    ledger: Any
    owner: Person
    other: Person
    reviewer: Person
    leader: Person
    secretary: Person
    campaign: Any
    read: int = 0
    seen: list[tuple[str, EmailMessage]] = field(default_factory=list)
    unread: list[tuple[str, EmailMessage]] = field(default_factory=list)

    def measure(self, title: str = "修订食堂原材料采购管理办法", **row: Any) -> Measure:
        self.ledger.now = row.pop("created", self.clock())
        [made] = self.ledger.measures(self.campaign, [
            {"leader": self.leader, "owner": self.owner, "title": title, **row}])[-1:]
        return made

    def act(self, measure: Measure, action: Action, who: Person, **inputs: Any) -> None:
        with self.runtime.transaction() as session:
            perform(session, ActionRequest(measure.id, action, who.email, **inputs),
                    now=self.clock())

    def sweep(self) -> None:
        with self.runtime.transaction(write_lock=True) as session:
            sweep(session, self.runtime.reminder_context(session), now=self.clock())

    def deliver(self) -> dict[str, int]:
        return self.runtime.deliverer().run(self.clock).as_json()

    def mails(self) -> list[tuple[str, EmailMessage]]:
        """The mails that arrived since the last call: (recipient, parsed message)."""
        new = self.smtp.handler.received[self.read:]
        self.read = len(self.smtp.handler.received)
        got = [(r.rcpt_tos[0], r.parsed()) for r in new]
        self.seen.extend(got)
        return got

    def mail_to(self, person: Person) -> list[tuple[str, str]]:
        """(subject, plain text) of each mail to ``person`` not read before."""
        self.unread.extend(self.mails())
        mine = [(message["Subject"], parts(message)[0]) for to, message in self.unread
                if to == person.email]
        self.unread = [(to, message) for to, message in self.unread if to != person.email]
        return mine

    def rows(self) -> list[OutboxMessage]:
        with self.runtime.transaction() as session:
            return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def make_office(database: Any, ledger: Any, smtp: SmtpServer, tmp_path: Path, start: datetime,
                *, policy: str | None = None, extra: dict[str, str] | None = None) -> Office:
    env = {"RECTIFLOW_SMTP_HOST": "127.0.0.1", "RECTIFLOW_SMTP_PORT": str(smtp.port),
           "RECTIFLOW_SMTP_SENDER": "duban@example.edu.cn", "RECTIFLOW_BASE_URL": BASE_URL,
           "RECTIFLOW_OUTBOX_DIR": str(tmp_path / "outbox"), **(extra or {})}
    if policy is not None:
        path = tmp_path / "policy.toml"
        path.write_text(policy, encoding="utf-8")
        env["RECTIFLOW_CONFIG"] = str(path)
    clock = Clock(start)
    runtime = Runtime(load_settings(env), engine=database.engine, clock=clock)
    ledger.now = start
    secretary = ledger.person("WangShuji", "leader")
    campaign = ledger.campaign(first_responsible=secretary)
    return Office(runtime, clock, smtp, ledger, owner=ledger.person("WangXiaoming"),
                  other=ledger.person("LiHua"), reviewer=ledger.person("ZhaoZhuren", "reviewer"),
                  leader=ledger.person("ZhangJuzhang", "leader"), secretary=secretary,
                  campaign=campaign)


@pytest.fixture
def office(database: Any, ledger: Any, smtp: SmtpServer, tmp_path: Path) -> Office:
    """Tuesday 2026-12-08, 10:00 in Beijing: inside the send window."""
    return make_office(database, ledger, smtp, tmp_path, at("2026-12-08 10:00"))


def bring_to_submitted(office: Office, measure: Measure) -> None:
    """Start and submit ``measure``; what that sends (the reviewer's news) is read and set aside."""
    office.act(measure, Action.START, office.owner)
    office.act(measure, Action.SUBMIT, office.owner, comment="已制订管理办法并印发")
    office.deliver()
    office.mails()
    office.unread.clear()


# ------------------------------------------------------------------ every action tells


def test_a_submission_tells_the_reviewers_at_once(office: Office) -> None:
    # Given a measure in progress
    measure = office.measure()
    office.act(measure, Action.START, office.owner)
    # When the owner submits it and the deliverer runs
    office.act(measure, Action.SUBMIT, office.owner, comment="已制订管理办法并印发")
    office.deliver()
    # Then the reviewer (整改办) has a mail asking to verify it, naming the measure
    [(subject, text)] = office.mail_to(office.reviewer)
    assert subject == "【整改督办】责任人已提交整改情况，请对账核验"
    assert "修订食堂原材料采购管理办法" in text and "【待您核验】" in text


@pytest.mark.parametrize(("action", "who", "reason", "rule"), [
    (Action.REJECT, "reviewer", "佐证材料缺少印发文件的扫描件", "被退回"),
    (Action.REOPEN, "leader", "回头看发现食堂仍在使用旧办法", "重新打开"),
])
def test_a_return_or_a_reopening_tells_the_owner_why(office: Office, action: Action, who: str,
                                                     reason: str, rule: str) -> None:
    # Given a submitted measure (verified, for a reopening)
    measure = office.measure()
    bring_to_submitted(office, measure)
    if action is Action.REOPEN:
        office.act(measure, Action.VERIFY, office.reviewer)
    office.deliver()
    office.mails()
    office.unread.clear()
    # When the reviewer returns it (the leader reopens it) with a reason
    office.act(measure, action, getattr(office, who), comment=reason)
    office.deliver()
    # Then the owner's mail carries the reason, not only "please revise"
    [(subject, text)] = office.mail_to(office.owner)
    assert f"【{rule}】" in text
    assert f"理由：{reason}（{getattr(office, who).name} 2026-12-08 10:00）" in text


def test_two_returns_with_different_reasons_are_two_different_messages(office: Office) -> None:
    # (WeCom drops a message identical to one sent within the duplicate-check interval)
    measure = office.measure()
    texts = []
    office.act(measure, Action.START, office.owner)
    for reason in ("缺少印发文件", "印发文件未加盖公章"):
        office.act(measure, Action.SUBMIT, office.owner, comment="已补充")
        office.act(measure, Action.REJECT, office.reviewer, comment=reason)
        office.deliver()
        texts += [text for _, text in office.mail_to(office.owner)]
    assert len(texts) == 2 and texts[0] != texts[1]
    assert "缺少印发文件" in texts[0] and "印发文件未加盖公章" in texts[1]


def test_an_extension_tells_the_owner_the_old_and_new_deadline_and_why(office: Office) -> None:
    measure = office.measure(deadline=date(2026, 12, 31))
    office.act(measure, Action.EXTEND, office.leader, deadline=date(2027, 1, 29),
               comment="招标延后")
    office.deliver()
    [(subject, text)] = office.mail_to(office.owner)
    assert "【已延期】" in text
    assert "完成时限由 2026-12-31（周四） 延至 2027-01-29（周五）。理由：招标延后" \
        "（ZhangJuzhang 2026-12-08 10:00）" in text


def test_a_verification_asks_the_leader_with_a_link_and_a_sign_off_tells_the_owner(
        office: Office) -> None:
    measure = office.measure()
    bring_to_submitted(office, measure)
    office.act(measure, Action.VERIFY, office.reviewer)
    office.deliver()
    [(subject, text)] = office.mail_to(office.leader)
    assert subject == "【整改督办】已核验通过，待您审阅并销号"
    assert f"销号或退回：{BASE_URL}/approve/" in text
    office.act(measure, Action.CLOSE, office.leader)
    office.deliver()
    [(subject, text)] = office.mail_to(office.owner)
    assert subject == "【整改督办】整改措施已销号，感谢您的工作" and "【已销号】" in text


def test_a_sign_off_tells_the_owning_unit_each_person_once(office: Office) -> None:
    # Given a measure of 饮食服务中心, whose owner and a colleague are members of it
    colleague = office.ledger.person("ZhouGanshi", unit="饮食服务中心")
    with office.runtime.transaction() as session:
        session.get(Person, office.owner.id).unit_id = session.get(Person, colleague.id).unit_id
    measure = office.measure(unit="饮食服务中心")
    bring_to_submitted(office, measure)
    office.act(measure, Action.VERIFY, office.reviewer)
    # When the leader signs it off
    office.act(measure, Action.CLOSE, office.leader)
    office.deliver()
    # Then the owner hears once, as the owner, and the colleague once, as the unit
    assert [s for s, _ in office.mail_to(office.owner)] == \
        ["【整改督办】整改措施已销号，感谢您的工作"]
    assert [s for s, _ in office.mail_to(colleague)] == ["【整改督办】本部门的整改措施已销号"]


def test_a_sign_off_reminder_carries_the_link_too(office: Office) -> None:
    # Given a measure verified and not signed off for three working days
    measure = office.measure()
    bring_to_submitted(office, measure)
    office.act(measure, Action.VERIFY, office.reviewer)
    office.deliver()
    office.mail_to(office.leader)
    office.clock.now = at("2026-12-11 09:00")
    office.sweep()
    office.deliver()
    [(subject, text)] = office.mail_to(office.leader)
    assert "仍待责任领导销号" in text and f"销号或退回：{BASE_URL}/approve/" in text


def test_a_reassignment_tells_the_old_and_the_new_owner(office: Office) -> None:
    measure = office.measure()
    office.act(measure, Action.REASSIGN, office.leader, owner=office.other.email)
    office.deliver()
    [(_, old)] = office.mail_to(office.owner)
    assert "【已改派他人】" in old and "新责任人：LiHua" in old
    [(_, new)] = office.mail_to(office.other)
    assert "【新交办】" in new and "修订食堂原材料采购管理办法" in new


# ------------------------------------------------------------------ true when sent


def test_a_sign_off_request_for_a_measure_closed_meanwhile_is_not_sent(office: Office) -> None:
    # Given a verified measure whose sign-off request waits for the next morning's window
    measure = office.measure()
    bring_to_submitted(office, measure)
    office.clock.now = at("2026-12-08 19:00")
    office.act(measure, Action.VERIFY, office.reviewer)
    # And the leader signs it off on the web that evening
    office.act(measure, Action.CLOSE, office.leader)
    # When the deliverer runs the next morning
    office.clock.now = at("2026-12-09 08:31")
    report = office.deliver()
    # Then the leader got no "待您销号", and no link was made; the owner heard of the sign-off
    assert office.mail_to(office.leader) == []
    assert report["cancelled"] == 1
    [cancelled] = [m for m in office.rows() if m.status == "cancelled"]
    assert cancelled.info["dropped"] == [{"measure_id": measure.id, "rule": "to_close",
                                          "why": "措施当前状态为「已销号」"}]
    with office.runtime.transaction() as session:
        assert session.scalars(select(ApprovalLink)).all() == []
    assert [s for s, _ in office.mail_to(office.owner)] == ["【整改督办】整改措施已销号，感谢您的工作"]


def test_a_sign_off_request_for_a_measure_reopened_meanwhile_is_not_sent(office: Office) -> None:
    measure = office.measure()
    bring_to_submitted(office, measure)
    office.clock.now = at("2026-12-08 19:00")
    office.act(measure, Action.VERIFY, office.reviewer)
    office.act(measure, Action.REOPEN, office.leader, comment="材料不全")
    office.clock.now = at("2026-12-09 08:31")
    office.deliver()
    assert office.mail_to(office.leader) == []
    [(_, text)] = office.mail_to(office.owner)
    assert "理由：材料不全" in text and "/approve/" not in text


def test_a_friday_night_reminder_for_a_friday_deadline_is_not_sent_on_monday(
        office: Office) -> None:
    # Given a measure due Friday 2026-12-11, swept at 19:00 that Friday: the reminder waits
    # for Monday's window
    measure = office.measure(deadline=date(2026, 12, 11), created=at("2026-12-07 09:00"))
    office.clock.now = at("2026-12-11 19:00")
    office.sweep()
    [planned] = [m for m in office.rows() if m.status == "pending"]
    assert [i["rule"] for i in planned.payload["items"]] == ["before:0"]
    # When Monday's delivery comes, the deadline has passed
    office.clock.now = at("2026-12-14 08:31")
    office.deliver()
    # Then no "还有 0 个工作日" went out; Monday's sweep escalates instead, truthfully
    assert office.mail_to(office.owner) == []
    assert planned.id in [m.id for m in office.rows() if m.status == "cancelled"]
    office.clock.now = at("2026-12-14 09:00")
    office.sweep()
    office.deliver()
    [(subject, text)] = office.mail_to(office.owner)
    assert "已逾期 1 个工作日（黄牌督办），完成时限 2026-12-11（周五）" in text
    assert f"/measures/{measure.id}" in text


def test_a_reminder_sent_late_is_worded_from_the_measure_as_it_is_then(office: Office) -> None:
    # Given a before:3 reminder planned Monday, and delivery delayed to Wednesday
    office.measure(deadline=date(2026, 12, 17), created=at("2026-12-07 09:00"))
    office.clock.now = at("2026-12-14 09:00")
    office.sweep()
    office.clock.now = at("2026-12-16 09:00")
    office.deliver()
    [(_, text)] = office.mail_to(office.owner)
    # Then it counts from Wednesday, not Monday
    assert "距完成时限（2026-12-17 周四）还有 1 个工作日" in text
    assert "【今明两天到期】" in text


def test_a_reminder_for_a_deadline_extended_meanwhile_is_dropped(office: Office) -> None:
    measure = office.measure(deadline=date(2026, 12, 17), created=at("2026-12-07 09:00"))
    office.clock.now = at("2026-12-14 19:00")
    office.sweep()
    office.act(measure, Action.EXTEND, office.leader, deadline=date(2027, 1, 15),
               comment="等待上级批复")
    office.clock.now = at("2026-12-15 08:31")
    office.deliver()
    [(subject, text)] = office.mail_to(office.owner)
    # only the extension, none of the old deadline's reminders
    assert "延至 2027-01-15" in text and "2026-12-17（周四） 延至" in text
    assert "距完成时限（2026-12-17" not in text


# ------------------------------------------------------------------ counts and buckets


def test_a_measure_with_two_reasons_is_one_line_and_counts_once(office: Office) -> None:
    # Given a measure with no progress for 10 working days that is also 3 working days from
    # its deadline: two rules fire for it in one sweep
    office.measure(deadline=date(2026, 12, 24), created=at("2026-12-04 09:00"))
    office.clock.now = at("2026-12-21 09:00")
    office.sweep()
    [message] = [m for m in office.rows() if m.status == "pending"]
    assert sorted(i["rule"].split(":")[0] for i in message.payload["items"]) == \
        ["before", "stagnation"]
    office.deliver()
    [(subject, text)] = office.mail_to(office.owner)
    # Then the subject counts one measure and the body lists it once with both reasons
    assert "您有1项整改措施需要关注" in subject
    assert text.count("修订食堂原材料采购管理办法") == 1
    assert "还有 3 个工作日" in text and "没有报送整改进展" in text


def test_an_immediate_measure_far_from_its_deadline_is_not_filed_under_due_in_two_days(
        office: Office) -> None:
    office.measure(deadline=date(2026, 12, 31), kind="immediate", created=at("2026-12-07 09:00"))
    office.clock.now = at("2026-12-09 09:00")
    office.sweep()
    office.deliver()
    [(subject, text)] = office.mail_to(office.owner)
    assert "今明两天到期" not in subject + text
    assert "【立行立改】" in text and "还有 16 个工作日" in text


def test_a_deadline_on_a_sunday_gets_its_last_reminders_on_thursday_and_friday(
        office: Office) -> None:
    # Given a deadline on Sunday 2026-12-13
    office.measure(deadline=date(2026, 12, 13), created=at("2026-12-01 09:00"))
    said = {}
    for day in ("2026-12-10", "2026-12-11"):
        office.clock.now = at(f"{day} 09:00")
        office.sweep()
        office.deliver()
        [(_, said[day])] = office.mail_to(office.owner)
    # Then Thursday says one working day is left, Friday that it is the last one
    assert "距完成时限（2026-12-13 周日）还有 1 个工作日" in said["2026-12-10"]
    assert "今天是完成时限（2026-12-13 周日，非工作日）前的最后一个工作日" in said["2026-12-11"]
    assert "0 个工作日" not in "".join(said.values())


def test_an_approval_link_sent_on_thursday_afternoon_lives_three_working_days(
        office: Office) -> None:
    measure = office.measure()
    bring_to_submitted(office, measure)
    office.clock.now = at("2026-12-10 15:00")  # Thursday
    office.act(measure, Action.VERIFY, office.reviewer)
    office.deliver()
    with office.runtime.transaction() as session:
        [link] = session.scalars(select(ApprovalLink)).all()
        assert link.expires_at == at("2026-12-15 15:00")  # Tuesday, not Sunday


# ------------------------------------------------------------------ 三色预警

WARNING_POLICY = """
[[warning]]
within = 10
to = ["leader"]
colour = "yellow"
"""


def test_a_yellow_warning_tier_widens_the_audience_ten_working_days_out(
        database: Any, ledger: Any, smtp: SmtpServer, tmp_path: Path) -> None:
    office = make_office(database, ledger, smtp, tmp_path, at("2026-12-01 09:00"),
                         policy=WARNING_POLICY)
    office.measure(deadline=date(2026, 12, 31))
    # 10 working days before Thursday 2026-12-31 is Thursday 2026-12-17
    office.clock.now = at("2026-12-17 09:00")
    office.sweep()
    office.deliver()
    [(_, to_owner)] = office.mail_to(office.owner)
    assert "还有 10 个工作日（黄色预警）" in to_owner
    leader_mail = [parts(m)[0] for to, m in office.seen if to == office.leader.email]
    assert len(leader_mail) == 1 and "（黄色预警）" in leader_mail[0]


def test_by_default_reminders_before_the_deadline_go_to_the_owner_alone(office: Office) -> None:
    office.measure(deadline=date(2026, 12, 31), created=at("2026-12-01 09:00"))
    office.clock.now = at("2026-12-22 09:00")  # before:7
    office.sweep()
    office.deliver()
    assert {to for to, _ in office.mails()} == {office.owner.email}


# ------------------------------------------------------------------ WeCom


HOSTILE = "建立[台账](http://evil.example) **长效** <font color=\"warning\">机制</font> #1 `x`"


@pytest.fixture
def wecom_office(database: Any, ledger: Any, smtp: SmtpServer, tmp_path: Path) -> Any:
    """The office, with WeCom configured against the local WeCom server; Zhangsan owns."""
    clock = Clock(at("2026-12-08 10:00"))
    with FakeWeCom(users={"zhangsan", "lisi"}, robot_keys=set(), clock=clock) as server:
        office = make_office(database, ledger, smtp, tmp_path, clock.now, extra={
            "RECTIFLOW_WECOM_API_BASE": server.url, "RECTIFLOW_WECOM_CORP_ID": server.corp_id,
            "RECTIFLOW_WECOM_SECRET": server.secret,
            "RECTIFLOW_WECOM_AGENT_ID": str(server.agent_id)})
        office.runtime.clock = office.clock = clock
        office.owner = ledger.person("Zhangsan", wecom_id="zhangsan")
        yield office, server


def test_hostile_titles_stay_inert_in_wecom_markdown_and_a_long_list_links_to_the_rest(
        wecom_office: Any) -> None:
    office, server = wecom_office
    # Given thirty overdue measures with a title full of markdown
    office.ledger.now = at("2026-11-20 09:00")
    office.ledger.measures(office.campaign, [
        {"leader": office.leader, "owner": office.owner, "title": f"{HOSTILE}第{n}项",
         "deadline": date(2026, 12, 4)} for n in range(1, 31)])
    # When the sweep plans the escalation and the deliverer sends it
    office.sweep()
    office.deliver()
    [got] = server.delivered_to("zhangsan")
    content = got.body["markdown"]["content"]
    # Then it is markdown within WeCom's 2,048 bytes, the titles shown but inert
    assert got.msgtype == "markdown" and len(content.encode()) <= 2048
    assert "](http://evil.example)" not in content and "**长效**" not in content
    assert "<font color=\"warning\">机制" not in content and "\n#" not in content
    assert "建立【台账】（http://evil.example） ＊＊长效＊＊ ＜font" in content
    # And whole items were cut, ending with how many there are and a link to all of them
    assert content.endswith(f"……（共30项，[点此查看全部]({BASE_URL}/my)）")
    body = content.split("\n\n……")[0].rstrip()
    # (an item ends with its reasons, or with the 督办 document its escalation issued)
    assert body.endswith("</font>") or re.search(r"\[督办文书：[^\]]+\]\([^)]+\)$", body)


def test_a_hostile_return_reason_stays_inert_in_wecom_markdown(wecom_office: Any) -> None:
    office, server = wecom_office
    [measure] = office.ledger.measures(office.campaign, [
        {"leader": office.leader, "owner": office.owner, "title": "规范公务接待审批流程"}])
    reason = "请补充**附件**[见此](http://x) " + "附件缺失，" * 60
    with office.runtime.transaction() as session:
        for action, who, comment in ((Action.START, office.owner, None),
                                     (Action.SUBMIT, office.owner, "已完成"),
                                     (Action.REJECT, office.reviewer, reason)):
            perform(session, ActionRequest(measure.id, action, who.email, comment=comment),
                    now=office.clock())
    office.deliver()
    [got] = server.delivered_to("zhangsan")
    assert got.msgtype == "markdown"  # too long for a card (512 bytes)
    content = got.body["markdown"]["content"]
    assert "](http://x)" not in content and "**附件**" not in content
    assert "理由：请补充＊＊附件＊＊【见此】（http://x）" in content
