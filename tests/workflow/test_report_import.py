"""Importing reports (整改情况报告) and feedback lists (反馈意见): the pure parser over many
variants, then the service and the CLI on a real database.

The documents here are written for the tests in the style of real reports; none is a seed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from workflow import db
from workflow.errors import InputError
from workflow.importers.report import (
    Result,
    Style,
    Total,
    build_outline,
    chinese_number,
    chinese_numeral,
    classify_result,
    decode_text,
    first_sentence,
    import_report,
    latest_date,
    parse_numbering,
    parse_report,
    read_document,
    split_inline,
    stated_totals,
)
from workflow.lifecycle import Kind, State
from workflow.models import Area, Campaign, HistoryEntry, Measure, Problem, ProgressReport
from workflow.services.audit import verify_history
from workflow.timeutil import SHANGHAI

# ------------------------------------------------------------------ fixture documents

#: A rectification report: non-problem sections numbered like the problem part, full- and
#: half-width punctuation, every result marker, sub-items in three styles, an area whose text
#: stands directly under it, a numbered list running on inside a progress text, extra blank
#: lines, and totals that disagree with the list in one place (8 measures stated, 7 listed).
REPORT = """\
关于第三轮巡察反馈意见整改情况的报告

根据校党委统一部署，校党委第二巡察组于2024年3月对我处开展巡察，并于2024年5月反馈了巡察意见。现将整改情况报告如下。

一、组织整改落实情况
（一）提高政治站位。处党支部召开专题会议，研究部署整改工作。
（二）压实整改责任。建立整改台账，对账销号。

二、反馈问题整改情况
（一）反馈问题：政治理论学习有差距
1.学习制度不健全。未制定年度学习计划。
整改结果：完成
整改情况：2024年6月制定了年度学习计划；2024年7月18日、10月11日组织集中学习。


2、学习形式单一。集中学习以读文件为主。
整改结果:已完成
整改进展情况:2024年9月开展研讨交流2次。
(二)反馈问题:制度执行不严格
1.采购程序不规范
问题表现(1)：询价记录不全。
整改结果：基本完成，长期建设。
整改情况：修订了采购管理办法。
问题表现（2）：验收人数不足。
整改结果：已完成整改并长期坚持
整改情况：①建立三人验收制度；
②每月抽查验收记录；
③ 2024年10月起纳入考核。
2.合同审核超时。
整改结果 暂未完成
整改措施：梳理合同清单，明确审核时限。
整改情况：2024年11月已梳理完毕，正在推进。

（三）反馈问题：作风建设有短板
2023年以来，部分窗口服务态度生硬，群众反映较多。
问题①：窗口服务不规范。
整改结果：完成
整改情况：2024年8月开展窗口服务培训。
问题②：投诉处理不及时。
整改情况：建立投诉台账，24小时内回应。

三、巡察整改成效
针对巡察组反馈的3个方面、5项问题，制定整改措施8条。目前已整改完成3项，长期建设1项，未完成1项。
（一）制度更完善。修订制度5项。

四、下一步工作安排
（一）巩固整改成果。
（二）建立长效机制。
"""

#: A progress report in the other common shape: "1.针对…问题。" with (1) items, an area with
#: (1) items directly, no 整改结果 at all, and a first paragraph that swallowed "一、".
PROGRESS_REPORT = """\
根据区委统一部署，区委巡察组对中心开展了巡察。一、整改工作开展情况
（一）党组落实整改情况。将巡察反馈的2方面5个问题逐一分解。
（二）整改事项完成情况。整改方案中制定的6条整改措施，已落实6条。
二、反馈意见整改进展情况
（一）关于贯彻落实上级部署不到位方面问题
1.针对学习不深入问题。
（1）中心组学习有差距。
整改进展情况：制定年度学习方案，2024年10月开展学习。
（2）节约型机关创建有短板。
整改进展情况：2024年12月6日公布了创建结果。
2.针对餐厅服务质量有待提升问题。
整改进展情况：每季度开展满意度调查。
（二）关于巡察整改不彻底方面问题
(1)固定资产管理不到位。
整改进展情况：已补记固定资产。
(2)合同签订不规范。
整改进展情况：建立合同审核机制。
三、今后整改工作打算
（一）深化整改落实。
（二）严格责任追究。
"""

#: A feedback list as the inspection team sends it: no results, no progress.
FEEDBACK = """\
校党委第一巡察组关于巡察后勤处党委的反馈意见
一、贯彻落实党的路线方针政策方面存在的问题
（一）学习贯彻不深入。
1.理论学习中心组学习不规范。
2.传达学习上级精神不及时。
（二）服务保障不到位。
1.维修响应慢。
二、全面从严治党方面存在的问题
（一）廉洁风险防控不力。
1.采购程序不规范。
2.合同管理松散。
"""

#: A work plan whose problems are a table (cells on tab-led lines, rows between blank lines).
PLAN = """\
后勤领域专项治理工作方案
一、组织机构
学校成立专项治理工作领导小组。
二、组织实施责任分工
1.校办负责制定工作方案。
2.财务处负责对收费问题进行自查。
附件：专项治理责任清单

