"""Importing the documents a unit already has: feedback lists (反馈意见) and rectification
reports (整改情况报告), as .txt or .docx.

Three layers, as design.md asks:

* a pure parser, ``parse_report(lines)``: the Chinese outline numbering (一、 (一) 1. (1) ①) is
  read into a tree, the part of the document that lists problems with their results is picked
  out (these documents reuse the same numbering for sections that are not problems), and mapped
  to areas → problems (→ sub-problems) → measures, with the totals the text states about itself;
* file reading, ``read_document(path)``: .txt (UTF-8, BOM tolerated, GB18030 fallback) and .docx
  (paragraphs and tables in document order, Word's automatic numbering rendered as text);
* the service, ``import_report(session, path, ...)``: writes the tree in the caller's transaction
  with bulk inserts, as the ledger importer does, and returns a summary comparing what the
  document lists with what it says it contains.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from workflow import events
from workflow.errors import InputError
from workflow.history import GENESIS
from workflow.lifecycle import Kind, State
from workflow.models import Area, Campaign, HistoryEntry, Measure, Problem, ProgressReport
from workflow.services.measures import new_history_entry
from workflow.timeutil import SHANGHAI, as_utc

# ================================================================ text normalisation (pure)

#: Full-width ASCII (（）：；，．１２) to half-width, one character for one, so indices found in
#: the normalised text slice the verbatim text too.
_HALF_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def normalize(text: str) -> str:
    """The text with full-width ASCII folded to half-width; same length as ``text``."""
    return text.translate(_HALF_WIDTH)


CN_NUMERALS = "零〇一二两三四五六七八九十百"
CIRCLED = "".join(chr(c) for c in range(0x2460, 0x2474)) + "".join(
    chr(c) for c in range(0x3251, 0x3260))
_CN_VALUES = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}


def chinese_number(text: str) -> int:
    """The value of a Chinese numeral up to 999 (十三 → 13, 二十 → 20) or of Arabic digits."""
    if text.isdigit():
        return int(text)
    total, digit = 0, 0
    for char in text:
        if char in _CN_VALUES:
            digit = _CN_VALUES[char]
        elif char == "十":
            total += (digit or 1) * 10
            digit = 0
        elif char == "百":
            total += (digit or 1) * 100
            digit = 0
    return total + digit


def circled_number(char: str) -> int:
    code = ord(char)
    return code - 0x2460 + 1 if code < 0x3000 else code - 0x3251 + 21


# ================================================================ outline numbering (pure)


class Style(StrEnum):
    """The numbering styles of the tradition, outermost first."""

    CN = "cn"                      # 一、
    PAREN_CN = "paren_cn"          # (一) （一）
    ARABIC = "arabic"              # 1. 1、
    PAREN_ARABIC = "paren_arabic"  # (1) （1） 问题表现(1)
    CIRCLED = "circled"            # ① 问题① ①问题项 ①.


RANK: Mapping[Style, int] = {Style.CN: 1, Style.PAREN_CN: 2, Style.ARABIC: 3,
                             Style.PAREN_ARABIC: 4, Style.CIRCLED: 5}

_PREFIX = r"(?P<prefix>问题表现|具体表现|具体问题|问题)?\s*"
_NUMBERING: Sequence[tuple[Style, re.Pattern[str]]] = (
    (Style.CN, re.compile(rf"^(?P<n>[{CN_NUMERALS}]{{1,4}})\s*[、.](?!\d)")),
    (Style.PAREN_CN, re.compile(rf"^\(\s*(?P<n>[{CN_NUMERALS}]{{1,4}})\s*\)")),
    (Style.PAREN_ARABIC, re.compile(rf"^{_PREFIX}\(\s*(?P<n>\d{{1,3}})\s*\)")),
    (Style.CIRCLED, re.compile(rf"^{_PREFIX}(?P<n>[{CIRCLED}])\s*(?P<suffix>问题项|问题)?\s*[.、]?")),
    (Style.ARABIC, re.compile(r"^(?P<n>\d{1,3})\s*[.、](?!\d)")),
)


@dataclass(frozen=True)
class Numbering:
    """The outline number a line starts with, and the verbatim text after it."""

    style: Style
    value: int
    label: str
    rest: str
    prefixed: bool  # "问题①", "①问题项", "问题表现(1)": always a new item, never a list inside text

    @property
    def rank(self) -> int:
        return RANK[self.style]


def parse_numbering(raw: str) -> Numbering | None:
    """The numbering at the start of ``raw``, in any of the tradition's variants, or None."""
    stripped = raw.lstrip()
    offset = len(raw) - len(stripped)
    norm = normalize(stripped[:32])  # numbering is short; the rest need not be folded
    for style, pattern in _NUMBERING:
        match = pattern.match(norm)
        if match is None:
            continue
        token = match.group("n")
        value = circled_number(token) if style is Style.CIRCLED else chinese_number(token)
        groups = match.groupdict()
        prefixed = bool(groups.get("prefix") or groups.get("suffix"))
        rest = raw[offset + match.end():].strip().lstrip(":：").strip()
        return Numbering(style, value, stripped[:match.end()].strip(), rest, prefixed)
    return None


# ================================================================ markers (pure)


class SegmentKind(StrEnum):
    TEXT = "text"          # the problem as the document states it
    RESULT = "result"      # 整改结果：完成
    PROGRESS = "progress"  # 整改情况 / 整改进展情况
    MEASURE = "measure"    # 整改措施
    FIELD = "field"        # 责任单位 / 责任人 / 完成时限


MARKERS: Mapping[str, SegmentKind] = {
    "整改进展情况": SegmentKind.PROGRESS, "整改落实情况": SegmentKind.PROGRESS,
    "整改完成情况": SegmentKind.PROGRESS, "整改推进情况": SegmentKind.PROGRESS,
    "整改结果": SegmentKind.RESULT, "整改状态": SegmentKind.RESULT, "完成状态": SegmentKind.RESULT,
    "整改进展": SegmentKind.PROGRESS, "整改情况": SegmentKind.PROGRESS,
    "进展情况": SegmentKind.PROGRESS, "落实情况": SegmentKind.PROGRESS,
    "整改措施": SegmentKind.MEASURE, "具体措施": SegmentKind.MEASURE,
    "主要措施": SegmentKind.MEASURE, "整改举措": SegmentKind.MEASURE,
    "责任单位": SegmentKind.FIELD, "责任部门": SegmentKind.FIELD, "责任领导": SegmentKind.FIELD,
    "责任人": SegmentKind.FIELD, "完成时限": SegmentKind.FIELD, "整改时限": SegmentKind.FIELD,
}
_MARKER_WORDS = "|".join(sorted(MARKERS, key=len, reverse=True))
_MARKER_AT_START = re.compile(rf"^(?P<word>{_MARKER_WORDS})\s*(?P<colon>:)?\s*")
#: A marker inside a line ("…。整改结果：完成。整改情况：…"): only after a sentence end, with colon.
_MARKER_INLINE = re.compile(
    r"(?<=[。;!?\s])(?:整改结果|整改进展情况|整改落实情况|整改情况|整改措施|责任单位|责任人|完成时限)\s*:")
_RESULT_WORDS = re.compile(r"^(?:已|基本|暂未|未|尚未|部分|正在)?(?:完成|整改|办结|销号)")


