"""Checking ledger rows (pure apart from loading the people index): a LedgerRow or the reasons."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.errors import RowError
from workflow.importers.ledger.dates import DateContext, DateReading, read_deadline
from workflow.importers.ledger.layout import HEADER_LABEL, SourceRow, text_of
from workflow.lifecycle import Kind
from workflow.models import Person
from workflow.workcalendar import Deadline, DeadlineRule

KIND_WORDS: Mapping[str, Kind] = {
    "立行立改": Kind.IMMEDIATE, "immediate": Kind.IMMEDIATE, "立即整改": Kind.IMMEDIATE,
    "限期整改": Kind.DEADLINE, "deadline": Kind.DEADLINE, "集中整改": Kind.DEADLINE,
    "长期坚持": Kind.LONG_TERM, "long_term": Kind.LONG_TERM, "长期整改": Kind.LONG_TERM,
    "长期建设": Kind.LONG_TERM, "持续整改": Kind.LONG_TERM,
}
RELATIVE_RE = re.compile(r"^(?:反馈后|反馈之日起|收到反馈后)?(\d{1,3})个?工作日(?:内)?$")

#: Turns "N working days after feedback" into its rule and deadline (the campaign's calendar and
#: feedback date).
RelativeDeadline = Callable[[int], tuple[DeadlineRule, Deadline]]


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
    #: How the deadline cell was read when not plainly ("按月底"), for the preview.
    deadline_how: str | None = None
    #: The 整改进展/完成情况 cell, kept as the measure's first progress note.
    note: str | None = None
    #: 协办部门: units assisting the 责任部门, in the cell's order
    assisting: tuple[str, ...] = ()


#: What separates the units of one 协办部门 cell: 、，,；; / and line breaks (and spaces).
ASSISTING_SPLIT = re.compile(r"[、，,；;/／\n\r\t ]+")


def split_units(cell: str) -> tuple[str, ...]:
    """The unit names of a 协办部门 cell, each once, in order."""
    return tuple(dict.fromkeys(name for name in ASSISTING_SPLIT.split(cell) if name))


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


@dataclass(frozen=True)
class _RowDeadline:
    kind: Kind | None
    deadline: date | None = None
    rule: DeadlineRule | None = None
    provisional: bool = False
    how: str | None = None
    #: The pattern that read the cell, for the preview's tally ("年月（月底）").
    pattern: str | None = None


def assisting_problems(unit: str, assisting: tuple[str, ...]) -> list[str]:
    """Why a 协办部门 cell is refused (nothing when it is fine)."""
    problems = [f"协办部门名称过长（{len(name)} 字，最多 200 字）" for name in assisting
                if len(name) > 200]
    if unit and unit in assisting:
        problems.append(f"协办部门不能与责任部门相同（{unit}）")
    return problems


class RowChecker:
    """Checks rows one by one against the people, the campaign's taken 序号 and its dates."""

    def __init__(self, people: PeopleIndex, taken_seqs: set[str], dates: DateContext,
                 relative: RelativeDeadline | None = None) -> None:
        self.people = people
        self.taken_seqs = taken_seqs
        self.dates = dates
        self.relative = relative
        self.seen: dict[str, int] = {}
        #: Pattern name → (rows read by it, first cell, its reading), for the preview.
        self.readings: dict[str, tuple[int, str, str]] = {}

    def check(self, source: SourceRow) -> LedgerRow | list[RowError]:
        """The row checked: a LedgerRow, or every reason it is refused."""
        errors: list[RowError] = []
        values = source.values

        def bad(key: str, reason: str) -> None:
            errors.append(RowError(source.row, HEADER_LABEL[key], reason,
                                   _shown_cell(values.get(key)) or None))

        seq = text_of(values.get("seq")) or None
        if seq is not None:
            if seq in self.seen:
                bad("seq", f"序号「{seq}」与第 {self.seen[seq]} 行重复")
            elif seq in self.taken_seqs:
                bad("seq", f"序号「{seq}」在该整改任务中已存在")
            else:
                self.seen[seq] = source.row
        texts = {k: text_of(values.get(k))
                 for k in ("area", "problem", "title", "unit", "note", "assisting")}
        assisting = split_units(texts["assisting"])
        for reason in assisting_problems(texts["unit"], assisting):
            bad("assisting", reason)
        for key in ("area", "problem", "title"):
            if not texts[key]:
                bad(key, f"{HEADER_LABEL[key]}为空" + _blank_hint(source, key))
        given = self._kind_and_deadline(values, bad)
        resolved: dict[str, int] = {}
        for key in ("leader", "owner"):
            found = self.people.resolve(text_of(values.get(key)))
            if isinstance(found, str):
                bad(key, f"{HEADER_LABEL[key]}{found}{_blank_hint(source, key)}"
                    if found == "为空" else found)
            else:
                resolved[key] = found
        if errors or given.kind is None:
            return errors
        if given.pattern is not None:
            self._tally(given.pattern, values.get("deadline"), given)
        return LedgerRow(source.row, seq, texts["area"], texts["problem"], texts["title"],
                         resolved["leader"], texts["unit"] or None, resolved["owner"],
                         given.deadline, given.kind, given.rule, given.provisional, given.how,
                         texts["note"] or None, assisting)

    def _tally(self, pattern: str, raw: Any, given: _RowDeadline) -> None:
        count, example, reading = self.readings.get(pattern, (0, "", ""))
        if not count:
            example = _shown_cell(raw)
            reading = DateReading(given.deadline, how=given.how).shown()
        self.readings[pattern] = (count + 1, example, reading)

    def _kind_and_deadline(self, values: Mapping[str, Any],
                           bad: Callable[[str, str], None]) -> _RowDeadline:
        kind_text = text_of(values.get("kind"))
        stated = KIND_WORDS.get(kind_text) if kind_text else None
        if kind_text and stated is None:
            bad("kind", f"未知整改类型「{kind_text}」（应为 立行立改、限期整改 或 长期坚持）")
        given = self._deadline(stated, values.get("deadline"), bad)
        return given if not kind_text or stated is not None else _RowDeadline(None)

    def _deadline(self, stated: Kind | None, raw: Any,
                  bad: Callable[[str, str], None]) -> _RowDeadline:
        if stated is Kind.LONG_TERM and text_of(raw) == "":
            return _RowDeadline(stated)
        try:
            counted = self._relative_deadline(raw)
            if counted is not None:
                rule, deadline = counted
                return _RowDeadline(stated or Kind.DEADLINE, deadline.day, rule,
                                    deadline.provisional, f"反馈后 {rule.workdays} 个工作日",
                                    "反馈后N个工作日")
            pattern, reading = read_deadline(raw, self.dates)
        except ValueError as exc:
            bad("deadline", str(exc))
            return _RowDeadline(stated)
        if reading.kind is not None and stated not in (None, reading.kind):
            bad("deadline", f"「{text_of(raw)}」只适用于{reading.kind.label}类措施")
            return _RowDeadline(stated)
        return _RowDeadline(stated or reading.kind or Kind.DEADLINE, reading.day, how=reading.how,
                            pattern=pattern)

    def _relative_deadline(self, raw: Any) -> tuple[DeadlineRule, Deadline] | None:
        """"反馈后10个工作日" → the rule and the deadline it gives, when the campaign's feedback
        date is known; ValueError if it is not; None if the cell is not a relative deadline."""
        match = RELATIVE_RE.match(text_of(raw).replace(" ", ""))
        if match is None:
            return None
        if self.relative is None:
            raise ValueError(f"「{text_of(raw)}」按反馈日期推算，但整改任务没有反馈日期"
                             "（导入时用 --feedback-date 指定）")
        return self.relative(int(match.group(1)))


def _blank_hint(source: SourceRow, key: str) -> str:
    """Why a blank cell stays blank when its neighbours came from merged blocks."""
    if not source.merged or key in source.merged:
        return ""
    filled = "、".join(HEADER_LABEL[k] for k in sorted(source.merged, key=list(HEADER_LABEL).index))
    return f"（本行的{filled}来自合并单元格，{HEADER_LABEL[key]}不在合并范围内，须逐行填写）"


def _shown_cell(raw: Any) -> str:
    if hasattr(raw, "isoformat"):
        return f"Excel 日期单元格 {raw.isoformat()[:10]}"
    return text_of(raw)
