"""What the clerk's pages and API share (整改办 and admins): the role check, the kept uploads,
the calendar as it stands, and the runtime pieces the import, report and digest services take.
No routes here: ``clerk`` has the pages, ``clerk_api`` the JSON API."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi.responses import Response
from sqlalchemy.orm import Session

from notifications.digest import LIST_LIMIT, render_digest
from workflow.calendar_store import load_calendar
from workflow.errors import InputError, RoleRequired
from workflow.lifecycle import ROLE_LABELS, Kind, Role
from workflow.models import Campaign, Person
from workflow.reports import FORMATS, load_report, write_report
from workflow.services.campaign_digest import digest_of_campaign
from workflow.services.digest import Digest, DigestRun, send_digests
from workflow.services.imports import ImportOutcome, import_file
from workflow.web.context import Web
from workflow.web.uploads import UploadStore
from workflow.workcalendar import DayOverride, WorkCalendar, overrides_from_toml

#: The roles that run a round of rectification on the web (整改办, 管理员).
CLERK_ROLES = (Role.REVIEWER, Role.ADMIN)
CLERK_LABELS = [ROLE_LABELS[r] for r in CLERK_ROLES]
MEDIA_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def is_clerk(person: Person) -> bool:
    return any(person.has_role(role) for role in CLERK_ROLES)


def require_clerk(person: Person, what: str) -> Person:
    """The person, if a reviewer or an admin; RoleRequired (403) otherwise."""
    if not is_clerk(person):
        raise RoleRequired(person.name, what, CLERK_LABELS)
    return person


def uploads(web: Web) -> UploadStore:
    """Kept uploads live beside the evidence folder, not in it (backups copy evidence)."""
    return UploadStore(web.settings.evidence_dir.resolve().parent / "uploads")


def configured_days(web: Web) -> dict[date, DayOverride]:
    """The policy file's ``[calendar]`` days."""
    return overrides_from_toml(web.policies.calendar)


def calendar_of(web: Web, session: Session) -> WorkCalendar:
    return load_calendar(session, configured_days(web))


def run_import(web: Web, session: Session, campaign: Campaign, path: Path, *,
               dry_run: bool) -> ImportOutcome:
    return import_file(session, campaign, path, now=web.now(),
                       calendar=calendar_of(web, session), dry_run=dry_run)


def _digest_settings(web: Web, session: Session) -> tuple[Any, int, dict[str, bool]]:
    ctx = web.runtime.reminder_context(session)
    stagnation = web.policies.effective(Kind.DEADLINE).stagnation
    calendar = {d.isoformat(): o.is_workday for d, o in configured_days(web).items()}
    return ctx, stagnation, calendar


def campaign_digest(web: Web, session: Session, campaign_id: int, *,
                    limit: int | None = LIST_LIMIT) -> Digest:
    """The whole campaign's digest as of now (the CLI's ``digest --campaign``), each list cut
    to its first ``limit`` (all of it when None)."""
    ctx, stagnation, _ = _digest_settings(web, session)
    return digest_of_campaign(session, campaign_id, web.now(), ctx.days, stagnation=stagnation,
                              limit=limit)


def digest_html(web: Web, digest: Digest) -> str:
    return render_digest(digest, web.settings.base_url, name="各位领导、同事", inline=False).html


def send_campaign_digest(web: Web, session: Session, campaign_id: int) -> DigestRun:
    """This week's digest of one campaign into the outbox, once per reader and week."""
    ctx, stagnation, calendar = _digest_settings(web, session)
    now = web.now()
    return send_digests(session, now=now, days=ctx.days,
                        send_at=ctx.planner.next_send_time(now, ctx.base),
                        configured=web.runtime.person_channels, campaign_id=campaign_id,
                        stagnation=stagnation, calendar=calendar)


@dataclass(frozen=True)
class ReportFile:
    content: bytes
    filename: str
    media_type: str

    def response(self) -> Response:
        return Response(self.content, media_type=self.media_type, headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(self.filename)}",
            "X-Content-Type-Options": "nosniff"})


def report_file(web: Web, session: Session, campaign_id: int, fmt: str) -> ReportFile:
    """The campaign's report (md, docx) or ledger (xlsx), written as the CLI's ``report``."""
    if fmt not in FORMATS:
        raise InputError(f"不支持的格式「{fmt}」；可用：{'、'.join(FORMATS)}", field="format")
    ctx, _, _ = _digest_settings(web, session)
    data = load_report(session, campaign_id, web.now(), ctx.days)
    with tempfile.TemporaryDirectory(prefix="rectiflow-report-") as folder:
        path = Path(folder) / f"report.{fmt}"
        write_report(data, fmt, path)
        content = path.read_bytes()
    what = "整改台账" if fmt == "xlsx" else "整改情况报告"
    return ReportFile(content, f"{data.title}-{what}.{fmt}", MEDIA_TYPES[fmt])