def _marker(raw: str) -> tuple[SegmentKind, str, str] | None:
    """(kind, marker word, verbatim rest) if ``raw`` starts with a marker; colons may be missing."""
    stripped = raw.lstrip()
    norm = normalize(stripped[:16])  # a marker and its colon are short
    match = _MARKER_AT_START.match(norm)
    if match is None:
        return None
    word = match.group("word")
    kind = MARKERS[word]
    after = norm[match.end():]
    accepted = (match.group("colon") is not None or len(word) >= 6 or not after
                or norm[len(word):len(word) + 1].isspace()
                or (kind is SegmentKind.RESULT and _RESULT_WORDS.match(after) is not None)
                or after[0] in "0123456789一①(")
    if not accepted:
        return None
    return kind, word, stripped[match.end():].strip()


def split_inline(raw: str) -> list[str]:
    """``raw`` cut before each marker that stands inside it, verbatim pieces."""
    if "整改" not in raw and "责任" not in raw and "时限" not in raw:
        return [raw]
    norm = normalize(raw)
    cuts = [m.start() for m in _MARKER_INLINE.finditer(norm)]
    if not cuts:
        return [raw]
    bounds = [0, *cuts, len(raw)]
    return [raw[a:b].strip() for a, b in zip(bounds, bounds[1:], strict=False) if raw[a:b].strip()]


# ================================================================ results (pure)


class Result(StrEnum):
    """What the document says of one problem or measure."""

    DONE = "done"
    LONG_TERM = "long_term"
    NOT_DONE = "not_done"

    @property
    def label(self) -> str:
        return {Result.DONE: "已完成", Result.LONG_TERM: "长期坚持",
                Result.NOT_DONE: "未完成"}[self]


_NOT_DONE = re.compile(r"未完成|暂未|尚未|未整改|正在|推进中|进行中|部分完成|持续推进中")
_LONG = re.compile(r"长期|持续|常态")
_DONE = re.compile(r"完成|已整改|整改到位|办结|销号")


def classify_result(text: str) -> Result | None:
    """完成/已完成 → done; 基本完成，长期建设 / 已完成整改并长期坚持 → long term;
    暂未完成 → not done; None when the words say none of these."""
    words = re.sub(r"\s", "", text)[:40]
    if _NOT_DONE.search(words):
        return Result.NOT_DONE
    if _LONG.search(words):
        return Result.LONG_TERM
    if _DONE.search(words):
        return Result.DONE
    return None


#: Result → (state, kind) of the imported measure.
RESULT_STATE: Mapping[Result, tuple[State, Kind]] = {
    Result.DONE: (State.CLOSED, Kind.DEADLINE),
    Result.LONG_TERM: (State.VERIFIED, Kind.LONG_TERM),
    Result.NOT_DONE: (State.IN_PROGRESS, Kind.DEADLINE),
}


def state_for(result: Result | None, has_progress: bool) -> tuple[State, Kind]:
    """The state a measure is imported in. No stated result: in progress if something was
    reported, otherwise assigned (a feedback list before any work)."""
    if result is not None:
        return RESULT_STATE[result]
    return (State.IN_PROGRESS if has_progress else State.ASSIGNED), Kind.DEADLINE


# ================================================================ the outline (pure)


@dataclass
class Segment:
    """A run of verbatim text under one marker (or plain problem text) inside an item."""

    kind: SegmentKind
    word: str
    line: int
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(p for p in self.parts if p)


_ENUM_TOKENS = re.compile(rf"([{CIRCLED}])|[(（]\s*(\d{{1,3}})\s*[)）]"
                          r"|(?:^|[。;,:；，：\s])(\d{1,3})[.、．](?!\d)")


def _enum_tokens(text: str) -> set[tuple[Style, int]]:
    """List numbers used inside running text (①…, (1)…, 1.…), to recognise continued lists."""
    found: set[tuple[Style, int]] = set()
    for circled, paren, arabic in _ENUM_TOKENS.findall(text):  # \d takes full-width digits
        if circled:
            found.add((Style.CIRCLED, circled_number(circled)))
        elif paren:
            found.add((Style.PAREN_ARABIC, int(paren)))
        else:
            found.add((Style.ARABIC, int(arabic)))
    return found


@dataclass(eq=False)  # nodes are compared by identity: a tree, not values
class OutlineNode:
    """One numbered item of the document and everything written under it."""

    numbering: Numbering | None
    line: int
    parent: OutlineNode | None = None
    children: list[OutlineNode] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    enum_tokens: set[tuple[Style, int]] = field(default_factory=set)

    @property
    def rank(self) -> int:
        return self.numbering.rank if self.numbering else 0

    @property
    def heading(self) -> str:
        return self.numbering.rest if self.numbering else ""

    @property
    def label(self) -> str:
        return self.numbering.label if self.numbering else ""

    def open_block(self) -> Segment | None:
        last = self.segments[-1] if self.segments else None
        return last if last and last.kind is not SegmentKind.TEXT else None

    def own(self, kind: SegmentKind) -> list[Segment]:
        return [s for s in self.segments if s.kind is kind]

    @property
    def own_marked(self) -> bool:
        return any(s.kind in (SegmentKind.RESULT, SegmentKind.PROGRESS, SegmentKind.MEASURE)
                   for s in self.segments)

    def walk(self) -> Iterator[OutlineNode]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass
class Table:
    """Rows of a table (cells verbatim), with the line each row starts on."""

    line: int
    caption: str
    rows: list[tuple[int, list[str]]] = field(default_factory=list)


@dataclass
class Outline:
    root: OutlineNode
    tables: list[Table]
    marked: set[int]  # id() of nodes with a marker in them or below them


def _continues_list(node: OutlineNode, numbering: Numbering) -> bool:
    """True if ``numbering`` belongs to a list inside the node's open block, as in "整改情况：①…"
    followed by a line "②…", or "整改情况：" followed by "①…": that is text, not a new item."""
    block = node.open_block()
    if numbering.prefixed or block is None:
        return False
    if numbering.value == 1:
        return (numbering.style is Style.CIRCLED and numbering.rank > node.rank
                and block.kind in (SegmentKind.PROGRESS, SegmentKind.MEASURE))
    if (numbering.style, numbering.value - 1) not in node.enum_tokens:
        return False
    if numbering.rank > node.rank:
        return True
    # A number no deeper than the item ("2." under "(1)", "②" under "问题①") is text only if
    # it cannot be the outline's next item: no open item is its predecessor written alike.
    ancestor: OutlineNode | None = node
    while ancestor is not None:
        if ancestor.numbering is not None and ancestor.numbering.style is numbering.style:
            return not (ancestor.numbering.value == numbering.value - 1
                        and ancestor.numbering.prefixed == numbering.prefixed)
        ancestor = ancestor.parent
    return True


def _add_text(node: OutlineNode, raw: str, line: int) -> None:
    """Put one verbatim piece of text under ``node``: a new marker block or a continuation."""
    marker = _marker(raw)
    if marker is not None:
        kind, word, rest = marker
        segment = Segment(kind, word, line, [rest])
        node.segments.append(segment)
        node.enum_tokens = _enum_tokens(rest)
        return
    text = raw.strip()
    block = node.open_block()
    if block is None:
        if node.segments:
            node.segments[-1].parts.append(text)
        else:
            node.segments.append(Segment(SegmentKind.TEXT, "", line, [text]))
        return
    if block.kind in (SegmentKind.RESULT, SegmentKind.FIELD):
        # Text after "整改结果：完成" with no label of its own is the account of the work.
        node.segments.append(Segment(SegmentKind.PROGRESS, "", line, [text]))
        node.enum_tokens = _enum_tokens(text)
        return
    block.parts.append(text)
    node.enum_tokens |= _enum_tokens(text)


