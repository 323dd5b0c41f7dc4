"""The service: ``import_report(session, path, ...)`` reads, parses and writes a report or feedback
list into a campaign in the caller's transaction, and returns the summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from workflow.errors import InputError
from workflow.importers.report.grammar import LOOKED_FOR
from workflow.importers.report.parsed import Total
from workflow.importers.report.parser import other_document_kind, parse_report
from workflow.importers.report.reading import read_document
from workflow.importers.report.summary import ReportImportSummary
from workflow.importers.report.writing import campaign_by_title, write_report
from workflow.services.campaigns import set_inspected_unit


class ReportRejected(InputError):
    """Raised when a document yields no areas, problems and measures that could be imported,
    or is another kind of document (a notice, minutes); says what was looked for."""

    def __init__(self, source: str, stated: Mapping[Total, int], kind: str | None = None) -> None:
        self.source = source
        self.stated = dict(stated)
        self.kind = kind
        told = "、".join(f"{n} 个{t.label}" for t, n in stated.items()
                         if t in (Total.AREAS, Total.PROBLEMS, Total.MEASURES))
        hint = f"文中虽提到 {told}，但没有逐项列出；" if told else ""
        what = f"它看起来是一份{kind}，不是整改情况报告或反馈意见；" if kind else ""
        super().__init__(
            f"{source} 中没有找到可以导入的问题清单：{what}{hint}需要{LOOKED_FOR}。未导入任何数据。",
            field="file")


def import_report(session: Session, path: Path, *, campaign_title: str, now: datetime,
                  dry_run: bool = False, inspected_unit: str | None = None
                  ) -> ReportImportSummary:
    """Import a report or feedback list into a campaign (found or created by title).

    Writes in the caller's transaction; refuses a document with no problems, or one that is
    another kind of document and states no result (nothing written).
    """
    lines = read_document(path)
    report = parse_report(lines)
    kind = other_document_kind(lines)
    no_results = all(m.result is None for m in report.measures())
    if not report.counts()["measures"] or (kind is not None and no_results):
        raise ReportRejected(path.name, report.stated, kind)
    campaign = campaign_by_title(session, campaign_title, now=now, create=not dry_run)
    if not dry_run:
        assert campaign is not None
        set_inspected_unit(session, campaign, inspected_unit)
        write_report(session, campaign, report, now, source=path.name)
    return ReportImportSummary(campaign.id if campaign else None, report, dry_run)
