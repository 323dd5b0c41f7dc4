"""Weekly digests: as-of snapshots equal to what was computed then, per-reader scopes, empty
digests sending nothing, escaping, the WeCom markdown limit, the inline chart, the schedule."""

from __future__ import annotations

import email
import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from email import policy as email_policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from notifications.channels.base import MemoryChannel
from notifications.deliverer import Deliverer
from notifications.digest import DigestCache, render_digest_message
from notifications.mime import build_email
from tests.conftest import Ledger
from workflow import db
from workflow.errors import RectiflowError
from workflow.lifecycle import Action, Kind, State
from workflow.models import Campaign, Measure, OutboxMessage, Person
from workflow.policy import PolicyError, digest_schedule, load_policy_file, parse_policy
from workflow.reminders import WorkdayIndex
from workflow.services.digest import (
    Scope,
    Snapshot,
    build_digest,
    load_inputs,
    load_snapshot,
    readers_for,
    send_digests,
)
from workflow.services.measures import ActionRequest, perform, report_progress
from workflow.stats import MeasureRecord
from workflow.timeutil import SHANGHAI
from workflow.workcalendar import WorkCalendar

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)  # a Monday
DAYS = WorkdayIndex(WorkCalendar().is_workday)


def sh(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=SHANGHAI)