class _TableCollector:
    """Gathers table lines: cells on lines starting with a tab (rows end at a blank line), or
    tab-separated cells on one line (as the .docx reader writes them)."""

    def __init__(self) -> None:
        self.tables: list[Table] = []
        self._table: Table | None = None
        self._row: list[str] | None = None
        self._row_line = 0
        self.last_text = ""

    def cell_line(self, raw: str, line: int) -> None:
        if self._table is None:
            self._table = Table(line, self.last_text)
        if self._row is None:
            self._row, self._row_line = [], line
        parts = raw.rstrip("\r\n").split("\t")
        if parts and parts[0].strip() == "":
            parts = parts[1:]
        if len(parts) > 1:  # a whole row on one line
            self.blank()
            self._row, self._row_line = [p.strip() for p in parts], line
            self.blank()
            return
        self._row.extend(p.strip() for p in parts)

    def blank(self) -> None:
        if self._table is not None and self._row is not None:
            self._table.rows.append((self._row_line, self._row))
        self._row = None

    def text_line(self, raw: str) -> None:
        self.blank()
        if self._table is not None:
            self.tables.append(self._table)
            self._table = None
        self.last_text = raw.strip()

    def finish(self) -> list[Table]:
        self.text_line("")
        return self.tables


def _strip_tab_indent(lines: Sequence[str]) -> Sequence[str]:
    """Lines with a leading tab used as paragraph indentation (most lines start with one and
    hold no other tab) lose it, so that only real table cells remain tab lines."""
    text_lines = [line for line in lines if line.strip()]
    indented = [line for line in text_lines if line.startswith("\t") and "\t" not in line[1:]]
    if text_lines and len(indented) * 10 > len(text_lines) * 6:
        return [line.lstrip("\t") if "\t" not in line.lstrip("\t") else line for line in lines]
    return lines


def build_outline(lines: Sequence[str]) -> Outline:
    """The numbered outline of a document, with tables gathered apart (pure)."""
    lines = _strip_tab_indent(lines)
    root = OutlineNode(None, 0)
    current = root
    collector = _TableCollector()
    for number, raw in enumerate(lines, start=1):
        if "\t" in raw and raw.strip():
            collector.cell_line(raw, number)
            continue
        if not raw.strip():
            if "\t" in raw:
                collector.cell_line(raw, number)
            else:
                collector.blank()
            continue
        collector.text_line(raw)
        pieces = split_inline(raw)
        numbering = parse_numbering(pieces[0])
        if numbering is not None and not _continues_list(current, numbering):
            parent = current
            while parent.parent is not None and parent.rank >= numbering.rank:
                parent = parent.parent
            current = OutlineNode(numbering, number, parent)
            parent.children.append(current)
            current.enum_tokens = _enum_tokens(numbering.rest)
        else:
            _add_text(current, pieces[0], number)
        for piece in pieces[1:]:
            _add_text(current, piece, number)
    return Outline(root, collector.finish(), _marked_nodes(root))


def _marked_nodes(root: OutlineNode) -> set[int]:
    marked: set[int] = set()

    def visit(node: OutlineNode) -> bool:
        below = [visit(child) for child in node.children]
        if node.own_marked or any(below):
            marked.add(id(node))
            return True
        return False

    visit(root)
    return marked


# ================================================================ the parsed ledger (pure)


@dataclass
class ParsedMeasure:
    """One measure to create: a leaf problem, or a row of a table."""

    title: str
    line: int
    result: Result | None
    result_text: str | None = None
    progress: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> State:
        return state_for(self.result, bool(self.progress))[0]

    @property
    def kind(self) -> Kind:
        return state_for(self.result, bool(self.progress))[1]


@dataclass
class ParsedProblem:
    """A problem (问题) with its sub-problems; leaves carry the measures."""

    text: str
    line: int
    label: str = ""
    result: Result | None = None  # as stated for this problem itself
    children: list[ParsedProblem] = field(default_factory=list)
    measures: list[ParsedMeasure] = field(default_factory=list)

    @property
    def title(self) -> str:
        return first_sentence(self.text)

    def walk(self) -> Iterator[ParsedProblem]:
        yield self
        for child in self.children:
            yield from child.walk()

    def all_measures(self) -> Iterator[ParsedMeasure]:
        for problem in self.walk():
            yield from problem.measures

    def overall(self) -> Result | None:
        """The problem's result: its own, else summed up from what its measures say
        (any not done → not done; any long term → long term; else done)."""
        if self.result is not None:
            return self.result
        results = {m.result for m in self.all_measures() if m.result is not None}
        for candidate in (Result.NOT_DONE, Result.LONG_TERM, Result.DONE):
            if candidate in results:
                return candidate
        return None


@dataclass
class ParsedArea:
    title: str
    line: int
    label: str = ""
    problems: list[ParsedProblem] = field(default_factory=list)


@dataclass(frozen=True)
class Unplaced:
    """A line of the ledger part that could not be put under any problem."""

    line: int
    text: str
    reason: str


class Total(StrEnum):
    """The totals a report states about itself."""

    AREAS = "areas"
    PROBLEMS = "problems"
    MEASURES = "measures"
    DONE = "done"
    LONG_TERM = "long_term"
    NOT_DONE = "not_done"

    @property
    def label(self) -> str:
        return TOTAL_LABELS[self]


TOTAL_LABELS: Mapping[Total, str] = {
    Total.AREAS: "方面", Total.PROBLEMS: "问题", Total.MEASURES: "整改措施",
    Total.DONE: "已完成", Total.LONG_TERM: "长期坚持/长期建设", Total.NOT_DONE: "未完成",
}


@dataclass(frozen=True)
class Difference:
    """One way the listed ledger differs from what the document says of itself."""

    item: Total
    stated: int
    found: int
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"item": self.item.value, "stated": self.stated, "found": self.found,
                "message": self.message}


@dataclass
class ParsedReport:
    """What a document lists and what it says it lists."""

    areas: list[ParsedArea]
    stated: dict[Total, int]
    stated_phrases: dict[Total, str]
    unplaced: list[Unplaced]
    skipped_sections: list[str]
    source: str = "outline"  # "outline", "feedback" (no results in it), "table", or a mix

    def problems(self) -> Iterator[ParsedProblem]:
        for area in self.areas:
            yield from area.problems

    def measures(self) -> Iterator[ParsedMeasure]:
        for problem in self.problems():
            yield from problem.all_measures()

    def counts(self) -> dict[str, int]:
        top = list(self.problems())
        measures = list(self.measures())
        return {
            "areas": len(self.areas),
            "problems": len(top),
            "sub_problems": sum(1 for p in top for _ in p.walk()) - len(top),
            "measures": len(measures),
            "progress_reports": sum(len(m.progress) for m in measures),
            "without_result": sum(1 for m in measures if m.result is None),
        }

    def found_results(self, level: str) -> dict[Total, int]:
        """How many problems (``level="problems"``) or measures are done, long term, not done."""
        if level == "problems":
            results = [p.overall() for p in self.problems()]
        else:
            results = [m.result for m in self.measures()]
        return {Total.DONE: results.count(Result.DONE),
                Total.LONG_TERM: results.count(Result.LONG_TERM),
                Total.NOT_DONE: results.count(Result.NOT_DONE)}

    def result_level(self) -> str:
        """Whether the stated done/long-term counts count problems or measures: the level whose
        stated total they add up to (problems when undecided)."""
        parts = [self.stated.get(t) for t in (Total.DONE, Total.LONG_TERM, Total.NOT_DONE)]
        told = sum(p for p in parts if p is not None)
        if told == self.stated.get(Total.PROBLEMS):
            return "problems"
        if told == self.stated.get(Total.MEASURES) or Total.PROBLEMS not in self.stated:
            return "measures"
        return "problems"

    def differences(self) -> list[Difference]:
        """Every stated total the listed ledger does not match (pure)."""
        counts = self.counts()
        level = self.result_level()
        found: dict[Total, int] = {Total.AREAS: counts["areas"], Total.PROBLEMS: counts["problems"],
                                   Total.MEASURES: counts["measures"], **self.found_results(level)}
        diffs: list[Difference] = []
        for item, stated in self.stated.items():
            have = found[item]
            if have == stated:
                continue
            diffs.append(Difference(item, stated, have, _difference_text(item, stated, have,
                                                                         counts, level)))
        return diffs


