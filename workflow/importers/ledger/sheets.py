"""Reading a ledger file as numbered raw rows: an xlsx first sheet or a CSV (streamed).

An xlsx is read by calamine (``python-calamine``, a compiled reader: 50,000 rows in a few
seconds where openpyxl's read-only mode, the fallback when it is missing, takes ten times as
long), its values made what openpyxl gives (``openpyxl_values``). Neither exposes merged
cells, so the sheet's ``<mergeCells>`` element is first read from the xlsx archive (a byte scan
of the decompressed stream; the element follows all the rows) and handed on with the rows. A CSV is decoded as
UTF-8 (with or without BOM) or else GB18030, the superset of GBK that Chinese Excel writes, and
the encoding used is reported.
"""

from __future__ import annotations

import codecs
import csv
import posixpath
import re
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from workflow.errors import InputError

#: A row number (1 = the file's first line or the sheet's row 1) and its cells.
RawRow = tuple[int, list[Any]]

#: CSV encodings tried in order, by the name reported to the clerk.
ENCODING_NAMES = {"utf-8-sig": "UTF-8 BOM", "utf-8": "UTF-8", "gb18030": "GB18030"}
CHUNK = 1 << 20


@dataclass(frozen=True)
class MergedRange:
    """A merged block of cells, 1-based and inclusive as Excel writes ``B3:B7``."""

    min_row: int
    min_col: int
    max_row: int
    max_col: int


@dataclass
class RawSheet:
    """The rows of a ledger file and what is known of it before they are read."""

    name: str
    rows: Iterator[RawRow]
    merged: list[MergedRange] = field(default_factory=list)
    #: The CSV encoding used ("GB18030"); None for a workbook.
    encoding: str | None = None
    #: Rows the sheet says it has (the xlsx dimension), for a progress bar; None if unknown.
    row_count: int | None = None