\t整治类别
\t自查自纠主要内容
\t责任单位

\t食堂管理及食品安全
\t对食堂食品安全情况进行自查。
\t后勤集团

\t财务收费及经费管理
\t对各类收费情况进行自查。
\t财务处
"""

#: A year's work summary: numbered like a report, mentions its rectification, lists no problem.
SUMMARY = """\
2021年工作总结
一、落实主体责任情况
1.加强党史学习教育。组织集中学习12次。
2.推动巡察整改落实。巡察组反馈的五个方面17个问题已全部完成整改。
二、下一步工作方向
1.加强队伍建设。
"""


def lines(text: str) -> list[str]:
    return text.splitlines()


# ------------------------------------------------------------------ numbering (pure)


@pytest.mark.parametrize(("line", "style", "value", "rest", "prefixed"), [
    ("一、组织整改落实情况", Style.CN, 1, "组织整改落实情况", False),
    ("十三、其他", Style.CN, 13, "其他", False),
    ("二十一.其他", Style.CN, 21, "其他", False),
    ("(一)反馈问题：学习", Style.PAREN_CN, 1, "反馈问题：学习", False),
    ("（十二）反馈问题:两个责任", Style.PAREN_CN, 12, "反馈问题:两个责任", False),
    ("( 三 ) 空格", Style.PAREN_CN, 3, "空格", False),
    ("1.组织学习还不到位。", Style.ARABIC, 1, "组织学习还不到位。", False),
    ("2、学习形式单一", Style.ARABIC, 2, "学习形式单一", False),
    ("３．全角数字", Style.ARABIC, 3, "全角数字", False),
    ("12. 十二", Style.ARABIC, 12, "十二", False),
    ("(1)党组学习有差距。", Style.PAREN_ARABIC, 1, "党组学习有差距。", False),
    ("（2）节约型机关", Style.PAREN_ARABIC, 2, "节约型机关", False),
    ("问题表现(1)：询价记录不全", Style.PAREN_ARABIC, 1, "询价记录不全", True),
    ("问题表现（3）验收", Style.PAREN_ARABIC, 3, "验收", True),
    ("问题①：学校要求", Style.CIRCLED, 1, "学校要求", True),
    ("问题②:缙云校区", Style.CIRCLED, 2, "缙云校区", True),
    ("①建立制度", Style.CIRCLED, 1, "建立制度", False),
    ("③ 召开会议", Style.CIRCLED, 3, "召开会议", False),
    ("④.完善", Style.CIRCLED, 4, "完善", False),
    ("①问题项：缙云校区", Style.CIRCLED, 1, "缙云校区", True),
    ("  ⑩、缩进", Style.CIRCLED, 10, "缩进", False),
])
def test_numbering_variants(line, style, value, rest, prefixed):
    numbering = parse_numbering(line)
    assert numbering is not None
    assert (numbering.style, numbering.value, numbering.rest, numbering.prefixed) == (
        style, value, rest, prefixed)


@pytest.mark.parametrize("line", [
    "2024.5月完成", "2024年12月完成", "一是深化思想认识", "3.8万元资产已补记", "十三个方面",
    "（2021年）文件", "整改情况：已完成", "第三轮巡察",
])
def test_text_that_is_not_numbering(line):
    assert parse_numbering(line) is None


@pytest.mark.parametrize(("text", "value"), [
    ("一", 1), ("十", 10), ("十三", 13), ("二十", 20), ("二十九", 29), ("两", 2), ("29", 29),
])
def test_chinese_numbers(text, value):
    assert chinese_number(text) == value
    if not text.isdigit() and text != "两":
        assert chinese_numeral(value) == text


# ------------------------------------------------------------------ markers and results (pure)


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


@pytest.mark.parametrize(("line", "pieces"), [
    ("1.问题。整改结果：完成。整改情况：已制定计划。",
     ["1.问题。", "整改结果：完成。", "整改情况：已制定计划。"]),
    ("整改措施：加强学习。整改情况:已学习", ["整改措施：加强学习。", "整改情况:已学习"]),
    ("本单位整改情况良好", ["本单位整改情况良好"]),
])
def test_markers_inside_a_line_split_it(line, pieces):
    assert split_inline(line) == pieces


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


# ------------------------------------------------------------------ the whole report (pure)


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


def test_outline_keeps_blank_lines_out():
    outline = build_outline(["一、甲", "", "", "（一）乙", "", "1.丙"])
    [section] = outline.root.children
    assert section.children[0].children[0].heading == "丙"


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


def test_first_sentence():
    assert first_sentence("组织学习还不到位。党总支未按照要求") == "组织学习还不到位"
    assert first_sentence("针对学习不深入问题") == "针对学习不深入问题"


# ------------------------------------------------------------------ reading files


def test_txt_encodings(tmp_path):
    text = "（一）反馈问题：学习\n1.制度不健全。\n整改结果：完成\n"
    for name, data in [("utf8.txt", text.encode("utf-8")),
                       ("bom.txt", b"\xef\xbb\xbf" + text.encode("utf-8")),
                       ("gbk.txt", text.encode("gb18030"))]:
        (tmp_path / name).write_bytes(data)
        assert read_document(tmp_path / name)[0] == "（一）反馈问题：学习"
    assert decode_text("中文".encode("gb18030"), "x.txt") == "中文"


def test_unsupported_or_missing_files(tmp_path):
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4")
    with pytest.raises(InputError, match="不支持的文件格式"):
        read_document(tmp_path / "report.pdf")
    with pytest.raises(InputError, match="文件不存在"):
        read_document(tmp_path / "missing.txt")
    (tmp_path / "broken.docx").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="无法读取 Word 文件"):
        read_document(tmp_path / "broken.docx")


def _add_numbering(document, fmt: str, text: str) -> str:
    """Add a one-level Word list (format, level text) to the document; return its numId."""
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    numbering = document.part.numbering_part.element
    abstract_id = str(900 + len(numbering.findall(
        "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}abstractNum")))
    abstract = parse_xml(
        f'<w:abstractNum {nsdecls("w")} w:abstractNumId="{abstract_id}"><w:lvl w:ilvl="0">'
        f'<w:start w:val="1"/><w:numFmt w:val="{fmt}"/><w:lvlText w:val="{text}"/></w:lvl>'
        f'</w:abstractNum>')
    numbering.insert(0, abstract)
    num_id = str(800 + int(abstract_id) - 900)
    numbering.append(parse_xml(f'<w:num {nsdecls("w")} w:numId="{num_id}">'
                               f'<w:abstractNumId w:val="{abstract_id}"/></w:num>'))
    return num_id


def _numbered(document, text: str, num_id: str):
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    paragraph = document.add_paragraph(text)
    paragraph._p.get_or_add_pPr().append(parse_xml(
        f'<w:numPr {nsdecls("w")}><w:ilvl w:val="0"/><w:numId w:val="{num_id}"/></w:numPr>'))
    return paragraph


def build_docx(path: Path) -> Path:
    """A report as a Word user writes it: typed numbers, Word's automatic numbers, and a table."""
    import docx

    document = docx.Document()
    document.add_paragraph("关于巡察反馈意见整改情况的报告")
    sections = _add_numbering(document, "chineseCounting", "%1、")
    circled = _add_numbering(document, "decimalEnclosedCircle", "问题%1：")
    _numbered(document, "组织整改落实情况", sections)
    document.add_paragraph("（一）提高政治站位。召开专题会议。")
    _numbered(document, "反馈问题整改情况", sections)
    document.add_paragraph("（一）反馈问题：学习有差距")
    document.add_paragraph("1.学习制度不健全。")
    document.add_paragraph("整改结果：完成")
    document.add_paragraph("整改情况：2024年6月制定了学习计划。")
    document.add_paragraph("2.工作效能有待提升。")
    _numbered(document, "合同审核超时。", circled)
    document.add_paragraph("整改结果：基本完成，长期建设")
    _numbered(document, "资产移交滞后。", circled)
    document.add_paragraph("整改结果：暂未完成")
    document.add_paragraph("整改情况：2024年12月5日完成交接。")
    _numbered(document, "巡察整改成效", sections)
    document.add_paragraph("针对反馈的2个方面、3项问题，制定整改措施4条。")
    document.add_paragraph("附件：整改责任清单")
    table = document.add_table(rows=3, cols=3)
    for row, cells in zip(table.rows, [("整治类别", "主要内容", "责任单位"),
                                       ("食堂管理", "对食堂食品安全进行自查。", "后勤集团"),
                                       ("收费管理", "对各类收费进行自查。", "财务处")], strict=True):
        for cell, value in zip(row.cells, cells, strict=True):
            cell.text = value
    document.save(str(path))
    return path