def _difference_text(item: Total, stated: int, found: int, counts: Mapping[str, int],
                     level: str) -> str:
    gap = f"少 {stated - found}" if found < stated else f"多 {found - stated}"
    if item is Total.PROBLEMS and counts["sub_problems"]:
        return (f"文中称 {stated} 个问题，逐项列出 {found} 个问题（其下细分为 {counts['measures']} "
                f"项），{gap} 个")
    if item is Total.MEASURES:
        return (f"文中称整改措施 {stated} 条，逐项列出的只有 {found} 项，{gap} 项；"
                "台账不完整，请补齐" if found < stated else
                f"文中称整改措施 {stated} 条，逐项列出 {found} 项，{gap} 项")
    if item in (Total.DONE, Total.LONG_TERM, Total.NOT_DONE):
        unit = "个问题" if level == "problems" else "项措施"
        return (f"文中称{item.label} {stated} 项，逐项写明{item.label}的有 {found} {unit}，"
                f"{gap} 项")
    return f"文中称 {stated} 个{item.label}，逐项列出 {found} 个，{gap} 个"


def first_sentence(text: str, limit: int = 200) -> str:
    """The text up to its first full stop, without the stop; the first line at most."""
    head = text.strip().split("\n", 1)[0]
    match = re.search(r"[。!?！？]", head)
    sentence = head[:match.start()] if match else head
    sentence = sentence.strip().rstrip("；;，,：:")
    if len(sentence) > limit:
        sentence = sentence[:limit] + "…"
    return sentence or head[:limit]


# ---------------------------------------------------------------- stated totals

_NUM = rf"(\d+|[{CN_NUMERALS}]+)"
_KIND_WORDS = r"(?:整改)?(?:的)?(?:事项|问题|任务|措施)?"
_TOTAL_PATTERNS: Sequence[tuple[Total, re.Pattern[str]]] = (
    (Total.AREAS, re.compile(r"(\d+)\s*个?\s*方面|" + rf"([{CN_NUMERALS}]+)\s*个\s*方面")),
    (Total.PROBLEMS, re.compile(rf"{_NUM}\s*(?:个|项|条)\s*(?:反馈)?问题")),
    (Total.MEASURES, re.compile(rf"{_NUM}\s*(?:条|项|个)\s*整改(?:措施|任务|责任清单)|"
                                rf"整改(?:措施|任务)\s*{_NUM}\s*(?:条|项|个)")),
    (Total.DONE, re.compile(rf"(?:整改完成|完成整改|已完成|已落实|已整改|已办结|已销号){_KIND_WORDS}"
                            rf"\s*{_NUM}\s*(?:项|个|条)")),
    (Total.LONG_TERM, re.compile(rf"(?:长期建设|长期坚持|长期整改|持续整改){_KIND_WORDS}"
                                 rf"\s*{_NUM}\s*(?:项|个|条)")),
    (Total.NOT_DONE, re.compile(rf"(?:未完成|尚未完成|正在整改|整改中|推进中){_KIND_WORDS}"
                                rf"\s*{_NUM}\s*(?:项|个|条)")),
)
_AREAS_THEN_PROBLEMS = re.compile(
    rf"(?:(\d+)\s*个?|([{CN_NUMERALS}]+)\s*个)\s*方面\s*[,、]?\s*(?:共)?\s*{_NUM}\s*(?:个|项|条)\s*问题")


def stated_totals(texts: Iterable[tuple[int, str]]) -> tuple[dict[Total, int], dict[Total, str]]:
    """The totals a document states, from (priority, text) pairs: lower priority first, so
    totals in summary sections win over numbers quoted inside one problem's account. A
    "N个方面、M项问题" phrase decides both at once."""
    ordered = sorted(enumerate(texts), key=lambda item: (item[1][0], item[0]))
    stated: dict[Total, int] = {}
    phrases: dict[Total, str] = {}
    for _index, (_priority, raw) in ordered:
        text = normalize(raw)
        pair = _AREAS_THEN_PROBLEMS.search(text)
        if pair and Total.PROBLEMS not in stated:
            stated[Total.AREAS] = chinese_number(pair.group(1) or pair.group(2))
            stated[Total.PROBLEMS] = chinese_number(pair.group(3))
            phrases[Total.AREAS] = phrases[Total.PROBLEMS] = pair.group(0)
        for total, pattern in _TOTAL_PATTERNS:
            if total in stated:
                continue
            match = pattern.search(text)
            if match:
                number = next(g for g in match.groups() if g)
                stated[total] = chinese_number(number)
                phrases[total] = match.group(0)
    return stated, phrases


# ---------------------------------------------------------------- choosing the ledger part

#: Headings that name a group of problems ("(一)反馈问题：…", "…方面问题", "存在的问题").
AREA_CUE = re.compile(r"反馈问题|问题清单|方面(?:存在的|的)?问题|存在(?:的)?问题|问题表现|反馈意见")
AREA_CUE_LOOSE = re.compile(AREA_CUE.pattern + r"|方面")
_AREA_PREFIX = re.compile(r"^(?:反馈问题|问题方面|方面)\s*[:：]\s*")


def _title(node: OutlineNode) -> str:
    return first_sentence(node.heading, limit=120)


def _height(node: OutlineNode, marked: set[int]) -> int:
    """How far below ``node`` its marked items go: 0 for an item with markers of its own."""
    heights = [_height(c, marked) for c in node.children if id(c) in marked]
    return 1 + max(heights) if heights else 0


def _majority(flags: Sequence[bool]) -> bool:
    return bool(flags) and sum(flags) * 2 > len(flags)


def _ledger_container(root: OutlineNode, marked: set[int]) -> OutlineNode:
    """The deepest item holding every marked item: the part of the report that is the ledger."""
    container = root
    while not container.own_marked:
        if container is not root and AREA_CUE_LOOSE.search(_title(container)):
            break  # "(一)反馈问题：…" is an area, even when it is the only one
        inner = [c for c in container.children if id(c) in marked]
        if len(inner) != 1 or inner[0].rank > RANK[Style.PAREN_CN] \
                or not any(id(g) in marked for g in inner[0].children):
            break
        container = inner[0]
    return container


def _area_nodes(container: OutlineNode, marked: set[int],
                loose: bool) -> tuple[list[OutlineNode], bool]:
    """The items that are areas, and whether the container itself is the only area."""
    inner = [c for c in container.children if id(c) in marked]
    cue = AREA_CUE_LOOSE if loose else AREA_CUE
    if _majority([bool(cue.search(_title(c))) for c in inner]):
        return _same_style(container, inner), False
    if container.parent is not None and cue.search(_title(container)):
        return [container], True
    if container.parent is not None and all(c.rank >= RANK[Style.ARABIC] for c in inner):
        return [container], True  # "1." items under "(一)" are problems, not areas
    if _majority([_height(c, marked) >= 1 for c in inner]):
        return _same_style(container, inner), False
    return [container], True


