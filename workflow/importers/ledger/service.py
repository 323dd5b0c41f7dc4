"""``import_ledger``: read, check and write a ledger file in one pass; all rows or none.

Rows are streamed from the file, checked one by one and written in batches while no row has
failed; once one fails, checking goes on (every bad row is reported) but writing stops, and the
refusal makes the caller roll its transaction back, so nothing of the file stays. Memory holds
one batch, the names seen (序号, areas, problems) and the errors, never the whole file.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.calendar_store import load_calendar
from workflow.errors import ImportRejected, InputError, RowError
from workflow.importers.ledger.dates import DateContext
from workflow.importers.ledger.layout import LayoutNotes, SourceRow, read_layout
from workflow.importers.ledger.rows import LedgerRow, PeopleIndex, RelativeDeadline, RowChecker
from workflow.importers.ledger.sheets import SheetFile
from workflow.importers.ledger.writing import LedgerWriter
from workflow.models import Campaign, Measure, Person
from workflow.progress import SILENT, Reporter
from workflow.services.campaigns import set_inspected_unit
from workflow.workcalendar import Deadline, DeadlineRule, WorkCalendar

#: Rows written per batch.
BATCH = 2000
#: Rows shown in the dry-run preview.
PREVIEW_ROWS = 5
#: Rows between two progress reports (a bar needs no finer steps).
PROGRESS_STEP = 500


@dataclass
class ImportSummary:
    """What an import did (or, with ``dry_run``, would do)."""

    campaign_id: int | None
    areas: int = 0
    problems: int = 0
    measures: int = 0
    dry_run: bool = False
    #: How many measures got a provisional deadline (counted over a fallback year).
    provisional: int = 0
    #: The CSV encoding used ("GB18030"); None for a workbook.
    encoding: str | None = None
    #: Areas → problems → measures, in file order: area → {problem: measures}.
    outline: dict[str, dict[str, int]] = field(default_factory=dict)
    #: The first rows as they will be imported.
    first_rows: list[LedgerRow] = field(default_factory=list)
    #: Date pattern → (rows, first cell, how it was read).
    date_readings: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    layout: LayoutNotes = field(default_factory=LayoutNotes)

    def as_json(self) -> dict[str, Any]:
        return {"campaign_id": self.campaign_id, "areas": self.areas, "problems": self.problems,
                "measures": self.measures, "dry_run": self.dry_run,
                "provisional": self.provisional, "encoding": self.encoding,
                "merged_cells": dict(self.layout.merged_fills),
                "sections": [text for _, text in self.layout.sections],
                "skipped_rows": [number for number, _ in self.layout.footers],
                "dates": {name: count for name, (count, _, _) in self.date_readings.items()}}


@dataclass
class _Tally:
    """Counts of a file's areas and problems, kept while the rows stream by."""

    summary: ImportSummary
    problems: set[tuple[str, str]] = field(default_factory=set)

    def add(self, row: LedgerRow) -> None:
        summary = self.summary
        summary.measures += 1
        summary.provisional += row.deadline_provisional
        self.problems.add((row.area, row.problem))
        area = summary.outline.setdefault(row.area, {})
        area[row.problem] = area.get(row.problem, 0) + 1
        if len(summary.first_rows) < PREVIEW_ROWS:
            summary.first_rows.append(row)

    def close(self) -> None:
        self.summary.areas = len(self.summary.outline)
        self.summary.problems = len(self.problems)


