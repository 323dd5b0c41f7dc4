"""The report parser over the users' own documents, when they are at hand (``../shared/seeds``
next to the repository); skipped otherwise.

The expected figures were counted by hand from the documents:

* report-logistics-2025: a report with results. Section 二 lists 13 areas ((一)…(十三)) with 29
  problems; four problems have sub-items ((二)2 问题①②, (三)3 问题①②, (七)2 ①②问题项, and
  (十二), whose text stands directly under the area, 问题①②), so 33 measures. It states
  "13个方面、29项问题 … 整改措施91条 … 整改完成26项 … 长期建设3项": everything matches except
  the 91 measures, which it never lists. Long term: (二)1, (三)3①, (十)1. Three sub-items say no
  result ((二)2②, (三)3②, (十二)②).
* report-service-center-2025: a progress report with no results. Section 二 lists 3 areas, 11
  problems and 25 items; it states "3方面27个问题", "27条整改措施，已落实27条": two measures
  short of its own count.
* plan-logistics-governance: a work plan whose problems are only in the 责任清单 table: 9 rows.
* summary-logistics-2021: a year's summary that mentions "五个方面17个问题" and "39条整改责任清单"
  but lists none of them: refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from workflow.importers.report import Total, parse_report, read_document
from workflow.lifecycle import State

SEEDS = Path(__file__).resolve().parents[4].parent / "shared" / "seeds"

pytestmark = pytest.mark.skipif(not SEEDS.is_dir(), reason="../shared/seeds is not present")


def parsed(name: str):
    return parse_report(read_document(SEEDS / name))


def by_state(report) -> dict[State, int]:
    found: dict[State, int] = {}
    for measure in report.measures():
        found[measure.state] = found.get(measure.state, 0) + 1
    return found


def test_logistics_report_matches_its_totals_except_the_unlisted_measures():
    report = parsed("report-logistics-2025.txt")
    counts = report.counts()
    assert (counts["areas"], counts["problems"], counts["sub_problems"], counts["measures"]) == (
        13, 29, 8, 33)
    assert report.stated == {Total.AREAS: 13, Total.PROBLEMS: 29, Total.MEASURES: 91,
                             Total.DONE: 26, Total.LONG_TERM: 3}
    assert report.found_results("problems") == {Total.DONE: 26, Total.LONG_TERM: 3,
                                                Total.NOT_DONE: 0}
    assert [(d.item, d.stated, d.found) for d in report.differences()] == [
        (Total.MEASURES, 91, 33)]
    assert by_state(report) == {State.CLOSED: 27, State.VERIFIED: 3, State.ASSIGNED: 2,
                                State.IN_PROGRESS: 1}
    assert counts["progress_reports"] == 29
    assert report.skipped_sections == [
        "一、后勤党总支及主要负责人组织整改落实情况", "三、巡察整改成效", "四、存在的问题",
        "五、下一步整改工作安排"]
    assert report.areas[0].title == "学习传达有差距"
    assert report.areas[11].title == "“两个责任”夯而不实"
    assert report.unplaced == []


def test_logistics_report_keeps_lists_inside_progress_text():
    # (十一)1 writes its progress as ①…②…③…④ on separate lines: one text, not four problems
    report = parsed("report-logistics-2025.txt")
    first = report.areas[10].problems[0]
    assert first.children == []
    [measure] = first.measures
    assert measure.progress[0].startswith("①各支部包括支委")
    assert "④从制度建设入手强化支部建设" in measure.progress[0]


def test_service_center_report_lists_25_of_the_27_measures_it_states():
    report = parsed("report-service-center-2025.txt")
    counts = report.counts()
    assert (counts["areas"], counts["problems"], counts["sub_problems"], counts["measures"]) == (
        3, 11, 21, 25)
    assert report.stated == {Total.AREAS: 3, Total.PROBLEMS: 27, Total.MEASURES: 27,
                             Total.DONE: 27}
    assert {(d.item, d.stated, d.found) for d in report.differences()} == {
        (Total.PROBLEMS, 27, 11), (Total.MEASURES, 27, 25), (Total.DONE, 27, 0)}
    assert by_state(report) == {State.IN_PROGRESS: 25}
    assert report.skipped_sections == ["(一)党组落实整改情况", "(二)主要负责人组织落实整改情况",
                                       "(三)整改事项完成情况", "三、今后整改工作打算"]


def test_work_plan_table_gives_nine_areas():
    report = parsed("plan-logistics-governance.txt")
    counts = report.counts()
    assert (counts["areas"], counts["problems"], counts["measures"]) == (9, 9, 9)
    assert report.stated == {}
    assert report.areas[0].title == "食堂、超市管理及食品卫生安全"
    assert [m.fields["责任单位"] for m in report.measures()][:3] == ["后勤集团", "财务处", "保卫处"]
    assert by_state(report) == {State.ASSIGNED: 9}


def test_work_summary_lists_no_problems():
    report = parsed("summary-logistics-2021.txt")
    assert report.counts()["measures"] == 0
    assert report.stated == {Total.AREAS: 5, Total.PROBLEMS: 17, Total.MEASURES: 39}


def test_importing_the_logistics_report_verifies(rectiflow):
    result = rectiflow("import", "report", str(SEEDS / "report-logistics-2025.txt"),
                       "--campaign", "十届校党委第五轮巡察", "--json")
    assert result.code == 0, result.err
    assert (result.json()["areas"], result.json()["problems"], result.json()["measures"]) == (
        13, 29, 33)
    assert rectiflow("audit", "verify").code == 0
    refused = rectiflow("import", "report", str(SEEDS / "summary-logistics-2021.txt"),
                        "--campaign", "2021年总结")
    assert refused.code == 2
