"""The figures of ``GET /api/stats``, ``/dashboard`` and the 巡察办's ranking, counted where the
measures lie: one grouped query (``Counted``) from which every breakdown is added up, instead
of loading every measure.

The rules are those of ``workflow.stats`` (``Reading.facts``), written as SQL conditions over
the days of ``stats.bounds``: what turns on a working-day count there (stagnating) turns on a
date here, and a sign-off's day is its date in Asia/Shanghai (``shanghai_date``). The digest
still counts its records in Python, as it needs the lists too; ``tests/workflow/
test_figures.py`` holds both to the same answers on every backend.

A 巡察办 over 200 inspected units and 20,000 measures reads the dashboard from a few thousand
grouped rows rather than 20,000 measures (``bench/web.py --units 200``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cached_property
from operator import itemgetter
from typing import Any

from sqlalchemy import ColumnElement, Date, and_, case, func, null, or_, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from workflow.lifecycle import OPEN_STATES, State
from workflow.models import RELAPSE_ROWS, Area, HistoryEntry, Measure, Problem, Unit
from workflow.stats import Bounds, Counts
from workflow.timeutil import SHANGHAI

#: The history rows of 催办, which the comparison of inspected units counts with the relapses.
URGE_ACTION = "urge"


class shanghai_date(FunctionElement[date]):  # noqa: N801 (an SQL function, named like one)
    """The calendar date in Asia/Shanghai of a stored UTC time. China has kept UTC+8 without
    summer time since 1991, which SQLite (no time zones) relies on."""

    type = Date()
    inherit_cache = True
    name = "shanghai_date"


@compiles(shanghai_date, "postgresql")
def _shanghai_date_pg(element: shanghai_date, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(({compiler.process(element.clauses, **kw)} AT TIME ZONE 'Asia/Shanghai') AS DATE)"


@compiles(shanghai_date)
def _shanghai_date_sqlite(element: shanghai_date, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)}, '+8 hours')"


def start_of(day: date) -> datetime:
    """The first moment of ``day`` in Asia/Shanghai."""
    return datetime.combine(day, time(), SHANGHAI)


def _flags(bounds: Bounds) -> list[ColumnElement[int]]:
    """How many of a group's measures are overdue, due soon, stagnating, count towards the
    on-time rate and were signed off on time: ``Reading.facts`` in SQL."""
    open_ = Measure.state.in_([s.value for s in OPEN_STATES])
    closed = Measure.state == State.CLOSED.value
    original = func.coalesce(Measure.original_deadline, Measure.deadline)
    idle: ColumnElement[bool]
    if bounds.idle_until is None:
        idle = open_
    else:
        quiet_since = start_of(bounds.idle_until + timedelta(days=1))
        idle = and_(open_, Measure.state_changed_at < quiet_since,
                    or_(Measure.last_progress_at.is_(None),
                        Measure.last_progress_at < quiet_since))
    conditions = [
        and_(open_, Measure.deadline < bounds.today),
        and_(open_, Measure.deadline >= bounds.today, Measure.deadline <= bounds.due_limit),
        idle,
        and_(original.is_not(None), or_(closed, original < bounds.today)),
        and_(closed, original.is_not(None), shanghai_date(Measure.state_changed_at) <= original),
    ]
    return [func.coalesce(func.sum(case((c, 1), else_=0)), 0) for c in conditions]


#: What ``Counted`` can group by, in the order of its rows.
GROUPS = ("campaign", "unit", "leader", "area")


class Counted:
    """The measures a condition picks, counted once per (campaign, 责任部门, 责任领导, 方面,
    state, kind) by one grouped query; every breakdown is added up from these rows.

    ``by`` names the groups wanted when not all are (of ``GROUPS``): the others are not told
    apart (their place in a row holds None), so a breakdown by one of them is a few rows, not
    one for each combination of the four."""

    def __init__(self, session: Session, bounds: Bounds,
                 condition: ColumnElement[bool] | None, *, by: Iterable[str] = GROUPS) -> None:
        wanted = set(by)
        if not wanted <= set(GROUPS):
            raise ValueError(f"Counted groups by {GROUPS}, not {sorted(wanted - set(GROUPS))}")
        columns = dict(zip(GROUPS, (Measure.campaign_id, Measure.unit_id, Measure.leader_id,
                                    Problem.area_id), strict=True))
        keys = [columns[name] for name in GROUPS if name in wanted]
        query = select(*(columns[name] if name in wanted else null() for name in GROUPS),
                       Measure.state, Measure.kind, func.count(), *_flags(bounds))
        if "area" in wanted:
            query = query.join(Problem, Measure.problem_id == Problem.id)
        if condition is not None:
            query = query.where(condition)
        self.session = session
        self.rows = [tuple(row) for row in session.execute(query.group_by(
            *keys, Measure.state, Measure.kind))]

    def by(self, key: Callable[[tuple[Any, ...]], Any]) -> dict[Any, Counts]:
        """Counts per ``key(row)``, a row being (campaign id, unit id, leader id, 方面 id, ...)."""
        found: dict[Any, Counts] = {}
        for row in self.rows:
            group = key(row)
            counts = found.get(group)
            if counts is None:
                counts = found[group] = Counts()
            state, kind, n, overdue, due_soon, stagnating, on_time_due, on_time = row[4:]
            counts.add_tally(state, kind, n, overdue=overdue, due_soon=due_soon,
                             stagnating=stagnating, on_time_due=on_time_due, on_time=on_time)
        return found

    @cached_property
    def per_campaign(self) -> dict[int, Counts]:
        """Counts per campaign id, in id order (the ledger's order); worked out once, as the
        totals, the campaigns and the inspected units all come from it (do not change them)."""
        found = self.by(itemgetter(0))
        return {key: found[key] for key in sorted(found)}

    def by_campaign(self) -> dict[int, Counts]:
        return self.per_campaign

    def total(self) -> Counts:
        return total(self.per_campaign.values())

    def by_leader(self) -> dict[int | None, Counts]:
        """Counts per 责任领导 (None: no leader named)."""
        return self.by(itemgetter(2))

    def by_unit_name(self, no_unit: str) -> dict[str, Counts]:
        """Counts per 责任部门's name (``no_unit`` for measures without one)."""
        found = self.by(itemgetter(1))
        names = {unit_id: name for unit_id, name in self.session.execute(
            select(Unit.id, Unit.name).where(Unit.id.in_([k for k in found if k is not None])))}
        merged: dict[str, Counts] = {}
        for unit_id, counts in found.items():
            merge_into(merged, names.get(unit_id, no_unit) if unit_id is not None else no_unit,
                       counts)
        return merged

    def by_area(self) -> dict[str, Counts]:
        """Counts per 方面 title, in the order the ledger first shows each: by campaign, then
        the 方面's place in it."""
        found = self.by(itemgetter(0, 3))
        areas = {area_id: (position, title) for area_id, position, title in self.session.execute(
            select(Area.id, Area.position, Area.title).where(
                Area.id.in_({area_id for _, area_id in found})))}
        merged: dict[str, Counts] = {}
        for campaign_id, area_id in sorted(found, key=lambda k: (k[0], areas[k[1]][0], k[1])):
            merge_into(merged, areas[area_id][1], found[(campaign_id, area_id)])
        return merged


def merge_into(merged: dict[Any, Counts], key: Any, counts: Counts) -> None:
    into = merged.get(key)
    if into is None:
        merged[key] = counts
    else:
        into.merge(counts)


def total(per_campaign: Iterable[Counts]) -> Counts:
    whole = Counts()
    for counts in per_campaign:
        whole.merge(counts)
    return whole


@dataclass(frozen=True)
class WeekCounts:
    """Sign-offs per Asia/Shanghai day since a first day; deadlines per day since then, and
    of those the ones passed with the work still with the owner."""

    closed: Counter[date]
    due: Counter[date]
    late: Counter[date]


def by_day(session: Session, first: date, today: date,
           condition: ColumnElement[bool] | None) -> WeekCounts:
    """What the dashboard's trend needs from ``first`` on."""
    closed_on = shanghai_date(Measure.state_changed_at)
    closed_query = (select(closed_on, func.count())
                    .where(Measure.state == State.CLOSED.value,
                           Measure.state_changed_at >= start_of(first))
                    .group_by(closed_on))
    open_ = Measure.state.in_([s.value for s in OPEN_STATES])
    due_query = (select(Measure.deadline, func.count(),
                        func.coalesce(func.sum(case((and_(open_, Measure.deadline < today), 1),
                                                    else_=0)), 0))
                 .where(Measure.deadline >= first).group_by(Measure.deadline))
    if condition is not None:
        closed_query = closed_query.where(condition)
        due_query = due_query.where(condition)
    closed: Counter[date] = Counter()
    for day, n in session.execute(closed_query):
        closed[as_date(day)] += n
    due: Counter[date] = Counter()
    late: Counter[date] = Counter()
    for day, n, overdue in session.execute(due_query):
        due[day] += n
        late[day] += overdue
    return WeekCounts(closed, due, late)


def as_date(value: date | str) -> date:
    # SQLite's date() gives text; the Date type parses it only where the column is typed
    return value if isinstance(value, date) else date.fromisoformat(value)


def history_tallies(session: Session, condition: ColumnElement[bool] | None
                    ) -> dict[str, dict[int, int]]:
    """Per campaign, how often its measures that ``condition`` picks were urged (催办) and
    found relapsed (回头看 with the result ``relapse``, which reopens the measure: the rows of
    ``RELAPSE_ROWS``, read through their partial index)."""
    found: dict[str, dict[int, int]] = {}
    for name, rows in (("urges", HistoryEntry.action == URGE_ACTION),
                       ("relapses", text(RELAPSE_ROWS))):
        query = (select(Measure.campaign_id, func.count()).select_from(HistoryEntry)
                 .join(Measure, HistoryEntry.measure_id == Measure.id)
                 .where(rows).group_by(Measure.campaign_id))
        if condition is not None:
            query = query.where(condition)
        found[name] = {campaign_id: n for campaign_id, n in session.execute(query)}
    return found
