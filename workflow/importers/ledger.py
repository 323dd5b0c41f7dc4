"""Importing a ledger (台账) from Excel or CSV: all rows or none.

Columns (header row in Chinese): 序号, 方面, 问题, 整改措施, 责任领导, 责任部门, 责任人, 完成时限,
整改类型. Every bad row is reported with its row number and the reason; nothing is written then.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from workflow import events
from workflow.calendar_store import load_calendar
from workflow.errors import ImportRejected, InputError, RowError
from workflow.history import GENESIS
from workflow.lifecycle import Kind, State, SystemAction
from workflow.models import Area, Campaign, HistoryEntry, Measure, Person, Problem, Unit
from workflow.progress import SILENT, Reporter
from workflow.services.measures import new_history_entry
from workflow.workcalendar import Deadline, DeadlineRule, WorkCalendar

#: Canonical column → accepted header spellings.
COLUMNS: Mapping[str, tuple[str, ...]] = {
    "seq": ("序号", "编号"),
    "area": ("方面", "问题方面", "反馈问题"),
    "problem": ("问题", "问题表现", "存在问题", "反馈问题具体表现"),
    "title": ("整改措施", "整改任务", "措施"),
    "leader": ("责任领导", "分管领导"),
    "unit": ("责任部门", "责任单位", "责任处室", "责任科室"),
    "owner": ("责任人", "具体责任人"),
    "deadline": ("完成时限", "整改时限", "完成时间"),
    "kind": ("整改类型", "类型"),
}
REQUIRED = ("area", "problem", "title", "leader", "owner")
HEADER_LABEL = {key: names[0] for key, names in COLUMNS.items()}

KIND_WORDS: Mapping[str, Kind] = {
    "立行立改": Kind.IMMEDIATE, "immediate": Kind.IMMEDIATE, "立即整改": Kind.IMMEDIATE,
    "限期整改": Kind.DEADLINE, "deadline": Kind.DEADLINE, "集中整改": Kind.DEADLINE,
    "长期坚持": Kind.LONG_TERM, "long_term": Kind.LONG_TERM, "长期整改": Kind.LONG_TERM,
    "长期建设": Kind.LONG_TERM, "持续整改": Kind.LONG_TERM,
}
NO_DEADLINE_WORDS = {"长期", "长期坚持", "持续", "持续推进", "长期整改"}
DATE_RES = (
    re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)
MONTH_END_RE = re.compile(r"^(\d{4})年(\d{1,2})月(?:底|末)?$")


@dataclass(frozen=True)
class LedgerRow:
    """One validated row of a ledger file."""

    row: int
    seq: str | None
    area: str
    problem: str
    title: str
    leader_id: int
    unit: str | None
    owner_id: int
    deadline: date | None
    kind: Kind
    #: Set when the cell said "反馈后N个工作日": the deadline is counted from the feedback date.
    deadline_rule: DeadlineRule | None = None
    #: The count crossed a year whose holidays are not known yet (Monday–Friday fallback).
    deadline_provisional: bool = False


@dataclass
class ImportSummary:
    campaign_id: int | None
    areas: int = 0
    problems: int = 0
    measures: int = 0
    dry_run: bool = False
    rows: list[LedgerRow] = field(default_factory=list)

    @property
    def provisional(self) -> int:
        """How many measures got a provisional deadline (counted over a fallback year)."""
        return sum(r.deadline_provisional for r in self.rows)

    def as_json(self) -> dict[str, Any]:
        return {"campaign_id": self.campaign_id, "areas": self.areas, "problems": self.problems,
                "measures": self.measures, "dry_run": self.dry_run,
                "provisional": self.provisional}


# ---------------------------------------------------------------- reading files


def read_table(path: Path) -> tuple[list[str], Iterator[tuple[int, list[Any]]]]:
    """The header and (row number, cells) of an xlsx first sheet or a UTF-8 CSV."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise InputError(f"文件不存在：{path}", field="file")
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path)
    if suffix == ".csv":
        return _read_csv(path)
    raise InputError(f"不支持的文件格式「{suffix}」：请用 .xlsx 或 UTF-8 编码的 .csv", field="file")


