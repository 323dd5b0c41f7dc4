"""协办部门 (assisting units) in ledger files (issue 15): the column is optional, holds several
units separated by 、，,；; / or line breaks, is read from CSV, XLSX and the office workbook's
merged blocks, and shows as ``assisting_units``; a bad cell rejects the file like any other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from test_ledger_command import HEADER, NOW, WRITERS, error_lines, row, table_counts
from test_ledger_office_files import office_workbook

from workflow import db
from workflow.models import Measure, MeasureAssistingUnit, Unit

WITH_ASSISTING = [*HEADER, "协办部门"]


def _assisting(sessions: Any) -> dict[str, list[str]]:
    with db.transaction(sessions) as session:
        found: dict[str, list[str]] = {}
        for seq, name in session.execute(
                select(Measure.seq, Unit.name)
                .join(MeasureAssistingUnit, MeasureAssistingUnit.measure_id == Measure.id)
                .join(Unit, Unit.id == MeasureAssistingUnit.unit_id)
                .order_by(Measure.seq, MeasureAssistingUnit.position)):
            found.setdefault(seq, []).append(name)
        return found


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_assisting_units_are_read_in_every_spelling(fmt, tmp_path, sessions, staff,
                                                    import_ledger, rectiflow) -> None:
    # Given a ledger whose 协办部门 cells separate units in the ways offices write them
    cells = ["采购管理办公室、财务处", "财务处,审计处；纪委办公室", "", "膳食科 / 财务处",
             "财务处\n审计处、财务处"]
    rows = [[*row(str(i + 1)), cell] for i, cell in enumerate(cells)]
    path = WRITERS[fmt](tmp_path / f"台账.{fmt}", rows, WITH_ASSISTING)  # type: ignore[call-arg]
    # When it is imported
    result = import_ledger(path)
    assert result.code == 0, result.err
    # Then each measure has its assisting units, in order and each once
    assert _assisting(sessions) == {
        "1": ["采购管理办公室", "财务处"], "2": ["财务处", "审计处", "纪委办公室"],
        "4": ["膳食科", "财务处"], "5": ["财务处", "审计处"]}
    with db.transaction(sessions) as session:
        first = session.scalars(select(Measure.id).where(Measure.seq == "1")).one()
    shown = json.loads(rectiflow("--now", NOW, "measure", "show", str(first), "--json").out)
    assert shown["assisting_units"] == ["采购管理办公室", "财务处"]


def test_an_assisting_unit_that_is_the_owning_unit_rejects_the_file(tmp_path, sessions, staff,
                                                                    import_ledger) -> None:
    before = table_counts(sessions)
    rows = [[*row("1"), "财务处"], [*row("2"), "财务处、后勤党总支办公室"]]
    result = import_ledger(WRITERS["csv"](tmp_path / "台账.csv", rows, WITH_ASSISTING))  # type: ignore[call-arg]
    assert result.code == 2
    assert error_lines(result.err) == [
        "第 3 行「协办部门」：协办部门不能与责任部门相同（后勤党总支办公室）"]
    assert table_counts(sessions) == before


def test_the_office_workbook_fills_assisting_units_from_merged_blocks(tmp_path, sessions, staff,
                                                                      import_ledger) -> None:
    # Given the office workbook with a 协办部门 column K whose cell is merged over rows 6–8
    path: Path = office_workbook(tmp_path / "台账.xlsx")
    workbook = load_workbook(path)
    sheet = workbook.active
    assert sheet is not None
    sheet.cell(3, 11, "协办部门")
    sheet.merge_cells("K3:K4")
    sheet.cell(6, 11, "财务处、审计处")
    sheet.merge_cells("K6:K8")
    sheet.cell(10, 11, "资产管理处")
    workbook.save(path)
    # When it is imported
    result = import_ledger(path)
    assert result.code == 0, result.err
    # Then rows 6–8 share the merged block's units, row 10 has its own, the others none
    assert _assisting(sessions) == {"1": ["财务处", "审计处"], "2": ["财务处", "审计处"],
                                    "3": ["财务处", "审计处"], "4": ["资产管理处"]}
