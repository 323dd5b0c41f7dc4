"""``rectiflow import report``: the JSON document, the dry run's summary, refusals."""

from __future__ import annotations

from report_documents import SUMMARY, build_docx
from sqlalchemy import func, select

from workflow import db
from workflow.models import Campaign, Measure


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


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