def _read_xlsx(path: Path) -> tuple[list[str], Iterator[tuple[int, list[Any]]]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise InputError(f"无法读取 Excel 文件 {path.name}：{exc}", field="file") from exc
    sheet = workbook.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header = next(rows, None)
    if header is None:
        workbook.close()
        raise InputError(f"{path.name} 的第一个工作表是空的", field="file")

    def body() -> Iterator[tuple[int, list[Any]]]:
        try:
            for number, values in enumerate(rows, start=2):
                yield number, list(values)
        finally:
            workbook.close()

    return [_text(h) for h in header], body()


def _read_csv(path: Path) -> tuple[list[str], Iterator[tuple[int, list[Any]]]]:
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name} 不是 UTF-8 编码；请在 Excel 中另存为「CSV UTF-8」",
                         field="file") from exc
    reader = csv.reader(content.splitlines())
    header = next(reader, None)
    if header is None:
        raise InputError(f"{path.name} 是空文件", field="file")
    return [h.strip() for h in header], ((n, list(r)) for n, r in enumerate(reader, start=2))


# ---------------------------------------------------------------- validating rows (pure)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def map_header(header: Sequence[str], source: str) -> dict[str, int]:
    """Column key → index; raise with the missing columns named."""
    index: dict[str, int] = {}
    for position, name in enumerate(header):
        for key, spellings in COLUMNS.items():
            if name.replace(" ", "") in spellings and key not in index:
                index[key] = position
    missing = [HEADER_LABEL[k] for k in REQUIRED if k not in index]
    if missing:
        raise InputError(f"{source} 的表头缺少列：{'、'.join(missing)}（第 1 行应为："
                         f"{'、'.join(HEADER_LABEL.values())}）", field="header")
    return index


def parse_deadline(value: Any) -> date | None:
    """A date from a cell; None for an explicit long-term word; ValueError if not a date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value).replace(" ", "")
    if not text:
        raise ValueError("完成时限为空")
    if text in NO_DEADLINE_WORDS:
        return None
    for pattern in DATE_RES:
        match = pattern.match(text)
        if match:
            year, month, day = (int(g) for g in match.groups())
            try:
                return date(year, month, day)
            except ValueError:
                raise ValueError(f"日期「{text}」不存在") from None
    match = MONTH_END_RE.match(text)
    if match:
        year, month = int(match.group(1)), int(match.group(2))
        if not 1 <= month <= 12:
            raise ValueError(f"日期「{text}」不存在")
        next_first = date(year + month // 12, month % 12 + 1, 1)
        return date.fromordinal(next_first.toordinal() - 1)
    raise ValueError(f"无法识别的日期「{text}」（应为 2026-12-31 或 2026年12月31日）")


@dataclass
class PeopleIndex:
    """Known people by lower-case email and by name, for resolving ledger cells."""

    by_email: dict[str, int]
    by_name: dict[str, list[int]]

    @classmethod
    def load(cls, session: Session) -> PeopleIndex:
        by_email: dict[str, int] = {}
        by_name: dict[str, list[int]] = {}
        for pid, name, email, active in session.execute(
                select(Person.id, Person.name, Person.email, Person.active)):
            if not active:
                continue
            by_email[email.lower()] = pid
            by_name.setdefault(name, []).append(pid)
        return cls(by_email, by_name)

    def resolve(self, cell: str) -> int | str:
        """The person's id, or the reason the cell names nobody."""
        if not cell:
            return "为空"
        if "@" in cell:
            return self.by_email.get(cell.lower(), f"未知人员「{cell}」（请先添加该用户）")
        ids = self.by_name.get(cell, [])
        if len(ids) == 1:
            return ids[0]
        if ids:
            return f"有 {len(ids)} 人名为「{cell}」，请改用邮箱"
        return f"未知人员「{cell}」（请先添加该用户，或改用邮箱）"


def _cell(values: list[Any], index: Mapping[str, int], key: str) -> Any:
    position = index.get(key)
    return values[position] if position is not None and position < len(values) else None


RELATIVE_RE = re.compile(r"^(?:反馈后|反馈之日起|收到反馈后)?(\d{1,3})个?工作日(?:内)?$")


