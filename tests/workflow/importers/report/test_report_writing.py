"""Writing an imported report into the ledger, in the caller's transaction (database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from report_documents import SUMMARY
from sqlalchemy import func, select

from workflow import db
from workflow.errors import InputError
from workflow.importers.report import import_report
from workflow.importers.report.writing import latest_date
from workflow.lifecycle import Kind, State
from workflow.models import Area, Campaign, HistoryEntry, Measure, Problem, ProgressReport
from workflow.services.audit import verify_history
from workflow.timeutil import SHANGHAI


@pytest.mark.parametrize(("text", "expected"), [
    ("2024年8月已完成学习方案", datetime(2024, 8, 1, tzinfo=SHANGHAI)),
    ("2024年7月18日、10月11日组织学习", datetime(2024, 10, 11, tzinfo=SHANGHAI)),
    ("2024年12月6日公布；2025年1月26日缴纳", datetime(2025, 1, 26, tzinfo=SHANGHAI)),
    ("于2024-11-13集中学习", datetime(2024, 11, 13, tzinfo=SHANGHAI)),
    ("2024年9 月到各乡镇查看", datetime(2024, 9, 1, tzinfo=SHANGHAI)),
    ("计划2027年3月完成", None),
    ("每季度开展满意度调查，10月起执行", None),
    ("2024年13月", None),
])
def test_latest_date_in_progress_text(text, expected):
    found = latest_date(text, not_after=datetime(2026, 12, 7, tzinfo=SHANGHAI))
    assert found == (expected.astimezone(UTC) if expected else None)
    if found is not None:
        assert found.tzinfo is UTC


# ------------------------------------------------------------------ through the service (database)


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_import_writes_the_tree_in_one_go(sessions, now, report_file):
    # Given a report file
    # When it is imported into a new campaign
    with db.transaction(sessions) as session:
        summary = import_report(session, report_file, campaign_title="第三轮巡察整改", now=now)
    # Then areas, problems (sub-problems under their parent), measures and progress exist
    with db.transaction(sessions) as session:
        campaign = session.scalar(select(Campaign).where(Campaign.title == "第三轮巡察整改"))
        assert summary.campaign_id == campaign.id
        assert [a.title for a in campaign.areas] == ["政治理论学习有差距", "制度执行不严格",
                                                     "作风建设有短板"]
        problems = session.scalars(select(Problem).order_by(Problem.id)).all()
        assert len(problems) == 9
        children = [p for p in problems if p.parent_id is not None]
        assert {p.parent.text for p in children} == {
            "采购程序不规范", "2023年以来，部分窗口服务态度生硬，群众反映较多。"}
        measures = session.scalars(select(Measure).order_by(Measure.position)).all()
        assert [m.seq for m in measures] == ["1.1", "1.2", "2.1.1", "2.1.2", "2.2", "3.1.1",
                                             "3.1.2"]
        assert [(m.state, m.kind) for m in measures] == [
            (State.CLOSED, Kind.DEADLINE), (State.CLOSED, Kind.DEADLINE),
            (State.VERIFIED, Kind.LONG_TERM), (State.VERIFIED, Kind.LONG_TERM),
            (State.IN_PROGRESS, Kind.DEADLINE), (State.CLOSED, Kind.DEADLINE),
            (State.IN_PROGRESS, Kind.DEADLINE)]
        assert all(m.deadline is None and m.owner_id is None and m.leader_id is None
                   and m.unit_id is None and m.version == 1 for m in measures)
        first = measures[0]
        [progress] = first.progress
        assert progress.text == "2024年6月制定了年度学习计划；2024年7月18日、10月11日组织集中学习。"
        assert progress.author_id is None
        assert progress.at == datetime(2024, 10, 11, tzinfo=SHANGHAI).astimezone(UTC)
        assert first.last_progress_at == progress.at
        undated = measures[6].progress[0]
        assert undated.at == now.astimezone(UTC)
        history = session.scalars(select(HistoryEntry).order_by(HistoryEntry.id)).all()
        assert [(h.action, h.from_state, h.to_state, h.seq) for h in history[:3]] == [
            ("import", None, "closed", 1), ("import", None, "closed", 1),
            ("import", None, "verified", 1)]
        assert verify_history(session).ok
        assert _count(session, ProgressReport) == 7


def test_import_twice_into_one_campaign_appends(sessions, now, report_file):
    for _ in range(2):
        with db.transaction(sessions) as session:
            import_report(session, report_file, campaign_title="第三轮巡察整改", now=now)
    with db.transaction(sessions) as session:
        assert _count(session, Area) == 3
        seqs = list(session.scalars(select(Measure.seq)))
        assert len(seqs) == 14 and len(set(seqs)) == 14
        assert "1.3" in seqs
        assert verify_history(session).ok


def test_dry_run_writes_nothing(sessions, now, report_file):
    with db.transaction(sessions) as session:
        summary = import_report(session, report_file, campaign_title="新整改任务", now=now,
                                dry_run=True)
    assert summary.campaign_id is None and summary.as_json()["measures"] == 7
    with db.transaction(sessions) as session:
        assert [_count(session, m) for m in (Campaign, Area, Problem, Measure)] == [0, 0, 0, 0]


def test_document_with_no_problems_is_refused(sessions, now, tmp_path):
    path = tmp_path / "2021年工作总结.txt"
    path.write_text(SUMMARY, encoding="utf-8")
    with db.transaction(sessions) as session, pytest.raises(
            InputError, match="没有找到可以导入的问题清单：文中虽提到 5 个方面、17 个问题"):
        import_report(session, path, campaign_title="总结", now=now)
    with db.transaction(sessions) as session:
        assert _count(session, Campaign) == 0