class Story:
    """People, a campaign of six measures created on T0, and actions at pinned times."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        ledger = Ledger(sessions, T0)
        self.secretary = ledger.person("Secretary", "leader")
        self.leader = ledger.person("Leader", "leader")
        self.leader2 = ledger.person("Leader2", "leader")
        self.reviewer = ledger.person("Reviewer", "reviewer")
        self.owner = ledger.person("Owner", "owner", unit="饮食服务中心")
        self.owner2 = ledger.person("Owner2", "owner", unit="物业管理科")
        self.campaign = ledger.campaign(first_responsible=self.secretary)
        rows = [
            {"title": "m1 修订采购办法", "kind": "deadline", "deadline": date(2026, 11, 13)},
            {"title": "m2 立即清理", "kind": "immediate", "deadline": date(2026, 11, 20)},
            {"title": "m3 制度建设", "kind": "deadline", "deadline": date(2026, 12, 4),
             "area": "履行职能职责有不足", "problem": "服务意识还不够强"},
            {"title": "m4 长效机制", "kind": "long_term", "deadline": None,
             "area": "履行职能职责有不足", "problem": "服务意识还不够强"},
            {"title": "m5 专项检查", "kind": "deadline", "deadline": date(2026, 11, 27),
             "owner": self.owner2, "unit": "物业管理科", "leader": self.leader2},
            {"title": "m6 回头看", "kind": "deadline", "deadline": date(2026, 12, 31)},
        ]
        for row in rows:
            row.setdefault("owner", self.owner)
            row.setdefault("leader", self.leader)
            row.setdefault("unit", "饮食服务中心")
        self.measures = [m.id for m in ledger.measures(self.campaign, rows)]

    def do(self, n: int, action: Action, who: Person, when: datetime, **inputs: Any) -> None:
        with db.transaction(self.sessions) as session:
            perform(session, ActionRequest(self.measures[n - 1], action, who.email, **inputs),
                    now=when)

    def progress(self, n: int, who: Person, when: datetime, text: str) -> None:
        with db.transaction(self.sessions) as session:
            report_progress(session, measure_id=self.measures[n - 1], actor=who.email, text=text,
                            files=[], now=when)


@pytest.fixture
def story(sessions: sessionmaker[Session]) -> Story:
    return Story(sessions)


Run = Callable[..., Any]


def digest_json(rectiflow: Run, campaign_id: int, when: datetime) -> dict[str, Any]:
    result = rectiflow("digest", "--campaign", str(campaign_id), "--now", when.isoformat(),
                       "--json")
    assert result.code == 0, result.err
    document: dict[str, Any] = result.json()
    return document


def test_digest_as_of_a_past_time_equals_the_one_computed_then(story: Story,
                                                                 rectiflow: Run) -> None:
    # Given a campaign worked on over four weeks, with the digest taken at each Monday
    s, cid = story, story.campaign.id
    said: dict[datetime, dict[str, Any]] = {}
    s.do(1, Action.START, s.owner, sh(11, 4))
    s.do(2, Action.START, s.owner, sh(11, 4, 11))
    s.do(1, Action.SUBMIT, s.owner, sh(11, 6), comment="已修订采购办法")
    said[sh(11, 9, 9)] = digest_json(rectiflow, cid, sh(11, 9, 9))
    s.do(1, Action.VERIFY, s.reviewer, sh(11, 10))
    s.do(5, Action.EXTEND, s.leader2, sh(11, 10, 11), deadline=date(2026, 12, 11),
         comment="需协调外部单位")
    s.do(1, Action.CLOSE, s.leader, sh(11, 11))
    s.do(4, Action.START, s.owner, sh(11, 11, 11))
    s.progress(4, s.owner, sh(11, 12), "开展服务意识培训2次")
    s.do(6, Action.REASSIGN, s.leader, sh(11, 12, 11), owner=s.owner2.email)
    said[sh(11, 16, 9)] = digest_json(rectiflow, cid, sh(11, 16, 9))
    s.do(4, Action.SUBMIT, s.owner, sh(11, 17), comment="建立长效机制")
    s.do(4, Action.VERIFY, s.reviewer, sh(11, 18))
    s.do(4, Action.CLOSE, s.leader, sh(11, 19))
    s.do(2, Action.SUBMIT, s.owner, sh(11, 20), comment="已清理")
    s.do(2, Action.REJECT, s.reviewer, sh(11, 23), comment="佐证不足")
    said[sh(11, 23, 18)] = digest_json(rectiflow, cid, sh(11, 23, 18))
    s.do(2, Action.SUBMIT, s.owner, sh(11, 24), comment="补充佐证")
    s.do(1, Action.REOPEN, s.leader, sh(11, 25), comment="回头看发现反弹")
    said[sh(11, 30, 9)] = digest_json(rectiflow, cid, sh(11, 30, 9))
    s.do(3, Action.START, s.owner, sh(12, 7))

    # When the digest is asked for each of those times afterwards
    # Then it says exactly what it said then
    for when, then in said.items():
        assert digest_json(rectiflow, cid, when) == then, when

    # And the figures are not vacuous: on 11-16 m1 was closed, m5 extended, m6 reassigned
    mid = said[sh(11, 16, 9)]
    assert mid["by_state"] == {"assigned": 3, "in_progress": 2, "submitted": 0, "verified": 0,
                               "closed": 1}
    assert mid["completion_rate"] == pytest.approx(1 / 6, abs=1e-6)
    assert {(c["measure_id"], c["what"]) for c in mid["changes"]} == {
        (s.measures[0], "state"), (s.measures[4], "extended"), (s.measures[5], "reassigned"),
        (s.measures[3], "state")}
    # On 11-16 m1 (due 11-13, closed) is not overdue; on 11-23 m2 (due 11-20, returned) is
    assert said[sh(11, 23, 18)]["overdue"] == 1
    assert said[sh(11, 23, 18)]["overdue_items"][0]["measure_id"] == s.measures[1]
    # The long-term m4 counts as 长期坚持 once closed
    assert said[sh(11, 23, 18)]["long_term"] == 1
    # Before the campaign existed there was nothing
    assert digest_json(rectiflow, cid, T0 - timedelta(days=1))["total"] == 0


def _digest_rows(sessions: sessionmaker[Session]) -> list[OutboxMessage]:
    with db.transaction(sessions) as session:
        rows = list(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "digest")
                                    .order_by(OutboxMessage.id)))
        session.expunge_all()
        return rows


def test_an_empty_digest_sends_nothing(story: Story, sessions: sessionmaker[Session],
                                       rectiflow: Run) -> None:
    # Given a campaign whose every measure was closed more than a week ago (readers: the first
    # responsible, the reviewer and the two leaders; the owners have nothing open)
    s = story
    for n in range(1, 7):
        s.do(n, Action.START, s.owner if n != 5 else s.owner2, sh(11, 3))
        s.do(n, Action.SUBMIT, s.owner if n != 5 else s.owner2, sh(11, 4), comment="完成")
        s.do(n, Action.VERIFY, s.reviewer, sh(11, 5))
        s.do(n, Action.CLOSE, s.secretary, sh(11, 6))
    # When the weekly digest is sent two weeks later
    result = rectiflow("digest", "--campaign", str(s.campaign.id), "--send", "--json",
                       "--now", sh(11, 23, 9).isoformat())
    # Then nobody gets one: nothing changed and nothing is left to do
    assert result.code == 0, result.err
    assert result.json()["sent"] == {"readers": 4, "empty": 4, "messages": 0, "already_sent": 0}
    assert _digest_rows(sessions) == []
    # But in the week of the closures each reader would have been told
    result = rectiflow("digest", "--campaign", str(s.campaign.id), "--send", "--json",
                       "--now", sh(11, 9, 9).isoformat())
    assert result.json()["sent"]["messages"] == 4


def test_a_campaign_without_measures_sends_nothing(ledger: Ledger, sessions: sessionmaker[Session],
                                                   rectiflow: Run) -> None:
    secretary = ledger.person("Secretary", "leader")
    campaign = ledger.campaign(first_responsible=secretary)
    result = rectiflow("digest", "--campaign", str(campaign.id), "--send", "--json")
    assert result.code == 0, result.err
    assert result.json()["total"] == 0
    assert _digest_rows(sessions) == []


def test_one_digest_per_reader_scoped_to_their_measures(story: Story,
                                                        sessions: sessionmaker[Session]) -> None:
    # Given m1 closed, m5 led by Leader2 and owned by Owner2, the rest owned by Owner
    s = story
    s.do(1, Action.START, s.owner, sh(11, 3))
    s.do(1, Action.SUBMIT, s.owner, sh(11, 4), comment="完成")
    s.do(1, Action.VERIFY, s.reviewer, sh(11, 5))
    s.do(1, Action.CLOSE, s.leader, sh(11, 6))
    now = sh(11, 9, 9)
    # When the digests are written
    with db.transaction(sessions) as session:
        run = send_digests(session, now=now, days=DAYS, send_at=now, configured=frozenset())
    rows = _digest_rows(sessions)
    # Then the secretary (first responsible) and the reviewer see everything, each leader their
    # measures, each owner their open items; one message each, by the file channel
    by_person = {m.recipient: m for m in rows}
    assert sorted(by_person) == sorted(p.email for p in (
        s.secretary, s.reviewer, s.leader, s.leader2, s.owner, s.owner2))
    assert len(rows) == len(run.messages) == 6
    assert by_person[s.secretary.email].payload["scope"] == {"whole": True, "leader_id": None,
                                                             "owner_id": None}
    assert by_person[s.owner.email].payload["scope"]["owner_id"] == s.owner.id
    assert rows[0].key.endswith("|file|2026-W46")

    # When they are delivered
    channel = MemoryChannel()
    Deliverer(sessions, {"file": channel}, base_url="https://zg.example.edu.cn").run(lambda: now)
    texts = {r.recipient: r.text for r in channel.sent}
    # Then the owner's lists their four open measures, not m1 (closed) nor m5 (Owner2's)
    owner_text = texts[s.owner.email]
    assert "m2 立即清理" in owner_text and "m6 回头看" in owner_text
    assert "m1 修订采购办法" not in owner_text.split("【本周变化】")[0]
    assert "m5 专项检查" not in owner_text
    assert "4项整改措施" in owner_text
    # And Leader2 reads of m5 only; the secretary of all six
    assert "1项整改措施" in texts[s.leader2.email]
    assert "6项整改措施" in texts[s.secretary.email]
    assert "目前已整改完成1项，占比16.7%" in texts[s.secretary.email]


def test_one_read_of_the_week_rewinds_both_snapshots_as_separate_reads_do(
        story: Story, sessions: sessionmaker[Session]) -> None:
    # Given a week of 开始, 延期, 改派 and progress, and more after the Monday of the digest
    s, cid = story, story.campaign.id
    s.do(1, Action.START, s.owner, sh(11, 4))
    s.do(5, Action.EXTEND, s.leader2, sh(11, 5), deadline=date(2026, 12, 11), comment="协调")
    s.do(6, Action.REASSIGN, s.leader, sh(11, 6), owner=s.owner2.email)
    s.progress(4, s.owner, sh(11, 6, 11), "开展培训")
    s.do(1, Action.SUBMIT, s.owner, sh(11, 10), comment="已修订")
    s.do(2, Action.START, s.owner, sh(11, 11))
    monday = sh(11, 9, 9)
    # When the digest's two snapshots are read together, and each on its own
    with sessions() as session:
        inputs = load_inputs(session, cid, monday)
        now_alone = load_snapshot(session, cid, monday)
        week_ago_alone = load_snapshot(session, cid, monday - timedelta(days=7))
    # Then they are the same, in ledger order
    assert inputs.now.records == now_alone.records
    assert inputs.week_ago.records == week_ago_alone.records
    assert [r.title[:2] for r in inputs.now.records] == ["m1", "m2", "m5", "m6", "m3", "m4"]
    assert inputs.week_ago.people == week_ago_alone.people


def test_a_repeated_weekly_run_sends_nothing_twice(story: Story,
                                                   sessions: sessionmaker[Session]) -> None:
    now = sh(11, 9, 9)
    with db.transaction(sessions) as session:
        first = send_digests(session, now=now, days=DAYS, send_at=now, configured=frozenset())
    with db.transaction(sessions) as session:
        again = send_digests(session, now=now + timedelta(hours=3), days=DAYS, send_at=now,
                             configured=frozenset())
    assert len(first.messages) == 6 and again.messages == []
    assert again.skipped_existing == 6
    with db.transaction(sessions) as session:
        week_after = send_digests(session, now=now + timedelta(days=7), days=DAYS,
                                  send_at=now, configured=frozenset({"email"}))
    assert len(week_after.messages) == 6
    assert {m.channel for m in _digest_rows(sessions)} == {"file", "email"}


def test_a_weeks_digests_are_delivered_from_one_read_of_the_campaign(
        story: Story, sessions: sessionmaker[Session]) -> None:
    # Given a week of work, the Monday digests written (six readers, mail and file) ...
    s = story
    s.do(1, Action.START, s.owner, sh(11, 4))
    s.do(5, Action.EXTEND, s.leader2, sh(11, 5), deadline=date(2026, 12, 11), comment="协调")
    s.do(6, Action.REASSIGN, s.leader, sh(11, 6), owner=s.owner2.email)
    monday = sh(11, 9, 9)
    with db.transaction(sessions) as session:
        send_digests(session, now=monday, days=DAYS, send_at=monday,
                     configured=frozenset({"email"}))
    # ... and more work done before they go out
    s.do(1, Action.SUBMIT, s.owner, sh(11, 9, 10), comment="已修订")
    s.do(2, Action.START, s.owner, sh(11, 9, 11))
    rows = _digest_rows(sessions)
    assert len(rows) == 6

    # When the deliverer sends them
    channel = MemoryChannel()
    deliverer = Deliverer(sessions, {"email": channel, "file": channel},
                          base_url="https://zg.example.edu.cn")
    report = deliverer.run(lambda: sh(11, 9, 12))

    # Then the campaign's snapshots were read once for all six
    assert report.sent == 6
    assert deliverer.digests.reads == 1
    # And each reader got what a digest read for them alone says: as of Monday 09:00, the
    # later 提交 and 开始 rewound, each in their own scope
    with sessions() as session:
        alone = {row.recipient: render_digest_message(session, row, "https://zg.example.edu.cn")
                 for row in rows}
    assert {r.recipient: (r.subject, r.text, r.html, r.markdown) for r in channel.sent} == {
        who: (r.subject, r.text, r.html, r.markdown) for who, r in alone.items()}
    texts = {r.recipient: r.text for r in channel.sent}
    assert "6项整改措施" in texts[s.secretary.email]
    assert "1项整改措施" in texts[s.leader2.email]
    assert "已提交" not in texts[s.owner.email].split("【本周变化】")[0]


def test_a_read_of_the_week_serves_for_ten_minutes_and_the_last_two_moments(
        story: Story, sessions: sessionmaker[Session]) -> None:
    # Given the digests of two Mondays written
    s = story
    mondays = [sh(11, 9, 9), sh(11, 16, 9)]
    for monday in mondays:
        with db.transaction(sessions) as session:
            send_digests(session, now=monday, days=DAYS, send_at=monday,
                         configured=frozenset())
    # (the readers who see m1: due 11-13, it is due soon on the first and overdue on the second)
    seeing = {p.email for p in (s.secretary, s.reviewer, s.leader, s.owner)}
    rows = [r for r in _digest_rows(sessions) if r.recipient in seeing]
    first, second = ([r for r in rows if datetime.fromisoformat(r.payload["as_of"]) == m]
                     for m in mondays)
    assert len(first) == len(second) == 4
    clock = [0.0]
    digests = DigestCache(size=1, max_age=timedelta(minutes=10), clock=lambda: clock[0])

    def text(row: OutboxMessage) -> str:
        with sessions() as session:
            return render_digest_message(session, row, "https://zg.example.edu.cn",
                                         digests).text

    # When every reader's digest of the first Monday is rendered: one read
    assert all("m1 修订采购办法" in text(row) for row in first)
    assert digests.reads == 1
    # And a title is corrected afterwards (no history rewinds a title)
    with db.transaction(sessions) as session:
        session.get_one(Measure, s.measures[0]).title = "m1 修订物资采购办法"
    clock[0] += 9 * 60
    # Then within ten minutes the digests still come from that read
    assert "m1 修订采购办法" in text(first[1]) and digests.reads == 1
    # And after ten minutes the campaign is read again, with the new title
    clock[0] += 2 * 60
    assert "m1 修订物资采购办法" in text(first[2]) and digests.reads == 2
    # And only the last moment is kept (size 1): the second Monday, then the first, read again
    assert "m1 修订物资采购办法" in text(second[0]) and digests.reads == 3
    text(first[0])
    assert digests.reads == 4


def test_digest_email_has_the_chart_inline_and_a_text_alternative(
        story: Story, sessions: sessionmaker[Session]) -> None:
    now = sh(11, 9, 9)
    with db.transaction(sessions) as session:
        send_digests(session, now=now, days=DAYS, send_at=now, configured=frozenset({"email"}))
    channel = MemoryChannel()
    Deliverer(sessions, {"email": channel}, base_url="https://zg.example.edu.cn").run(lambda: now)
    secretary = next(r for r in channel.sent if r.recipient == story.secretary.email)
    mime = email.message_from_bytes(bytes(build_email(secretary, "zg@example.edu.cn")),
                                    policy=email_policy.default)
    parts = [p.get_content_type() for p in mime.walk()]
    assert parts == ["multipart/alternative", "text/plain", "multipart/related", "text/html",
                     "image/png"]
    html = mime.get_body(("html",)).get_content()  # type: ignore[union-attr]
    image = next(p for p in mime.walk() if p.get_content_type() == "image/png")
    assert 'src="cid:progress-chart"' in html
    assert image["Content-ID"] == "<progress-chart>"
    assert image.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    text = mime.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "<" not in text.replace("<script>", "")
    assert "针对巡察反馈的2个方面、2个问题、6项整改措施" in text
    assert "0/4" in text  # the text fallback of the chart


def test_html_escapes_user_text(story: Story, rectiflow: Run, tmp_path: Path,
                                sessions: sessionmaker[Session]) -> None:
    # Given a measure whose title is a script, overdue so it is listed
    with db.transaction(sessions) as session:
        campaign = session.get(Campaign, story.campaign.id)
        assert campaign is not None
        from workflow.models import Measure

        measure = session.get(Measure, story.measures[0])
        assert measure is not None
        measure.title = '<script>alert("x")</script>'
    out = tmp_path / "digest.html"
    # When the digest is written as a file
    result = rectiflow("digest", "--campaign", str(story.campaign.id), "--out", str(out),
                       "--now", sh(11, 23, 9).isoformat())
    # Then the title is shown, escaped
    assert result.code == 0, result.err
    html = out.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert 'src="data:image/png;base64,' in html


def _record(i: int) -> MeasureRecord:
    created = sh(9, 1)
    return MeasureRecord(
        id=i, campaign_id=1, seq=str(i), area=f"方面{i % 13}", problem=f"问题{i % 29}",
        title=f"关于进一步规范后勤领域采购、合同、资产管理工作的第{i}项整改措施[附件]" * 2,
        kind=Kind.DEADLINE, state=State.IN_PROGRESS if i % 3 else State.ASSIGNED,
        deadline=date(2026, 11, 1) if i % 2 else date(2026, 11, 12), original_deadline=None,
        owner_id=1, leader_id=2, unit=f"部门{i % 7}", created_at=created,
        state_changed_at=created, problem_id=i % 29)


def test_wecom_markdown_fits_in_4096_bytes_for_a_big_campaign() -> None:
    from notifications.digest import markdown_for

    # Given 2,000 measures, half of them overdue, with long titles
    now = sh(11, 9, 9)
    records = [_record(i) for i in range(1, 2001)]
    snapshot = Snapshot(now, 1, "第五轮巡察反馈问题整改", records)
    digest = build_digest(snapshot, Snapshot(now - timedelta(days=7), 1, None, records),
                          Scope(whole=True), DAYS)
    # When the markdown version is made
    markdown = markdown_for(digest, "https://zg.example.edu.cn", name="张三")
    # Then it fits, and still says the headline and how many are left out
    assert len(markdown.encode("utf-8")) <= 4096
    assert digest.headline in markdown
    assert "另有" in markdown
    assert "<script" not in markdown


def test_readers_are_deduplicated_and_scoped() -> None:
    now = sh(11, 9, 9)
    records = [_record(1), _record(2)]
    records[1] = records[1]._replace(owner_id=3, leader_id=1, state=State.CLOSED)
    snapshot = Snapshot(now, 1, "x", records, first_responsible_id=9)
    readers = readers_for(snapshot, reviewer_ids=[9, 8])
    assert [(r.person_id, r.scope) for r in readers] == [
        (8, Scope(whole=True)), (9, Scope(whole=True)),
        (1, Scope(leader_id=1, owner_id=1)),   # leads measure 2 and owns open measure 1
        (2, Scope(leader_id=2)),
    ]  # 3 owns only a closed measure: no digest


def test_chart_without_a_cjk_font_uses_ascii_labels(monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    from notifications import chart

    # Given no CJK font installed
    chart.find_cjk_font.cache_clear()
    monkeypatch.setattr(chart, "CJK_FAMILIES", ("No Such Font",))
    from matplotlib import font_manager

    monkeypatch.setattr(font_manager.fontManager, "ttflist",
                        [f for f in font_manager.fontManager.ttflist
                         if not any(w in f.name.lower() for w in ("cjk", "han", "hei", "wenquanyi",
                                                                  "ming"))])
    monkeypatch.setattr(font_manager, "findSystemFonts",
                        lambda *a, **k: ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"])
    labels: list[str] = []
    from matplotlib.axes import Axes

    original = Axes.text

    def spy(self: Axes, x: Any, y: Any, text: Any, *args: Any, **kwargs: Any) -> Any:
        labels.append(str(text))
        return original(self, x, y, text, *args, **kwargs)

    monkeypatch.setattr(Axes, "text", spy)
    # When the chart is drawn
    with caplog.at_level(logging.WARNING, logger="rectiflow.chart"):
        drawn = chart.progress_chart([chart.Bar("学习传达有差距", 3, 1, 2, 1)])
    chart.find_cjk_font.cache_clear()
    # Then it is a PNG with ASCII labels only, and the log says why
    assert drawn.png.startswith(b"\x89PNG")
    assert drawn.cjk is False
    assert labels[0] == "#1" and all(label.isascii() for label in labels)  # the row's label
    assert "no CJK font" in caplog.text
    assert chart.legend_note(drawn, [chart.Bar("学习传达有差距", 3, 1, 2, 1)]) == ["#1 学习传达有差距"]


def test_digest_schedule_from_the_policy() -> None:
    assert digest_schedule(load_policy_file(None)).cron == {"day_of_week": "mon", "hour": 9,
                                                            "minute": 0}
    assert digest_schedule(parse_policy({"digest": {"weekday": "fri", "time": "16:30"}})).cron == {
        "day_of_week": "fri", "hour": 16, "minute": 30}
    with pytest.raises(PolicyError, match="digest.weekday"):
        parse_policy({"digest": {"weekday": "friday"}})
    with pytest.raises(PolicyError, match="digest.time"):
        parse_policy({"digest": {"time": "9点"}})
    assert issubclass(PolicyError, RectiflowError)


def test_the_clock_entry_point_sends_once_a_week(story: Story,
                                                  sessions: sessionmaker[Session]) -> None:
    from workflow.services.digest import send_weekly_digests

    # Given the default policy, and the clock firing on Monday 09:00 twice (two clocks)
    policies = load_policy_file(None)
    monday = sh(11, 9, 9)
    with db.transaction(sessions) as session:
        first = send_weekly_digests(session, policies, frozenset(), monday)
    with db.transaction(sessions) as session:
        second = send_weekly_digests(session, policies, frozenset(), monday)
    # Then each of the six readers got one digest, due at once (inside the send window)
    assert (len(first.messages), len(second.messages)) == (6, 0)
    assert {m.not_before for m in _digest_rows(sessions)} == {monday}


def test_unknown_campaign_is_refused(rectiflow: Run) -> None:
    result = rectiflow("digest", "--campaign", "999", "--json")
    assert result.code == 2
    assert "999" in result.err