def _relative_deadline(raw: Any, relative: RelativeDeadline | None
                       ) -> tuple[DeadlineRule, Deadline] | None:
    """"反馈后10个工作日" → the rule and the deadline it gives, when the campaign's feedback
    date is known; ValueError if it is not; None if the cell is not a relative deadline at all."""
    match = RELATIVE_RE.match(_text(raw).replace(" ", ""))
    if match is None:
        return None
    if relative is None:
        raise ValueError(f"「{_text(raw)}」按反馈日期推算，但整改任务没有反馈日期"
                         "（导入时用 --feedback-date 指定）")
    return relative(int(match.group(1)))


#: Turns "N working days after feedback" into its rule and deadline (the campaign's calendar and
#: feedback date).
RelativeDeadline = Callable[[int], tuple[DeadlineRule, Deadline]]


@dataclass(frozen=True)
class _RowDeadline:
    kind: Kind | None
    deadline: date | None = None
    rule: DeadlineRule | None = None
    provisional: bool = False


def _row_kind_and_deadline(values: list[Any], index: Mapping[str, int],
                           bad: Callable[[str, str], None],
                           relative: RelativeDeadline | None = None) -> _RowDeadline:
    kind_text = _text(_cell(values, index, "kind"))
    kind = KIND_WORDS.get(kind_text) if kind_text else Kind.DEADLINE
    if kind is None:
        bad("kind", f"未知整改类型「{kind_text}」（应为 立行立改、限期整改 或 长期坚持）")
    raw = _cell(values, index, "deadline")
    if kind is Kind.LONG_TERM and _text(raw) == "":
        return _RowDeadline(kind)
    try:
        counted = _relative_deadline(raw, relative)
        if counted is not None:
            rule, deadline = counted
            return _RowDeadline(kind, deadline.day, rule, deadline.provisional)
        day = parse_deadline(raw)
    except ValueError as exc:
        bad("deadline", str(exc))
        return _RowDeadline(kind)
    if day is None and kind is not Kind.LONG_TERM:
        bad("deadline", f"「{_text(raw)}」只适用于长期坚持类措施")
    return _RowDeadline(kind, day)


def validate_row(number: int, values: list[Any], index: Mapping[str, int], people: PeopleIndex,
                 taken_seqs: set[str], seen: dict[str, int],
                 relative: RelativeDeadline | None = None) -> LedgerRow | list[RowError]:
    """One row checked: a LedgerRow, or every reason it is refused. ``seen`` collects 序号."""
    errors: list[RowError] = []

    def bad(key: str, reason: str) -> None:
        errors.append(RowError(number, HEADER_LABEL[key], reason))

    seq = _text(_cell(values, index, "seq")) or None
    if seq is not None:
        if seq in seen:
            bad("seq", f"序号「{seq}」与第 {seen[seq]} 行重复")
        elif seq in taken_seqs:
            bad("seq", f"序号「{seq}」在该整改任务中已存在")
        else:
            seen[seq] = number
    texts = {k: _text(_cell(values, index, k)) for k in ("area", "problem", "title", "unit")}
    for key in ("area", "problem", "title"):
        if not texts[key]:
            bad(key, f"{HEADER_LABEL[key]}为空")
    given = _row_kind_and_deadline(values, index, bad, relative)
    resolved: dict[str, int] = {}
    for key in ("leader", "owner"):
        found = people.resolve(_text(_cell(values, index, key)))
        if isinstance(found, str):
            bad(key, f"{HEADER_LABEL[key]}{found}" if found == "为空" else found)
        else:
            resolved[key] = found
    if errors or given.kind is None:
        return errors
    return LedgerRow(number, seq, texts["area"], texts["problem"], texts["title"],
                     resolved["leader"], texts["unit"] or None, resolved["owner"], given.deadline,
                     given.kind, given.rule, given.provisional)


def validate_rows(rows: Iterable[tuple[int, list[Any]]], index: Mapping[str, int],
                  people: PeopleIndex, taken_seqs: set[str],
                  relative: RelativeDeadline | None = None
                  ) -> tuple[list[LedgerRow], list[RowError]]:
    """Check every row; return the good rows and every error (pure, no I/O)."""
    good: list[LedgerRow] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for number, values in rows:
        if all(_text(v) == "" for v in values):
            continue
        checked = validate_row(number, values, index, people, taken_seqs, seen, relative)
        if isinstance(checked, LedgerRow):
            good.append(checked)
        else:
            errors.extend(checked)
    return good, errors


