"""Deadlines given as "N working days after feedback" follow the calendar.

Such a deadline is counted when the ledger is imported; over a year whose holidays are not known
yet it is counted Monday–Friday and marked provisional. When an admin enters (or removes)
holidays and working weekends, the deadlines of open measures are counted again: a deadline that
moves is changed through ``recompute_deadline`` (a history row with both dates), one that stays
only has its provisional mark set or cleared. Measures already submitted, verified or closed are
left alone, as are deadlines a leader has since extended (they are no longer counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.lifecycle import OPEN_STATES
from workflow.models import Measure, Person
from workflow.services.measures import mark_deadline_provisional, recompute_deadline
from workflow.workcalendar import Deadline, DeadlineRule, WorkCalendar

RECOMPUTE_COMMENT = "节假日安排录入后重新计算完成时限"


@dataclass(frozen=True)
class DeadlineChange:
    """What counting one measure's deadline again gives, against what it had."""

    measure_id: int
    seq: str | None
    title: str
    rule: DeadlineRule
    deadline_from: date | None
    deadline_to: date
    provisional_from: bool
    provisional_to: bool

    @property
    def moved(self) -> bool:
        return self.deadline_from != self.deadline_to

    def as_json(self) -> dict[str, Any]:
        return {"measure_id": self.measure_id, "seq": self.seq, "title": self.title,
                "rule": self.rule.as_json(),
                "deadline_from": self.deadline_from.isoformat() if self.deadline_from else None,
                "deadline_to": self.deadline_to.isoformat(), "moved": self.moved,
                "provisional_from": self.provisional_from, "provisional_to": self.provisional_to}

    def describe(self) -> str:
        """One line in Chinese, e.g. "措施 12（序号 3）2027-01-12 → 2027-01-13，不再是临时期限"."""
        name = f"措施 {self.measure_id}" + (f"（序号 {self.seq}）" if self.seq else " ")
        if self.moved:
            text = f"{name}{self.deadline_from} → {self.deadline_to}"
        else:
            text = f"{name}{self.deadline_to} 不变"
        if self.provisional_to:
            return text + "（仍为临时期限）"
        return text + ("，不再是临时期限" if self.provisional_from else "")


@dataclass(frozen=True)
class Recomputed:
    """The outcome of counting deadlines again: the changes and what is still provisional."""

    changes: list[DeadlineChange]
    still_provisional: int
    dry_run: bool = False

    @property
    def moved(self) -> list[DeadlineChange]:
        return [c for c in self.changes if c.moved]

    def as_json(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "moved": len(self.moved),
                "changes": [c.as_json() for c in self.changes],
                "still_provisional": self.still_provisional}

    def summary_lines(self, limit: int | None = None) -> list[str]:
        """What to tell the admin, in Chinese, naming at most ``limit`` measures per line;
        empty when nothing changed or is pending."""
        prefix = "试算（未写入）：将" if self.dry_run else "已"

        def listed(changes: list[DeadlineChange]) -> str:
            shown = changes if limit is None else changes[:limit]
            more = f" 等 {len(changes)} 项" if len(shown) < len(changes) else ""
            return "；".join(c.describe() for c in shown) + more

        lines = []
        if self.moved:
            lines.append(f"{prefix}重新计算 {len(self.moved)} 项措施的完成时限：{listed(self.moved)}")
        marked = [c for c in self.changes if not c.moved]
        if marked:
            lines.append(f"{prefix}更新 {len(marked)} 项措施的临时期限标记：{listed(marked)}")
        if self.still_provisional:
            lines.append(f"仍有 {self.still_provisional} 项未完成措施的完成时限为临时期限"
                         "（跨入尚未录入放假安排的年份）。")
        return lines


def plan_recompute(session: Session, calendar: WorkCalendar, *, lock: bool = False
                   ) -> Recomputed:
    """Count every open measure's "N working days after feedback" deadline on ``calendar``;
    report those whose day or provisional mark differs. Writes nothing; ``lock`` takes the rows'
    locks (PostgreSQL) so that the changes can be written without a conflict."""
    query = (select(Measure.id, Measure.seq, Measure.title, Measure.deadline,
                    Measure.deadline_provisional, Measure.deadline_counted_from,
                    Measure.deadline_workdays)
             .where(Measure.deadline_workdays.is_not(None),
                    Measure.deadline_counted_from.is_not(None),
                    Measure.state.in_([s.value for s in OPEN_STATES]))
             .order_by(Measure.id))
    if lock:
        query = query.with_for_update(of=Measure)
    counted: dict[DeadlineRule, Deadline] = {}  # a campaign's measures share a few rules
    changes: list[DeadlineChange] = []
    still_provisional = 0
    for mid, seq, title, deadline, provisional, counted_from, workdays in session.execute(query):
        assert counted_from is not None and workdays is not None  # the WHERE clause
        rule = DeadlineRule(counted_from, workdays)
        result = counted.get(rule)
        if result is None:
            result = counted[rule] = rule.apply(calendar)
        still_provisional += result.provisional
        if result.day != deadline or result.provisional != provisional:
            changes.append(DeadlineChange(mid, seq, title, rule, deadline, result.day,
                                          provisional, result.provisional))
    return Recomputed(changes, still_provisional)


def recompute_deadlines(session: Session, calendar: WorkCalendar, *, actor: Person | None,
                        now: datetime, dry_run: bool = False,
                        comment: str = RECOMPUTE_COMMENT) -> Recomputed:
    """Bring the deadlines counted from feedback in line with ``calendar`` (the caller's
    transaction; with ``dry_run`` only report). The caller passes the calendar as it now stands,
    with the policy file's ``[calendar]`` and the database entries (``load_calendar``)."""
    planned = plan_recompute(session, calendar, lock=not dry_run)
    if dry_run:
        return Recomputed(planned.changes, planned.still_provisional, dry_run=True)
    for change in planned.changes:
        if change.moved:
            recompute_deadline(session, change.measure_id, deadline=change.deadline_to,
                               provisional=change.provisional_to, actor=actor, comment=comment,
                               now=now)
        else:
            mark_deadline_provisional(session, change.measure_id, change.provisional_to)
    return planned
