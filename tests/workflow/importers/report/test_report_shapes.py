"""Documents in several shapes, end to end: parsed, imported, and written back with the
document's own totals (round trip), and documents that are not reports refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_shapes import (
    AREA_HEADINGS,
    HEAD_RESULTS,
    HEAD_RESULTS_HALF_WIDTH,
    HEAD_RESULTS_NO_COLON,
    NOTICE,
    build_letter_docx,
    build_problem_list_docx,
)
from sqlalchemy import func, select

from workflow import db
from workflow.importers.report import Total, parse_report, read_document
from workflow.importers.report.parsed import Counting, Level
from workflow.importers.report.parser import read_statements
from workflow.lifecycle import Kind, State
from workflow.models import Campaign, Measure

# ------------------------------------------------------------------ parsing (pure)


def _states(report) -> list[tuple[State, Kind]]:
    return [(m.state, m.kind) for m in report.measures()]


@pytest.mark.parametrize("document", [HEAD_RESULTS, HEAD_RESULTS_HALF_WIDTH, HEAD_RESULTS_NO_COLON],
                         ids=["full-width", "half-width", "no-colon"])
def test_results_at_the_head_of_each_account(document):
    # Given a report that states each result at the head of its account, in any punctuation
    report = parse_report(document.splitlines())
    # Then every measure has its result, and the totals agree with the list
    assert report.counts() == {"areas": 3, "problems": 6, "sub_problems": 2, "measures": 7,
                               "progress_reports": 7, "without_result": 0}
    assert _states(report) == [
        (State.CLOSED, Kind.DEADLINE), (State.VERIFIED, Kind.LONG_TERM),
        (State.CLOSED, Kind.DEADLINE), (State.IN_PROGRESS, Kind.DEADLINE),
        (State.CLOSED, Kind.DEADLINE), (State.VERIFIED, Kind.LONG_TERM),
        (State.CLOSED, Kind.DEADLINE)]
    assert report.stated == {Total.AREAS: 3, Total.PROBLEMS: 6, Total.MEASURES: 7, Total.DONE: 6,
                             Total.LONG_TERM: 2, Total.NOT_DONE: 1}
    assert report.counting() == Counting(Level.MEASURES, long_term_within_done=True)
    assert report.differences() == []
    # the parent of the (1)(2) sub-problems keeps its heading
    parent = report.areas[1].problems[0]
    assert parent.title == "固定资产账实不符"
    assert [c.title for c in parent.children] == ["办公设备未入账", "报废资产未核销"]


def test_areas_as_top_headings_with_circled_sub_problems_counted_per_problem():
    report = parse_report(AREA_HEADINGS.splitlines())
    assert (report.counts()["areas"], report.counts()["problems"], report.counts()["measures"]) == (
        2, 5, 6)
    assert report.counting() == Counting(Level.PROBLEMS, long_term_within_done=False)
    assert report.found_results("problems") == {Total.DONE: 3, Total.LONG_TERM: 2,
                                                Total.NOT_DONE: 0}
    assert report.differences() == []


def test_problem_list_table_in_word_with_merged_area_cells(tmp_path):
    report = parse_report(read_document(build_problem_list_docx(tmp_path / "问题清单.docx")))
    assert [a.title for a in report.areas] == ["制度建设", "作风建设"]
    assert [m.result.label for m in report.measures() if m.result] == [
        "已完成", "未完成", "长期坚持", "已完成"]
    assert report.stated == {Total.PROBLEMS: 4, Total.DONE: 2, Total.NOT_DONE: 1,
                             Total.LONG_TERM: 1}
    assert report.differences() == []
    assert [m.fields["责任单位"] for m in report.measures()] == ["资产处", "法务办", "办公室", "办公室"]


# ------------------------------------------------------------------ the round trip (database)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("name", "build"), [
    ("审计整改.txt", lambda tmp: _write(tmp, "审计整改.txt", HEAD_RESULTS)),
    ("巡察整改.txt", lambda tmp: _write(tmp, "巡察整改.txt", AREA_HEADINGS)),
    ("问题清单.docx", lambda tmp: build_problem_list_docx(tmp / "问题清单.docx")),
])
def test_report_written_back_states_the_documents_own_totals(rectiflow, tmp_path, name, build):
    # Given a document imported into a campaign
    source = build(tmp_path)
    stated = read_statements((0, line) for line in read_document(source))
    imported = rectiflow("import", "report", str(source), "--campaign", name, "--json")
    assert imported.code == 0, imported.err
    # When the report is written back as Markdown
    out = tmp_path / "report.md"
    written = rectiflow("report", str(imported.json()["campaign_id"]), "--format", "md",
                        "--out", str(out))
    assert written.code == 0, written.err
    # Then it states the document's totals, counted the way the document counts them
    again = read_statements((0, line) for line in out.read_text(encoding="utf-8").splitlines())
    # (the report may state more, e.g. the number of measures a problem list leaves implicit)
    assert stated.totals and {t: again.totals.get(t) for t in stated.totals} == stated.totals
    assert again.long_term_within == stated.long_term_within
    assert {t: r.percent for t, r in again.rates.items() if t in stated.rates} == {
        t: r.percent for t, r in stated.rates.items()}


def test_report_keeps_sub_problems_under_their_parent_in_order(rectiflow, tmp_path):
    source = _write(tmp_path, "巡察整改.txt", AREA_HEADINGS)
    campaign_id = rectiflow("import", "report", str(source), "--campaign", "巡察整改",
                            "--json").json()["campaign_id"]
    out = tmp_path / "report.md"
    assert rectiflow("report", str(campaign_id), "--format", "md", "--out", str(out)).code == 0
    headings = [line.lstrip("#").strip() for line in out.read_text(encoding="utf-8").splitlines()
                if line.startswith("####")]
    assert headings == [
        "1.基层党组织活动不规范。", "2.党员教育管理不到位。", "（1）流动党员底数不清。",
        "（2）发展党员程序不严。", "3.谈心谈话开展不经常。", "1.服务窗口办事效率不高。",
        "2.制度修订滞后。"]
    # and campaign list counts the problems the document states, not its sub-problems
    [listed] = rectiflow("campaign", "list", "--json").json()
    assert (listed["areas"], listed["problems"], listed["measures"]) == (2, 5, 6)


# ------------------------------------------------------------------ what is not a report


@pytest.mark.parametrize(("name", "build", "reason"), [
    ("会议通知.txt", lambda tmp: _write(tmp, "会议通知.txt", NOTICE), "会议通知"),
    ("致教职工的信.docx", lambda tmp: build_letter_docx(tmp / "致教职工的信.docx"), "整改结果"),
    ("损坏.docx", lambda tmp: _write(tmp, "损坏.docx", "不是 Word 文件"), "无法读取"),
])
def test_documents_that_are_not_reports_are_refused_and_nothing_is_written(
        rectiflow, sessions, tmp_path, name, build, reason):
    result = rectiflow("import", "report", str(build(tmp_path)), "--campaign", "推进会")
    assert result.code == 2
    assert reason in result.err
    with db.transaction(sessions) as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0
        assert session.scalar(select(func.count()).select_from(Measure)) == 0


def test_dry_run_preview_reads_for_a_clerk(rectiflow, sessions, tmp_path):
    source = _write(tmp_path, "审计整改.txt", HEAD_RESULTS_HALF_WIDTH)
    result = rectiflow("import", "report", str(source), "--campaign", "审计整改", "--dry-run")
    assert result.code == 0, result.err
    for expected in ["识别结果（审计整改.txt，未写入）", "(二)资产管理方面", "1、 固定资产账实不符",
                     "(2) 报废资产未核销  [未完成 → 整改中，进展 1 条]",
                     "计数方式：文中按整改措施统计整改结果，长期坚持的计入已完成",
                     "文中比例：已完成 85.7%", "与文中自述的数字一致。"]:
        assert expected in result.out
    with db.transaction(sessions) as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0
