"""The official report (整改情况报告) as Word or Markdown, and the ledger (台账) as Excel.

The report follows the documents institutions write by hand: a summary with the counts in
official wording, then each 方面 → 问题 → 整改措施 with 整改结果 (完成 / 基本完成，长期坚持 /
暂未完成) and 整改情况 (the dated progress texts). The Excel ledger has the import's columns
first, so an exported ledger imports again unchanged, and state, dates and the latest progress
after them (the importer ignores columns it does not know).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.errors import InputError, NotFound
from workflow.importers.ledger import HEADER_LABEL
from workflow.importers.report.parsed import Counting, Level, Result
from workflow.lifecycle import KIND_LABELS, STATE_LABELS
from workflow.models import Campaign, Person, Problem, ProgressReport
from workflow.reminders import WorkdayIndex
from workflow.services.digest import load_snapshot
from workflow.stats import (
    Counts,
    MeasureRecord,
    Statistics,
    compute,
    is_finished,
    is_long_term_done,
    official_summary,
    percent,
    source_words,
)
from workflow.timeutil import SHANGHAI, as_utc, local_date

FORMATS = ("md", "docx", "xlsx")
CN_NUMBERS = "一二三四五六七八九十"


@dataclass(frozen=True)
class Progress:
    at: datetime
    text: str


@dataclass
class ProblemSection:
    """A problem as the report shows it: its measures, and its sub-problems (问题①②) in their
    own order under it."""

    text: str
    measures: list[MeasureRecord] = field(default_factory=list)
    children: list[ProblemSection] = field(default_factory=list)

    def all_measures(self) -> list[MeasureRecord]:
        return [*self.measures, *(m for child in self.children for m in child.all_measures())]


@dataclass
class AreaSection:
    title: str
    problems: list[ProblemSection] = field(default_factory=list)


@dataclass
class ReportData:
    """Everything a report shows, read once."""

    campaign_id: int
    title: str
    as_of: datetime
    stats: Statistics
    summary: str
    areas: list[AreaSection]
    progress: dict[int, list[Progress]]
    people: dict[int, tuple[str, str]]  # id → (name, email)

    def person_email(self, pid: int | None) -> str:
        return self.people[pid][1] if pid is not None and pid in self.people else ""


def _problem_paths(session: Session, problem_ids: set[int]) -> dict[int, tuple[int, ...]]:
    """For each problem, the ids from its top-level problem down to it."""
    parents: dict[int, int | None] = {}
    wanted = set(problem_ids)
    while wanted:
        found = dict(session.execute(select(Problem.id, Problem.parent_id).where(
            Problem.id.in_(sorted(wanted)))).all())
        parents.update(found)
        wanted = {p for p in found.values() if p is not None and p not in parents}
    paths: dict[int, tuple[int, ...]] = {}
    for pid in problem_ids:
        path = [pid]
        while (parent := parents.get(path[-1])) is not None:
            path.append(parent)
        paths[pid] = tuple(reversed(path))
    return paths


def _sections(session: Session, records: list[MeasureRecord]) -> list[AreaSection]:
    """Areas → problems → sub-problems → measures in ledger order: a sub-problem stays under its
    parent, in the parent's order, whatever the positions of other problems."""
    paths = _problem_paths(session, {r.problem_id for r in records})
    involved = {pid for path in paths.values() for pid in path}
    problems = {pid: (position, text) for pid, position, text in session.execute(
        select(Problem.id, Problem.position, Problem.text).where(
            Problem.id.in_(sorted(involved))))}
    def order(item: tuple[int, MeasureRecord]) -> tuple[Any, ...]:
        index, r = item
        return (r.area_position, r.area,
                tuple((problems[pid][0], pid) for pid in paths[r.problem_id]), index)

    areas: dict[str, AreaSection] = {}
    sections: dict[int, ProblemSection] = {}
    for _index, r in sorted(enumerate(records), key=order):
        area = areas.setdefault(r.area, AreaSection(r.area))
        siblings = area.problems
        section: ProblemSection | None = None
        for pid in paths[r.problem_id]:
            section = sections.get(pid)
            if section is None:
                section = sections[pid] = ProblemSection(problems[pid][1])
                siblings.append(section)
            siblings = section.children
        assert section is not None
        section.measures.append(r)
    return list(areas.values())


