"""A whole campaign's weekly digest, counted where the measures lie.

The campaign-wide digest (``rectiflow digest``, the 整改办's campaign page and its digest,
``GET /api/campaigns/{id}/digest``) counts every measure but lists only the first few of each
kind. ``build_digest`` reads every measure into Python as of the moment and a week before and
works out each one's figures: seconds for 100,000 measures. Here instead:

- the measures that nothing happened to after a moment are counted by one grouped query
  (``figures.Counted``: the rules of ``Reading.facts`` in SQL) with that day's bounds, and the
  few with history or progress since are read, rewound (``rewind``) and counted in Python;
  so for the moment, and for a week before it;
- a list (overdue, due soon, stagnating) reads only the measures that can take its first
  ``limit`` places: a count by deadline and by day of last activity says how far down each
  list reaches (``limit=None`` reads them all);
- the week's changes come from the measures with history or progress in the week, the only
  ones that can have changed.

The answers are ``build_digest``'s for ``Scope(whole=True)``, with the lists cut to ``limit``;
``tests/workflow/test_campaign_digest.py`` holds the two to that on every backend.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import TypeVar

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from workflow.lifecycle import OPEN_STATES
from workflow.models import Area, Campaign, Measure
from workflow.reminders import WorkdayIndex
from workflow.services.digest import (
    WEEK,
    Digest,
    Scope,
    changed_after,
    collector_paused,
    current_records,
    later_changes,
    people_by_id,
    rewind,
    week_followups,
    week_urges,
)
from workflow.services.figures import Counted, as_date, merge_into, shanghai_date
from workflow.stats import (
    NO_UNIT,
    STAGNATION,
    Counts,
    MeasureRecord,
    Reading,
    Statistics,
    bounds,
    changes_between,
    compute,
    count,
    leaders_in_order,
    official_summary,
)
from workflow.timeutil import as_utc, local_date

K = TypeVar("K", bound=Hashable)


def digest_of_campaign(session: Session, campaign_id: int | None, as_of: datetime,
                       days: WorkdayIndex, *, stagnation: int = STAGNATION,
                       limit: int | None = None) -> Digest:
    """The whole campaign's digest (all campaigns' when ``campaign_id`` is None) as of
    ``as_of``: ``build_digest`` with ``Scope(whole=True)``, each list cut to its first
    ``limit`` (all of it when None)."""
    as_of = as_utc(as_of)
    week_ago = as_of - WEEK
    with collector_paused():
        changes = later_changes(session, campaign_id, week_ago)
        changed = current_records(session, campaign_id, Measure.id.in_(
            changed_after(week_ago).scalar_subquery()))
        # the measures changed in the week as they stood then and now; of those now, the ones
        # changed after as_of too (the others are counted as they are, in SQL)
        then = rewind(session, changed, campaign_id, week_ago, changes)
        now_all = rewind(session, changed, campaign_id, as_of, changes)
        moved = changes.touched_after(as_of)
        now = [r for r in now_all if r.id in moved]
        stats = _statistics(session, campaign_id, as_of, now, days, stagnation, limit)
        previous = _counts(session, campaign_id, week_ago, then, days, stagnation)
        week = changes_between(then, now_all)
    campaign = session.get(Campaign, campaign_id) if campaign_id is not None else None
    title = campaign.title if campaign else None
    listed = [f.record for f in (*stats.overdue, *stats.due_soon, *stats.stagnating)]
    people = people_by_id(session, [pid for pid in (
        *stats.by_leader, *(r.owner_id for r in listed), *(r.leader_id for r in listed))
        if pid is not None])
    followups = week_followups(session, changes, campaign_id, week_ago, as_of)
    return Digest(as_of, campaign_id, title, Scope(whole=True), stats, previous, week,
                  official_summary(stats.counts, stats.areas, stats.problems, title), people,
                  [], week_urges(changes, week_ago, as_of), dict(followups.rechecks),
                  dict(followups.relapses), dict(followups.relapses_total))


def _unchanged(campaign_id: int | None, moment: datetime) -> ColumnElement[bool]:
    """The measures (of the campaign) that existed at ``moment`` and have no history or
    progress after it: as they are now is as they stood then."""
    conditions = [Measure.created_at <= moment,
                  Measure.id.not_in(changed_after(moment).scalar_subquery())]
    if campaign_id is not None:
        conditions.append(Measure.campaign_id == campaign_id)
    return and_(*conditions)


def _counts(session: Session, campaign_id: int | None, moment: datetime,
            rewound: Sequence[MeasureRecord], days: WorkdayIndex, stagnation: int) -> Counts:
    """The totals at ``moment``: the unchanged measures counted in SQL, ``rewound`` (the
    measures changed after ``moment``, as they stood then) in Python."""
    today = local_date(moment)
    counts = Counted(session, bounds(today, days, stagnation=stagnation),
                     _unchanged(campaign_id, moment), by=()).total()
    counts.merge(count(rewound, today, days, stagnation=stagnation))
    return counts


def _statistics(session: Session, campaign_id: int | None, as_of: datetime,
                rewound: Sequence[MeasureRecord], days: WorkdayIndex, stagnation: int,
                limit: int | None) -> Statistics:
    """``compute``'s answer for the whole campaign at ``as_of``, the lists cut to ``limit``;
    ``rewound``: the measures changed after ``as_of``, as they stood then."""
    today = local_date(as_of)
    unchanged = _unchanged(campaign_id, as_of)
    day = bounds(today, days, stagnation=stagnation)
    counted = Counted(session, day, unchanged, by=("campaign", "area"))
    changed = compute(rewound, today, days, stagnation=stagnation)
    counts = counted.total()
    counts.merge(changed.counts)
    by_area = _by_area(session, counted, rewound, changed.by_area)
    by_unit = Counted(session, day, unchanged, by=("unit",)).by_unit_name(NO_UNIT)
    for name, c in changed.by_unit.items():
        merge_into(by_unit, name, c)
    by_leader = Counted(session, day, unchanged, by=("leader",)).by_leader()
    for pid, c in changed.by_leader.items():
        merge_into(by_leader, pid, c)
    problems = set(session.scalars(select(Measure.problem_id).where(unchanged).distinct()))
    problems.update(r.problem_id for r in rewound)
    listed = _listed(session, campaign_id, unchanged, rewound,
                     Reading(today, days, stagnation=stagnation), limit)
    return Statistics(today, counts, listed.overdue[:limit], listed.due_soon[:limit],
                      listed.stagnating[:limit], by_area, dict(sorted(by_unit.items())),
                      leaders_in_order(by_leader), areas=len(by_area), problems=len(problems))


def _by_area(session: Session, counted: Counted, rewound: Iterable[MeasureRecord],
             changed: Mapping[str, Counts]) -> dict[str, Counts]:
    """Counts per 方面 title, in ``compute``'s order: by the place in the ledger where each
    title first shows, its position (then its campaign)."""
    found = counted.by(itemgetter(0, 3))
    areas = {area_id: (position, title) for area_id, position, title in session.execute(
        select(Area.id, Area.position, Area.title).where(
            Area.id.in_({area_id for _, area_id in found})))}
    merged: dict[str, Counts] = {}
    first: dict[str, tuple[int, int]] = {}  # title -> (campaign, position) where it first shows
    places = [(areas[area_id][1], campaign, areas[area_id][0]) for campaign, area_id in found]
    places += [(r.area, r.campaign_id, r.area_position) for r in rewound]
    for title, campaign, position in places:
        first[title] = min(first.get(title, (campaign, position)), (campaign, position))
    for (_, area_id), c in found.items():
        merge_into(merged, areas[area_id][1], c)
    for title, c in changed.items():
        merge_into(merged, title, c)
    return dict(sorted(merged.items(), key=lambda kv: (first[kv[0]][1], first[kv[0]][0])))


def _listed(session: Session, campaign_id: int | None, unchanged: ColumnElement[bool],
            rewound: Sequence[MeasureRecord], reading: Reading, limit: int | None
            ) -> Statistics:
    """``compute`` over the measures that can be among the first ``limit`` of a list: the
    changed ones (``rewound``) and the unchanged ones whose deadline or day of last activity
    ranks high enough. An open measure's working days overdue or left turn on its deadline
    alone, and its idle days on the day of its last state change or progress report, so one
    count by (deadline, day) says how far down each list the first ``limit`` reach."""
    last = case((Measure.last_progress_at > Measure.state_changed_at, Measure.last_progress_at),
                else_=Measure.state_changed_at)
    active_on = shanghai_date(last)
    is_open = Measure.state.in_([s.value for s in OPEN_STATES])
    overdue: dict[object, tuple[int, int]] = {}
    due_soon: dict[object, tuple[int, int]] = {}
    idle: dict[object, tuple[int, int]] = {}
    for deadline, raw_day, n in session.execute(
            select(Measure.deadline, active_on, func.count()).where(unchanged, is_open)
            .group_by(Measure.deadline, active_on)):
        if deadline is not None:
            if reading.today > deadline:
                _tally(overdue, deadline, reading.overdue_days(deadline), n)
            elif deadline <= reading.due_limit:
                _tally(due_soon, deadline, reading.due_in(deadline), n)
        day = as_date(raw_day)
        days_idle = reading.idle_since(day)
        if days_idle >= reading.stagnation:
            _tally(idle, day, days_idle, n)
    facts = [reading.facts(r) for r in rewound]
    parts = [
        Measure.deadline.in_(_reach(overdue, [f[1] for f in facts if f[1] is not None],
                                    limit, most_first=True)),
        Measure.deadline.in_(_reach(due_soon, [f[2] for f in facts if f[2] is not None],
                                    limit, most_first=False)),
        active_on.in_(_reach(idle, [f[3] for f in facts if f[3] is not None], limit,
                             most_first=True)),
    ]
    candidates = current_records(session, campaign_id, and_(unchanged, is_open, or_(*parts)))
    return compute([*candidates, *rewound], reading.today, reading.days,
                   stagnation=reading.stagnation)


def _tally(found: dict[object, tuple[int, int]], key: object, days: int, n: int) -> None:
    _, seen = found.get(key, (days, 0))
    found[key] = (days, seen + n)


def _reach(found: Mapping[K, tuple[int, int]], others: Iterable[int], limit: int | None, *,
           most_first: bool) -> list[K]:
    """The keys (deadlines or days) whose measures can be among a list's first ``limit``:
    ``found`` gives each key's days and how many measures it has, ``others`` the days of the
    measures counted apart. Every measure with as many days as the ``limit``-th one counts,
    as ties are listed by id."""
    if limit is None:
        return list(found)
    tally: Counter[int] = Counter(others)
    for days, n in found.values():
        tally[days] += n
    seen = 0
    for days in sorted(tally, reverse=most_first):
        seen += tally[days]
        if seen >= limit:
            return [key for key, (d, _) in found.items()
                    if (d >= days if most_first else d <= days)]
    return list(found)
