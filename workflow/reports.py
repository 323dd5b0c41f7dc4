"""The official report (整改情况报告) as Word or Markdown, and the ledger (台账) as Excel.

The report takes the form of an official document (GB/T 9704-2012, ``workflow.gongwen``) and the
content order of the reports institutions write by hand: the title 关于…整改情况的报告, the
主送机关, an opening paragraph with the totals counted as the campaign's source document counts
them, 一、组织整改落实情况 (the campaign's own text, or the ledger's facts), 二、整改落实情况 with
each 方面 → 问题 (sub-problems under their parent) → 整改措施, 整改结果 and 整改情况 (the progress
texts as written), 三、下一步工作打算 (the campaign's own text, or what is left open), then the
落款 and the 成文日期. Nothing is said that the data does not hold. The Excel ledger has the
import's columns first, so an exported ledger imports again unchanged, and state, dates and the
latest progress after them (the importer ignores columns it does not know).
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow import gongwen
from workflow.errors import InputError, NotFound
from workflow.importers.ledger import HEADER_LABEL
from workflow.importers.report.parsed import Counting, Level, Result
from workflow.lifecycle import KIND_LABELS, STATE_LABELS, Action, State
from workflow.models import Campaign, HistoryEntry, Measure, Person, Problem, ProgressReport
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


@dataclass(frozen=True)
class CampaignFacts:
    """What the report says about the campaign besides its measures: the feedback date, the
    first responsible, and the texts and addressees kept per campaign."""

    feedback_date: date | None = None
    first_responsible: str | None = None
    report_to: str | None = None
    report_from: str | None = None
    organisation_text: str | None = None
    next_steps_text: str | None = None


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
    facts: CampaignFacts = field(default_factory=CampaignFacts)
    #: 回头看 recorded up to ``as_of``, and the relapses (反弹) they found, by measure
    rechecks: int = 0
    relapses: dict[int, int] = field(default_factory=dict)

    def person_email(self, pid: int | None) -> str:
        return self.people[pid][1] if pid is not None and pid in self.people else ""

    def records(self) -> list[MeasureRecord]:
        return [r for area in self.areas for p in area.problems for r in p.all_measures()]


@dataclass(frozen=True)
class ReportOptions:
    """The 主送机关, the 落款 and the 成文日期 of one export (``report --to/--from/--date``);
    unset ones come from the campaign, the date from the report's moment."""

    to: str | None = None
    sender: str | None = None
    on: date | None = None


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
    first = session.get(Person, campaign.first_responsible_id) \
        if campaign.first_responsible_id else None
    facts = CampaignFacts(campaign.feedback_date, first.name if first else None,
                          campaign.report_to, campaign.report_from, campaign.organisation_text,
                          campaign.next_steps_text)
    rechecks, relapses = _rechecks(session, campaign.id, now)
    return ReportData(campaign.id, campaign.title, as_utc(now), stats, summary, areas,
                      dict(progress), people, facts, rechecks, relapses)


def _rechecks(session: Session, campaign_id: int, now: datetime) -> tuple[int, dict[int, int]]:
    """How many 回头看 the campaign's measures had up to ``now``, and the relapses (反弹: a
    recheck that left the measure in progress) by measure."""
    rows = session.execute(
        select(HistoryEntry.measure_id, HistoryEntry.to_state)
        .join(Measure, Measure.id == HistoryEntry.measure_id)
        .where(Measure.campaign_id == campaign_id, HistoryEntry.action == Action.RECHECK.value,
               HistoryEntry.at <= as_utc(now))).all()
    relapses: dict[int, int] = defaultdict(int)
    for mid, to_state in rows:
        if to_state == State.IN_PROGRESS:
            relapses[mid] += 1
    return len(rows), dict(relapses)


def recheck_sentence(data: ReportData) -> str:
    """"开展回头看N项次，发现反弹M项次，已重新整改" (empty when there was none)."""
    if not data.rechecks:
        return ""
    relapsed = sum(data.relapses.values())
    if not relapsed:
        return f"已销号事项开展回头看{data.rechecks}项次，未发现反弹。"
    return (f"已销号事项开展回头看{data.rechecks}项次，发现反弹{relapsed}项次"
            f"（涉及{len(data.relapses)}项措施），均已重新打开整改。")


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


def official_title(campaign_title: str) -> str:
    """关于…整改情况的报告, without doubling what the campaign's title already says
    ("…反馈问题整改" → "关于…反馈问题整改情况的报告")."""
    return f"关于{gongwen.subject_of(campaign_title)}整改情况的报告"


def progress_text(items: list[Progress]) -> str:
    """整改情况: the progress texts as their authors wrote them, oldest first."""
    if not items:
        return "暂无整改进展报送。"
    parts = [p.text.strip() for p in items if p.text.strip()]
    return "".join(t if t[-1] in "。！？；.!?" else t + "。" for t in parts) or "暂无整改进展报送。"


