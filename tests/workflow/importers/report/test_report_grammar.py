"""The grammar of reports, row by row (pure): item markers, labels, result phrases at the head
of an account, total and rate phrases. Each case is a variant real documents use."""

from __future__ import annotations

import pytest

from workflow.importers.report import Total, parse_report
from workflow.importers.report.grammar import LABELS, Result, SegmentKind, Style
from workflow.importers.report.numbering import parse_numbering
from workflow.importers.report.parsed import head_result
from workflow.importers.report.parser import other_document_kind, read_statements

# ------------------------------------------------------------------ item markers


@pytest.mark.parametrize(("line", "style", "value"), [
    ("(1)办公设备未入账", Style.PAREN_ARABIC, 1),
    ("（1）办公设备未入账", Style.PAREN_ARABIC, 1),
    ("1）办公设备未入账", Style.PAREN_ARABIC, 1),
    ("2)办公设备未入账", Style.PAREN_ARABIC, 2),
    ("1、预算执行进度偏慢", Style.ARABIC, 1),
    ("1.预算执行进度偏慢", Style.ARABIC, 1),
    ("1．预算执行进度偏慢", Style.ARABIC, 1),
    ("①流动党员底数不清", Style.CIRCLED, 1),
    ("（三）内部控制方面", Style.PAREN_CN, 3),
    ("三、下一步工作打算", Style.CN, 3),
])
def test_item_markers(line, style, value):
    numbering = parse_numbering(line)
    assert numbering is not None and (numbering.style, numbering.value) == (style, value)


@pytest.mark.parametrize("line", ["一是建立清理机制", "二是清理结转资金", "2025)年度", "100)"])
def test_running_text_is_not_an_item(line):
    assert parse_numbering(line) is None


# ------------------------------------------------------------------ labels


@pytest.mark.parametrize("label", ["整改情况", "整改进展", "落实情况", "完成情况", "整改进展情况"])
@pytest.mark.parametrize("colon", ["：", ":", " ", ""])
def test_account_labels_with_any_colon_carry_a_result_at_their_head(label, colon):
    # Given a problem whose account starts with a result phrase, whatever label and colon
    assert LABELS[label] is SegmentKind.PROGRESS
    text = f"（一）预算方面\n1、执行进度偏慢。\n{label}{colon}已完成整改。2025年3月逐一督导。"
    # When parsed, then the result is read and the account kept whole as progress
    [measure] = parse_report(text.splitlines()).measures()
    assert measure.result is Result.DONE
    assert measure.progress == ["已完成整改。2025年3月逐一督导。"]


# ------------------------------------------------------------------ result phrases


@pytest.mark.parametrize(("account", "result", "phrase"), [
    ("已完成整改。2025年3月督导。", Result.DONE, "已完成整改"),
    ("已整改到位。", Result.DONE, "已整改到位"),
    ("已整改到位并长期坚持。一是建立机制", Result.LONG_TERM, "已整改到位并长期坚持"),
    ("已完成并长期坚持；修订办法", Result.LONG_TERM, "已完成并长期坚持"),
    ("基本完成，长期坚持。", Result.LONG_TERM, "基本完成，长期坚持"),
    ("基本完成。", Result.DONE, "基本完成"),
    ("暂未完成，已提交申请", Result.NOT_DONE, "暂未完成"),
    ("正在推进。已向财政局提交", Result.NOT_DONE, "正在推进"),
    ("持续推进。", Result.LONG_TERM, "持续推进"),
    ("已办结。", Result.DONE, "已办结"),
    ("正在办理", Result.NOT_DONE, "正在办理"),
    ("【已完成】2025年5月印发", Result.DONE, "已完成"),
    ("（正在推进）已提交申请", Result.NOT_DONE, "正在推进"),
])
def test_result_phrases_at_the_head_of_an_account(account, result, phrase):
    assert head_result(account) == (result, phrase)


