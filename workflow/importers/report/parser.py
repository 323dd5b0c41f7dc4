"""The report parser (pure, no I/O): ``parse_report(lines)`` picks out the part of the outline
that lists problems with their results (these documents reuse the same numbering for sections that
are not problems), maps it to areas → problems → measures, adds the rows of problem tables, and
reads the totals the text states about itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from workflow.importers.report.grammar import (
    AREA_HEADINGS,
    AREA_HEADINGS_LOOSE,
    AREA_TITLE_PREFIX,
    AREAS_THEN_PROBLEMS,
    NOT_A_REPORT,
    NUMBER,
    RATE_PHRASES,
    RATE_REACH,
    TABLE_COLUMNS,
    compile_totals,
)
from workflow.importers.report.numbering import RANK, Numbering, Style, chinese_number, normalize
from workflow.importers.report.outline import Outline, OutlineNode, SegmentKind, Table, build_outline
from workflow.importers.report.parsed import (
    ParsedArea,
    ParsedMeasure,
    ParsedProblem,
    ParsedReport,
    Result,
    StatedRate,
    Statements,
    Total,
    Unplaced,
    classify_result,
    first_sentence,
    head_result,
)

# ---------------------------------------------------------------- stated totals

_TOTALS = compile_totals()
_PAIR = re.compile(AREAS_THEN_PROBLEMS.replace("{N}", NUMBER))
_RATES = [(total, re.compile(source)) for total, source in RATE_PHRASES]
_RESULT_TOTALS = (Total.DONE, Total.LONG_TERM, Total.NOT_DONE)


def _number(match: re.Match[str], *names: str) -> int:
    return chinese_number(next(match.group(n) for n in names if match.group(n)))


def read_statements(texts: Iterable[tuple[int, str]]) -> Statements:
    """What a document says of itself, from (priority, text) pairs: lower priority first, so
    totals in summary sections win over numbers quoted inside one problem's account. Each total
    is read by the grammar's TOTAL_PHRASES; a "N个方面、M项问题" phrase decides both at once; a
    rate ("完成率96.3%", "…26项，占比89.7%") is kept with the total it is a share of."""
    ordered = sorted(enumerate(texts), key=lambda item: (item[1][0], item[0]))
    found = Statements()
    for _index, (_priority, raw) in ordered:
        text = normalize(raw)
        pair = _PAIR.search(text)
        if pair and Total.PROBLEMS not in found.totals:
            found.totals[Total.AREAS] = _number(pair, "a", "acn")
            found.totals[Total.PROBLEMS] = _number(pair, "n")
            found.phrases[Total.AREAS] = found.phrases[Total.PROBLEMS] = pair.group(0)
        counts: list[tuple[Total, re.Match[str]]] = []
        for total, pattern in _TOTALS:
            for match in pattern.finditer(text):
                counts.append((total, match))
                if total not in found.totals:
                    found.totals[total] = _number(match, "n")
                    found.phrases[total] = match.group(0)
                    if total is Total.LONG_TERM:
                        found.long_term_within = bool(match.groupdict().get("within"))
        _read_rates(text, counts, found)
    return found


def _read_rates(text: str, counts: Sequence[tuple[Total, re.Match[str]]],
                found: Statements) -> None:
    for total, pattern in _RATES:
        for match in pattern.finditer(text):
            of = total
            if of is None:  # "占比": the share of the count written just before it
                before = [(t, m) for t, m in counts if t in _RESULT_TOTALS
                          and 0 <= match.start() - m.end() <= RATE_REACH]
                if not before:
                    continue
                of = max(before, key=lambda item: item[1].end())[0]
            if of not in found.rates:
                found.rates[of] = StatedRate(of, float(match.group("r")), match.group(0))


def stated_totals(texts: Iterable[tuple[int, str]]) -> tuple[dict[Total, int], dict[Total, str]]:
    """The totals a document states and the phrase each was read from (see read_statements)."""
    found = read_statements(texts)
    return found.totals, found.phrases


# ---------------------------------------------------------------- choosing the ledger part

AREA_CUE = re.compile(AREA_HEADINGS)
AREA_CUE_LOOSE = re.compile(AREA_HEADINGS + "|" + AREA_HEADINGS_LOOSE)
_AREA_PREFIX = re.compile(AREA_TITLE_PREFIX)


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
    """The result the item states: on a 整改结果 line, else at the head of its account
    ("整改情况：已完成整改。…")."""
    for segment in node.own(SegmentKind.RESULT):
        words = segment.text
        return classify_result(words), words
    for segment in node.own(SegmentKind.PROGRESS):
        head = head_result(segment.text)
        return head if head is not None else (None, None)
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
        result = classify_result(result_text) if result_text else None
        progress = [cell("progress")] if cell("progress") else []
        if result_text is None and progress:
            result, result_text = head_result(progress[0]) or (None, None)
        problem.measures.append(ParsedMeasure(
            title=cell("measure") or first_sentence(text), line=line,
            result=result, result_text=result_text,
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


_OTHER_KINDS = [(kind, re.compile(source)) for kind, source in NOT_A_REPORT]


def other_document_kind(lines: Sequence[str], head: int = 3) -> str | None:
    """The kind of document (会议通知, 会议纪要 …) the title near the top names, when it names one
    that is not a rectification report; None otherwise."""
    titles = [normalize(line).strip() for line in lines if line.strip()][:head]
    for title in titles:
        cleaned = re.sub(r"[\s\u3000]", "", title).rstrip("。.")
        for kind, pattern in _OTHER_KINDS:
            if pattern.search(cleaned):
                return kind
    return None


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
    statements = read_statements(_total_texts(outline, area_nodes))
    report = ParsedReport(areas + table_found, statements.totals, statements.phrases, unplaced,
                          _skipped(outline.root, area_nodes), source, statements)
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
