"""The report parser (pure) over many variants of reports (整改情况报告) and feedback lists
(反馈意见)."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_documents import FEEDBACK, PLAN, PROGRESS_REPORT, REPORT, SUMMARY, lines

from workflow.importers.report import Total, parse_report
from workflow.importers.report.parsed import Result, classify_result, first_sentence
from workflow.importers.report.parser import stated_totals
from workflow.lifecycle import Kind, State

# ------------------------------------------------------------------ markers and results


@pytest.mark.parametrize(("text", "result"), [
    ("完成", Result.DONE),
    ("已完成", Result.DONE),
    ("已完成。", Result.DONE),
    ("基本完成，长期建设。", Result.LONG_TERM),
    ("基本完成,长期建设", Result.LONG_TERM),
    ("已完成整改并长期坚持", Result.LONG_TERM),
    ("暂未完成", Result.NOT_DONE),
    ("正在推进", Result.NOT_DONE),
    ("部分完成", Result.NOT_DONE),
    ("见附件", None),
])
def test_result_words(text, result):
    assert classify_result(text) is result


def _only_measure(text: str):
    report = parse_report(lines(text))
    [measure] = list(report.measures())
    return measure


@pytest.mark.parametrize(("marker_lines", "result", "progress"), [
    (["整改结果：完成", "整改情况：已制定计划。"], Result.DONE, ["已制定计划。"]),
    (["整改结果:已完成", "整改进展情况:已制定计划。"], Result.DONE, ["已制定计划。"]),
    (["整改结果 完成", "整改情况 已制定计划。"], Result.DONE, ["已制定计划。"]),
    (["整改结果完成", "整改进展情况已制定计划。"], Result.DONE, ["已制定计划。"]),
    (["整改结果：基本完成，长期建设。", "整改情况：持续推进。"], Result.LONG_TERM, ["持续推进。"]),
    (["整改结果：已完成整改并长期坚持"], Result.LONG_TERM, []),
    (["整改结果：暂未完成", "整改进展：正在推进。"], Result.NOT_DONE, ["正在推进。"]),
    (["整改情况：已制定计划。", "", "另行印发通知。"], None, ["已制定计划。\n另行印发通知。"]),
    (["整改结果：完成", "已制定计划（没有标签的说明）。"], Result.DONE, ["已制定计划（没有标签的说明）。"]),
])
def test_result_and_progress_markers(marker_lines, result, progress):
    # Given one area with one problem followed by the markers
    text = "\n".join(["二、整改情况", "（一）反馈问题：学习有差距", "1.学习制度不健全。", *marker_lines])
    # When parsed, the problem is itself one measure with that result and progress
    measure = _only_measure(text)
    assert measure.result is result
    assert measure.progress == progress
    assert measure.title == "学习制度不健全"


def test_measure_text_becomes_the_title_and_fields_are_kept():
    measure = _only_measure("\n".join([
        "（一）反馈问题：学习有差距", "1.学习制度不健全。", "整改措施：制定年度学习计划。",
        "责任单位：党政办", "完成时限：2024年12月", "整改结果：完成"]))
    assert measure.title == "制定年度学习计划。"
    assert measure.fields == {"责任单位": "党政办", "完成时限": "2024年12月"}
    assert measure.result is Result.DONE


# ------------------------------------------------------------------ the whole report


def test_report_maps_outline_to_areas_problems_measures():
    report = parse_report(lines(REPORT))
    assert report.counts() == {"areas": 3, "problems": 5, "sub_problems": 4, "measures": 7,
                               "progress_reports": 7, "without_result": 1}
    assert [a.title for a in report.areas] == ["政治理论学习有差距", "制度执行不严格", "作风建设有短板"]
    first, second, third = report.areas
    assert [p.title for p in first.problems] == ["学习制度不健全", "学习形式单一"]
    purchase, contracts = second.problems
    assert [c.label for c in purchase.children] == ["问题表现(1)", "问题表现（2）"]
    assert [m.kind for m in purchase.all_measures()] == [Kind.LONG_TERM, Kind.LONG_TERM]
    # the ②③ lines continue the list begun by "整改情况：①", they are not sub-problems
    assert purchase.children[1].measures[0].progress == [
        "①建立三人验收制度；\n②每月抽查验收记录；\n③ 2024年10月起纳入考核。"]
    assert contracts.measures[0].title == "梳理合同清单，明确审核时限。"
    assert contracts.measures[0].state is State.IN_PROGRESS
    # text standing directly under an area is one problem, its ①② are its sub-problems
    [direct] = third.problems
    assert direct.text == "2023年以来，部分窗口服务态度生硬，群众反映较多。"
    assert [m.state for m in direct.all_measures()] == [State.CLOSED, State.IN_PROGRESS]
    assert report.unplaced == []


def test_report_sections_that_are_not_problems_are_skipped():
    report = parse_report(lines(REPORT))
    assert report.skipped_sections == ["一、组织整改落实情况", "三、巡察整改成效", "四、下一步工作安排"]
    titles = [p.title for p in report.problems()]
    assert "提高政治站位" not in titles and "巩固整改成果" not in titles


def test_report_states_and_compares_its_totals():
    report = parse_report(lines(REPORT))
    assert report.stated == {Total.AREAS: 3, Total.PROBLEMS: 5, Total.MEASURES: 8, Total.DONE: 3,
                             Total.LONG_TERM: 1, Total.NOT_DONE: 1}
    assert report.result_level() == "problems"
    [difference] = report.differences()
    assert (difference.item, difference.stated, difference.found) == (Total.MEASURES, 8, 7)
    assert "文中称整改措施 8 条，逐项列出的只有 7 项" in difference.message


def test_progress_report_without_results_is_in_progress_and_incomplete():
    report = parse_report(lines(PROGRESS_REPORT))
    counts = report.counts()
    assert (counts["areas"], counts["problems"], counts["measures"]) == (2, 4, 5)
    assert {m.state for m in report.measures()} == {State.IN_PROGRESS}
    assert [p.title for p in report.areas[1].problems] == ["固定资产管理不到位", "合同签订不规范"]
    found = {d.item: (d.stated, d.found) for d in report.differences()}
    assert found == {Total.PROBLEMS: (5, 4), Total.MEASURES: (6, 5), Total.DONE: (6, 0)}
    assert report.skipped_sections == ["（一）党组落实整改情况", "（二）整改事项完成情况",
                                       "三、今后整改工作打算"]


def test_feedback_list_without_results_is_assigned():
    report = parse_report(lines(FEEDBACK))
    assert [a.title for a in report.areas] == ["贯彻落实党的路线方针政策方面存在的问题",
                                               "全面从严治党方面存在的问题"]
    counts = report.counts()
    assert (counts["problems"], counts["sub_problems"], counts["measures"]) == (3, 5, 5)
    assert {m.state for m in report.measures()} == {State.ASSIGNED}
    assert report.source == "feedback"


def test_work_plan_table_rows_become_areas():
    report = parse_report(lines(PLAN))
    assert [a.title for a in report.areas] == ["食堂管理及食品安全", "财务收费及经费管理"]
    measures = list(report.measures())
    assert [m.title for m in measures] == ["对食堂食品安全情况进行自查", "对各类收费情况进行自查"]
    assert [m.fields for m in measures] == [{"责任单位": "后勤集团"}, {"责任单位": "财务处"}]
    assert report.source == "table"


def test_tab_separated_table_rows_with_results():
    text = "\n".join([
        "整改台账", "序号\t方面\t问题\t整改措施\t整改结果\t整改情况",
        "1\t学习有差距\t学习制度不健全\t制定计划\t已完成\t2024年6月已制定",
        "2\t学习有差距\t学习制度不健全\t集中学习\t暂未完成\t",
        "3\t作风有短板\t窗口服务不规范\t开展培训\t基本完成，长期建设\t"])
    report = parse_report(lines(text))
    assert report.counts()["problems"] == 2
    assert [(m.title, m.state) for m in report.measures()] == [
        ("制定计划", State.CLOSED), ("集中学习", State.IN_PROGRESS), ("开展培训", State.VERIFIED)]


def test_tab_indented_paragraphs_are_not_a_table():
    text = "\n".join("\t" + line for line in lines(FEEDBACK))
    assert parse_report(lines(text)).counts()["measures"] == 5


def test_a_work_summary_yields_nothing():
    report = parse_report(lines(SUMMARY))
    assert report.counts()["measures"] == 0
    assert report.stated == {Total.AREAS: 5, Total.PROBLEMS: 17}


def test_one_area_report_without_section_numbers():
    text = "\n".join(["（一）反馈问题：学习有差距", "1.学习制度不健全。", "整改结果：完成",
                      "2.学习形式单一。", "整改结果：暂未完成"])
    report = parse_report(lines(text))
    assert [a.title for a in report.areas] == ["学习有差距"]
    assert [m.state for m in report.measures()] == [State.CLOSED, State.IN_PROGRESS]


def test_problems_without_any_area_heading_get_one_area():
    report = parse_report(lines("1.学习制度不健全。\n整改结果：完成\n2.学习形式单一。\n整改结果：完成"))
    assert [a.title for a in report.areas] == ["（未分方面）"]
    assert report.counts()["measures"] == 2


def test_unrecognised_result_is_reported_not_guessed():
    report = parse_report(lines("（一）反馈问题：学习\n1.制度不健全。\n整改结果：见附件"))
    [measure] = report.measures()
    assert measure.result is None
    assert [u.reason for u in report.unplaced] == ["整改结果的写法无法识别，已按未写明结果处理"]


def test_area_intro_with_numbered_problems_is_listed_as_unplaced():
    report = parse_report(lines("（一）反馈问题：学习\n主要表现在以下方面。\n1.制度不健全。\n整改结果：完成"))
    assert report.counts()["problems"] == 1
    assert [u.text for u in report.unplaced] == ["主要表现在以下方面"]


@pytest.mark.parametrize(("text", "expected"), [
    ("针对巡察组提出的13个方面、29项问题，梳理出整改措施91条。目前已经整改完成26项，占比89.7%；长期建设3项。",
     {Total.AREAS: 13, Total.PROBLEMS: 29, Total.MEASURES: 91, Total.DONE: 26, Total.LONG_TERM: 3}),
    ("将巡察反馈的3方面27个问题逐一分解。整改方案中制定的27条整改措施，已落实27条。",
     {Total.AREAS: 3, Total.PROBLEMS: 27, Total.MEASURES: 27, Total.DONE: 27}),
    ("反馈的五个方面17个问题已全部完成整改，形成了39条整改责任清单。",
     {Total.AREAS: 5, Total.PROBLEMS: 17, Total.MEASURES: 39}),
    ("共两个方面，其中未完成2项。一方面工作人员疲于应对。", {Total.AREAS: 2, Total.NOT_DONE: 2}),
    ("全年累计完成基建维修项目75项。", {}),
])
def test_stated_totals(text, expected):
    assert stated_totals([(0, text)])[0] == expected


def test_stated_totals_prefer_summary_sections_over_numbers_inside_a_problem():
    stated, _ = stated_totals([(1, "完成经济审查提出17项问题，整改落实16项"),
                               (0, "针对巡察组提出的13个方面、29项问题")])
    assert stated[Total.PROBLEMS] == 29


def test_first_sentence():
    assert first_sentence("组织学习还不到位。党总支未按照要求") == "组织学习还不到位"
    assert first_sentence("针对学习不深入问题") == "针对学习不深入问题"


# ------------------------------------------------------------------ lists inside progress text


@pytest.mark.parametrize(("progress_lines", "expected"), [
    # a circled list that starts on the line after the marker
    (["整改情况：", "①修订制度；", "②开展培训。"], "①修订制度；\n②开展培训。"),
    # a circled list begun inside the marker's line
    (["整改措施：①修订制度；", "②开展培训。"], "①修订制度；\n②开展培训。"),
    # an Arabic list under "(1)" items that stand directly under the area: "2." cannot be the
    # outline's next item, since no "1." item is open
    (["整改情况：1.修订制度；", "2.开展培训。"], "1.修订制度；\n2.开展培训。"),
])
def test_lists_inside_progress_stay_text(progress_lines, expected):
    text = "\n".join(["（一）关于学习不到位方面问题", "（1）中心组学习有差距。", *progress_lines,
                      "（2）节约型机关创建有短板。", "整改情况：已公布。"])
    report = parse_report(lines(text))
    assert [p.title for p in report.problems()] == ["中心组学习有差距", "节约型机关创建有短板"]
    first = report.areas[0].problems[0].measures[0]
    assert expected in [*first.progress, first.title]


def test_a_circled_list_inside_a_circled_item_stays_text():
    text = "\n".join(["（一）反馈问题：学习", "1.制度不健全。", "问题①：未制定计划。", "整改结果：完成",
                      "整改情况：①修订制度；", "②开展培训。", "问题②：未组织学习。", "整改结果：完成"])
    [problem] = parse_report(lines(text)).problems()
    assert [c.title for c in problem.children] == ["未制定计划", "未组织学习"]
    assert problem.children[0].measures[0].progress == ["①修订制度；\n②开展培训。"]


def test_a_second_item_of_an_open_outline_level_is_structure():
    # "(2)" after "(1)" is the next item even if "(1)" appears in the text before it
    text = "\n".join(["（一）关于学习不到位方面问题", "1.针对学习不深入问题。", "（1）中心组学习有差距。",
                      "整改情况：（1）修订制度；", "（2）节约型机关创建有短板。", "整改情况：已公布。",
                      "2.针对作风问题。", "整改情况：1.建立台账。"])
    [area] = parse_report(lines(text)).areas
    assert [p.title for p in area.problems] == ["针对学习不深入问题", "针对作风问题"]
    assert len(area.problems[0].children) == 2


def test_next_problem_after_a_list_is_still_a_problem():
    text = "\n".join(["（一）反馈问题：学习", "1.制度不健全。", "整改情况：1.修订制度；2.开展培训。",
                      "2.形式单一。", "整改结果：完成"])
    assert [p.title for p in parse_report(lines(text)).problems()] == ["制度不健全", "形式单一"]


def test_sections_after_the_areas_are_not_areas():
    # Given areas numbered 一、二、 at the top level, followed by a "下一步" section numbered alike
    text = "\n".join(["一、学习方面存在的问题", "（一）制度不健全。", "整改结果：完成",
                      "二、作风方面存在的问题", "（一）服务不规范。", "整改结果：完成",
                      "三、下一步工作安排", "（一）巩固整改成果。", "（二）建立长效机制。"])
    report = parse_report(lines(text))
    assert [a.title for a in report.areas] == ["学习方面存在的问题", "作风方面存在的问题"]
    assert report.skipped_sections == ["三、下一步工作安排"]


@pytest.mark.slow
def test_a_2mb_report_parses_in_under_2_seconds():
    # CPU time, best of three: other work on a shared machine does not count against the parser
    # (bench/report_parse.py reports wall time).
    import importlib.util
    import time

    spec = importlib.util.spec_from_file_location(
        "report_parse_bench", Path(__file__).resolve().parents[4] / "bench" / "report_parse.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    document, areas, problems, measures = bench.synthetic_report(2 * 1024 * 1024)
    timings = []
    for _ in range(3):
        started = time.process_time()
        report = parse_report(document)
        timings.append(time.process_time() - started)
    counts = report.counts()
    assert (counts["areas"], counts["problems"], counts["measures"]) == (areas, problems, measures)
    assert min(timings) < 2.0
