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

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workflow.errors import InputError
from workflow.lifecycle import OPEN_STATES, State
from workflow.models import Campaign, HistoryEntry, Measure, Person, Unit
from workflow.policy import PolicySet
from workflow.reminders import WorkdayIndex
from workflow.services.digest import current_records
from workflow.services.visibility import Scope
from workflow.services.worklist import WorkSection, my_work
from workflow.stats import (
    DUE_WINDOW,
    NO_UNIT,
    STAGNATION,
    Counts,
    MeasureRecord,
    count_by,
    flag_codes,
)
from workflow.timeutil import local_date

#: What the figures may be grouped by, and the word for it.
GROUPINGS: dict[str, str] = {"unit": "部门", "leader": "责任领导", "area": "方面",
                             "campaign": "整改任务", "inspected_unit": "被巡察单位"}
NO_LEADER = "（未指定责任领导）"
NO_INSPECTED_UNIT = "（未指定被巡察单位）"
#: The history rows the comparison of inspected units counts: 催办, and 回头看 found a relapse
#: (``recheck`` with ``data["result"] == "relapse"``, written by the 回头看 work; 0 until then).
URGE_ACTION = "urge"
RECHECK_ACTION = "recheck"
RELAPSE = "relapse"


class BadGrouping(InputError):
    """Raised when the figures are asked for grouped by something there is no grouping for."""

    def __init__(self, by: object) -> None:
        self.by = by
        choices = "、".join(f"{key}（{word}）" for key, word in GROUPINGS.items())
        super().__init__(f"参数 by 应为 {choices} 之一，收到 {by!r}。", field="by")


def visible_records(session: Session, scope: Scope) -> list[MeasureRecord]:
    """The measures as they stand now that ``scope`` covers, in ledger order."""
    return current_records(session, condition=scope.condition())


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
    return rows_of(session, visible_records(session, scope), by, today, days,
                   stagnation=stagnation)


def rows_of(session: Session, records: list[MeasureRecord], by: str, today: date,
            days: WorkdayIndex, *, stagnation: int = STAGNATION,
            codes: list[int] | None = None) -> list[dict[str, Any]]:
    """``stats_rows`` of records already cut to the reader's scope (``codes``: their
    ``flag_codes``, when the same records are grouped several ways)."""
    if by not in GROUPINGS:
        raise BadGrouping(by)
    if codes is None:
        codes = flag_codes(records, today, days, stagnation=stagnation)
    if by == "inspected_unit":
        return inspected_unit_rows(session, records, today, days, stagnation=stagnation,
                                   codes=codes)
    key: Callable[[MeasureRecord], Any] = {
        "unit": lambda r: r.unit or NO_UNIT,
        "leader": lambda r: r.leader_id,
        "area": lambda r: r.area,
        "campaign": lambda r: r.campaign_id,
    }[by]
    groups = count_by(records, key, today, days, stagnation=stagnation, codes=codes)
    names, extra = _names(session, by, list(groups))
    rows = [{by: names[group], **extra.get(group, {}), **_figures(counts)}
            for group, counts in groups.items()]
    if by == "campaign":
        per_campaign = _campaign_tallies(history_tallies(session, records), records)
        for row in rows:
            row.update(_tally_of(per_campaign, [row["campaign_id"]]))
    if by in ("unit", "leader"):  # areas and campaigns keep the ledger's order
        rows.sort(key=lambda row: str(row[by]))
    return rows


def history_tallies(session: Session, records: list[MeasureRecord]
                    ) -> dict[str, dict[int, int]]:
    """Per measure of ``records``: how often it was urged (催办) and found relapsed (回头看)."""
    urges: dict[int, int] = {}
    relapses: dict[int, int] = {}
    wanted = {r.id for r in records}
    if not wanted:
        return {"urges": urges, "relapses": relapses}
    for measure_id, n in session.execute(
            select(HistoryEntry.measure_id, func.count()).where(
                HistoryEntry.action == URGE_ACTION).group_by(HistoryEntry.measure_id)):
        if measure_id in wanted:
            urges[measure_id] = n
    for measure_id, data in session.execute(
            select(HistoryEntry.measure_id, HistoryEntry.data).where(
                HistoryEntry.action == RECHECK_ACTION)):
        if measure_id in wanted and (data or {}).get("result") == RELAPSE:
            relapses[measure_id] = relapses.get(measure_id, 0) + 1
    return {"urges": urges, "relapses": relapses}