@pytest.mark.parametrize("account", [
    "已完成制订教职工政治理论学习方案。", "已于2024年10月更新了编制表。", "2024年8月已完成学习方案。",
    "已按照市有关文件规定落实。", "一是深化思想认识", "整改。", "",
])
def test_an_account_that_starts_otherwise_states_no_result(account):
    assert head_result(account) is None


# ------------------------------------------------------------------ totals and rates


@pytest.mark.parametrize(("text", "expected"), [
    ("反馈3个方面15类问题。", {Total.AREAS: 3, Total.PROBLEMS: 15}),
    ("将反馈意见细化为41项整改任务。", {Total.MEASURES: 41}),
    ("已整改到位38项，其中需长期坚持的20项。", {Total.DONE: 38, Total.LONG_TERM: 20}),
    ("共梳理问题清单27条。", {Total.PROBLEMS: 27}),
    ("涉及5个大方面31个大项。", {Total.AREAS: 5, Total.PROBLEMS: 31}),
    ("已办结9件、正在办理4件。", {Total.DONE: 9, Total.NOT_DONE: 4}),
    ("针对反馈的三个方面、12个问题，已完成整改事项10个，尚未完成2项。",
     {Total.AREAS: 3, Total.PROBLEMS: 12, Total.DONE: 10, Total.NOT_DONE: 2}),
    ("持续整改3项，正在整改2项。", {Total.LONG_TERM: 3, Total.NOT_DONE: 2}),
    ("全年累计完成基建维修项目75项，一方面抓落实。", {}),
])
def test_total_phrases(text, expected):
    assert read_statements([(0, text)]).totals == expected


@pytest.mark.parametrize(("text", "within"), [
    ("已整改到位38项，其中需长期坚持的20项。", True),
    ("已经整改完成26项，占比89.7%；长期建设3项，占比10.3%。", False),
    ("已经整改完成26项。", None),
])
def test_whether_long_term_items_are_counted_among_the_completed(text, within):
    assert read_statements([(0, text)]).long_term_within is within


@pytest.mark.parametrize(("text", "rates"), [
    ("整改完成率96.3%。", {Total.DONE: 96.3}),
    ("整改率为100%。", {Total.DONE: 100.0}),
    ("已经整改完成26项，占比89.7%；长期建设3项，占比10.3%。",
     {Total.DONE: 89.7, Total.LONG_TERM: 10.3}),
    ("正在办理4件，占比30.8%。", {Total.NOT_DONE: 30.8}),
    ("女职工占比45%。", {}),  # a share of nothing the report counts
])
def test_rate_phrases(text, rates):
    assert {t: r.percent for t, r in read_statements([(0, text)]).rates.items()} == rates


def test_a_stated_rate_the_items_do_not_bear_out_is_a_difference():
    # Given a report that states 完成率 90% over two problems, one done and one not
    text = "\n".join(["整改完成率90%。", "二、整改情况", "（一）学习方面", "1.制度不健全。",
                      "整改情况：已完成整改。", "2.学习不深入。", "整改情况：正在推进。"])
    # Then the difference is reported in percentage points
    [difference] = parse_report(text.splitlines()).differences()
    assert (difference.item, difference.rate, difference.stated, difference.found) == (
        Total.DONE, True, 90.0, 50.0)
    assert difference.as_json()["item"] == "done_rate"
    assert "相差 40.0 个百分点" in difference.message


# ------------------------------------------------------------------ what is not a report


@pytest.mark.parametrize(("title", "kind"), [
    ("关于召开巡察整改工作推进会的通知", "会议通知"),
    ("关于做好假期值班工作的通知", "通知"),
    ("整改工作专题会议纪要", "会议纪要"),
    ("关于印发《巡察整改工作方案》的通知", None),
    ("关于巡察反馈意见整改情况的报告", None),
])
def test_titles_of_other_documents(title, kind):
    assert other_document_kind([title, "各部门："]) == kind
