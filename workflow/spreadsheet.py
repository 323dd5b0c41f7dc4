"""Writing user text into spreadsheets as text, never as a formula (CSV/formula injection).

openpyxl turns a string beginning with ``=`` into a live formula, and Excel or WPS re-reads a
cell beginning with ``+``, ``-`` or ``@`` as one as soon as someone edits it. Every export goes
through :func:`append_row`: such a cell is written as a string with Excel's quote prefix (the
leading apostrophe a person would type), so it shows as typed and never computes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openpyxl.cell import WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.worksheet import Worksheet

#: First characters a spreadsheet program reads as the start of a formula (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def looks_like_formula(value: object) -> bool:
    return isinstance(value, str) and value.lstrip(" ").startswith(FORMULA_STARTS)


def append_row(sheet: Worksheet | WriteOnlyWorksheet, values: Iterable[Any]) -> None:
    """``sheet.append(values)``, with every formula-like string written as plain text."""
    values = list(values)
    if not any(looks_like_formula(v) for v in values):
        sheet.append(values)
        return
    if isinstance(sheet, WriteOnlyWorksheet):
        cells = []
        for value in values:
            cell = WriteOnlyCell(sheet, value)
            if looks_like_formula(value):
                _as_text(cell, value)
            cells.append(cell)
        sheet.append(cells)
        return
    sheet.append(values)
    row = sheet.max_row
    for column, value in enumerate(values, start=1):
        if looks_like_formula(value):
            _as_text(sheet.cell(row=row, column=column), value)


def _as_text(cell: Any, value: str) -> None:
    cell.value = value
    cell.data_type = "s"
    cell.quotePrefix = True
