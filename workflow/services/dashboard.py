"""The figures by unit, leader, area or campaign that ``GET /api/stats`` and ``/dashboard``
show: the measures a reader may see, counted by the rules of ``workflow.stats``.

Scope first, then counting: the records are cut to what ``Scope`` lets the reader see before a
group is formed, so a group (another unit's name, another leader's) the reader may not see never
appears, and a group's figures never include measures outside the reader's scope.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.errors import InputError
from workflow.lifecycle import OPEN_STATES, State
from workflow.models import Campaign, Measure, Person, Unit
from workflow.reminders import WorkdayIndex
from workflow.services.digest import current_records
from workflow.services.visibility import Scope
from workflow.services.worklist import WorkSection, my_work
from workflow.stats import DUE_WINDOW, NO_UNIT, STAGNATION, Counts, MeasureRecord, count_by
from workflow.timeutil import local_date

#: What the figures may be grouped by, and the word for it.
GROUPINGS: dict[str, str] = {"unit": "部门", "leader": "责任领导", "area": "方面",
                             "campaign": "整改任务"}
NO_LEADER = "（未指定责任领导）"


class BadGrouping(InputError):
    """Raised when the figures are asked for grouped by something there is no grouping for."""

    def __init__(self, by: object) -> None:
        self.by = by
        choices = "、".join(f"{key}（{word}）" for key, word in GROUPINGS.items())
        super().__init__(f"参数 by 应为 {choices} 之一，收到 {by!r}。", field="by")


def visible_records(session: Session, scope: Scope) -> list[MeasureRecord]:
    """The measures as they stand now that ``scope`` covers, in ledger order."""
    records = current_records(session)
    condition = scope.condition()
    if condition is None:
        return records
    visible = set(session.scalars(select(Measure.id).where(condition)))
    return [r for r in records if r.id in visible]


def stats_rows(session: Session, scope: Scope, by: str, today: date, days: WorkdayIndex, *,
               stagnation: int = STAGNATION) -> list[dict[str, Any]]:
    """One row per group of the measures ``scope`` covers: the group's name under ``by``,
    then ``total``, ``closed``, ``in_progress``, ``overdue``, ``completion_rate``,
    ``on_time_rate`` and the rest of ``Counts.as_json``."""
    if by not in GROUPINGS:
        raise BadGrouping(by)
    return rows_of(session, visible_records(session, scope), by, today, days,
                   stagnation=stagnation)


def rows_of(session: Session, records: list[MeasureRecord], by: str, today: date,
            days: WorkdayIndex, *, stagnation: int = STAGNATION) -> list[dict[str, Any]]:
    """``stats_rows`` of records already cut to the reader's scope."""
    if by not in GROUPINGS:
        raise BadGrouping(by)
    key: Callable[[MeasureRecord], Any] = {
        "unit": lambda r: r.unit or NO_UNIT,
        "leader": lambda r: r.leader_id,
        "area": lambda r: r.area,
        "campaign": lambda r: r.campaign_id,
    }[by]
    groups = count_by(records, key, today, days, stagnation=stagnation)
    names, extra = _names(session, by, list(groups))
    rows = [{by: names[group], **extra.get(group, {}), **_figures(counts)}
            for group, counts in groups.items()]
    if by in ("unit", "leader"):  # areas and campaigns keep the ledger's order
        rows.sort(key=lambda row: str(row[by]))
    return rows


def _figures(counts: Counts) -> dict[str, Any]:
    return {"total": counts.total, "closed": counts.completed,
            "in_progress": counts.by_state[State.IN_PROGRESS.value],
            "overdue": counts.overdue, **{k: v for k, v in counts.as_json().items()
                                          if k not in ("total", "overdue")}}


def _names(session: Session, by: str, groups: list[Any]
           ) -> tuple[dict[Any, str], dict[Any, dict[str, Any]]]:
    """Each group's name, and what else identifies it (a leader's email, a campaign's id)."""
    if by == "leader":
        people = {pid: (name, email) for pid, name, email in session.execute(
            select(Person.id, Person.name, Person.email).where(
                Person.id.in_([g for g in groups if g is not None])))}
        return ({g: people[g][0] if g in people else NO_LEADER for g in groups},
                {g: {"leader_email": people[g][1] if g in people else None} for g in groups})
    if by == "campaign":
        titles = {cid: title for cid, title in session.execute(
            select(Campaign.id, Campaign.title).where(Campaign.id.in_(groups)))}
        return {g: titles[g] for g in groups}, {g: {"campaign_id": g} for g in groups}
    return {g: g for g in groups}, {}


# ------------------------------------------------------------------ the dashboard (/dashboard)

#: The dashboard's breakdowns, in the order shown: (grouping, title, what the bar says). Add a
#: row here (and a grouping in ``GROUPINGS``, with its ledger filter in ``_GROUP_FILTERS``) for
#: another section.
DASHBOARD_SECTIONS: list[tuple[str, str, str]] = [
    ("unit", "各责任部门", "完成与逾期，按责任部门"),
    ("leader", "各责任领导", "完成与逾期，按责任领导分管的措施"),
    ("area", "各方面", "完成与逾期，按反馈问题的方面"),
]
TREND_WEEKS = 8
#: Longest group name drawn beside a bar; the whole name is in the bar's tooltip.
SHORT_NAME = 10