def _paragraphs(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def opening(data: ReportData) -> str:
    """The opening paragraph: when the feedback came, the totals as of the report's day, and
    the formula that announces the report."""
    parts = []
    if data.facts.feedback_date is not None:
        parts.append(f"{cn_date(data.facts.feedback_date)}，收到{source_words(data.title)}意见。")
    parts.append(f"截至{cn_date(data.as_of)}，{data.summary}")
    parts.append(recheck_sentence(data))
    parts.append("现将整改情况报告如下。")
    return "".join(parts)


def organisation_paragraphs(data: ReportData) -> list[str]:
    """一、组织整改落实情况: the campaign's own text when set, else the ledger's facts (who is
    responsible, how the work was divided, what was verified and signed off)."""
    if data.facts.organisation_text and data.facts.organisation_text.strip():
        return _paragraphs(data.facts.organisation_text)
    records = data.records()
    counts = data.stats.counts
    problems = sum(len(a.problems) for a in data.areas)
    leaders = {r.leader_id for r in records if r.leader_id is not None}
    units = {r.unit for r in records if r.unit}
    reports = sum(len(items) for items in data.progress.values())
    sentences = []
    if data.facts.first_responsible:
        sentences.append(f"{data.facts.first_responsible}作为整改第一责任人，对整改工作负总责。")
    ledger = (f"对照反馈的{len(data.areas)}个方面{problems}个问题，建立整改台账，制定整改措施"
              f"{counts.total}项")
    # only what the ledger holds: imported measures may still lack a leader, unit or deadline
    assigned = sum(1 for r in records if r.leader_id is not None and r.unit
                   and r.owner_id is not None and (r.deadline is not None or r.kind == "long_term"))
    if assigned and assigned == len(records):
        ledger += "，逐项明确责任领导、责任部门、责任人和完成时限"
    elif assigned:
        ledger += f"，其中{assigned}项已明确责任领导、责任部门、责任人和完成时限"
    if leaders or units:
        ledger += f"，涉及责任领导{len(leaders)}人、责任部门{len(units)}个"
    sentences.append(ledger + "。")
    sentences.append(f"各责任部门累计报送整改进展{reports}次，已对账销号{counts.completed}项。")
    return ["".join(sentences)]


def next_steps_paragraphs(data: ReportData) -> list[str]:
    """三、下一步工作打算: the campaign's own text when set, else what the ledger says is left:
    the measures still open with their deadlines, and the long-term ones."""
    if data.facts.next_steps_text and data.facts.next_steps_text.strip():
        return _paragraphs(data.facts.next_steps_text)
    records = data.records()
    open_ones = [r for r in records if r.result_label == "暂未完成"]
    long_term = [r for r in records if r.result_label != "暂未完成" and r.result_label != "完成"]
    paragraphs = []
    if open_ones:
        listed = "；".join(
            f"{r.title}（{r.unit or '责任部门未定'}，"
            f"完成时限{cn_date(r.deadline) if r.deadline else '未定'}）" for r in open_ones)
        paragraphs.append(f"尚有{len(open_ones)}项整改措施正在整改：{listed}。")
    if long_term:
        listed = "；".join(r.title for r in long_term)
        paragraphs.append(f"{len(long_term)}项整改措施需长期坚持：{listed}。")
    if not paragraphs:
        paragraphs.append("各项整改措施均已整改完成。")
    return paragraphs


def _area_heading(n: int, title: str) -> str:
    """（一）反馈问题：…, unless the area's title names itself already ("关于…方面问题")."""
    if title.startswith("关于") or title.endswith("问题"):
        return f"（{cn_number(n)}）{title}"
    return f"（{cn_number(n)}）反馈问题：{title}"


def report_paragraphs(data: ReportData, options: ReportOptions | None = None
                      ) -> list[gongwen.Paragraph]:
    """The report as paragraphs in reading order, shared by the Word and Markdown writers (the
    unit and the date at the end are the writers' own)."""
    options = options or ReportOptions()
    P, R = gongwen.Paragraph, gongwen.Part
    to = options.to or data.facts.report_to
    shown = [P(R.TITLE, official_title(data.title)), P(R.BLANK)]
    if to:
        shown.append(P(R.ADDRESSEE, f"{to.rstrip('：:')}："))
    shown.append(P(R.BODY, opening(data)))
    shown.append(P(R.HEADING1, "一、组织整改落实情况"))
    shown.extend(P(R.BODY, text) for text in organisation_paragraphs(data))
    shown.append(P(R.HEADING1, "二、整改落实情况"))
    for a, area in enumerate(data.areas, start=1):
        shown.append(P(R.HEADING2, _area_heading(a, area.title)))
        for p, problem in enumerate(area.problems, start=1):
            shown.append(P(R.HEADING3, f"{p}.{problem.text}"))
            shown.extend(_measure_paragraphs(data, problem.text, problem.measures))
            for c, child in enumerate(problem.children, start=1):
                shown.append(P(R.HEADING4, f"（{c}）{child.text}"))
                shown.extend(_measure_paragraphs(data, child.text, child.all_measures()))
    shown.append(P(R.HEADING1, "三、下一步工作打算"))
    shown.extend(P(R.BODY, text) for text in next_steps_paragraphs(data))
    return shown


def _same(title: str, problem: str) -> bool:
    """A measure named after its problem (a report import does that): no 整改措施 line."""
    def plain(text: str) -> str:
        return text.strip().rstrip("。.；;")
    return plain(title) == plain(problem) or plain(problem).startswith(plain(title))


def _measure_paragraphs(data: ReportData, problem: str, measures: list[MeasureRecord]
                        ) -> list[gongwen.Paragraph]:
    P, R = gongwen.Paragraph, gongwen.Part
    shown: list[gongwen.Paragraph] = []
    many = len(measures) > 1
    for m, r in enumerate(measures, start=1):
        if many:
            shown.append(P(R.BODY, r.title, f"整改措施{m}："))
        elif not _same(r.title, problem):
            shown.append(P(R.BODY, r.title, "整改措施："))
        shown.append(P(R.BODY, r.result_label, "整改结果："))
        shown.append(P(R.BODY, progress_text(data.progress.get(r.id, [])), "整改情况："))
    return shown


def signature(data: ReportData, options: ReportOptions | None = None) -> tuple[str | None, str]:
    """The 落款 (unit, if known) and the 成文日期 in Arabic numerals."""
    options = options or ReportOptions()
    sender = options.sender or data.facts.report_from
    return sender, cn_date(options.on or local_date(data.as_of))


def report_markdown(data: ReportData, options: ReportOptions | None = None) -> str:
    marks = {gongwen.Part.TITLE: "# ", gongwen.Part.HEADING1: "## ", gongwen.Part.HEADING2: "### ",
             gongwen.Part.HEADING3: "#### ", gongwen.Part.HEADING4: "##### "}
    lines: list[str] = []
    for paragraph in report_paragraphs(data, options):
        if paragraph.part == gongwen.Part.BLANK:
            continue
        mark = marks.get(paragraph.part)
        if mark is not None:
            lines.append(mark + _md_escape(paragraph.text))
        elif paragraph.label:
            lines.append(f"**{paragraph.label}**{_md_escape(paragraph.text)}")
        else:
            lines.append(_md_escape(paragraph.text))
        lines.append("")
    sender, day = signature(data, options)
    if sender:
        lines.append(f"<p align=\"right\">{_html_escape(sender)}<br>{day}</p>")
    else:
        lines.append(f"<p align=\"right\">{day}</p>")
    lines.append("")
    return "\n".join(lines)


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _md_escape(text: str) -> str:
    """User text must not turn into markup (links, images, HTML)."""
    for ch in ("\\", "<", ">", "[", "]", "*", "_", "`"):
        text = text.replace(ch, "\\" + ch)
    return text


def report_docx(data: ReportData, options: ReportOptions | None = None) -> bytes:
    """The report as Word in the form of an official document (``workflow.gongwen``)."""
    sender, day = signature(data, options)
    return gongwen.write(report_paragraphs(data, options), title=official_title(data.title),
                         signer=sender, date_text=day)


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


def write_xlsx(data: ReportData, path: Path | IO[bytes]) -> None:
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
    append_row(summary, ["报告", official_title(data.title)])
    append_row(summary, ["截至", cn_date(data.as_of)])
    append_row(summary, ["总体情况", data.summary])
    counts = data.stats.counts
    for label, value in (("整改措施", counts.total), ("已销号", counts.completed),
                         ("整改完成", counts.finished), ("长期坚持", counts.long_term),
                         ("暂未完成", counts.unfinished), ("逾期", counts.overdue),
                         ("回头看（项次）", data.rechecks),
                         ("反弹（项次）", sum(data.relapses.values()))):
        summary.append([label, value])
    workbook.save(path if not isinstance(path, Path) else str(path))


def render_report(data: ReportData, fmt: str, options: ReportOptions | None = None) -> bytes:
    """The report (md, docx) or the ledger (xlsx) as bytes."""
    if fmt not in FORMATS:
        raise InputError(f"不支持的格式「{fmt}」；可用：{'、'.join(FORMATS)}", field="format")
    if fmt == "md":
        return report_markdown(data, options).encode("utf-8")
    if fmt == "docx":
        return report_docx(data, options)
    buffer = io.BytesIO()
    write_xlsx(data, buffer)
    return buffer.getvalue()


def write_report(data: ReportData, fmt: str, path: Path,
                 options: ReportOptions | None = None) -> None:
    """Render first, then write: a refused export leaves no file behind."""
    path.write_bytes(render_report(data, fmt, options))
