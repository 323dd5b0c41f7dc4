"""The figures by unit, leader, area or campaign that ``GET /api/stats`` and ``/dashboard``
show: the measures a reader may see, counted by the rules of ``workflow.stats``.

Scope first, then counting: the records are cut to what ``Scope`` lets the reader see before a
group is formed, so a group (another unit's name, another leader's) the reader may not see never
appears, and a group's figures never include measures outside the reader's scope.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from workflow.errors import InputError
from workflow.lifecycle import State
from workflow.models import Campaign, HistoryEntry, Measure, Person, Unit
from workflow.policy import PolicySet
from workflow.reminders import WorkdayIndex
from workflow.services import figures
from workflow.services.visibility import Scope
from workflow.services.worklist import WorkSection, my_work
from workflow.stats import (
    DUE_WINDOW,
    NO_UNIT,
    STAGNATION,
    Bounds,
    Counts,
    bounds,
)

#: What the figures may be grouped by, and the word for it.
GROUPINGS: dict[str, str] = {"unit": "部门", "leader": "责任领导", "area": "方面",
                             "campaign": "整改任务", "inspected_unit": "被巡察单位"}
NO_LEADER = "（未指定责任领导）"
NO_INSPECTED_UNIT = "（未指定被巡察单位）"


class BadGrouping(InputError):
    """Raised when the figures are asked for grouped by something there is no grouping for."""

    def __init__(self, by: object) -> None:
        self.by = by
        choices = "、".join(f"{key}（{word}）" for key, word in GROUPINGS.items())
        super().__init__(f"参数 by 应为 {choices} 之一，收到 {by!r}。", field="by")


def ledger_fingerprint(session: Session) -> tuple[Any, ...]:
    """What changes whenever the ledger's figures may: every change to a measure through the
    services writes a history row and bumps its version; campaigns and units are counted. One
    indexed round trip, a few milliseconds over 20,000 measures."""
    return tuple(session.execute(select(
        func.count(Measure.id), func.max(Measure.id), func.coalesce(func.sum(Measure.version), 0),
        select(func.max(HistoryEntry.id)).scalar_subquery(),
        select(func.count(Campaign.id)).scalar_subquery(),
        select(func.max(Campaign.inspected_unit_id)).scalar_subquery(),
        select(func.count(Unit.id)).scalar_subquery(),
        select(func.coalesce(func.sum(Unit.parent_id), 0)).scalar_subquery())).one())


@dataclass
class FiguresCache:
    """The statistics most recently worked out, by (scope, grouping, day, stagnation), kept
    while the ledger's fingerprint is unchanged and for at most ``max_age`` seconds (a change
    made around the services, by hand in SQL, shows within that time). The 巡察办's comparison
    over every inspected unit is the same for every supervisor and admin (one scope), so they
    share one entry. Process-local: each web worker keeps its own."""

    max_age: float = 60.0
    size: int = 256
    entries: OrderedDict[tuple[Any, ...], tuple[float, tuple[Any, ...], list[dict[str, Any]]]] = (
        field(default_factory=OrderedDict))

    def rows(self, session: Session, scope: Scope, by: str, today: date, days: WorkdayIndex, *,
             stagnation: int = STAGNATION) -> list[dict[str, Any]]:
        if by not in GROUPINGS:
            raise BadGrouping(by)
        key = (scope, by, today, stagnation)
        fingerprint = ledger_fingerprint(session)
        found = self.entries.get(key)
        moment = time.monotonic()
        if found is not None and found[1] == fingerprint and moment - found[0] <= self.max_age:
            self.entries.move_to_end(key)
            return found[2]
        rows = stats_rows(session, scope, by, today, days, stagnation=stagnation)
        self.entries[key] = (moment, fingerprint, rows)
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return rows

    def clear(self) -> None:
        self.entries.clear()


def stats_rows(session: Session, scope: Scope, by: str, today: date, days: WorkdayIndex, *,
               stagnation: int = STAGNATION) -> list[dict[str, Any]]:
    """One row per group of the measures ``scope`` covers: the group's name under ``by``,
    then ``total``, ``closed``, ``in_progress``, ``overdue``, ``completion_rate``,
    ``on_time_rate`` and the rest of ``Counts.as_json``."""
    if by not in GROUPINGS:
        raise BadGrouping(by)
    return Figures(session, scope.condition(), bounds(today, days, stagnation=stagnation)
                   ).rows(by)


class Figures:
    """The breakdowns of the measures ``condition`` picks, as read within ``bounds``, counted
    in the database by one grouped query (``figures.Counted``) when first needed, and the
    催办 and relapses per campaign likewise."""

    def __init__(self, session: Session, condition: ColumnElement[bool] | None,
                 bounds: Bounds) -> None:
        self.session = session
        self.condition = condition
        self.bounds = bounds
        self._counted: figures.Counted | None = None
        self._tallies: dict[str, dict[int, int]] | None = None

    @property
    def counted(self) -> figures.Counted:
        if self._counted is None:
            self._counted = figures.Counted(self.session, self.bounds, self.condition)
        return self._counted

    @property
    def tallies(self) -> dict[str, dict[int, int]]:
        """催办 and 回头看 relapses per campaign."""
        if self._tallies is None:
            self._tallies = figures.history_tallies(self.session, self.condition)
        return self._tallies

    def total(self) -> Counts:
        return self.counted.total()

    def rows(self, by: str) -> list[dict[str, Any]]:
        """``stats_rows`` under ``by``."""
        if by not in GROUPINGS:
            raise BadGrouping(by)
        if by == "inspected_unit":
            return inspected_unit_rows(self.session, self.counted.by_campaign(), self.tallies)
        counted = self.counted
        groupings: dict[str, Callable[[], dict[Any, Counts]]] = {
            "unit": lambda: counted.by_unit_name(NO_UNIT), "leader": counted.by_leader,
            "area": counted.by_area, "campaign": counted.by_campaign}
        groups = groupings[by]()
        names, extra = _names(self.session, by, list(groups))
        rows = [{by: names[group], **extra.get(group, {}), **_figures(counts)}
                for group, counts in groups.items()]
        if by == "campaign":
            for row in rows:
                row.update(_tally_of(self.tallies, [row["campaign_id"]]))
        if by in ("unit", "leader"):  # areas and campaigns keep the ledger's order
            rows.sort(key=lambda row: str(row[by]))
        return rows


def _tally_of(tallies: dict[str, dict[int, int]], ids: list[int]) -> dict[str, int]:
    return {name: sum(per.get(i, 0) for i in ids) for name, per in tallies.items()}


def inspected_unit_rows(session: Session, per_campaign: dict[int, Counts],
                        tallies: dict[str, dict[int, int]]) -> list[dict[str, Any]]:
    """The 巡察办's comparison: one row per inspected unit (campaigns without one together
    under ``NO_INSPECTED_UNIT``), its figures, its 催办 and 回头看 relapses, and the same per
    campaign under ``campaigns``; units ranked by completion rate, then fewest overdue.
    ``per_campaign``: the counts of each campaign in id order; ``tallies``: its 催办 and
    relapses (``figures.history_tallies``)."""
    campaigns = {cid: (title, inspected) for cid, title, inspected in session.execute(
        select(Campaign.id, Campaign.title, Campaign.inspected_unit_id))}
    units = dict(session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(
        {i for _, i in campaigns.values() if i is not None}))).all())
    by_unit: dict[int | None, list[int]] = {}
    for cid in per_campaign:
        by_unit.setdefault(campaigns[cid][1], []).append(cid)
    rows = []
    for unit_id, mine in by_unit.items():
        counts = figures.total(per_campaign[cid] for cid in mine)
        rows.append({
            "inspected_unit": units.get(unit_id, NO_INSPECTED_UNIT) if unit_id is not None
            else NO_INSPECTED_UNIT, "inspected_unit_id": unit_id, **_figures(counts),
            **_tally_of(tallies, mine),
            "campaigns": [{"campaign_id": cid, "campaign": campaigns[cid][0],
                           **_figures(per_campaign[cid]), **_tally_of(tallies, [cid])}
                          for cid in mine]})
    rows.sort(key=lambda row: (-row["completion_rate"], row["overdue"], str(row["inspected_unit"])))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
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
#: Shown first to readers who see every inspected unit, once a campaign names one.
INSPECTED_UNIT_SECTION = ("inspected_unit", "各被巡察单位", "完成与逾期，按被巡察单位（按完成率排名）")
TREND_WEEKS = 8


def _campaign_units(session: Session) -> list[Any]:
    return list(session.execute(select(Campaign.inspected_unit_id).distinct()))
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
    """One section of bars. A section of more than ``SECTION_LIMIT`` groups (a 巡察办's 600
    departments) shows the ones that need attention most, and how many it leaves out."""

    key: str
    title: str
    hint: str
    figures: list[Figure]
    groups: int = 0  # how many groups there are in all

    @property
    def hidden(self) -> int:
        return self.groups - len(self.figures)


#: The most groups a dashboard section shows unless asked for all of it.
SECTION_LIMIT = 12


def needing_attention(rows: list[dict[str, Any]], by: str, limit: int = SECTION_LIMIT
                      ) -> list[dict[str, Any]]:
    """All of ``rows`` (``stats_rows``) when there are at most ``limit``; else the ``limit``
    with the most overdue measures, then the lowest completion rate, in that order (pure)."""
    if len(rows) <= limit:
        return rows
    return sorted(rows, key=lambda r: (-r["overdue"], r["completion_rate"], str(r[by])))[:limit]


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
                   weeks: int = TREND_WEEKS, policies: PolicySet | None = None,
                   expand: str | None = None) -> DashboardView:
    """The dashboard for one reader: totals, one breakdown per ``DASHBOARD_SECTIONS`` row (the
    same rows as ``GET /api/stats``; the section ``expand`` in full, the others cut to the
    groups ``needing_attention``), the last ``weeks`` weeks, and what waits for the reader."""
    condition = scope.condition()
    counted = Figures(session, condition, bounds(today, days, stagnation=stagnation))
    whole = counted.total()
    totals = Figure("全部", whole.total, whole.completed, whole.overdue, {})
    breakdowns = []
    sections = list(DASHBOARD_SECTIONS)
    if scope.everything and any(r.inspected_unit_id is not None for r in _campaign_units(session)):
        # the 巡察办 (and admins) compare the inspected units first
        sections.insert(0, INSPECTED_UNIT_SECTION)
    for by, title, hint in sections:
        rows = counted.rows(by)
        shown = rows if by == expand else needing_attention(rows, by)
        filters = _GROUP_FILTERS[by](session, shown)  # the ledger links of the bars drawn
        breakdowns.append(Breakdown(by, title, hint, [
            Figure(str(row[by]), row["total"], row["closed"], row["overdue"], found)
            for row, found in zip(shown, filters, strict=True)], len(rows)))
    first = _week_starts(today, weeks)[0]
    return DashboardView(today, totals, whole.due_soon, days.nth_after(today, DUE_WINDOW),
                         breakdowns,
                         trend(figures.by_day(session, first, today, condition), today, weeks),
                         my_work(session, person_id, today, policies))


def _week_starts(today: date, weeks: int) -> list[date]:
    monday = today - timedelta(days=today.weekday())
    return [monday - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]


def trend(counted: figures.WeekCounts, today: date, weeks: int = TREND_WEEKS) -> list[Week]:
    """The last ``weeks`` weeks up to this one, oldest first, from the counts per day (pure)."""
    starts = _week_starts(today, weeks)
    closed: Counter[date] = Counter()
    due: Counter[date] = Counter()
    late: Counter[date] = Counter()
    for into, per_day in ((closed, counted.closed), (due, counted.due), (late, counted.late)):
        for day, n in per_day.items():
            if day >= starts[0]:
                into[day - timedelta(days=day.weekday())] += n
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


def _inspected_unit_filters(session: Session, rows: list[dict[str, Any]]
                            ) -> list[dict[str, str]]:
    return [{"inspected_unit": r["inspected_unit"]} if r["inspected_unit_id"] is not None else {}
            for r in rows]


def _campaign_filters(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"campaign": str(r["campaign_id"])} for r in rows]


#: How the ledger (``/ledger``) is filtered to one group's measures, per grouping. A group
#: with no filters (no unit, no leader named) is shown without links.
_GROUP_FILTERS: dict[str, Callable[[Session, list[dict[str, Any]]], list[dict[str, str]]]] = {
    "unit": _unit_filters, "leader": _leader_filters, "area": _area_filters,
    "campaign": _campaign_filters, "inspected_unit": _inspected_unit_filters}
