"""Importing a ledger (台账) from Excel or CSV: all rows or none.

Columns (header in Chinese, several spellings each): 序号, 方面, 问题, 整改措施, 责任领导, 责任部门,
责任人, 完成时限, 整改类型, and optionally 整改进展. The pieces, pure apart from the last two:
``sheets`` streams raw rows (xlsx with its merged ranges, CSV in UTF-8 or GB18030), ``layout``
finds the header and fills merged blocks, section headings and footers, ``dates`` is the table of
ways a deadline is written, ``rows`` checks a row; ``writing`` inserts batches and ``service``
runs an import. Every bad row is reported with its row number and the reason; nothing is
written then.
"""

from workflow.importers.ledger.dates import DATE_PATTERNS, DateContext, parse_deadline, read_deadline
from workflow.importers.ledger.layout import COLUMNS, HEADER_LABEL, REQUIRED
from workflow.importers.ledger.rows import LedgerRow, PeopleIndex
from workflow.importers.ledger.service import (
    ImportSummary,
    import_ledger,
    people_names,
    preview_lines,
)
from workflow.importers.ledger.writing import LedgerWriter, write_rows

__all__ = [
    "COLUMNS", "DATE_PATTERNS", "HEADER_LABEL", "REQUIRED", "DateContext", "ImportSummary",
    "LedgerRow", "LedgerWriter", "PeopleIndex", "import_ledger", "parse_deadline",
    "people_names", "preview_lines", "read_deadline", "write_rows",
]