def load_report(session: Session, campaign_id: int, now: datetime, days: WorkdayIndex
                ) -> ReportData:
    """Read a campaign as of ``now`` into report sections."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("整改任务", campaign_id)
    snapshot = load_snapshot(session, campaign_id, now)
    stats = compute(snapshot.records, local_date(now), days)
    areas = _sections(session, snapshot.records)
    progress: dict[int, list[Progress]] = defaultdict(list)
    ids = [r.id for r in snapshot.records]
    for start in range(0, len(ids), 1000):
        for mid, at, text in session.execute(
                select(ProgressReport.measure_id, ProgressReport.at, ProgressReport.text)
                .where(ProgressReport.measure_id.in_(ids[start:start + 1000]),
                       ProgressReport.at <= as_utc(now))
                .order_by(ProgressReport.at, ProgressReport.id)):
            progress[mid].append(Progress(at, text))
    people = {pid: (name, email) for pid, name, email in session.execute(
        select(Person.id, Person.name, Person.email).where(Person.id.in_(
            {p for r in snapshot.records for p in (r.owner_id, r.leader_id) if p})))}
    problems = sum(len(a.problems) for a in areas)  # problems, not sub-problems
    counting = Counting.from_json(campaign.counting)
    summary = (counted_summary(stats.counts, areas, counting, campaign.title) if counting
               else official_summary(stats.counts, stats.areas, problems, campaign.title))
    return ReportData(campaign.id, campaign.title, as_utc(now), stats, summary, areas,
                      dict(progress), people)


def counted_summary(counts: Counts, areas: list[AreaSection], counting: Counting,
                    campaign_title: str | None) -> str:
    """The headline counted as the imported document counts: its problems or its measures,
    long-term items among the completed ("已整改完成38项，占比95.0%，其中需长期坚持的20项") or
    apart ("已整改完成26项，占比89.7%；长期坚持3项，占比10.3%")."""
    problems = [p for a in areas for p in a.problems]
    head = (f"针对{source_words(campaign_title)}的{len(areas)}个方面、{len(problems)}个问题、"
            f"{counts.total}项整改措施")
    if counting.level is Level.PROBLEMS:
        results = [_problem_result(p.all_measures()) for p in problems]
        total, unit = len(problems), "按问题计，"
    else:
        results = [_problem_result([r]) for a in areas for p in a.problems
                   for r in p.all_measures()]
        total, unit = counts.total, ""
    if not total:
        return f"{head}，目前尚无整改措施。"
    done, long_term = results.count(Result.DONE), results.count(Result.LONG_TERM)
    unfinished = results.count(Result.NOT_DONE)
    if counting.long_term_within_done:
        parts = [f"{unit}目前已整改完成{done + long_term}项，占比{percent(done + long_term, total)}"
                 + (f"，其中需长期坚持的{long_term}项" if long_term else "")]
    else:
        parts = [f"{unit}目前已整改完成{done}项，占比{percent(done, total)}"]
        if long_term:
            parts.append(f"长期坚持{long_term}项，占比{percent(long_term, total)}")
    if unfinished:
        parts.append(f"正在整改{unfinished}项，占比{percent(unfinished, total)}")
    sentence = f"{head}，{'；'.join(parts)}。"
    if counts.overdue:
        sentence += f"其中已逾期{counts.overdue}项。"
    return sentence


def _problem_result(records: list[MeasureRecord]) -> Result:
    """Done when every measure is finished, long term when the rest are long-term measures
    verified or closed, otherwise not done."""
    if all(is_finished(r.state, r.kind) for r in records):
        return Result.DONE
    if all(is_finished(r.state, r.kind) or is_long_term_done(r.state, r.kind) for r in records):
        return Result.LONG_TERM
    return Result.NOT_DONE


# ------------------------------------------------------------------ text of the report


def cn_number(n: int) -> str:
    """1 → 一, 12 → 十二, 21 → 二十一 (up to 99)."""
    if n <= 10:
        return CN_NUMBERS[n - 1]
    tens, ones = divmod(n, 10)
    return (CN_NUMBERS[tens - 1] if tens > 1 else "") + "十" + (CN_NUMBERS[ones - 1] if ones else "")


def cn_date(moment: datetime | date) -> str:
    day = moment.astimezone(SHANGHAI).date() if isinstance(moment, datetime) else moment
    return f"{day.year}年{day.month}月{day.day}日"


def progress_text(items: list[Progress]) -> str:
    """整改情况: the progress texts with their dates, oldest first."""
    if not items:
        return "暂无整改进展报送。"
    return "；".join(f"{cn_date(p.at)}，{p.text.strip().rstrip('。；;')}" for p in items) + "。"


@dataclass(frozen=True)
class Block:
    """One paragraph of the report: ``level`` 0 title, 1–3 headings, None body text."""

    text: str
    level: int | None = None
    label: str | None = None  # a bold lead-in like "整改结果："


def report_blocks(data: ReportData) -> list[Block]:
    """The report as a list of paragraphs, shared by the Word and Markdown writers."""
    blocks = [Block(f"{data.title}整改情况报告", 0),
              Block(f"（截至{cn_date(data.as_of)}）"),
              Block("一、整改工作总体情况", 1),
              Block(data.summary)]
    counts = data.stats.counts
    if counts.overdue:
        blocks.append(Block(f"逾期未完成的整改措施{counts.overdue}项，已按督办程序提醒和督促。"))
    blocks.append(Block("二、整改事项完成情况", 1))
    for a, area in enumerate(data.areas, start=1):
        blocks.append(Block(f"（{cn_number(a)}）反馈问题：{area.title}", 2))
        for p, problem in enumerate(area.problems, start=1):
            blocks.append(Block(f"{p}.{problem.text}", 3))
            blocks.extend(_measure_blocks(data, problem.measures))
            for c, child in enumerate(problem.children, start=1):
                blocks.append(Block(f"问题{circled(c)}：{child.text}", 4))
                blocks.extend(_measure_blocks(data, child.all_measures()))
    blocks.append(Block("三、下一步工作", 1))
    blocks.append(Block("对已完成的整改事项适时开展“回头看”，巩固整改成果；对长期坚持的整改事项建立长效"
                        "机制，定期报送进展；对尚未完成的整改事项紧盯时限、压实责任，确保按期整改到位。"))
    return blocks


def _measure_blocks(data: ReportData, measures: list[MeasureRecord]) -> list[Block]:
    blocks: list[Block] = []
    many = len(measures) > 1
    for m, r in enumerate(measures, start=1):
        blocks.append(Block(f"（{m}）{r.title}" if many else r.title, None, "整改措施："))
        blocks.append(Block(r.result_label, None, "整改结果："))
        blocks.append(Block(progress_text(data.progress.get(r.id, [])), None, "整改情况："))
    return blocks


def circled(n: int) -> str:
    """1 → ①, 20 → ⑳; beyond twenty, (21)."""
    return chr(0x2460 + n - 1) if 1 <= n <= 20 else f"({n})"


def report_markdown(data: ReportData) -> str:
    lines: list[str] = []
    for block in report_blocks(data):
        if block.level == 0:
            lines.append(f"# {block.text}")
        elif block.level is not None:
            lines.append(f"{'#' * (block.level + 1)} {block.text}")
        elif block.label:
            lines.append(f"**{block.label}**{_md_escape(block.text)}")
        else:
            lines.append(_md_escape(block.text))
        lines.append("")
    return "\n".join(lines)


def _md_escape(text: str) -> str:
    """User text must not turn into markup (links, images, HTML)."""
    for ch in ("\\", "<", ">", "[", "]", "*", "_", "`"):
        text = text.replace(ch, "\\" + ch)
    return text


def _east_asian(run: Any, font: str) -> None:
    from docx.oxml.ns import qn

    run.font.name = font
    fonts = run._element.get_or_add_rPr().get_or_add_rFonts()
    fonts.set(qn("w:eastAsia"), font)


def write_docx(data: ReportData, path: Path) -> None:
    """The report as Word (python-docx): 方正小标宋/黑体/楷体/仿宋 as official documents use."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    document = Document()
    fonts = {0: ("方正小标宋简体", 22), 1: ("黑体", 16), 2: ("楷体_GB2312", 16),
             3: ("仿宋_GB2312", 16), 4: ("仿宋_GB2312", 16)}
    for block in report_blocks(data):
        if block.level is not None:
            paragraph = document.add_heading("", level=block.level)
            run = paragraph.add_run(block.text)
            font, size = fonts[block.level]
            _east_asian(run, font)
            run.font.size = Pt(size)
            if block.level == 0:
                paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
            continue
        paragraph = document.add_paragraph()
        if block.label:
            lead = paragraph.add_run(block.label)
            lead.bold = True
            _east_asian(lead, "仿宋_GB2312")
        run = paragraph.add_run(block.text)
        _east_asian(run, "仿宋_GB2312")
        paragraph.paragraph_format.first_line_indent = Pt(32)
    document.core_properties.title = f"{data.title}整改情况报告"
    document.save(str(path))