def _same_style(container: OutlineNode, inner: list[OutlineNode]) -> list[OutlineNode]:
    """The marked items and the unmarked siblings numbered the same way between them (an area
    the report says nothing about is still an area of the feedback; "下一步工作安排" after the
    last one is not)."""
    styles = {c.numbering.style for c in inner if c.numbering}
    chosen = {id(c) for c in inner}
    positions = [i for i, c in enumerate(container.children) if id(c) in chosen]
    between = container.children[positions[0]:positions[-1] + 1] if positions else []
    return [c for c in between if id(c) in chosen or
            (c.numbering is not None and c.numbering.style in styles)]


# ---------------------------------------------------------------- building the tree


def _fields(node: OutlineNode) -> dict[str, str]:
    return {s.word: s.text for s in node.own(SegmentKind.FIELD) if s.text}


def _result_of(node: OutlineNode) -> tuple[Result | None, str | None]:
    for segment in node.own(SegmentKind.RESULT):
        words = segment.text
        return classify_result(words), words
    return None, None


def _problem_text(node: OutlineNode, heading: str) -> str:
    detail = [s.text for s in node.own(SegmentKind.TEXT)]
    return "\n".join(t for t in (heading, *detail) if t)


def _build_problem(node: OutlineNode, text: str, inherited: Result | None,
                   inherited_progress: list[str], unplaced: list[Unplaced]) -> ParsedProblem:
    """A problem from an outline item; an item with no sub-items is itself one measure."""
    own, result_text = _result_of(node)
    if result_text is not None and own is None:
        unplaced.append(Unplaced(node.line, result_text, "整改结果的写法无法识别，已按未写明结果处理"))
    progress = [s.text for s in node.own(SegmentKind.PROGRESS) if s.text]
    problem = ParsedProblem(text=text, line=node.line, label=node.label, result=own)
    result = own or inherited
    if node.children:
        for child in node.children:
            problem.children.append(_build_problem(
                child, _problem_text(child, child.heading), result,
                inherited_progress + progress, unplaced))
        return problem
    measure_texts = [s.text for s in node.own(SegmentKind.MEASURE) if s.text]
    # The measure is what the document calls 整改措施 when it says so, kept whole.
    title = measure_texts[0].strip() if measure_texts else problem.title
    problem.measures.append(ParsedMeasure(
        title=title or problem.title, line=node.line, result=result, result_text=result_text,
        progress=inherited_progress + measure_texts[1:] + progress, fields=_fields(node)))
    return problem


def _sub_item_style(children: Sequence[OutlineNode]) -> bool:
    """True if the items read as parts of one problem (①, 问题①, (1)), not problems of their own."""
    return all(c.numbering is not None and (c.numbering.prefixed or c.rank >= RANK[Style.PAREN_ARABIC])
               for c in children)


def _build_area(node: OutlineNode, direct_allowed: bool,
                unplaced: list[Unplaced]) -> ParsedArea:
    """An area from an outline item: its items are problems; text standing directly under the
    area is one problem (with the area's ①② as its sub-items)."""
    heading = node.heading or "（未命名方面）"
    area = ParsedArea(_AREA_PREFIX.sub("", first_sentence(heading, limit=200)), node.line, node.label)
    body = "\n".join(s.text for s in node.own(SegmentKind.TEXT))
    has_direct = bool(body) and (not node.children or _sub_item_style(node.children))
    if has_direct and (direct_allowed or node.children):
        direct = _build_problem(node, body, None, [], unplaced)
        direct.label = ""
        area.problems.append(direct)
        return area
    if not node.children and direct_allowed and node.own_marked:
        area.problems.append(_build_problem(node, area.title, None, [], unplaced))
        return area
    for segment in node.segments:
        unplaced.append(Unplaced(segment.line, first_sentence(segment.text, 60),
                                 "方面标题下的说明文字，未作为问题导入"))
    for child in node.children:
        area.problems.append(_build_problem(child, _problem_text(child, child.heading), None,
                                            [], unplaced))
    return area


def _outline_areas(outline: Outline, unplaced: list[Unplaced]
                   ) -> tuple[list[ParsedArea], list[OutlineNode], str]:
    """Areas from the outline, and the items they were read from: where the results are, or,
    in a feedback list with no results, under the headings that name problems."""
    root, marked = outline.root, outline.marked
    if id(root) in marked:
        container = _ledger_container(root, marked)
        nodes, container_is_area = _area_nodes(container, marked, loose=True)
        covered = nodes
        if container_is_area and container is root:
            covered = [c for c in root.children if id(c) in marked]
            synthetic = OutlineNode(None, 0, children=covered)
            synthetic.numbering = Numbering(Style.CN, 0, "", "（未分方面）", False)
            nodes = [synthetic]
        areas = [_build_area(n, True, unplaced) for n in nodes]
        return [a for a in areas if a.problems], covered, "outline"
    cued = [n for n in root.walk() if n.numbering and AREA_CUE.search(_title(n))]
    outermost = [n for n in cued if n.children
                 and not any(a is not n and _is_ancestor(a, n) for a in cued)]
    areas = [_build_area(n, False, unplaced) for n in outermost]
    return [a for a in areas if a.problems], outermost, "feedback"


def _is_ancestor(ancestor: OutlineNode, node: OutlineNode) -> bool:
    parent = node.parent
    while parent is not None:
        if parent is ancestor:
            return True
        parent = parent.parent
    return False


# ---------------------------------------------------------------- tables

TABLE_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "area": ("整治类别", "类别", "方面", "问题类别", "问题方面", "整改方面", "反馈问题", "领域"),
    "problem": ("主要内容", "自查自纠主要内容", "问题", "问题表现", "存在问题", "具体问题",
                "反馈问题具体表现", "问题描述", "整治内容", "整改内容", "问题清单"),
    "measure": ("整改措施", "整改任务", "措施"),
    "unit": ("责任单位", "责任部门", "责任处室", "责任科室", "牵头单位"),
    "leader": ("责任领导", "分管领导"),
    "owner": ("责任人", "具体责任人"),
    "deadline": ("完成时限", "整改时限", "完成时间"),
    "result": ("整改结果", "完成情况", "整改状态"),
    "progress": ("整改情况", "整改进展", "整改进展情况", "进展情况"),
}
_FIELD_LABELS = {"unit": "责任单位", "leader": "责任领导", "owner": "责任人", "deadline": "完成时限"}


def _table_header(cells: Sequence[str]) -> dict[str, int] | None:
    index: dict[str, int] = {}
    for position, cell in enumerate(cells):
        name = re.sub(r"\s", "", normalize(cell))
        for key, names in TABLE_COLUMNS.items():
            if name in names and key not in index:
                index[key] = position
                break
    if len(index) >= 2 and ("problem" in index or "measure" in index):
        return index
    return None


def table_areas(table: Table, unplaced: list[Unplaced]) -> list[ParsedArea]:
    """Areas from a work-plan or ledger table (整治类别 / 主要内容 / 责任单位 …)."""
    header_at = next((i for i, (_, cells) in enumerate(table.rows) if _table_header(cells)), None)
    if header_at is None:
        return []
    index = _table_header(table.rows[header_at][1]) or {}
    areas: dict[str, ParsedArea] = {}
    problems: dict[tuple[str, str], ParsedProblem] = {}
    last_area = table.caption or "（表格所列问题）"
    for line, cells in table.rows[header_at + 1:]:
        def cell(key: str, cells: list[str] = cells) -> str:
            position = index.get(key)
            return cells[position].strip() if position is not None and position < len(cells) else ""

        if len(cells) < len(table.rows[header_at][1]) or not (cell("problem") or cell("measure")):
            if any(c.strip() for c in cells):
                unplaced.append(Unplaced(line, " / ".join(c for c in cells if c)[:60],
                                         "表格行的列数与表头不符"))
            continue
        area_title = cell("area") or last_area
        last_area = area_title
        area = areas.setdefault(area_title, ParsedArea(area_title, line))
        text = cell("problem") or cell("measure")
        problem = problems.get((area_title, text))
        if problem is None:
            problem = problems[(area_title, text)] = ParsedProblem(text=text, line=line)
            area.problems.append(problem)
        result_text = cell("result") or None
        progress = [cell("progress")] if cell("progress") else []
        problem.measures.append(ParsedMeasure(
            title=cell("measure") or first_sentence(text), line=line,
            result=classify_result(result_text) if result_text else None, result_text=result_text,
            progress=progress,
            fields={label: cell(key) for key, label in _FIELD_LABELS.items() if cell(key)}))
    return list(areas.values())