@dataclass(frozen=True)
class Figure:
    """One group's bar: its counts, the shares the bar is drawn with (percent of the group's
    total) and the ledger filters of the measures behind each number."""

    name: str
    total: int
    closed: int
    overdue: int
    filters: dict[str, str]

    @property
    def short(self) -> str:
        return self.name if len(self.name) <= SHORT_NAME else self.name[:SHORT_NAME - 1] + "…"

    @property
    def other(self) -> int:
        """Neither signed off nor overdue (in hand, due later, waiting for review)."""
        return self.total - self.closed - self.overdue

    def share(self, part: int) -> float:
        return round(100 * part / self.total, 2) if self.total else 0.0

    @property
    def rate_text(self) -> str:
        return f"{self.share(self.closed):.0f}%" if self.total else "—"

    def link(self, **more: str) -> dict[str, str]:
        """The filters of this group's measures, narrowed by ``more``."""
        return {**self.filters, **more}


@dataclass(frozen=True)
class Breakdown:
    key: str
    title: str
    hint: str
    figures: list[Figure]


@dataclass(frozen=True)
class Week:
    """One week (Monday to Sunday) of the trend: sign-offs in it, deadlines in it, and how
    many of those deadlines are passed with the work still with the owner."""

    start: date
    end: date
    closed: int
    due: int
    overdue: int

    @property
    def label(self) -> str:
        return f"{self.start.month}月{self.start.day}日"

    @property
    def range_text(self) -> str:
        return f"{self.start.isoformat()} 至 {self.end.isoformat()}"

    @property
    def closed_filters(self) -> dict[str, str]:
        return {"closed_from": self.start.isoformat(), "closed_to": self.end.isoformat()}

    @property
    def due_filters(self) -> dict[str, str]:
        return {"due_from": self.start.isoformat(), "due_to": self.end.isoformat()}


@dataclass(frozen=True)
class DashboardView:
    """What ``/dashboard`` shows one reader: the figures of the measures in their scope."""

    today: date
    totals: Figure
    due_soon: int
    due_limit: date  # the last day of the due-soon window
    breakdowns: list[Breakdown]
    weeks: list[Week]
    needs: list[WorkSection]

    @property
    def due_soon_filters(self) -> dict[str, str]:
        return {"open": "1", "due_from": self.today.isoformat(),
                "due_to": self.due_limit.isoformat()}

    @property
    def week_peak(self) -> int:
        return max([1, *(max(w.closed, w.due) for w in self.weeks)])


def dashboard_view(session: Session, scope: Scope, person_id: int, today: date,
                   days: WorkdayIndex, *, stagnation: int = STAGNATION,
                   weeks: int = TREND_WEEKS) -> DashboardView:
    """The dashboard for one reader: totals, one breakdown per ``DASHBOARD_SECTIONS`` row (the
    same rows as ``GET /api/stats``), the last ``weeks`` weeks, and what waits for the reader."""
    records = visible_records(session, scope)
    whole = count_by(records, lambda r: None, today, days,
                     stagnation=stagnation).get(None, Counts())
    totals = Figure("全部", whole.total, whole.completed, whole.overdue, {})
    breakdowns = []
    for by, title, hint in DASHBOARD_SECTIONS:
        rows = rows_of(session, records, by, today, days, stagnation=stagnation)
        filters = _GROUP_FILTERS[by](session, rows)
        breakdowns.append(Breakdown(by, title, hint, [
            Figure(str(row[by]), row["total"], row["closed"], row["overdue"], found)
            for row, found in zip(rows, filters, strict=True)]))
    return DashboardView(today, totals, whole.due_soon, days.nth_after(today, DUE_WINDOW),
                         breakdowns,
                         trend(records, today, weeks), my_work(session, person_id, today))


def trend(records: list[MeasureRecord], today: date, weeks: int = TREND_WEEKS) -> list[Week]:
    """The last ``weeks`` weeks up to this one, oldest first (pure)."""
    monday = today - timedelta(days=today.weekday())
    starts = [monday - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]
    closed: Counter[date] = Counter()
    due: Counter[date] = Counter()
    late: Counter[date] = Counter()
    first = starts[0]
    for r in records:
        if r.closed_at is not None:
            day = local_date(r.closed_at)
            if day >= first:
                closed[day - timedelta(days=day.weekday())] += 1
        if r.deadline is not None and r.deadline >= first:
            week = r.deadline - timedelta(days=r.deadline.weekday())
            due[week] += 1
            if r.state in OPEN_STATES and r.deadline < today:
                late[week] += 1
    return [Week(start, start + timedelta(days=6), closed[start], due[start], late[start])
            for start in starts]


def _unit_filters(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    ids = {name: uid for uid, name in session.execute(
        select(Unit.id, Unit.name).where(Unit.name.in_([r["unit"] for r in rows])))}
    return [{"unit": str(ids[r["unit"]])} if r["unit"] in ids else {} for r in rows]


def _leader_filters(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    emails = [r["leader_email"] for r in rows if r["leader_email"]]
    ids = {email: pid for pid, email in session.execute(
        select(Person.id, Person.email).where(Person.email.in_(emails)))}
    return [{"leader": str(ids[r["leader_email"]])} if r["leader_email"] in ids else {}
            for r in rows]


def _area_filters(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"area_title": r["area"]} for r in rows]


def _campaign_filters(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"campaign": str(r["campaign_id"])} for r in rows]


#: How the ledger (``/ledger``) is filtered to one group's measures, per grouping. A group
#: with no filters (no unit, no leader named) is shown without links.
_GROUP_FILTERS: dict[str, Callable[[Session, list[dict[str, Any]]], list[dict[str, str]]]] = {
    "unit": _unit_filters, "leader": _leader_filters, "area": _area_filters,
    "campaign": _campaign_filters}