def test_docx_paragraphs_tables_and_word_numbering(tmp_path):
    path = build_docx(tmp_path / "整改报告.docx")
    read = read_document(path)
    assert "一、组织整改落实情况" in read and "三、巡察整改成效" in read
    assert "问题①：合同审核超时。" in read
    assert "\t整治类别\t主要内容\t责任单位" in read
    report = parse_report(read)
    assert [a.title for a in report.areas] == ["学习有差距", "食堂管理", "收费管理"]
    assert [m.state for m in report.measures()] == [
        State.CLOSED, State.VERIFIED, State.IN_PROGRESS, State.ASSIGNED, State.ASSIGNED]
    assert report.skipped_sections == ["一、组织整改落实情况", "三、巡察整改成效"]
    assert {(d.item, d.stated, d.found) for d in report.differences()} == {
        (Total.AREAS, 2, 3), (Total.PROBLEMS, 3, 4), (Total.MEASURES, 4, 5)}


# ------------------------------------------------------------------ the service (database)


@pytest.fixture
def report_file(tmp_path) -> Path:
    path = tmp_path / "整改情况报告.txt"
    path.write_text(REPORT, encoding="utf-8")
    return path


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


# ------------------------------------------------------------------ the command line


def test_cli_json_reports_counts_and_differences(rectiflow, report_file, now, sessions):
    result = rectiflow("import", "report", str(report_file), "--campaign", "第三轮巡察整改",
                       "--json")
    assert result.code == 0, result.err
    document = result.json()
    assert {k: document[k] for k in ("areas", "problems", "measures")} == {
        "areas": 3, "problems": 5, "measures": 7}
    assert isinstance(document["campaign_id"], int)
    assert document["stated"] == {"areas": 3, "problems": 5, "measures": 8, "done": 3,
                                  "long_term": 1, "not_done": 1}
    assert [d["item"] for d in document["differences"]] == ["measures"]
    assert document["by_state"] == {"closed": 3, "verified": 2, "in_progress": 2}
    assert document["to_complete"]["deadline"] == 7
    listed = rectiflow("measure", "list", "--json").json()
    assert len(listed) == 7 and listed[0]["area"] == "政治理论学习有差距"
    assert rectiflow("audit", "verify").code == 0