# ---------------------------------------------------------------- the parser


def _skipped(root: OutlineNode, areas: Sequence[OutlineNode]) -> list[str]:
    """Headings of the top sections that hold no area (组织整改落实情况, 下一步工作安排…)."""
    if not areas:
        return []
    return [f"{c.label}{_title(c)}" for c in root.children
            if c.numbering is not None
            and not any(c is a or _is_ancestor(c, a) for a in areas)]


def _total_texts(outline: Outline, areas: Sequence[OutlineNode]) -> Iterator[tuple[int, str]]:
    """Every piece of text with its priority for stated totals: outside the areas first."""
    for node in outline.root.walk():
        inside = any(node is a or _is_ancestor(a, node) for a in areas)
        priority = 1 if inside else 0
        if node.heading:
            yield priority, node.heading
        for segment in node.segments:
            yield priority, segment.text


def parse_report(lines: Sequence[str]) -> ParsedReport:
    """Parse a report's lines into areas → problems → measures, the totals it states, and what
    could not be placed. Pure: no I/O, no database."""
    outline = build_outline(lines)
    unplaced: list[Unplaced] = []
    areas, area_nodes, source = _outline_areas(outline, unplaced)
    table_found: list[ParsedArea] = []
    for table in outline.tables:
        table_found.extend(table_areas(table, unplaced))
    if table_found:
        source = "table" if not areas else f"{source}+table"
    stated, phrases = stated_totals(_total_texts(outline, area_nodes))
    report = ParsedReport(areas + table_found, stated, phrases, unplaced,
                          _skipped(outline.root, area_nodes), source)
    _merge_same_titles(report)
    return report


def _merge_same_titles(report: ParsedReport) -> None:
    """Areas are unique by title within a campaign: two with one title become one."""
    merged: dict[str, ParsedArea] = {}
    for area in report.areas:
        if area.title in merged:
            merged[area.title].problems.extend(area.problems)
        else:
            merged[area.title] = area
    report.areas = list(merged.values())


# ================================================================ dates in progress text (pure)

_DATE = re.compile(r"(?:(?P<y>\d{4})\s*年\s*)?(?P<m>\d{1,2})\s*月(?:\s*(?P<d>\d{1,2})\s*[日号])?"
                   r"|(?P<y2>\d{4})[-./](?P<m2>\d{1,2})[-./](?P<d2>\d{1,2})")


def latest_date(text: str, *, not_after: datetime) -> datetime | None:
    """The latest date written in ``text`` (2024年8月 → 1 August 2024, 00:00 in Beijing), as
    aware UTC. A month without a year takes the year written before it; dates after
    ``not_after`` are plans, not progress, and are ignored."""
    year: int | None = None
    latest: datetime | None = None
    limit = as_utc(not_after)
    for match in _DATE.finditer(normalize(text)):
        if match.group("y2"):
            y, m, d = int(match.group("y2")), int(match.group("m2")), int(match.group("d2"))
        else:
            if match.group("y"):
                year = int(match.group("y"))
            if year is None:
                continue
            y, m, d = year, int(match.group("m")), int(match.group("d") or 1)
        year = y
        try:
            moment = as_utc(datetime(y, m, d, tzinfo=SHANGHAI))
        except ValueError:
            continue
        if moment <= limit and (latest is None or moment > latest):
            latest = moment
    return latest


# ================================================================ reading files


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 (a BOM is dropped), else GB18030, the encodings Chinese Windows saves .txt in."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError(f"{name} 既不是 UTF-8 也不是 GB18030 编码的文本，无法读取", field="file")


def read_document(path: Path) -> list[str]:
    """The lines of a .txt or .docx document; a .docx table row becomes one tab-separated line."""
    if not path.exists():
        raise InputError(f"文件不存在：{path}", field="file")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return decode_text(path.read_bytes(), path.name).splitlines()
    if suffix == ".docx":
        return _read_docx(path)
    raise InputError(f"不支持的文件格式「{suffix}」：请用 .txt 或 .docx（.doc 请先在 Word 中另存为"
                     " .docx）", field="file")


def _read_docx(path: Path) -> list[str]:
    import docx
    from docx.table import Table as DocxTable
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises several types for a broken file
        raise InputError(f"无法读取 Word 文件 {path.name}：{exc}", field="file") from exc
    numbering = _WordNumbering(document)
    lines: list[str] = []
    for element in document.element.body.iterchildren():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(element, document)
            text = numbering.label(paragraph) + paragraph.text
            lines.extend(text.split("\n") if text.strip() else [""])
        elif tag == "tbl":
            for row in DocxTable(element, document).rows:
                cells: list[str] = []
                seen: set[int] = set()
                for cell in row.cells:
                    if id(cell._tc) in seen:  # a merged cell repeats across the row
                        continue
                    seen.add(id(cell._tc))
                    cells.append(" ".join(cell.text.split()))
                lines.extend(["\t" + "\t".join(cells), ""])
    return lines


class _WordNumbering:
    """Renders Word's automatic list numbers ("一、", "（一）", "1.", "①"), which python-docx
    leaves out of ``paragraph.text``, from the numbering part of the document."""

    _FORMATS = {"decimal", "chineseCounting", "chineseCountingThousand", "ideographTraditional",
                "decimalEnclosedCircle", "decimalEnclosedCircleChinese", "decimalFullWidth",
                "japaneseCounting"}

    def __init__(self, document: Any) -> None:
        self._levels: dict[tuple[str, int], tuple[str, str, int]] = {}
        self._counters: dict[str, dict[int, int]] = {}
        try:
            part = document.part.numbering_part
        except (KeyError, NotImplementedError, AttributeError):
            return
        self._load(part.element)

    def _load(self, root: Any) -> None:
        ns = root.nsmap.get("w") or "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
        w = f"{{{ns}}}"
        abstract: dict[str, dict[int, tuple[str, str, int]]] = {}
        for node in root.iterfind(f"{w}abstractNum"):
            levels: dict[int, tuple[str, str, int]] = {}
            for lvl in node.iterfind(f"{w}lvl"):
                fmt = lvl.find(f"{w}numFmt")
                text = lvl.find(f"{w}lvlText")
                start = lvl.find(f"{w}start")
                levels[int(lvl.get(f"{w}ilvl", "0"))] = (
                    fmt.get(f"{w}val", "decimal") if fmt is not None else "decimal",
                    text.get(f"{w}val", "") if text is not None else "",
                    int(start.get(f"{w}val", "1")) if start is not None else 1)
            abstract[node.get(f"{w}abstractNumId", "")] = levels
        for num in root.iterfind(f"{w}num"):
            ref = num.find(f"{w}abstractNumId")
            if ref is None:
                continue
            for ilvl, spec in abstract.get(ref.get(f"{w}val", ""), {}).items():
                self._levels[(num.get(f"{w}numId", ""), ilvl)] = spec

    @staticmethod
    def _num_pr(paragraph: Any) -> Any:
        """The paragraph's numbering properties, its own or inherited from its style."""
        ppr = paragraph._p.pPr
        if ppr is not None and ppr.numPr is not None:
            return ppr.numPr
        style = paragraph.style
        while style is not None:
            style_ppr = style.element.pPr
            if style_ppr is not None and style_ppr.numPr is not None:
                return style_ppr.numPr
            style = style.base_style
        return None

    def label(self, paragraph: Any) -> str:
        """The number Word shows before ``paragraph`` ("" when it has none or one of a format
        the tradition does not use); advances the list's counters."""
        num_pr = self._num_pr(paragraph)
        if num_pr is None or num_pr.numId is None:
            return ""
        num_id = str(num_pr.numId.val)
        ilvl = int(num_pr.ilvl.val) if num_pr.ilvl is not None else 0
        spec = self._levels.get((num_id, ilvl))
        if spec is None or spec[0] not in self._FORMATS:
            return ""
        counters = self._counters.setdefault(num_id, {})
        counters[ilvl] = counters.get(ilvl, spec[2] - 1) + 1
        for deeper in [k for k in counters if k > ilvl]:
            del counters[deeper]
        text = spec[1]
        for level in range(ilvl + 1):
            fmt = self._levels.get((num_id, level), ("decimal", "", 1))[0]
            value = counters.get(level, 1)
            text = text.replace(f"%{level + 1}", _format_number(value, fmt))
        return text