# ---------------------------------------------------------------- writing (service)


def _campaign(session: Session, title: str, now: datetime) -> Campaign:
    title = title.strip()
    if not title:
        raise InputError("整改任务名称不能为空", field="campaign")
    campaign = session.scalar(select(Campaign).where(Campaign.title == title))
    if campaign is None:
        campaign = Campaign(title=title, created_at=now)
        session.add(campaign)
        session.flush()
    return campaign


def import_ledger(session: Session, path: Path, *, campaign_title: str | None, now: datetime,
                  dry_run: bool = False, feedback_date: date | None = None,
                  calendar: WorkCalendar | None = None,
                  reporter: Reporter = SILENT) -> ImportSummary:
    """Import a ledger file into a campaign (new or existing); all rows or none.

    ``feedback_date`` (or the existing campaign's) anchors deadlines written as
    "反馈后N个工作日", counted on ``calendar`` (default: the stored calendar overrides).
    """
    header, body = read_table(path)
    reporter.phase("校验台账", total=None)
    body = _reported(body, reporter)
    index = map_header(header, path.name)
    title = campaign_title or path.stem
    existing = session.scalar(select(Campaign).where(Campaign.title == title.strip()))
    taken: set[str] = set()
    if existing is not None:
        taken = {seq for seq in session.scalars(select(Measure.seq).where(
            Measure.campaign_id == existing.id)) if seq is not None}
    anchor = feedback_date or (existing.feedback_date if existing is not None else None)
    relative: RelativeDeadline | None = None
    if anchor is not None:
        days = calendar or load_calendar(session)
        relative = functools.partial(_after_feedback, days, anchor)
    good, errors = validate_rows(body, index, PeopleIndex.load(session), taken, relative)
    if errors:
        raise ImportRejected(path.name, errors)
    if not good:
        raise InputError(f"{path.name} 中没有任何数据行", field="file")
    if dry_run:
        return _count_only(session, existing, good)
    reporter.phase("写入台账", total=len(good))
    campaign = _campaign(session, title, now)
    if feedback_date is not None:
        campaign.feedback_date = feedback_date
    summary = write_rows(session, campaign, good, now)
    reporter.advance(len(good))
    return summary


def _reported(rows: Iterator[tuple[int, list[Any]]], reporter: Reporter
              ) -> Iterator[tuple[int, list[Any]]]:
    """The rows, telling ``reporter`` every 500 (a bar needs no finer steps)."""
    pending = 0
    for row in rows:
        yield row
        pending += 1
        if pending == 500:
            reporter.advance(pending)
            pending = 0
    reporter.advance(pending)


def _after_feedback(calendar: WorkCalendar, feedback: date, n: int
                    ) -> tuple[DeadlineRule, Deadline]:
    rule = DeadlineRule(feedback, n)
    return rule, rule.apply(calendar)


def _count_only(session: Session, campaign: Campaign | None,
                rows: Sequence[LedgerRow]) -> ImportSummary:
    return ImportSummary(
        campaign_id=campaign.id if campaign else None,
        areas=len({r.area for r in rows}),
        problems=len({(r.area, r.problem) for r in rows}),
        measures=len(rows), dry_run=True, rows=list(rows))


#: Rows per INSERT ... RETURNING: about one of SQLAlchemy's insertmanyvalues batches.
RETURNING_CHUNK = 500


def _insert_ids(session: Session, model: type[Area | Problem | Measure],
                values: Sequence[dict[str, Any]], key_columns: tuple[str, ...],
                lookup: Executable) -> list[int]:
    """Insert ``values`` and return their new ids in the same order.

    SQLite cannot batch INSERT ... RETURNING in parameter order (SQLAlchemy sends one statement
    per row there), so on SQLite the rows go in as one executemany and ``lookup`` reads
    ``key_columns`` + id back: safe because SQLite has one writer at a time. Elsewhere RETURNING
    is used, in chunks, because within one call SQLAlchemy splices each batch's rows onto all
    before it (quadratic for a 50,000-row ledger).
    """
    table = cast(Table, model.__table__)
    if session.get_bind().dialect.name == "sqlite":
        session.execute(insert(table), values)
        found = {tuple(row[:-1]): row[-1] for row in session.execute(lookup)}
        return [found[tuple(v[c] for c in key_columns)] for v in values]
    ids: list[int] = []
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    for start in range(0, len(values), RETURNING_CHUNK):
        ids.extend(session.scalars(statement, values[start:start + RETURNING_CHUNK]))
    return ids


