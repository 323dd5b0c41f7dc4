"""``--inspected-unit`` on the command line (issue 22): the campaign names the unit it
inspected, ``campaign list --json`` shows it, the ledger's units go under it, and naming
another unit for the same campaign is bad input (exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from workflow import db
from workflow.models import Unit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REPORT = """关于巡察反馈问题整改情况的报告
一、巡察反馈问题整改落实情况
（一）学习传达有差距
1.组织学习不到位。
整改措施：制订学习规程。
整改结果：已完成。
"""


def _units(sessions: Any) -> dict[str, str | None]:
    with db.transaction(sessions) as session:
        names = dict(session.execute(select(Unit.id, Unit.name)).all())
        return {name: names.get(parent) for name, parent in session.execute(
            select(Unit.name, Unit.parent_id))}


def test_import_ledger_places_units_under_the_inspected_unit(rectiflow: Any,
                                                             sessions: Any) -> None:
    # Given the example people
    assert rectiflow("user", "import", str(EXAMPLES / "people.csv")).code == 0
    # When the example ledger is imported for 后勤处 as the inspected unit
    result = rectiflow("import", "ledger", str(EXAMPLES / "ledger.csv"), "--campaign",
                       "后勤处巡察整改", "--inspected-unit", "后勤处", "--json")
    assert result.code == 0, result.err
    # Then the campaign names it, and the ledger's units sit below it
    listed = json.loads(rectiflow("campaign", "list", "--json").out)
    assert [(c["title"], c["inspected_unit"]) for c in listed] == [("后勤处巡察整改", "后勤处")]
    units = _units(sessions)
    assert units["后勤党总支办公室"] == "后勤处"
    # And naming another inspected unit for the same campaign is refused, nothing written
    again = rectiflow("import", "ledger", str(EXAMPLES / "ledger.csv"), "--campaign",
                      "后勤处巡察整改", "--inspected-unit", "基建处")
    assert again.code == 2 and "被巡察单位已是「后勤处」" in again.err
    assert "基建处" not in _units(sessions)
    refused = rectiflow("campaign", "set", str(listed[0]["id"]), "--inspected-unit", "基建处")
    assert refused.code == 2


def test_import_report_and_campaign_add_take_an_inspected_unit(rectiflow: Any,
                                                               tmp_path: Path) -> None:
    source = tmp_path / "report.txt"
    source.write_text(REPORT, encoding="utf-8")
    result = rectiflow("import", "report", str(source), "--campaign", "甲学院巡察整改",
                       "--inspected-unit", "甲学院", "--json")
    assert result.code == 0, result.err
    assert rectiflow("campaign", "add", "乙学院巡察整改", "--inspected-unit", "乙学院").code == 0
    assert rectiflow("campaign", "add", "全校专项治理").code == 0
    listed = {c["title"]: c["inspected_unit"]
              for c in json.loads(rectiflow("campaign", "list", "--json").out)}
    assert listed == {"甲学院巡察整改": "甲学院", "乙学院巡察整改": "乙学院", "全校专项治理": None}
    assert "被巡察单位：甲学院" in rectiflow("campaign", "list").out


def test_user_add_supervisor(rectiflow: Any) -> None:
    result = rectiflow("user", "add", "--name", "巡察办", "--email", "xcb@example.edu.cn",
                       "--role", "supervisor", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["roles"] == ["supervisor"]
