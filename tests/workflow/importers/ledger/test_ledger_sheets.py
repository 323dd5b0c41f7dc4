"""The xlsx reader (calamine) gives the rows openpyxl's read-only mode gives, its fallback."""

from __future__ import annotations

import builtins
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from workflow.importers.ledger.sheets import SheetFile, openpyxl_values


def _workbook(path: Path) -> Path:
    # Given a sheet with a blank first row and column, every kind of value, a merged block
    # and gaps
    wb = Workbook()
    ws = wb.active
    ws["B2"], ws["C2"], ws["D2"] = "序号", 1, 1.5
    ws["E2"], ws["F2"] = datetime(2026, 1, 2), datetime(2026, 1, 2, 10, 30)
    ws["G2"], ws["H2"] = True, time(9, 30)
    ws["B4"], ws["C4"], ws["D4"], ws["E4"] = "x", 12345678901, -3, date(2026, 3, 4)
    ws.merge_cells("B5:C6")
    ws["B5"] = "合并"
    wb.save(path)
    return path


def _rows(path: Path) -> tuple[list[tuple[int, list[Any]]], list[Any]]:
    with SheetFile(path) as sheet:
        # trailing empty cells and rows: openpyxl pads to the sheet's dimension, calamine not
        rows = [(n, _trimmed(values)) for n, values in sheet.rows]
        while rows and not rows[-1][1]:
            rows.pop()
        return rows, sheet.merged


def _trimmed(values: list[Any]) -> list[Any]:
    values = list(values)
    while values and values[-1] is None:
        values.pop()
    return values


def test_calamine_reads_what_openpyxl_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    path = _workbook(tmp_path / "台账.xlsx")
    # When it is read by calamine, and by openpyxl (calamine not installed)
    fast = _rows(path)
    real_import = builtins.__import__

    def without_calamine(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "python_calamine":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_calamine)
    slow = _rows(path)
    # Then the rows, their numbers, values and types, and the merged cells are the same
    assert fast == slow
    assert [type(v) for v in fast[0][1][1]] == [type(v) for v in slow[0][1][1]]
    assert fast[0][1][1] == [None, "序号", 1, 1.5, datetime(2026, 1, 2),
                             datetime(2026, 1, 2, 10, 30), True, time(9, 30)]
    rows, merged = fast
    assert rows[0] == (1, []) and rows[3] == (4, [None, "x", 12345678901, -3,
                                                  datetime(2026, 3, 4)])
    assert merged and rows[4] == (5, [None, "合并"])


def test_calamine_values_are_made_openpyxl_values() -> None:
    assert openpyxl_values(["", "a", 2.0, 2.5, date(2026, 1, 2), True, 0.0]) == [
        None, "a", 2, 2.5, datetime(2026, 1, 2), True, 0]
    assert type(openpyxl_values([2.0])[0]) is int and openpyxl_values([True])[0] is True