def _format_number(value: int, fmt: str) -> str:
    if fmt.startswith("decimalEnclosedCircle") and 1 <= value <= 20:
        return chr(0x2460 + value - 1)
    if fmt in ("chineseCounting", "chineseCountingThousand", "ideographTraditional",
               "japaneseCounting"):
        return chinese_numeral(value)
    return str(value)


def chinese_numeral(value: int) -> str:
    """1 → 一, 13 → 十三, 20 → 二十, 99 → 九十九 (enough for outline numbers)."""
    digits = "零一二三四五六七八九"
    if value < 10:
        return digits[value]
    tens, ones = divmod(value, 10)
    return ("" if tens == 1 else digits[tens]) + "十" + (digits[ones] if ones else "")


# ================================================================ the service


class ReportRejected(InputError):
    """Raised when a document yields no areas, problems and measures that could be imported."""

    def __init__(self, source: str, stated: Mapping[Total, int]) -> None:
        self.source = source
        self.stated = dict(stated)
        told = "、".join(f"{n} 个{t.label}" for t, n in stated.items()
                         if t in (Total.AREAS, Total.PROBLEMS, Total.MEASURES))
        hint = f"文中虽提到 {told}，但没有逐项列出；" if told else ""
        super().__init__(
            f"{source} 中没有找到可以导入的问题清单：{hint}需要按「一、（一）1.（1）①」等编号逐项列出"
            "问题，并写明「整改结果」「整改情况」，或是一张含「主要内容/问题」列的表格。未导入任何数据。",
            field="file")