def import_ledger(session: Session, path: Path, *, campaign_title: str | None, now: datetime,
                  dry_run: bool = False, feedback_date: date | None = None,
                  calendar: WorkCalendar | None = None,
                  reporter: Reporter = SILENT, inspected_unit: str | None = None) -> ImportSummary:
    """Import a ledger file into a campaign (new or existing); all rows or none.

    ``feedback_date`` (or the existing campaign's) anchors deadlines written as
    "反馈后N个工作日" and dates written without a year ("12月底"); relative deadlines are
    counted on ``calendar`` (default: the stored calendar overrides). On a refusal the caller
    must roll back: rows already written in batches are part of its transaction.
    """
    title = (campaign_title or path.stem).strip()
    with SheetFile(path) as sheet:
        header, body, notes = read_layout(sheet.rows, sheet.merged, sheet.name)
        existing = session.scalar(select(Campaign).where(Campaign.title == title))
        taken: set[str] = set()
        if existing is not None:
            taken = {seq for seq in session.scalars(select(Measure.seq).where(
                Measure.campaign_id == existing.id)) if seq is not None}
        anchor = feedback_date or (existing.feedback_date if existing is not None else None)
        relative: RelativeDeadline | None = None
        if anchor is not None:
            relative = functools.partial(_after_feedback, calendar or load_calendar(session),
                                         anchor)
        checker = RowChecker(PeopleIndex.load(session), taken,
                             DateContext(now.date(), anchor), relative)
        summary = ImportSummary(campaign_id=existing.id if existing else None, dry_run=dry_run,
                                encoding=sheet.encoding, layout=notes)
        tally = _Tally(summary)
        writer: LedgerWriter | None = None
        if not dry_run:
            campaign = existing or _new_campaign(session, title, now)
            if feedback_date is not None:
                campaign.feedback_date = feedback_date
            set_inspected_unit(session, campaign, inspected_unit)
            summary.campaign_id = campaign.id
            writer = LedgerWriter(session, campaign, now)
        reporter.phase("导入台账" if writer else "检查台账",
                       total=max(sheet.row_count - header.last_row, 0) if sheet.row_count else None)
        errors = _check_and_write(body, checker, tally, writer, reporter)
    if errors:
        raise ImportRejected(path.name, errors)
    if not summary.measures:
        raise InputError(f"{path.name} 中没有任何数据行", field="file")
    tally.close()
    summary.date_readings = checker.readings
    return summary


def _check_and_write(body: Iterable[SourceRow], checker: RowChecker, tally: _Tally,
                     writer: LedgerWriter | None, reporter: Reporter) -> list[RowError]:
    """Check every row; write good ones in batches until the first bad one; the errors."""
    errors: list[RowError] = []
    batch: list[LedgerRow] = []
    since_report = 0
    for source in body:
        checked = checker.check(source)
        if isinstance(checked, LedgerRow):
            tally.add(checked)
            if writer is not None and not errors:
                batch.append(checked)
                if len(batch) >= BATCH:
                    writer.write(batch)
                    batch = []
        else:
            errors.extend(checked)
        since_report += 1
        if since_report == PROGRESS_STEP:
            reporter.advance(since_report)
            since_report = 0
    reporter.advance(since_report)
    if writer is not None and not errors:
        writer.write(batch)
    return errors


def _new_campaign(session: Session, title: str, now: datetime) -> Campaign:
    if not title:
        raise InputError("整改任务名称不能为空", field="campaign")
    campaign = Campaign(title=title, created_at=now)
    session.add(campaign)
    session.flush()
    return campaign


def _after_feedback(calendar: WorkCalendar, feedback: date, n: int
                    ) -> tuple[DeadlineRule, Deadline]:
    rule = DeadlineRule(feedback, n)
    return rule, rule.apply(calendar)


# ---------------------------------------------------------------- the preview a clerk reads


def preview_lines(summary: ImportSummary, people: dict[int, str]) -> list[str]:
    """The dry-run preview: areas → problems → measures, the first rows, how dates and merged
    cells were read. ``people`` names the leaders and owners of the first rows by id."""
    lines = []
    if summary.encoding:
        lines.append(f"文件编码：{summary.encoding}")
    lines.append(f"方面 → 问题 → 措施：{summary.areas} 个方面、{summary.problems} 个问题、"
                 f"{summary.measures} 项整改措施")
    for area, problems in summary.outline.items():
        lines.append(f"  {area}：{len(problems)} 个问题、{sum(problems.values())} 项措施")
    lines.append(f"前 {len(summary.first_rows)} 行将导入为：")
    for row in summary.first_rows:
        deadline = row.deadline.isoformat() if row.deadline else "无完成时限"
        if row.deadline_how:
            deadline += f"（{row.deadline_how}）"
        assisting = f"（协办：{'、'.join(row.assisting)}）" if row.assisting else ""
        lines.append(f"  第 {row.row} 行 {row.seq or ''}｜{row.area}｜{row.problem}｜{row.title}｜"
                     f"领导 {people.get(row.leader_id, row.leader_id)}｜{row.unit or '—'}"
                     f"{assisting}｜责任人 {people.get(row.owner_id, row.owner_id)}｜{deadline}｜"
                     f"{row.kind.label}")
    if summary.date_readings:
        lines.append("完成时限的读法：")
        for name, (count, example, reading) in summary.date_readings.items():
            lines.append(f"  {name}：{count} 行，如「{example}」→ {reading}")
    lines.extend(summary.layout.lines())
    return lines


def people_names(session: Session, summary: ImportSummary) -> dict[int, str]:
    """Names of the people on the preview's rows."""
    ids = {r.leader_id for r in summary.first_rows} | {r.owner_id for r in summary.first_rows}
    return dict(session.execute(select(Person.id, Person.name).where(Person.id.in_(ids))).all())
