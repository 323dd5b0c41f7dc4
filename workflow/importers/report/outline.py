"""A report's lines as a numbered outline (pure): items by their numbering, the text under each
cut into marked segments (整改结果, 整改情况, 整改措施, 责任单位 …), and tables gathered apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from workflow.importers.report.grammar import INLINE_LABELS, LABELS, SegmentKind
from workflow.importers.report.numbering import (
    CIRCLED,
    Numbering,
    Style,
    circled_number,
    normalize,
    parse_numbering,
)
from workflow.importers.report.parsed import head_result

__all__ = ["MARKERS", "Outline", "OutlineNode", "Segment", "SegmentKind", "Table",
           "build_outline", "split_inline"]

# ---------------------------------------------------------------- markers


#: The labels of the grammar, longest first so that "整改进展情况" is not read as "整改进展".
MARKERS = LABELS
_MARKER_WORDS = "|".join(sorted(LABELS, key=len, reverse=True))
_MARKER_AT_START = re.compile(rf"^(?P<word>{_MARKER_WORDS})\s*(?P<colon>:)?\s*")
#: A label inside a line ("…。整改结果：完成。整改情况：…"): only after a sentence end, with colon.
_MARKER_INLINE = re.compile(
    rf"(?<=[。;!?\s])(?:{'|'.join(sorted(INLINE_LABELS, key=len, reverse=True))})\s*:")
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
                or (kind is SegmentKind.PROGRESS and head_result(after) is not None)
                or after[0] in "0123456789一①(")
    if not accepted:
        return None
    return kind, word, stripped[match.end():].strip()


def split_inline(raw: str) -> list[str]:
    """``raw`` cut before each marker that stands inside it, verbatim pieces."""
    if "整改" not in raw and "责任" not in raw and "时限" not in raw and "情况" not in raw:
        return [raw]
    norm = normalize(raw)
    cuts = [m.start() for m in _MARKER_INLINE.finditer(norm)]
    if not cuts:
        return [raw]
    bounds = [0, *cuts, len(raw)]
    return [raw[a:b].strip() for a, b in zip(bounds, bounds[1:], strict=False) if raw[a:b].strip()]


# ---------------------------------------------------------------- the outline


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