def test_cli_dry_run_prints_the_tree_in_chinese(rectiflow, report_file, sessions):
    result = rectiflow("import", "report", str(report_file), "--campaign", "第三轮巡察整改",
                       "--dry-run")
    assert result.code == 0, result.err
    assert "（一）反馈问题" not in result.out  # the prefix is not part of the area title
    for expected in ["（一）政治理论学习有差距", "问题表现(1) 询价记录不全", "[已完成 → 已销号，进展 1 条]",
                     "列出：3 个方面、5 个问题（另含 4 个细项）、7 项整改措施",
                     "文中称整改措施 8 条，逐项列出的只有 7 项，少 1 项",
                     "待补充：7 项措施均未写明责任领导", "未写明整改结果：1 项",
                     "未作为问题导入的部分：一、组织整改落实情况"]:
        assert expected in result.out
    with db.transaction(sessions) as session:
        assert _count(session, Measure) == 0


def test_cli_refuses_a_document_without_problems_with_exit_2(rectiflow, tmp_path, sessions):
    path = tmp_path / "summary.txt"
    path.write_text(SUMMARY, encoding="utf-8")
    result = rectiflow("import", "report", str(path), "--campaign", "总结")
    assert result.code == 2
    assert "没有找到可以导入的问题清单" in result.err and "未导入任何数据" in result.err
    with db.transaction(sessions) as session:
        assert _count(session, Campaign) == 0


def test_cli_needs_a_campaign(rectiflow, report_file):
    assert rectiflow("import", "report", str(report_file)).code == 2


def test_cli_imports_a_docx(rectiflow, tmp_path):
    path = build_docx(tmp_path / "报告.docx")
    result = rectiflow("import", "report", str(path), "--campaign", "巡察整改", "--json")
    assert result.code == 0, result.err
    assert (result.json()["areas"], result.json()["measures"]) == (3, 5)


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
        "report_parse_bench", Path(__file__).resolve().parents[2] / "bench" / "report_parse.py")
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
