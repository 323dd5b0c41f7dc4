"""Importing the documents a unit already has: feedback lists (反馈意见) and rectification
reports (整改情况报告), as .txt or .docx, into the ledger.

The layers, each its own module:

* ``grammar``: the wording of these documents as data: item markers, area headings, account
  labels, result words and phrases, total and rate phrases, table columns, other documents;
* ``numbering``: Chinese numerals and outline numbers (一、 (一) 1. (1) ①), pure;
* ``outline``: lines → a numbered outline, with marked segments and tables, pure;
* ``parsed`` and ``parser``: the outline → areas → problems (→ sub-problems) → measures, with
  the totals and rates the text states about itself and how it counts its results
  (``parse_report``), pure;
* ``reading``: a .txt or .docx file → the lines the parser reads (``read_document``);
* ``writing``: the parsed report → rows, in the caller's transaction (``write_report``);
* ``summary``: the ``--json`` document and the clerk's summary printed by the command;
* ``service``: ``import_report(session, path, ...)``, the four above in one call.
"""

from __future__ import annotations

from workflow.importers.report.parsed import ParsedReport, Total
from workflow.importers.report.parser import parse_report
from workflow.importers.report.reading import read_document
from workflow.importers.report.service import ReportRejected, import_report
from workflow.importers.report.summary import ReportImportSummary, summary_lines, tree_lines

__all__ = [
    "ParsedReport",
    "ReportImportSummary",
    "ReportRejected",
    "Total",
    "import_report",
    "parse_report",
    "read_document",
    "summary_lines",
    "tree_lines",
]