# ------------------------------------------------------------------ the ledger as Excel

LEDGER_KEYS = ("seq", "area", "problem", "title", "leader", "unit", "owner", "deadline", "kind")
EXTRA_COLUMNS = ("状态", "整改结果", "原定时限", "交办日期", "状态变更日期", "销号日期",
                 "最新进展日期", "最新进展")


def ledger_rows(data: ReportData) -> list[list[Any]]:
    """One row per measure: the import's columns, then state, dates and the latest progress."""
    rows: list[list[Any]] = []
    for area in data.areas:
        for problem in area.problems:
            for r in problem.all_measures():
                latest = data.progress.get(r.id, [])
                last = latest[-1] if latest else None
                rows.append([
                    r.seq or "", r.area, r.problem, r.title, data.person_email(r.leader_id),
                    r.unit or "", data.person_email(r.owner_id), r.deadline,
                    KIND_LABELS[r.kind], STATE_LABELS[r.state], r.result_label,
                    r.original_deadline, local_date(r.created_at),
                    local_date(r.state_changed_at),
                    local_date(r.closed_at) if r.closed_at else None,
                    local_date(last.at) if last else None, last.text if last else "",
                ])
    return rows


def write_xlsx(data: ReportData, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    from workflow.spreadsheet import append_row

    workbook = Workbook(write_only=False)
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "整改台账"
    header = [HEADER_LABEL[k] for k in LEDGER_KEYS] + list(EXTRA_COLUMNS)
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    date_columns = {i for i, name in enumerate(header)
                    if name in ("完成时限", "原定时限", "交办日期", "状态变更日期", "销号日期",
                                "最新进展日期")}
    for row in ledger_rows(data):
        append_row(sheet, row)
        for i in date_columns:
            cell = sheet.cell(row=sheet.max_row, column=i + 1)
            if cell.value is not None:
                cell.number_format = "yyyy-mm-dd"
    widths = {"方面": 24, "问题": 36, "整改措施": 40, "最新进展": 50, "责任领导": 24, "责任人": 24}
    for i, name in enumerate(header, start=1):
        sheet.column_dimensions[sheet.cell(row=1, column=i).column_letter].width = widths.get(name, 13)
    for row_cells in sheet.iter_rows(min_row=2):
        for cell in row_cells:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = "A2"
    summary = workbook.create_sheet("统计")
    append_row(summary, ["截至", cn_date(data.as_of)])
    append_row(summary, ["总体情况", data.summary])
    counts = data.stats.counts
    for label, value in (("整改措施", counts.total), ("已销号", counts.completed),
                         ("整改完成", counts.finished), ("长期坚持", counts.long_term),
                         ("暂未完成", counts.unfinished), ("逾期", counts.overdue)):
        summary.append([label, value])
    workbook.save(str(path))


def write_report(data: ReportData, fmt: str, path: Path) -> None:
    if fmt not in FORMATS:
        raise InputError(f"不支持的格式「{fmt}」；可用：{'、'.join(FORMATS)}", field="format")
    if fmt == "md":
        path.write_text(report_markdown(data), encoding="utf-8")
    elif fmt == "docx":
        write_docx(data, path)
    else:
        write_xlsx(data, path)