def write_rows(session: Session, campaign: Campaign, rows: Sequence[LedgerRow],
               now: datetime) -> ImportSummary:
    """Insert areas, problems, units, measures and their first history rows in bulk."""
    areas = {a.title: a.id for a in session.scalars(
        select(Area).where(Area.campaign_id == campaign.id))}
    next_area = len(areas)
    new_areas: list[dict[str, Any]] = []
    for row in rows:
        if row.area not in areas:
            areas[row.area] = -1
            new_areas.append({"campaign_id": campaign.id, "position": next_area,
                              "title": row.area})
            next_area += 1
    if new_areas:
        ids = _insert_ids(session, Area, new_areas, ("title",),
                          select(Area.title, Area.id).where(Area.campaign_id == campaign.id))
        for values, new_id in zip(new_areas, ids, strict=True):
            areas[values["title"]] = new_id

    problems: dict[tuple[int, str], int] = {
        (p.area_id, p.text): p.id for p in session.scalars(
            select(Problem).join(Area).where(Area.campaign_id == campaign.id))}
    new_problems: list[dict[str, Any]] = []
    for row in rows:
        key = (areas[row.area], row.problem)
        if key not in problems:
            problems[key] = -1
            new_problems.append({"area_id": key[0], "position": len(problems), "text": row.problem})
    if new_problems:
        ids = _insert_ids(session, Problem, new_problems, ("area_id", "text"),
                          select(Problem.area_id, Problem.text, Problem.id)
                          .where(Problem.area_id.in_(sorted({p["area_id"] for p in new_problems})))
                          .order_by(Problem.id))
        for values, new_id in zip(new_problems, ids, strict=True):
            problems[(values["area_id"], values["text"])] = new_id

    units = {u.name: u.id for u in session.scalars(select(Unit))}
    for name in sorted({r.unit for r in rows if r.unit and r.unit not in units}):
        units[name] = session.execute(insert(Unit).values(name=name).returning(Unit.id)).scalar_one()

    start = session.scalar(select(Measure.position).where(Measure.campaign_id == campaign.id)
                           .order_by(Measure.position.desc()).limit(1)) or 0
    measure_values = [
        {"campaign_id": campaign.id, "problem_id": problems[(areas[r.area], r.problem)],
         "position": start + i + 1, "seq": r.seq, "title": r.title, "kind": r.kind.value,
         "state": State.ASSIGNED.value, "deadline": r.deadline, "original_deadline": r.deadline,
         "deadline_provisional": r.deadline_provisional,
         "deadline_workdays": r.deadline_rule.workdays if r.deadline_rule else None,
         "deadline_counted_from": r.deadline_rule.counted_from if r.deadline_rule else None,
         "owner_id": r.owner_id, "leader_id": r.leader_id,
         "unit_id": units[r.unit] if r.unit else None, "version": 1,
         "created_at": now, "state_changed_at": now, "next_reminder_at": now}
        for i, r in enumerate(rows)
    ]
    measure_ids = _insert_ids(session, Measure, measure_values, ("position",),
                              select(Measure.position, Measure.id).where(
                                  Measure.campaign_id == campaign.id, Measure.position > start))
    history = [
        new_history_entry(measure_id=mid, seq=1, action=SystemAction.CREATE.value, from_state=None,
                          to_state=State.ASSIGNED.value, actor_id=None, on_behalf_of_id=None,
                          comment=None, data={"row": r.row}, at=now, prev_hash=GENESIS)
        for mid, r in zip(measure_ids, rows, strict=True)
    ]
    session.execute(insert(cast(Table, HistoryEntry.__table__)), history)
    events.publish(session, [
        events.MeasureChanged(measure_id=mid, action=SystemAction.CREATE.value, from_state=None,
                              to_state=State.ASSIGNED.value, actor_id=None, on_behalf_of_id=None,
                              at=now)
        for mid in measure_ids
    ])
    summary = _count_only(session, campaign, rows)
    summary.dry_run = False
    return summary
