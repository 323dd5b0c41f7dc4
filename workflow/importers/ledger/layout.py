"""The shape of a ledger table as offices keep it (pure, no I/O).

Above the header there may be title rows ("XX学院巡察反馈问题整改台账", "填报单位：… 填报日期：…");
the header may take two rows (a merged group cell "责任主体" over 责任领导/责任部门/责任人) and use
any of several spellings per column. In the body, merged cells write 方面, 问题, 责任领导 or
责任部门 once for a block of rows; a row holding one text alone ("一、政治建设方面") is a section
heading giving the 方面 of the rows below it; footer rows (填表人, 审核人, 合计) end the table.
This module turns raw numbered rows into :class:`SourceRow` values keyed by column.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workflow.errors import InputError
from workflow.importers.ledger.sheets import MergedRange, RawRow

#: Canonical column → accepted header spellings (the first is the one shown and exported).
COLUMNS: Mapping[str, tuple[str, ...]] = {
    "seq": ("序号", "编号"),
    "area": ("方面", "问题方面", "问题类别", "反馈问题", "问题类型"),
    "problem": ("问题", "问题表现", "存在问题", "反馈问题具体表现", "具体问题", "问题描述"),
    "title": ("整改措施", "整改任务", "措施", "具体整改措施"),
    "leader": ("责任领导", "牵头领导", "分管领导", "责任校领导"),
    "unit": ("责任部门", "责任单位", "牵头单位", "牵头部门", "责任处室", "责任科室"),
    "assisting": ("协办部门", "协办单位", "配合部门", "配合单位", "协同部门"),
    "owner": ("责任人", "具体责任人", "具体负责人"),
    "deadline": ("完成时限", "整改时限", "完成时间", "整改期限"),
    "kind": ("整改类型", "整改方式", "类型"),
    "note": ("整改进展", "完成情况", "整改进展情况", "整改完成情况", "进展情况"),
}
#: Columns a header must have. 方面 may come from section rows instead of a column.
REQUIRED = ("problem", "title", "leader", "owner")
HEADER_LABEL = {key: names[0] for key, names in COLUMNS.items()}
#: Rows searched for the header, below any title rows.
HEADER_SEARCH_ROWS = 10

FOOTER_RE = re.compile(r"^(?:(?:填表人|填报人|制表人|审核人|审核|审批人|负责人|单位负责人|联系人|"
                       r"联系电话|填表日期|填报日期)\s*[:：]|(?:合计|总计|小计)(?:\b|[:：\s\d共]|$))")
SECTION_NUMBER_RE = re.compile(r"^(?:[一二三四五六七八九十百]+[、.．]|[（(][一二三四五六七八九十]+[)）]|"
                               r"第[一二三四五六七八九十]+[部分章节][、.．:：]?|\d{1,2}[、.．])\s*")


def text_of(value: Any) -> str:
    """A cell as text: None → "", 3.0 → "3", surrounding spaces gone."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def header_key(cell: Any) -> str | None:
    """The column key a header cell names, or None: "完成时限\\n（年月日）" → "deadline"."""
    name = re.sub(r"\s+", "", text_of(cell))
    name = re.sub(r"[（(][^）)]*[）)]$", "", name).strip("*※：:")
    for key, spellings in COLUMNS.items():
        if name in spellings:
            return key
    return None


@dataclass(frozen=True)
class Header:
    """Where the header is and which column holds what (0-based positions)."""

    first_row: int
    last_row: int
    index: Mapping[str, int]


@dataclass(frozen=True)
class SourceRow:
    """One data row: its file row number, its cells by column key, and how they were filled."""

    row: int
    values: Mapping[str, Any]
    #: Column keys whose value came from a merged block above (or beside) the cell.
    merged: frozenset[str] = frozenset()
    #: True when 方面 came from a section heading row rather than the row's own cell.
    area_from_section: bool = False


@dataclass
class LayoutNotes:
    """What reading the layout did besides data rows, for the summary and the preview."""

    title_rows: list[str] = field(default_factory=list)
    sections: list[tuple[int, str]] = field(default_factory=list)
    footers: list[tuple[int, str]] = field(default_factory=list)
    #: Column label → cells filled from merged blocks.
    merged_fills: Counter[str] = field(default_factory=Counter)
    merged_ranges: int = 0

    def lines(self) -> list[str]:
        lines = []
        if self.title_rows:
            lines.append("表头上方的标题行（未导入）：" + "；".join(self.title_rows))
        if self.merged_fills:
            order = list(HEADER_LABEL.values())
            filled = "、".join(f"{label} {self.merged_fills[label]} 格"
                              for label in sorted(self.merged_fills, key=order.index))
            lines.append(f"合并单元格（{self.merged_ranges} 处）已按块填入每一行：{filled}")
        for number, text in self.sections:
            lines.append(f"第 {number} 行是分节标题「{text}」：作为其下各行的方面")
        for number, text in self.footers:
            lines.append(f"第 {number} 行是表尾「{_short(text)}」：已跳过")
        return lines