def _campaign_tallies(tallies: dict[str, dict[int, int]], records: list[MeasureRecord]
                      ) -> dict[str, dict[int, int]]:
    """``history_tallies`` added up per campaign (only the measures with history are visited)."""
    campaign_of = {r.id: r.campaign_id for r in records}
    summed: dict[str, dict[int, int]] = {}
    for name, per in tallies.items():
        into = summed[name] = {}
        for measure_id, n in per.items():
            cid = campaign_of[measure_id]
            into[cid] = into.get(cid, 0) + n
    return summed


def _tally_of(tallies: dict[str, dict[int, int]], ids: list[int]) -> dict[str, int]:
    return {name: sum(per.get(i, 0) for i in ids) for name, per in tallies.items()}


def inspected_unit_rows(session: Session, records: list[MeasureRecord], today: date,
                        days: WorkdayIndex, *, stagnation: int = STAGNATION,
                        codes: list[int] | None = None) -> list[dict[str, Any]]:
    """The 巡察办's comparison: one row per inspected unit (campaigns without one together
    under ``NO_INSPECTED_UNIT``), its figures, its 催办 and 回头看 relapses, and the same per
    campaign under ``campaigns``; units ranked by completion rate, then fewest overdue."""
    campaigns = {cid: (title, inspected) for cid, title, inspected in session.execute(
        select(Campaign.id, Campaign.title, Campaign.inspected_unit_id))}
    units = dict(session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(
        {i for _, i in campaigns.values() if i is not None}))).tuples().all())
    tallies = history_tallies(session, records)
    if codes is None:
        codes = flag_codes(records, today, days, stagnation=stagnation)
    by_unit = count_by(records, lambda r: campaigns[r.campaign_id][1], today, days,
                       stagnation=stagnation, codes=codes)
    by_campaign = count_by(records, lambda r: r.campaign_id, today, days, stagnation=stagnation,
                           codes=codes)
    per_campaign = _campaign_tallies(tallies, records)
    rows = []
    for unit_id, counts in by_unit.items():
        mine = [cid for cid in by_campaign if campaigns[cid][1] == unit_id]
        rows.append({
            "inspected_unit": units.get(unit_id, NO_INSPECTED_UNIT) if unit_id is not None
            else NO_INSPECTED_UNIT, "inspected_unit_id": unit_id, **_figures(counts),
            **_tally_of(per_campaign, mine),
            "campaigns": [{"campaign_id": cid, "campaign": campaigns[cid][0],
                           **_figures(by_campaign[cid]), **_tally_of(per_campaign, [cid])}
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
                   weeks: int = TREND_WEEKS, policies: PolicySet | None = None
                   ) -> DashboardView:
    """The dashboard for one reader: totals, one breakdown per ``DASHBOARD_SECTIONS`` row (the
    same rows as ``GET /api/stats``), the last ``weeks`` weeks, and what waits for the reader."""
    records = visible_records(session, scope)
    codes = flag_codes(records, today, days, stagnation=stagnation)  # once, for every breakdown
    whole = count_by(records, lambda r: None, today, days, stagnation=stagnation,
                     codes=codes).get(None, Counts())
    totals = Figure("全部", whole.total, whole.completed, whole.overdue, {})
    breakdowns = []
    sections = list(DASHBOARD_SECTIONS)
    if scope.everything and any(r.inspected_unit_id is not None for r in _campaign_units(session)):
        # the 巡察办 (and admins) compare the inspected units first
        sections.insert(0, INSPECTED_UNIT_SECTION)
    for by, title, hint in sections:
        rows = rows_of(session, records, by, today, days, stagnation=stagnation, codes=codes)
        filters = _GROUP_FILTERS[by](session, rows)
        breakdowns.append(Breakdown(by, title, hint, [
            Figure(str(row[by]), row["total"], row["closed"], row["overdue"], found)
            for row, found in zip(rows, filters, strict=True)]))
    return DashboardView(today, totals, whole.due_soon, days.nth_after(today, DUE_WINDOW),
                         breakdowns,
                         trend(records, today, weeks),
                         my_work(session, person_id, today, policies))


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