@dataclass
class ReportImportSummary:
    """What an import found, wrote (unless dry run), and what the 整改办 must still complete."""

    source: str
    campaign_id: int | None
    report: ParsedReport
    dry_run: bool
    seqs: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return self.report.counts()

    def by_state(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for measure in self.report.measures():
            found[measure.state.value] = found.get(measure.state.value, 0) + 1
        return found

    def as_json(self) -> dict[str, Any]:
        counts = self.counts
        return {
            "campaign_id": self.campaign_id, "areas": counts["areas"],
            "problems": counts["problems"], "measures": counts["measures"],
            "sub_problems": counts["sub_problems"], "progress_reports": counts["progress_reports"],
            "dry_run": self.dry_run, "source": self.report.source, "by_state": self.by_state(),
            "stated": {t.value: n for t, n in self.report.stated.items()},
            "differences": [d.as_json() for d in self.report.differences()],
            "to_complete": {"leader": counts["measures"], "owner": counts["measures"],
                            "unit": counts["measures"], "deadline": counts["measures"],
                            "result": counts["without_result"]},
            "unplaced": [{"line": u.line, "text": u.text, "reason": u.reason}
                         for u in self.report.unplaced],
            "skipped_sections": self.report.skipped_sections,
        }


def _campaign(session: Session, title: str, now: datetime, create: bool) -> Campaign | None:
    title = title.strip()
    if not title:
        raise InputError("整改任务名称不能为空（--campaign）", field="campaign")
    campaign = session.scalar(select(Campaign).where(Campaign.title == title))
    if campaign is None and create:
        campaign = Campaign(title=title, created_at=now)
        session.add(campaign)
        session.flush()
    return campaign


def import_report(session: Session, path: Path, *, campaign_title: str, now: datetime,
                  dry_run: bool = False) -> ReportImportSummary:
    """Import a report or feedback list into a campaign (found or created by title).

    Writes in the caller's transaction; refuses a document with no problems (nothing written).
    """
    report = parse_report(read_document(path))
    if not report.counts()["measures"]:
        raise ReportRejected(path.name, report.stated)
    campaign = _campaign(session, campaign_title, now, create=not dry_run)
    summary = ReportImportSummary(path.name, campaign.id if campaign else None, report, dry_run)
    if not dry_run:
        assert campaign is not None
        summary.seqs = write_report(session, campaign, report, now, source=path.name)
    return summary


@dataclass
class _PendingMeasure:
    measure: ParsedMeasure
    problem_key: int
    seq: str
    position: int


def write_report(session: Session, campaign: Campaign, report: ParsedReport, now: datetime,
                 *, source: str) -> list[str]:
    """Insert areas, problems (level by level, sub-problems through ``parent_id``), measures,
    their first history rows and progress reports in bulk; return the measures' seqs."""
    area_ids, area_numbers = _write_areas(session, campaign, report.areas)
    taken = {s for s in session.scalars(select(Measure.seq).where(
        Measure.campaign_id == campaign.id)) if s}
    problem_ids, pending = _write_problems(session, report.areas, area_ids, area_numbers, taken)
    start = session.scalar(select(func.max(Measure.position)).where(
        Measure.campaign_id == campaign.id)) or 0
    values = []
    for offset, item in enumerate(pending, start=1):
        m = item.measure
        at = [latest_date(text, not_after=now) or now for text in m.progress]
        values.append({
            "campaign_id": campaign.id, "problem_id": problem_ids[item.problem_key],
            "position": start + offset, "seq": item.seq, "title": m.title, "kind": m.kind.value,
            "state": m.state.value, "deadline": None, "original_deadline": None, "owner_id": None,
            "leader_id": None, "unit_id": None, "version": 1, "created_at": now,
            "state_changed_at": now, "last_progress_at": max(at) if at else None})
    measure_ids = session.scalars(
        insert(Measure).returning(Measure.id, sort_by_parameter_order=True), values).all()
    session.execute(insert(HistoryEntry), [
        new_history_entry(measure_id=mid, seq=1, action="import", from_state=None,
                          to_state=item.measure.state.value, actor_id=None, on_behalf_of_id=None,
                          comment=f"从 {source} 导入", data=_history_data(item, source), at=now,
                          prev_hash=GENESIS)
        for mid, item in zip(measure_ids, pending, strict=True)])
    progress = [{"measure_id": mid, "author_id": None, "text": text,
                 "at": latest_date(text, not_after=now) or now}
                for mid, item in zip(measure_ids, pending, strict=True)
                for text in item.measure.progress]
    if progress:
        session.execute(insert(ProgressReport), progress)
    events.publish(session, [
        events.MeasureChanged(measure_id=mid, action="import", from_state=None,
                              to_state=item.measure.state.value, actor_id=None,
                              on_behalf_of_id=None, at=now)
        for mid, item in zip(measure_ids, pending, strict=True)])
    return [item.seq for item in pending]


def _history_data(item: _PendingMeasure, source: str) -> dict[str, Any]:
    data: dict[str, Any] = {"source": source, "line": item.measure.line}
    if item.measure.result_text:
        data["result"] = item.measure.result_text
    if item.measure.fields:
        data["fields"] = dict(item.measure.fields)
    return data


def _write_areas(session: Session, campaign: Campaign,
                 areas: Sequence[ParsedArea]) -> tuple[dict[str, int], dict[str, int]]:
    """Area ids and 1-based numbers by title; existing areas of the campaign are reused."""
    ids: dict[str, int] = {}
    numbers: dict[str, int] = {}
    for row in session.scalars(select(Area).where(Area.campaign_id == campaign.id)):
        ids[row.title], numbers[row.title] = row.id, row.position + 1
    next_position = max(numbers.values(), default=0)
    new: list[dict[str, Any]] = []
    for area in areas:
        if area.title not in ids:
            numbers[area.title] = next_position + 1
            new.append({"campaign_id": campaign.id, "position": next_position,
                        "title": area.title})
            ids[area.title] = -1
            next_position += 1
    if new:
        created = session.scalars(insert(Area).returning(Area.id, sort_by_parameter_order=True),
                                  new).all()
        for values, new_id in zip(new, created, strict=True):
            ids[values["title"]] = new_id
    return ids, numbers


def _write_problems(session: Session, areas: Sequence[ParsedArea], area_ids: Mapping[str, int],
                    area_numbers: Mapping[str, int],
                    taken: set[str]) -> tuple[dict[int, int], list[_PendingMeasure]]:
    """Insert problems depth by depth (a parent's id is known before its children are written);
    return problem ids by ``id(parsed problem)`` and the measures to write, each with a seq
    such as "2.1.3" (area.problem.sub-problem), unique in the campaign."""
    existing = dict(session.execute(
        select(Problem.area_id, func.count()).where(
            Problem.area_id.in_([i for i in area_ids.values() if i > 0]),
            Problem.parent_id.is_(None)).group_by(Problem.area_id)).all())
    level: list[tuple[ParsedProblem, int, int | None, str, int]] = []
    used: dict[int, int] = {}
    for area in areas:
        area_id = area_ids[area.title]
        for problem in area.problems:
            used[area_id] = used.get(area_id, existing.get(area_id, 0)) + 1
            level.append((problem, area_id, None, f"{area_numbers[area.title]}.{used[area_id]}",
                          used[area_id] - 1))
    ids: dict[int, int] = {}
    pending: list[_PendingMeasure] = []
    while level:
        rows = [{"area_id": area_id, "parent_id": ids[parent] if parent is not None else None,
                 "position": position, "text": problem.text}
                for problem, area_id, parent, _seq, position in level]
        created = session.scalars(
            insert(Problem).returning(Problem.id, sort_by_parameter_order=True), rows).all()
        following: list[tuple[ParsedProblem, int, int | None, str, int]] = []
        for (problem, area_id, _parent, seq, _position), new_id in zip(level, created, strict=True):
            ids[id(problem)] = new_id
            for index, child in enumerate(problem.children):
                following.append((child, area_id, id(problem), f"{seq}.{index + 1}", index))
            many = len(problem.measures) > 1
            for index, measure in enumerate(problem.measures):
                measure_seq = _unique(f"{seq}.{index + 1}" if many else seq, taken)
                pending.append(_PendingMeasure(measure, id(problem), measure_seq, index))
        level = following
    pending.sort(key=lambda p: p.measure.line)
    return ids, pending


def _unique(seq: str, taken: set[str]) -> str:
    candidate, n = seq, 1
    while candidate in taken:
        n += 1
        candidate = f"{seq}-{n}"
    taken.add(candidate)
    return candidate


# ================================================================ the clerk's summary (Chinese)


def _problem_lines(problem: ParsedProblem, depth: int) -> Iterator[str]:
    pad = "  " * depth
    label = f"{problem.label} " if problem.label else ""
    if not problem.children and len(problem.measures) == 1:
        m = problem.measures[0]
        result = m.result.label if m.result else "未写明结果"
        extra = f"，进展 {len(m.progress)} 条" if m.progress else ""
        yield f"{pad}{label}{_short(problem.title)}  [{result} → {m.state.label}{extra}]"
        return
    yield f"{pad}{label}{_short(problem.title)}"
    for m in problem.measures:
        result = m.result.label if m.result else "未写明结果"
        yield f"{pad}  · {_short(m.title)}  [{result} → {m.state.label}]"
    for child in problem.children:
        yield from _problem_lines(child, depth + 1)


def _short(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def tree_lines(report: ParsedReport) -> list[str]:
    """The parsed tree as the dry run prints it."""
    lines: list[str] = []
    for area in report.areas:
        lines.append(f"{area.label}{area.title}")
        for problem in area.problems:
            lines.extend(_problem_lines(problem, 1))
    return lines


def summary_lines(summary: ReportImportSummary) -> list[str]:
    """Counts found vs stated, every difference, what is left to complete, what was not placed."""
    report = summary.report
    counts = summary.counts
    sub = f"（另含 {counts['sub_problems']} 个细项）" if counts["sub_problems"] else ""
    lines = [f"列出：{counts['areas']} 个方面、{counts['problems']} 个问题{sub}、"
             f"{counts['measures']} 项整改措施、{counts['progress_reports']} 条整改进展"]
    states = "、".join(f"{State(s).label} {n} 项" for s, n in summary.by_state().items())
    lines.append(f"导入状态：{states}")
    if report.stated:
        told = "；".join(f"{TOTAL_LABELS[t]} {n}（“{report.stated_phrases.get(t, '')}”）"
                        for t, n in report.stated.items())
        lines.append(f"文中自述：{told}")
    differences = report.differences()
    if differences:
        lines.append(f"与文中自述不符 {len(differences)} 处：")
        lines.extend(f"  - {d.message}" for d in differences)
    elif report.stated:
        lines.append("与文中自述的数字一致。")
    lines.append(f"待补充：{counts['measures']} 项措施均未写明责任领导、责任部门、责任人和完成时限，"
                 "请在台账中补录。")
    with_fields = [m for m in report.measures() if m.fields]
    if with_fields:
        lines.append(f"  其中 {len(with_fields)} 项原文写有责任单位、责任人或时限（已记入导入历史），"
                     "请据此补录。")
    unknown = [m for m in report.measures() if m.result is None]
    if unknown and len(unknown) == counts["measures"]:
        lines.append(f"未写明整改结果：全部 {len(unknown)} 项（有进展的按「整改中」、无进展的按「已交办」"
                     "导入），请逐项核实后再核验、销号。")
    elif unknown:
        lines.append(f"未写明整改结果：{len(unknown)} 项（有进展的按「整改中」、无进展的按「已交办」"
                     "导入），请核实：")
        lines.extend(f"  - 第 {m.line} 行：{_short(m.title)}" for m in unknown[:20])
        if len(unknown) > 20:
            lines.append(f"  - ……另有 {len(unknown) - 20} 项")
    if report.unplaced:
        lines.append(f"无法归位的内容 {len(report.unplaced)} 处：")
        lines.extend(f"  - 第 {u.line} 行：{_short(u.text)}（{u.reason}）" for u in report.unplaced)
    if report.skipped_sections:
        lines.append("未作为问题导入的部分：" + "；".join(_short(s, 30) for s in report.skipped_sections))
    return lines