def _short(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


class MergeFiller:
    """Gives every cell of a merged block the value of its top-left cell, row by row.

    Only cells inside a merged range are filled; a blank cell below a value is left blank.
    """

    def __init__(self, ranges: Iterable[MergedRange]) -> None:
        self._pending = deque(sorted(ranges, key=lambda r: (r.min_row, r.min_col)))
        self._active: list[tuple[MergedRange, Any]] = []

    def fill(self, number: int, cells: list[Any]) -> set[int]:
        """Fill ``cells`` (row ``number``) in place; the 0-based positions that were filled."""
        while self._pending and self._pending[0].min_row <= number:
            block = self._pending.popleft()
            anchor = block.min_col - 1
            value = cells[anchor] if block.min_row == number and anchor < len(cells) else None
            self._active.append((block, value))
        filled: set[int] = set()
        still: list[tuple[MergedRange, Any]] = []
        for block, value in self._active:
            if block.max_row < number:
                continue
            still.append((block, value))
            if text_of(value) == "":
                continue
            if len(cells) < block.max_col:
                cells.extend([None] * (block.max_col - len(cells)))
            for col in range(block.min_col - 1, block.max_col):
                if (number, col) != (block.min_row, block.min_col - 1) and text_of(cells[col]) == "":
                    cells[col] = value
                    filled.add(col)
        self._active = still
        return filled


def find_header(rows: Sequence[RawRow], source: str) -> Header:
    """The header among the first rows: one row, or two when a group cell spans sub-columns."""
    best: tuple[int, int, int, dict[str, int]] | None = None  # (found, first, last, index)
    for i, (number, cells) in enumerate(rows[:HEADER_SEARCH_ROWS]):
        candidates = [(number, _index_of([cells]))]
        if i + 1 < len(rows):
            candidates.append((rows[i + 1][0], _index_of([rows[i + 1][1], cells])))
        for last, index in candidates:
            found = sum(key in index for key in REQUIRED) * 10 + len(index)
            if best is None or found > best[0]:
                best = (found, number, last, index)
    if best is None:
        raise InputError(f"{source} 是空的", field="file")
    _, first, last, index = best
    missing = [k for k in REQUIRED if k not in index]
    if not missing:
        return Header(first, last, index)
    looked_for = "；".join(f"{HEADER_LABEL[k]}（或 {'、'.join(COLUMNS[k][1:])}）"
                          for k in REQUIRED)
    if sum(k in index for k in REQUIRED) >= 2:
        raise InputError(f"{source} 第 {first} 行的表头缺少列：{'、'.join(HEADER_LABEL[k] for k in missing)}"
                         f"（表头应有：{looked_for}）", field="header")
    raise InputError(f"{source} 不是整改台账：前 {HEADER_SEARCH_ROWS} 行中找不到表头。"
                     f"查找的列：{looked_for}", field="header")


def _index_of(layers: Sequence[list[Any]]) -> dict[str, int]:
    """Column key → position, each column named by the first layer whose cell is a known name
    (the lower header row first, so 责任领导 under a group cell 责任主体 wins)."""
    index: dict[str, int] = {}
    width = max(len(cells) for cells in layers)
    for position in range(width):
        for cells in layers:
            key = header_key(cells[position]) if position < len(cells) else None
            if key is not None:
                if key not in index:
                    index[key] = position
                break
    return index


def read_layout(rows: Iterator[RawRow], merged: Sequence[MergedRange], source: str
                ) -> tuple[Header, Iterator[SourceRow], LayoutNotes]:
    """The header, the data rows (streamed) and the notes they leave, from raw rows."""
    filler = MergeFiller(merged)
    notes = LayoutNotes(merged_ranges=len(merged))
    head: list[tuple[int, list[Any], set[int]]] = []
    for number, cells in rows:
        head.append((number, cells, filler.fill(number, cells)))
        if len(head) > HEADER_SEARCH_ROWS:
            break
    header = find_header([(number, cells) for number, cells, _ in head], source)
    for number, cells, _ in head:
        title = " ".join(t for t in dict.fromkeys(text_of(c) for c in cells) if t)
        if number < header.first_row and title:
            notes.title_rows.append(title)
    leftover = [row for row in head if row[0] > header.last_row]

    def filled_rows() -> Iterator[tuple[int, list[Any], set[int]]]:
        yield from leftover
        for number, cells in rows:
            yield number, cells, filler.fill(number, cells)

    return header, _body(filled_rows(), header, notes), notes


def _body(rows: Iterator[tuple[int, list[Any], set[int]]], header: Header, notes: LayoutNotes
          ) -> Iterator[SourceRow]:
    index = header.index
    keys_at = {position: key for key, position in index.items()}
    # A section heading stands alone in the leftmost columns (序号 or 方面), or spans the row.
    section_limit = max(index.get("seq", 0), index.get("area", 0))
    section: str | None = None
    for number, cells, filled in rows:
        present = [(position, text) for position, text in
                   ((p, text_of(v)) for p, v in enumerate(cells)) if text]
        if not present:
            continue
        first_position, first_text = present[0]
        if FOOTER_RE.match(first_text):
            notes.footers.append((number, first_text))
            continue
        if (len({text for _, text in present}) == 1 and first_position <= section_limit
                and not first_text.isdigit()):
            section = SECTION_NUMBER_RE.sub("", first_text) or first_text
            notes.sections.append((number, first_text))
            continue
        values = {key: cells[position] if position < len(cells) else None
                  for key, position in index.items()}
        merged = frozenset(keys_at[p] for p in filled if p in keys_at)
        for key in merged:
            notes.merged_fills[HEADER_LABEL[key]] += 1
        from_section = text_of(values.get("area")) == "" and section is not None
        if from_section:
            values["area"] = section
        yield SourceRow(number, values, merged, from_section)
