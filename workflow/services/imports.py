"""Importing a file into a known campaign, as the web's import page and
``POST /api/campaigns/{id}/imports`` do: a ledger (.xlsx, .csv) or a report (.docx, .txt), checked
(dry run) or written, with every problem as a row, a field, the value and the reason.

The importers themselves (``workflow.importers``) are the CLI's; this module picks one by the
file's suffix, shapes what it found for a page, and names the people a ledger mentions that are
not known yet (so the clerk can add them from the preview). The caller owns the transaction and
must roll it back after a dry run or a refusal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from workflow.errors import ImportRejected, InputError
from workflow.importers.ledger import import_ledger, people_names, preview_lines
from workflow.importers.ledger.layout import HEADER_LABEL
from workflow.importers.report import import_report, summary_lines, tree_lines
from workflow.lifecycle import Role
from workflow.models import Campaign
from workflow.workcalendar import WorkCalendar

LEDGER_SUFFIXES = (".xlsx", ".csv")
REPORT_SUFFIXES = (".docx", ".txt")
#: The ledger columns that name a person, and the role a person added from there gets.
PERSON_COLUMNS = {HEADER_LABEL["leader"]: Role.LEADER, HEADER_LABEL["owner"]: Role.OWNER}
UNKNOWN_MARK = "未知人员"


def file_kind(filename: str) -> str:
    """``ledger`` or ``report`` by the file's suffix; anything else is bad input."""
    suffix = Path(filename).suffix.lower()
    if suffix in LEDGER_SUFFIXES:
        return "ledger"
    if suffix in REPORT_SUFFIXES:
        return "report"
    raise InputError(f"不支持的文件类型「{suffix or filename}」：台账请用 .xlsx 或 .csv，"
                     "整改报告或反馈意见请用 .docx 或 .txt", field="file")


@dataclass
class ImportOutcome:
    """What an import found (or wrote): the CLI's ``import --json`` document and the lines the
    preview page shows."""

    kind: str
    document: dict[str, Any]
    lines: list[str] = field(default_factory=list)


def import_file(session: Session, campaign: Campaign, path: Path, *, now: datetime,
                calendar: WorkCalendar, dry_run: bool) -> ImportOutcome:
    """Check (``dry_run``) or write ``path`` into ``campaign``; ImportRejected or InputError
    when the file is refused (the caller rolls back: nothing of it stays)."""
    kind = file_kind(path.name)
    if kind == "ledger":
        summary = import_ledger(session, path, campaign_title=campaign.title, now=now,
                                dry_run=dry_run, calendar=calendar)
        lines = preview_lines(summary, people_names(session, summary))
        document = summary.as_json()
        document["campaign_id"] = campaign.id
        return ImportOutcome(kind, document, lines)
    report = import_report(session, path, campaign_title=campaign.title, now=now,
                           dry_run=dry_run)
    lines = [*tree_lines(report.report), *summary_lines(report)]
    document = report.as_json()
    document["campaign_id"] = campaign.id
    return ImportOutcome(kind, document, lines)


def refusal_errors(exc: InputError) -> list[dict[str, Any]]:
    """The API's ``errors``: one ``{row, field, value, message}`` per problem; a refusal of the
    whole file (a missing column, an unreadable file) is one error without a row."""
    if isinstance(exc, ImportRejected):
        return [e.as_json() for e in exc.errors]
    return [{"row": None, "field": exc.field, "value": None, "message": str(exc)}]


@dataclass
class UnknownPerson:
    """A name or email a ledger uses for nobody known yet: the rows and the role it suggests."""

    key: str
    role: str
    rows: list[int] = field(default_factory=list)

    @property
    def email(self) -> str:
        return self.key if "@" in self.key else ""

    @property
    def name(self) -> str:
        return "" if "@" in self.key else self.key


def unknown_people(exc: InputError) -> list[UnknownPerson]:
    """The people a refused ledger names that do not exist, in the order first met; a leader
    column's person is suggested as a leader, an owner column's as an owner."""
    if not isinstance(exc, ImportRejected):
        return []
    found: dict[str, UnknownPerson] = {}
    for error in exc.errors:
        role = PERSON_COLUMNS.get(error.field or "")
        if role is None or not error.value or not error.reason.startswith(UNKNOWN_MARK):
            continue
        person = found.setdefault(error.value, UnknownPerson(error.value, role.value))
        if role is Role.LEADER:
            person.role = Role.LEADER.value
        person.rows.append(error.row)
    return list(found.values())
