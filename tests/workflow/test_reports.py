"""The official report (整改情况报告) as Word and Markdown, and the ledger as Excel that imports
again unchanged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from officialdoc import (
    artefacts_dir,
    assert_official_form,
    east_asian_font,
    render_first_page,
)
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import Ledger
from workflow import db
from workflow.lifecycle import Action
from workflow.services.measures import ActionRequest, perform, report_progress
from workflow.timeutil import SHANGHAI

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)
NOW = datetime(2026, 12, 7, 9, 30, tzinfo=SHANGHAI)
Run = Callable[..., Any]


def sh(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture
def campaign(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """2 方面, 3 问题, 4 措施: one closed with two progress reports, one long-term verified,
    one in progress, one assigned (a title with markup in it)."""
    ledger = Ledger(sessions, T0)
    secretary = ledger.person("Secretary", "leader")
    leader = ledger.person("Leader", "leader")
    reviewer = ledger.person("Reviewer", "reviewer")
    owner = ledger.person("Owner", "owner", unit="饮食服务中心")
    owner2 = ledger.person("Owner2", "owner", unit="物业管理科")
    created = ledger.campaign("后勤党总支巡察整改", first_responsible=secretary)
    learn, duty = "学习传达有差距", "履行职能职责有不足"
    rows = [
        {"seq": "1", "area": learn, "problem": "组织学习还不到位", "title": "制订政治理论学习方案",
         "kind": "deadline", "deadline": date(2026, 11, 30)},
        {"seq": "2", "area": duty, "problem": "服务意识还不够强", "title": "建立服务质量长效机制",
         "kind": "long_term", "deadline": None, "owner": owner2, "unit": "物业管理科"},
        {"seq": "3", "area": duty, "problem": "维修响应不及时", "title": "修订维修管理办法",
         "kind": "immediate", "deadline": date(2026, 11, 20)},
        {"seq": "4", "area": duty, "problem": "维修响应不及时",
         "title": "公开 <b>报修</b> [电话](javascript:alert(1)) *渠道*", "kind": "deadline",
         "deadline": date(2027, 1, 15), "owner": owner2, "unit": "物业管理科"},
    ]
    for row in rows:
        row.setdefault("owner", owner)
        row.setdefault("leader", leader)
        row.setdefault("unit", "饮食服务中心")
    ids = [m.id for m in ledger.measures(created, rows)]

    def do(n: int, action: Action, who: str, when: datetime, **inputs: Any) -> None:
        with db.transaction(sessions) as session:
            perform(session, ActionRequest(ids[n - 1], action, who, **inputs), now=when)

    do(1, Action.START, owner.email, sh(11, 3))
    with db.transaction(sessions) as session:
        report_progress(session, measure_id=ids[0], actor=owner.email, files=[], now=sh(11, 4),
                        text="组织全体职工集中学习")
    do(1, Action.SUBMIT, owner.email, sh(11, 6), comment="已完成制订教职工政治理论学习方案。")
    do(1, Action.VERIFY, reviewer.email, sh(11, 9))
    do(1, Action.CLOSE, leader.email, sh(11, 10))
    do(2, Action.START, owner2.email, sh(11, 3))
    do(2, Action.SUBMIT, owner2.email, sh(11, 20), comment="每学期组织一次分类培训")
    do(2, Action.VERIFY, reviewer.email, sh(11, 23))
    do(3, Action.START, owner.email, sh(11, 4))
    return {"id": created.id, "ids": ids}


SUMMARY = ("针对巡察反馈的2个方面、3个问题、4项整改措施，目前已整改完成1项，占比25.0%；"
           "长期坚持1项，占比25.0%；正在整改2项，占比50.0%。其中逾期未完成1项。")
OPENING = f"截至2026年12月7日，{SUMMARY}现将整改情况报告如下。"


def test_word_report_is_an_official_document(campaign: dict[str, Any], rectiflow: Run,
                                             tmp_path: Path,
                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    from docx import Document

    # When the report is exported as Word with its addressee, its unit and its date
    out = tmp_path / "report.docx"
    result = rectiflow("report", str(campaign["id"]), "--format", "docx", "--out", str(out),
                       "--to", "校党委巡察工作领导小组", "--from", "中共某大学后勤总支委员会",
                       "--date", "2026-12-03", "--now", NOW.isoformat())
    assert result.code == 0, result.err
    document = Document(str(out))
    # Then it has the page, fonts, colour and page numbers of GB/T 9704
    assert_official_form(document)
    paragraphs = document.paragraphs
    texts = [p.text for p in paragraphs]
    # the title without a doubled 整改, 二号 小标宋 centred
    assert texts[0] == "关于后勤党总支巡察整改情况的报告"
    assert paragraphs[0].alignment.name == "CENTER"
    assert paragraphs[0].runs[0].font.size.pt == 22
    # the 主送机关 flush left with a full-width colon, then the opening paragraph
    assert texts[1:4] == ["", "校党委巡察工作领导小组：", OPENING]
    assert paragraphs[2].paragraph_format.first_line_indent.pt == 0
    assert paragraphs[3].paragraph_format.first_line_indent.pt == 32
    # the three parts, each 一、 in 黑体
    part = {t: i for i, t in enumerate(texts)}
    assert part["一、组织整改落实情况"] < part["二、整改落实情况"] < part["三、下一步工作打算"]
    assert east_asian_font(paragraphs[part["一、组织整改落实情况"]].runs[0]) == "黑体"
    assert texts[part["一、组织整改落实情况"] + 1] == (
        "Secretary作为整改第一责任人，对整改工作负总责。对照反馈的2个方面3个问题，建立整改台账，"
        "制定整改措施4项，逐项明确责任领导、责任部门、责任人和完成时限，涉及责任领导1人、"
        "责任部门2个。各责任部门累计报送整改进展3次，已对账销号1项。")
    # 方面 (楷体) → 问题 (仿宋 bold) → 整改措施, 整改结果, 整改情况 as written, no dates added
    start = part["二、整改落实情况"]
    assert texts[start:start + 6] == [
        "二、整改落实情况",
        "（一）反馈问题：学习传达有差距",
        "1.组织学习还不到位",
        "整改措施：制订政治理论学习方案",
        "整改结果：完成",
        "整改情况：组织全体职工集中学习。已完成制订教职工政治理论学习方案。",
    ]
    assert east_asian_font(paragraphs[start + 1].runs[0]) == "楷体_GB2312"
    assert paragraphs[start + 2].runs[0].font.bold is True
    assert "（二）反馈问题：履行职能职责有不足" in texts
    assert "2.维修响应不及时" in texts
    assert "整改结果：基本完成，长期坚持" in texts
    # two measures under one problem are numbered; one without progress says so
    assert "整改措施1：修订维修管理办法" in texts
    assert texts.count("整改结果：暂未完成") == 2
    assert "整改情况：暂无整改进展报送。" in texts
    # 三、 lists what is left, from the ledger
    steps = texts[part["三、下一步工作打算"] + 1]
    assert steps.startswith("尚有2项整改措施正在整改："
                            "修订维修管理办法（饮食服务中心，完成时限2026年11月20日）")
    # the unit and the date (Arabic numerals) at the end, right-aligned, the date 4 characters in
    assert texts[-2:] == ["中共某大学后勤总支委员会", "2026年12月3日"]
    assert paragraphs[-1].alignment.name == "RIGHT"
    assert paragraphs[-1].paragraph_format.right_indent.pt == 64
    # nothing blue, no "整改整改", no invented dates before the progress texts
    body = "\n".join(texts)
    assert "整改整改" not in body and "2026年11月4日，" not in body
    render_first_page(out, artefacts_dir(tmp_path_factory), "report-整改情况报告")


def test_campaign_texts_and_addressees_are_kept_per_campaign(campaign: dict[str, Any],
                                                             rectiflow: Run,
                                                             tmp_path: Path) -> None:
    from docx import Document

    # Given the campaign's own texts for 一、 and 三、 (one from a file), and its addressees
    steps = tmp_path / "steps.txt"
    steps.write_text("（一）深化整改落实。\n\n（二）建立长效机制。\n", encoding="utf-8")
    result = rectiflow("campaign", "set", str(campaign["id"]),
                       "--organisation-text", "总支书记带头履行整改第一责任人责任。",
                       "--next-steps-file", str(steps), "--report-to", "校党委",
                       "--report-from", "后勤党总支")
    assert result.code == 0, result.err
    out = tmp_path / "r.docx"
    assert rectiflow("report", str(campaign["id"]), "--format", "docx", "--out", str(out),
                     "--now", NOW.isoformat()).code == 0
    texts = [p.text for p in Document(str(out)).paragraphs]
    # Then the report uses them, and today's date
    assert texts[2] == "校党委："
    i = texts.index("一、组织整改落实情况")
    assert texts[i + 1:i + 3] == ["总支书记带头履行整改第一责任人责任。", "二、整改落实情况"]
    i = texts.index("三、下一步工作打算")
    assert texts[i + 1:i + 3] == ["（一）深化整改落实。", "（二）建立长效机制。"]
    assert texts[-2:] == ["后勤党总支", "2026年12月7日"]
    # and --to overrides the campaign's 主送机关 for one export
    md = tmp_path / "r.md"
    assert rectiflow("report", str(campaign["id"]), "--format", "md", "--out", str(md),
                     "--to", "市委巡察办", "--now", NOW.isoformat()).code == 0
    assert "\n市委巡察办：\n" in md.read_text(encoding="utf-8")
    # an empty text restores the ledger's facts
    assert rectiflow("campaign", "set", str(campaign["id"]), "--organisation-text", "").code == 0
    assert rectiflow("report", str(campaign["id"]), "--format", "docx", "--out", str(out),
                     "--now", NOW.isoformat()).code == 0
    texts = [p.text for p in Document(str(out)).paragraphs]
    assert texts[texts.index("一、组织整改落实情况") + 1].startswith("Secretary作为整改第一责任人")


def test_markdown_report_follows_the_same_data(campaign: dict[str, Any], rectiflow: Run,
                                               tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    result = rectiflow("report", str(campaign["id"]), "--format", "md", "--out", str(out),
                       "--from", "后勤党总支", "--date", "2026-12-03", "--now", NOW.isoformat())
    assert result.code == 0, result.err
    assert "未指定主送机关" in result.err
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# 关于后勤党总支巡察整改情况的报告\n")
    assert f"\n{OPENING}\n" in text
    assert "\n## 一、组织整改落实情况\n" in text
    assert "\n### （一）反馈问题：学习传达有差距\n" in text
    assert "\n#### 1.组织学习还不到位\n" in text
    assert "\n**整改结果：**基本完成，长期坚持\n" in text
    assert text.rstrip().endswith('<p align="right">后勤党总支<br>2026年12月3日</p>')
    # markup in a title stays text: no HTML tag, no link, no emphasis
    assert r"公开 \<b\>报修\</b\> \[电话\](javascript:alert(1)) \*渠道\*" in text
    assert "<b>" not in text


def _fields(measures: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    keys = ("seq", "area", "problem", "title", "kind", "deadline", "owner", "leader", "unit")
    return [tuple(m[k] for k in keys) for m in measures]


def test_excel_ledger_imports_again_unchanged(campaign: dict[str, Any], rectiflow: Run,
                                              tmp_path: Path) -> None:
    from openpyxl import load_workbook

    # Given the ledger exported as Excel
    out = tmp_path / "台账.xlsx"
    result = rectiflow("report", str(campaign["id"]), "--format", "xlsx", "--out", str(out),
                       "--now", NOW.isoformat())
    assert result.code == 0, result.err
    sheet = load_workbook(out).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:9] == ("序号", "方面", "问题", "整改措施", "责任领导", "责任部门", "责任人",
                           "完成时限", "整改类型")
    assert rows[0][9:] == ("状态", "整改结果", "原定时限", "交办日期", "状态变更日期", "销号日期",
                           "最新进展日期", "最新进展")
    assert len(rows) == 5
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["状态"] == "已销号" and first["整改结果"] == "完成"
    assert first["销号日期"] == datetime(2026, 11, 10)
    assert first["最新进展"] == "已完成制订教职工政治理论学习方案。"
    # the statistics sheet states the report's title and its totals, counted the same way
    stats = {row[0]: row[1] for row in load_workbook(out)["统计"].iter_rows(values_only=True)}
    assert stats["报告"] == "关于后勤党总支巡察整改情况的报告"
    assert stats["总体情况"] == SUMMARY
    assert (stats["整改措施"], stats["整改完成"], stats["长期坚持"], stats["暂未完成"]) == (4, 1, 1, 2)
    # When it is imported into a new campaign
    result = rectiflow("import", "ledger", str(out), "--campaign", "再次导入", "--json")
    assert result.code == 0, result.err
    new_id = result.json()["campaign_id"]
    assert result.json()["measures"] == 4
    # Then every measure's ledger fields are the same
    before = rectiflow("measure", "list", "--campaign", str(campaign["id"]), "--json").json()
    after = rectiflow("measure", "list", "--campaign", str(new_id), "--json").json()
    assert _fields(after) == _fields(before)
    assert [m["deadline"] for m in after] == ["2026-11-30", None, "2026-11-20", "2027-01-15"]


def test_report_of_an_unknown_campaign_is_refused(rectiflow: Run, tmp_path: Path) -> None:
    result = rectiflow("report", "999", "--format", "md", "--out", str(tmp_path / "x.md"))
    assert result.code == 2
    assert "找不到整改任务：999" in result.err
    assert not (tmp_path / "x.md").exists()


@pytest.mark.parametrize("day", ["2026-02-30", "2026/12/03", "明天"])
def test_a_bad_date_is_refused_and_writes_nothing(campaign: dict[str, Any], rectiflow: Run,
                                                  tmp_path: Path, day: str) -> None:
    out = tmp_path / "x.docx"
    result = rectiflow("report", str(campaign["id"]), "--format", "docx", "--out", str(out),
                       "--date", day)
    assert result.code == 2
    assert f"日期「{day}」无效" in result.err
    assert not out.exists()


def test_campaign_set_refuses_bad_input(campaign: dict[str, Any], rectiflow: Run,
                                        tmp_path: Path) -> None:
    missing = rectiflow("campaign", "set", "999", "--report-to", "校党委")
    assert missing.code == 2 and "找不到整改任务：999" in missing.err
    both = rectiflow("campaign", "set", str(campaign["id"]), "--next-steps-text", "a",
                     "--next-steps-file", str(tmp_path / "none.txt"))
    assert both.code == 2 and "只能给一个" in both.err
    unreadable = rectiflow("campaign", "set", str(campaign["id"]), "--organisation-file",
                           str(tmp_path / "none.txt"), "--report-to", "校党委")
    assert unreadable.code == 2 and "无法读取文件" in unreadable.err
    # nothing was written by the refused commands
    out = tmp_path / "r.md"
    assert rectiflow("report", str(campaign["id"]), "--format", "md", "--out", str(out),
                     "--now", NOW.isoformat()).code == 0
    assert "校党委：" not in out.read_text(encoding="utf-8")


REPORT_TEXT = """根据区委统一部署，区委第三巡察组对中心党组开展了巡察。现将整改进展情况报告如下。
一、整改工作开展情况
（一）党组落实整改情况。成立巡察整改工作领导小组。
二、反馈意见整改进展情况
（一）关于贯彻上级决策部署不到位方面问题
1.针对贯彻落实上级部署不深入问题。
（1）党组理论学习中心组学习有差距。
整改进展情况：制定了年度学习方案，共开展党组理论学习中心组学习6次。
（2）节约型机关创建有短板。
整改进展情况：已于2024年12月6日对节约型机关创建结果进行了公布。
2.公务用车管理不规范。
整改进展情况：已于2024年10月更新了全区公务用车编制表。
三、今后整改工作打算
（一）深化整改落实。
"""


def test_an_imported_report_keeps_its_numbering(rectiflow: Run, tmp_path: Path) -> None:
    from docx import Document

    # Given a report imported with problems and sub-problems (measures named after them)
    source = tmp_path / "report.txt"
    source.write_text(REPORT_TEXT, encoding="utf-8")
    result = rectiflow("import", "report", str(source), "--campaign", "政务保障中心巡察整改",
                       "--json")
    assert result.code == 0, result.err
    out = tmp_path / "r.docx"
    assert rectiflow("report", str(result.json()["campaign_id"]), "--format", "docx", "--out",
                     str(out), "--now", NOW.isoformat()).code == 0
    texts = [p.text for p in Document(str(out)).paragraphs]
    # Then sub-problems stay under their parent as （1）（2）, with no 整改措施 line repeating
    # the problem, and the progress texts as written
    start = texts.index("（一）关于贯彻上级决策部署不到位方面问题")
    assert texts[start:start + 10] == [
        "（一）关于贯彻上级决策部署不到位方面问题",
        "1.针对贯彻落实上级部署不深入问题。",
        "（1）党组理论学习中心组学习有差距。",
        "整改结果：暂未完成",
        "整改情况：制定了年度学习方案，共开展党组理论学习中心组学习6次。",
        "（2）节约型机关创建有短板。",
        "整改结果：暂未完成",
        "整改情况：已于2024年12月6日对节约型机关创建结果进行了公布。",
        "2.公务用车管理不规范。",
        "整改结果：暂未完成",
    ]
    assert not any(t.startswith("整改措施") for t in texts)
    # 一、 says only what the ledger holds: these measures have no leader, unit or deadline yet
    assert texts[texts.index("一、组织整改落实情况") + 1] == (
        "对照反馈的1个方面2个问题，建立整改台账，制定整改措施3项。各责任部门累计报送整改进展3次，"
        "已对账销号0项。")
    # a problem's first sentence is its heading, in bold; its description runs on unbolded
    document = Document(str(out))
    [problem] = [p for p in document.paragraphs if p.text == "2.公务用车管理不规范。"]
    assert [r.font.bold for r in problem.runs] == [True]