class SheetFile:
    """``with SheetFile(path) as sheet:`` opens a ledger file; closing releases the workbook."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stack = ExitStack()

    def __enter__(self) -> RawSheet:
        suffix = self.path.suffix.lower()
        if not self.path.exists():
            raise InputError(f"文件不存在：{self.path}", field="file")
        if suffix in (".xlsx", ".xlsm"):
            return self._open_xlsx()
        if suffix == ".csv":
            return self._open_csv()
        raise InputError(f"不支持的文件格式「{suffix}」：请用 .xlsx 或 .csv", field="file")

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _open_xlsx(self) -> RawSheet:
        try:
            from python_calamine import CalamineWorkbook
        except ImportError:
            return self._open_xlsx_openpyxl()
        name = self.path.name
        try:
            merged = read_merged_ranges(self.path)
            sheet = CalamineWorkbook.from_path(str(self.path)).get_sheet_by_index(0)
            rows = sheet.to_python(skip_empty_area=False)
        except Exception as exc:  # calamine and zipfile raise many types for a broken file
            raise InputError(f"无法读取 Excel 文件 {name}：{exc}", field="file") from exc
        if not rows or all(v == "" for v in rows[0]) and len(rows) == 1:
            raise InputError(f"{name} 的第一个工作表是空的", field="file")

        def numbered() -> Iterator[RawRow]:
            for number, values in enumerate(rows, start=1):
                yield number, openpyxl_values(values)

        return RawSheet(name, numbered(), merged, None, len(rows))

    def _open_xlsx_openpyxl(self) -> RawSheet:
        from openpyxl import load_workbook

        name = self.path.name
        try:
            merged = read_merged_ranges(self.path)
            workbook = load_workbook(self.path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl and zipfile raise many types for a broken file
            raise InputError(f"无法读取 Excel 文件 {name}：{exc}", field="file") from exc
        self._stack.callback(workbook.close)
        sheet = workbook.worksheets[0]
        row_count = getattr(sheet, "max_row", None)
        rows = sheet.iter_rows(values_only=True)
        first = next(rows, None)
        if first is None or all(v is None for v in first) and row_count in (None, 1):
            raise InputError(f"{name} 的第一个工作表是空的", field="file")

        def numbered() -> Iterator[RawRow]:
            yield 1, list(first)
            for number, values in enumerate(rows, start=2):
                yield number, list(values)

        return RawSheet(name, numbered(), merged, None, row_count)

    def _open_csv(self) -> RawSheet:
        name = self.path.name
        encoding = detect_encoding(self.path)
        handle = self._stack.enter_context(self.path.open(encoding=encoding, newline=""))
        reader = csv.reader(handle)
        first = next(reader, None)
        if first is None:
            raise InputError(f"{name} 是空文件", field="file")

        def numbered() -> Iterator[RawRow]:
            yield 1, list(first)
            for number, values in enumerate(reader, start=2):
                yield number, list(values)

        return RawSheet(name, numbered(), [], ENCODING_NAMES[encoding])


def openpyxl_values(values: list[Any]) -> list[Any]:
    """A row as calamine reads it, made what openpyxl's read-only ``values_only`` gives (pure):
    an empty cell is None, not ""; a whole number an int, not a float; a date cell a datetime
    at midnight, not a date."""
    out: list[Any] = []
    for value in values:
        kind = type(value)
        if kind is str:
            out.append(value if value else None)
        elif kind is float:
            out.append(int(value) if value.is_integer() else value)
        elif kind is date:
            out.append(datetime(value.year, value.month, value.day))
        else:
            out.append(value)
    return out


def detect_encoding(path: Path) -> str:
    """``utf-8-sig``, ``utf-8`` or ``gb18030``: the first that decodes the whole file."""
    with path.open("rb") as handle:
        head = handle.read(len(codecs.BOM_UTF8))
    if head == codecs.BOM_UTF8:
        candidates = ["utf-8-sig"]
    else:
        candidates = ["utf-8", "gb18030"]
    for encoding in candidates:
        if _decodes(path, encoding):
            return encoding
    raise InputError(f"{path.name} 的编码无法识别（既不是 UTF-8 也不是 GB18030/GBK）；"
                     "请在 Excel 中另存为「CSV UTF-8」", field="file")


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


# ---------------------------------------------------------------- merged cells of an xlsx

MERGE_START = re.compile(rb"<(?:\w+:)?mergeCells[\s>/]")
MERGE_END = re.compile(rb"</(?:\w+:)?mergeCells>|<(?:\w+:)?mergeCells[^>]*/>")
MERGE_REF = re.compile(rb'\bref="\$?([A-Z]{1,3})\$?(\d+)(?::\$?([A-Z]{1,3})\$?(\d+))?"')


def read_merged_ranges(path: Path) -> list[MergedRange]:
    """The merged ranges of the workbook's first sheet, read without loading the sheet."""
    with zipfile.ZipFile(path) as archive:
        part = first_sheet_part(archive)
        with archive.open(part) as stream:
            return _scan_merges(stream)


def first_sheet_part(archive: zipfile.ZipFile) -> str:
    """The archive path of the first sheet listed in ``xl/workbook.xml``."""
    workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
    sheet = next((e for e in workbook.iter() if _local(e.tag) == "sheet"), None)
    if sheet is None:
        raise ValueError("工作簿中没有工作表")
    rel_id = next(v for k, v in sheet.attrib.items() if _local(k) == "id")
    rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    target = next(e.get("Target", "") for e in rels.iter() if e.get("Id") == rel_id)
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join("xl", target))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _scan_merges(stream: Any) -> list[MergedRange]:
    """Find ``<mergeCells>`` in the streamed sheet XML and read its ``ref`` attributes."""
    tail = b""
    found: bytearray | None = None
    while chunk := stream.read(CHUNK):
        if found is None:
            data = tail + chunk
            start = MERGE_START.search(data)
            if start is None:
                tail = data[-64:]
                continue
            found = bytearray(data[start.start():])
        else:
            found += chunk
        if MERGE_END.search(found):
            break
    if found is None:
        return []
    end = MERGE_END.search(found)
    block = bytes(found[:end.end()] if end else found)
    ranges = []
    for first_col, first_row, last_col, last_row in MERGE_REF.findall(block):
        ranges.append(MergedRange(int(first_row), column_number(first_col),
                                  int(last_row or first_row), column_number(last_col or first_col)))
    return ranges


def column_number(letters: bytes | str) -> int:
    """Excel's column letters as a 1-based number: A → 1, Z → 26, AA → 27."""
    text = letters.decode() if isinstance(letters, bytes) else letters
    number = 0
    for letter in text:
        number = number * 26 + ord(letter) - ord("A") + 1
    return number
