"""The official report (整改情况报告) as Word and Markdown, and the ledger as Excel that imports
again unchanged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
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


def test_word_report_has_the_official_structure(campaign: dict[str, Any], rectiflow: Run,
                                                tmp_path: Path) -> None:
    from docx import Document

    # When the report is exported as Word
    out = tmp_path / "report.docx"
    result = rectiflow("report", str(campaign["id"]), "--format", "docx", "--out", str(out),
                       "--now", NOW.isoformat())
    assert result.code == 0, result.err
    # Then python-docx reads the title, the summary in official wording, and each
    # 方面 → 问题 → 措施 with 整改结果 and the dated 整改情况
    paragraphs = [(p.style.name if p.style else "", p.text) for p in Document(str(out)).paragraphs]
    texts = [t for _, t in paragraphs]
    assert texts[0] == "后勤党总支巡察整改整改情况报告"
    assert texts[1] == "（截至2026年12月7日）"
    assert ("Heading 1", "一、整改工作总体情况") in paragraphs
    assert texts[texts.index("一、整改工作总体情况") + 1] == SUMMARY
    start = texts.index("二、整改事项完成情况")
    assert texts[start:start + 5] == [
        "二、整改事项完成情况",
        "（一）反馈问题：学习传达有差距",
        "1.组织学习还不到位",
        "整改措施：制订政治理论学习方案",
        "整改结果：完成",
    ]
    assert texts[start + 5] == ("整改情况：2026年11月4日，组织全体职工集中学习；"
                                "2026年11月6日，已完成制订教职工政治理论学习方案。")
    assert ("Heading 2", "（二）反馈问题：履行职能职责有不足") in paragraphs
    assert ("Heading 3", "2.维修响应不及时") in paragraphs
    assert "整改结果：基本完成，长期坚持" in texts
    # two measures under one problem are numbered (1) (2); one without progress says so
    assert "整改措施：（1）修订维修管理办法" in texts
    assert texts.count("整改结果：暂未完成") == 2
    assert "整改情况：暂无整改进展报送。" in texts


def test_markdown_report_escapes_user_text(campaign: dict[str, Any], rectiflow: Run,
                                           tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    result = rectiflow("report", str(campaign["id"]), "--format", "md", "--out", str(out),
                       "--now", NOW.isoformat())
    assert result.code == 0, result.err
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# 后勤党总支巡察整改整改情况报告\n")
    assert f"\n{SUMMARY}\n" in text
    assert "\n### （一）反馈问题：学习传达有差距\n" in text
    assert "\n**整改结果：**基本完成，长期坚持\n" in text
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
