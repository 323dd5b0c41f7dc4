"""Weekly digests (每周整改进展通报): snapshots as of any time, readers, and the outbox rows.

A snapshot is read from the measures as they are now and rewound through the history to the
requested moment: the state at T is the ``to_state`` of the last history row at or before T;
the deadline at T follows the 延期 and 重算时限 rows (``deadline_from``/``deadline_to``), the
owner the 改派 rows, as the lifecycle table's ``replay`` column says; and a measure created
after T is left out. So a digest "as of" T says what a digest computed at T said. Building a
digest from snapshots is pure; only ``load_snapshot`` and ``send_digests`` touch the database,
in the caller's transaction.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    DateTime,
    case,
    func,
    null,
    select,
    text,
    type_coerce,
    union,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from workflow import metrics
from workflow.lifecycle import (
    ALWAYS_A_CHANGE,
    OPEN_STATES,
    REPLAY,
    Action,
    Kind,
    MessageKind,
    OutboxStatus,
    Replay,
    Role,
    Rule,
    State,
    actions_replaying,
)
from workflow.models import (
    RELAPSE_ROWS,
    Area,
    Campaign,
    HistoryEntry,
    Measure,
    OutboxMessage,
    Person,
    Problem,
    ProgressReport,
    Unit,
    UTCDateTime,
)
from workflow.outbox import channels_for, load_recipients
from workflow.policy import PolicySet
from workflow.reminders import WorkdayIndex
from workflow.services.sweep import reminder_context
from workflow.services.visibility import reviewers_reaching, unit_parents
from workflow.stats import (
    Change,
    Counts,
    Flagged,
    MeasureRecord,
    Statistics,
    changes_between,
    compute,
    count,
    official_summary,
    week_on_week,
)
from workflow.timeutil import as_utc, local_date
from workflow.workcalendar import overrides_from_toml

CHUNK = 1000
WEEK = timedelta(days=7)

#: History actions whose change data replay needs (``deadline_from``, ``owner_from``): what the
#: lifecycle table says a rewind must undo.
UNDONE_ON_REPLAY = actions_replaying(Replay.DEADLINE, Replay.RECOUNT, Replay.OWNER)


@dataclass(frozen=True)
class PersonRef:
    id: int
    name: str
    email: str


@dataclass
class Snapshot:
    """The measures of a campaign (or all campaigns) as they stood at ``as_of``."""

    as_of: datetime
    campaign_id: int | None
    campaign_title: str | None
    records: list[MeasureRecord]
    people: dict[int, PersonRef] = field(default_factory=dict)
    first_responsible_id: int | None = None
    _index: tuple[dict[int, list[int]], dict[int, list[int]], dict[int, int]] | None = field(
        default=None, init=False, repr=False)

    def _indexes(self) -> tuple[dict[int, list[int]], dict[int, list[int]], dict[int, int]]:
        """Positions of the records by leader and by owner, and by measure id (built once)."""
        if self._index is None:
            by_leader: dict[int, list[int]] = defaultdict(list)
            by_owner: dict[int, list[int]] = defaultdict(list)
            by_id: dict[int, int] = {}
            for i, r in enumerate(self.records):
                by_id[r.id] = i
                if r.leader_id is not None:
                    by_leader[r.leader_id].append(i)
                if r.owner_id is not None:
                    by_owner[r.owner_id].append(i)
            self._index = (by_leader, by_owner, by_id)
        return self._index

    def select(self, scope: Scope) -> list[MeasureRecord]:
        """The records ``scope`` covers, in ledger order, without a scan of the whole snapshot."""
        if scope.whole:
            return self.records
        by_leader, by_owner, _ = self._indexes()
        chosen = set(by_leader.get(scope.leader_id, ())) if scope.leader_id is not None else set()
        if scope.owner_id is not None:
            chosen.update(i for i in by_owner.get(scope.owner_id, ())
                          if self.records[i].state in OPEN_STATES)
        return [self.records[i] for i in sorted(chosen)]

    def by_ids(self, ids: Iterable[int]) -> list[MeasureRecord]:
        _, _, by_id = self._indexes()
        return [self.records[by_id[i]] for i in ids if i in by_id]


# ------------------------------------------------------------------ loading


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a snapshot's records and figures are built. They
    hold no reference cycles, but creating a few hundred thousand objects sets the collector off
    every 700 allocations, and its full passes walk the whole growing heap again and again: a
    third of the time for 100,000 measures. Re-enabled on the way out (if it was on)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _utc_results(session: Session) -> None:
    """On PostgreSQL, have this transaction's timestamps arrive in UTC: psycopg then makes them
    aware with ``datetime.UTC`` itself, which is what ``UTCDateTime`` would turn them into, and a
    snapshot's 300,000 times need no conversion. ``SET LOCAL`` ends with the transaction."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL timezone = 'UTC'"))


def _current_records(session: Session, campaign_id: int | None,
                     condition: ColumnElement[bool] | None = None) -> list[MeasureRecord]:
    _utc_results(session)
    connection = session.connection()
    # the 方面, 问题 and 部门 are read once, not joined into every measure row (narrow rows are
    # fetched and decoded faster), and the ledger order is sorted here rather than on the server
    problem_query = (select(Problem.id, Area.title, Area.position, Problem.text, Problem.position)
                     .join(Area, Problem.area_id == Area.id))
    scoped = (problem_query.where(Area.campaign_id == campaign_id) if campaign_id is not None
              else problem_query)
    problems: dict[int, tuple[str, int, str, int]] = {
        pid: (area, area_pos, problem, problem_pos)
        for pid, area, area_pos, problem, problem_pos in connection.execute(scoped)}
    units: dict[int, str] = {uid: name for uid, name in connection.execute(
        select(Unit.id, Unit.name))}
    raw = DateTime(timezone=True)  # times made aware UTC below, once per distinct naive value
    query = select(Measure.id, Measure.campaign_id, Measure.seq, Measure.problem_id,
                   Measure.position, Measure.title, Measure.kind, Measure.state,
                   Measure.deadline, Measure.original_deadline, Measure.owner_id,
                   Measure.leader_id, Measure.unit_id, type_coerce(Measure.created_at, raw),
                   type_coerce(Measure.state_changed_at, raw),
                   type_coerce(Measure.last_progress_at, raw))
    if campaign_id is not None:
        query = query.where(Measure.campaign_id == campaign_id)
    if condition is not None:
        query = query.where(condition)
    rows = list(connection.execute(query).all())
    missing = {row[3] for row in rows} - problems.keys()
    for start in range(0, len(missing), CHUNK):  # a measure filed under another campaign's 问题
        chunk = sorted(missing)[start:start + CHUNK]
        problems.update((pid, (area, area_pos, problem, problem_pos))
                        for pid, area, area_pos, problem, problem_pos in connection.execute(
                            problem_query.where(Problem.id.in_(chunk))))
    # ledger order: campaign, 方面 position, 问题 position, measure position, id; problems that
    # tie on both positions share a rank, so their measures interleave as the positions say
    places = sorted({(area_pos, problem_pos) for _, area_pos, _, problem_pos in problems.values()})
    rank = {place: i for i, place in enumerate(places)}
    problem_rank = {pid: rank[(p[1], p[3])] for pid, p in problems.items()}
    rows.sort(key=lambda row: (row[1], problem_rank[row[3]], row[4], row[0]))

    states = {s.value: s for s in State}
    kinds = {k.value: k for k in Kind}
    closed = State.CLOSED
    dialect = session.get_bind().dialect
    convert = UTCDateTime().process_result_value
    times: dict[datetime, datetime | None] = {}

    def utc(value: datetime) -> datetime:
        if value.tzinfo is UTC:
            return value
        found = times.get(value)
        if found is None:
            found = times[value] = convert(value, dialect)
        assert found is not None
        return found

    records: list[MeasureRecord] = []
    append = records.append
    for (mid, cid, seq, pid, _, title, kind, state, deadline, original, owner, leader, unit,
         created, changed, progress) in rows:
        area, area_pos, problem, _ = problems[pid]
        st = states[state]
        changed = utc(changed)
        append(MeasureRecord(
            mid, cid, seq, area, problem, title, kinds[kind], st, deadline, original or deadline,
            owner, leader, units.get(unit) if unit is not None else None, utc(created), changed,
            None if progress is None else utc(progress), changed if st is closed else None,
            area_pos, pid))
    return records


class HistoryRow(NamedTuple):
    at: datetime
    action: str
    from_state: str | None
    to_state: str
    data: Mapping[str, Any]


def replay(record: MeasureRecord, history: Sequence[HistoryRow], progress: Sequence[datetime],
           as_of: datetime) -> MeasureRecord | None:
    """``record`` as it stood at ``as_of`` from its full history (oldest first) and the times of
    its progress reports; None if it did not exist yet. Pure."""
    if record.created_at > as_of:
        return None
    past = [h for h in history if h.at <= as_of]
    if not past:
        return None
    state = State(past[-1].to_state)
    changed = record.created_at
    closed_at = None
    for h in past:
        if h.action in ALWAYS_A_CHANGE or h.from_state != h.to_state:
            changed = h.at
        if h.to_state == State.CLOSED.value and h.from_state != h.to_state:
            closed_at = h.at
    deadline = record.deadline
    original = record.original_deadline
    owner = record.owner_id
    later = [h for h in history if h.at > as_of]
    # undo, newest first, what happened after as_of
    for h in reversed(later):
        effect = REPLAY.get(h.action, Replay.NONE)
        if effect in (Replay.DEADLINE, Replay.RECOUNT) and "deadline_from" in h.data:
            raw = h.data.get("deadline_from")
            if effect is Replay.RECOUNT and original == deadline:
                original = None  # the recount moved the original deadline along with it
            deadline = date.fromisoformat(raw) if raw else None
        elif effect is Replay.OWNER and "owner_from" in h.data:
            owner = h.data.get("owner_from")
    reports = [t for t in progress if t <= as_of]
    # built field by field: dataclasses.replace() inspects the fields on every call
    return MeasureRecord(
        record.id, record.campaign_id, record.seq, record.area, record.problem, record.title,
        record.kind, state, deadline, original or deadline, owner,
        record.leader_id, record.unit, record.created_at, changed,
        max(reports) if reports else None, closed_at if state is State.CLOSED else None,
        record.area_position, record.problem_id)


@dataclass
class LaterChanges:
    """The full history and progress times of the measures with history or progress after
    ``since``: enough to rewind them to any moment from ``since`` on."""

    since: datetime
    history: dict[int, list[HistoryRow]]
    progress: dict[int, list[datetime]]
    _touched: dict[datetime, frozenset[int]] = field(default_factory=dict, repr=False,
                                                     compare=False)

    def touched_after(self, as_of: datetime) -> frozenset[int]:
        """The measures with history or progress after ``as_of`` (not before ``since``):
        worked out once per moment."""
        if as_of < self.since:
            raise ValueError(f"changes were read from {self.since}, not from {as_of}")
        found = self._touched.get(as_of)
        if found is None:
            if as_of == self.since:  # every measure read was read for a change after since
                touched = set(self.history) | set(self.progress)
            else:
                touched = {mid for mid, rows in self.history.items()
                           if any(h.at > as_of for h in rows)}
                touched.update(mid for mid, times in self.progress.items()
                               if any(t > as_of for t in times))
            found = self._touched[as_of] = frozenset(touched)
        return found


def changed_after(moment: datetime) -> CompoundSelect:
    """The ids of the measures with history or progress after ``moment`` (a subquery)."""
    return union(select(HistoryEntry.measure_id).where(HistoryEntry.at > moment),
                 select(ProgressReport.measure_id).where(ProgressReport.at > moment))


def later_changes(session: Session, campaign_id: int | None, since: datetime) -> LaterChanges:
    """The measures with history or progress after ``since``, with their full history and
    progress times, in one query (the measures picked by a subquery, not by id lists)."""
    since = as_utc(since)
    _utc_results(session)
    after = changed_after(since)
    if campaign_id is not None:  # the few changed measures looked up, not the campaign scanned
        wanted = select(Measure.id).where(Measure.id.in_(after.scalar_subquery()),
                                          Measure.campaign_id == campaign_id).cte("wanted")
    else:
        wanted = after.cte("wanted")
    # the change data only matters to undo a 延期, 重算时限 or 改派; others skip the JSON decoding
    data = case((HistoryEntry.action.in_(UNDONE_ON_REPLAY), HistoryEntry.data),
                else_=null())
    history_rows = select(HistoryEntry.measure_id, HistoryEntry.seq, HistoryEntry.at,
                          HistoryEntry.action, HistoryEntry.from_state, HistoryEntry.to_state,
                          data).where(HistoryEntry.measure_id.in_(select(wanted.c[0])))
    # progress rows ride along with seq NULL and no action
    progress_rows = select(ProgressReport.measure_id, null(), ProgressReport.at, null(), null(),
                           null(), null()).where(ProgressReport.measure_id.in_(
                               select(wanted.c[0])))
    history: dict[int, list[HistoryRow]] = defaultdict(list)
    progress: dict[int, list[datetime]] = defaultdict(list)
    both = union_all(history_rows, progress_rows).subquery()
    for mid, _, at, action, from_state, to_state, raw in session.connection().execute(
            select(both).order_by(both.c[0], both.c[1])).all():
        if action is None:
            progress[mid].append(at)
        else:
            history[mid].append(HistoryRow(at, action, from_state, to_state, raw or {}))
    return LaterChanges(since, dict(history), dict(progress))


def rewind(session: Session, current: Sequence[MeasureRecord], campaign_id: int | None,
           as_of: datetime, changes: LaterChanges | None = None) -> list[MeasureRecord]:
    """``current`` records as they stood at ``as_of``: only measures with history or progress
    after ``as_of`` are replayed, so a recent ``as_of`` costs little. ``changes`` read from an
    earlier moment may be passed in (two snapshots, one read)."""
    as_of = as_utc(as_of)
    if changes is None:
        changes = later_changes(session, campaign_id, as_of)
    touched = changes.touched_after(as_of)
    if not touched:
        return [r for r in current if r.created_at <= as_of]
    result = []
    for r in current:
        if r.id in touched:
            past = replay(r, changes.history.get(r.id, []), changes.progress.get(r.id, []),
                          as_of)
            if past is not None:
                result.append(past)
        elif r.created_at <= as_of:
            result.append(r)
    return result


def current_records(session: Session, campaign_id: int | None = None,
                    condition: ColumnElement[bool] | None = None) -> list[MeasureRecord]:
    """The measures of a campaign (all campaigns when None) as they stand now, in ledger
    order: what the dashboard and ``/api/stats`` count; with ``condition`` (a reader's scope,
    a WHERE clause on ``Measure``) only those it selects, chosen by the database."""
    with collector_paused():
        return _current_records(session, campaign_id, condition)


def people_by_id(session: Session, ids: Iterable[int]) -> dict[int, PersonRef]:
    wanted = sorted(set(ids))
    found: dict[int, PersonRef] = {}
    for start in range(0, len(wanted), CHUNK):
        for pid, name, email in session.execute(
                select(Person.id, Person.name, Person.email)
                .where(Person.id.in_(wanted[start:start + CHUNK]))):
            found[pid] = PersonRef(pid, name, email)
    return found


def load_snapshot(session: Session, campaign_id: int | None, as_of: datetime,
                  current: Sequence[MeasureRecord] | None = None,
                  changes: LaterChanges | None = None) -> Snapshot:
    """The campaign's measures (all campaigns when None) as they stood at ``as_of``."""
    records = list(current) if current is not None else _current_records(session, campaign_id)
    records = rewind(session, records, campaign_id, as_of, changes)
    campaign = session.get(Campaign, campaign_id) if campaign_id is not None else None
    ids = {r.owner_id for r in records} | {r.leader_id for r in records}
    people = people_by_id(session, [pid for pid in ids if pid])
    return Snapshot(as_utc(as_of), campaign_id, campaign.title if campaign else None, records,
                    people, campaign.first_responsible_id if campaign else None)


# ------------------------------------------------------------------ readers and scopes


@dataclass(frozen=True)
class Scope:
    """Which measures a reader's digest covers: the whole campaign, or the measures the person
    leads plus the open ones they own."""

    whole: bool = False
    leader_id: int | None = None
    owner_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"whole": self.whole, "leader_id": self.leader_id, "owner_id": self.owner_id}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Scope:
        return cls(bool(raw.get("whole")), raw.get("leader_id"), raw.get("owner_id"))

    @property
    def label(self) -> str:
        if self.whole:
            return "全部整改措施"
        if self.leader_id is not None and self.owner_id is not None:
            return "您分管和负责的整改措施"
        return "您分管的整改措施" if self.leader_id is not None else "您负责的未完成整改措施"


@dataclass(frozen=True)
class Reader:
    person_id: int
    scope: Scope


def readers_for(snapshot: Snapshot, reviewer_ids: Iterable[int]) -> list[Reader]:
    """One reader per person: the first responsible and the 整改办 (reviewers) see the whole
    campaign; a leader their measures; an owner their open items; a leader who also owns open
    items gets one digest covering both. Pure."""
    whole = {pid for pid in (snapshot.first_responsible_id, *reviewer_ids) if pid is not None}
    leaders = {r.leader_id for r in snapshot.records if r.leader_id is not None}
    owners = {r.owner_id for r in snapshot.records
              if r.owner_id is not None and r.state in OPEN_STATES}
    readers = [Reader(pid, Scope(whole=True)) for pid in sorted(whole)]
    for pid in sorted((leaders | owners) - whole):
        readers.append(Reader(pid, Scope(leader_id=pid if pid in leaders else None,
                                         owner_id=pid if pid in owners else None)))
    return readers


def reviewer_ids(session: Session, campaign_id: int | None = None) -> list[int]:
    """The active reviewers (整改办); with ``campaign_id``, those the campaign's inspected unit
    reaches (every one for a campaign without an inspected unit)."""
    found = {pid: unit_id for pid, roles, unit_id in session.execute(
        select(Person.id, Person.roles, Person.unit_id).where(Person.active.is_(True)))
        if Role.REVIEWER in (roles or [])}
    inspected = (session.scalar(select(Campaign.inspected_unit_id).where(
        Campaign.id == campaign_id)) if campaign_id is not None else None)
    if inspected is None:
        return sorted(found)
    return reviewers_reaching(found, inspected, unit_parents(session))


# ------------------------------------------------------------------ the digest


@dataclass
class Digest:
    """What one reader is told: the figures, the lists, the week's changes."""

    as_of: datetime
    campaign_id: int | None
    campaign_title: str | None
    scope: Scope
    stats: Statistics
    previous: Counts
    changes: list[Change]
    headline: str
    people: dict[int, PersonRef]
    own_open: list[MeasureRecord] = field(default_factory=list)
    #: 催办 of the week by measure (the measures in scope that were urged, and how often)
    urges: dict[int, int] = field(default_factory=dict)
    #: 回头看 of the week by measure, and those that found a relapse (反弹)
    rechecks: dict[int, int] = field(default_factory=dict)
    relapses: dict[int, int] = field(default_factory=dict)
    #: every relapse (反弹) found up to ``as_of``, by measure
    relapses_total: dict[int, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Nothing to say: no measure in scope, or every one signed off (or long-term and done)
        and nothing changed this week."""
        if self.stats.counts.total == 0:
            return True
        return self.stats.counts.unfinished == 0 and not self.changes

    @property
    def week_on_week(self) -> dict[str, Any]:
        return week_on_week(self.stats.counts, self.previous)

    def person(self, pid: int | None) -> PersonRef | None:
        return self.people.get(pid) if pid is not None else None

    def as_json(self) -> dict[str, Any]:
        """The ``digest --json`` contract (design.md) plus added keys."""
        counts = self.stats.counts
        leaders = {}
        for pid, c in self.stats.by_leader.items():
            ref = self.person(pid)
            leaders[ref.email if ref else "—"] = c.as_json()
        return {
            **counts.as_json(),
            "campaign_id": self.campaign_id,
            "campaign": self.campaign_title,
            "as_of": self.as_of.isoformat(),
            "headline": self.headline,
            "areas": self.stats.areas,
            "problems": self.stats.problems,
            "overdue_items": [_flag_json(f, "overdue_days") for f in self.stats.overdue],
            "due_soon_items": [_flag_json(f, "working_days_left") for f in self.stats.due_soon],
            "stagnating_items": [_flag_json(f, "idle_working_days")
                                 for f in self.stats.stagnating],
            "week_on_week": self.week_on_week,
            "own_open_items": [r.id for r in self.own_open],
            "changes": [{"measure_id": c.record.id, "what": c.what, "before": c.before,
                         "after": c.after} for c in self.changes],
            "by_area": {k: c.as_json() for k, c in self.stats.by_area.items()},
            "by_unit": {k: c.as_json() for k, c in self.stats.by_unit.items()},
            "by_leader": leaders,
            "urges": sum(self.urges.values()),
            "urged_items": [{"measure_id": mid, "urges": n} for mid, n in sorted(self.urges.items())],
            "rechecks": sum(self.rechecks.values()),
            "relapses": sum(self.relapses.values()),
            "relapses_total": sum(self.relapses_total.values()),
            "relapsed_items": [{"measure_id": mid, "relapses": n}
                               for mid, n in sorted(self.relapses_total.items())],
            "empty": self.empty,
        }


def _flag_json(flag: Flagged, name: str) -> dict[str, Any]:
    r = flag.record
    return {"measure_id": r.id, "title": r.title,
            "deadline": r.deadline.isoformat() if r.deadline else None, name: flag.days}


def build_digest(now_snapshot: Snapshot, week_ago: Snapshot, scope: Scope, days: WorkdayIndex,
                 *, stagnation: int = 10, urges: Mapping[int, int] | None = None,
                 followups: Followups | None = None) -> Digest:
    """One reader's digest from the snapshots at ``as_of`` and a week earlier, the week's
    urges by measure and the 回头看 counts. Pure."""
    today = local_date(now_snapshot.as_of)
    current = now_snapshot.select(scope)
    previous = week_ago.select(scope)
    with collector_paused():
        stats = compute(current, today, days, stagnation=stagnation)
        before = count(previous, local_date(week_ago.as_of), days, stagnation=stagnation)
        # a narrower scope may have gained a measure that was outside it a week ago (改派)
        earlier = previous if scope.whole else week_ago.by_ids(r.id for r in current)
        changes = changes_between(earlier, current)
    headline = official_summary(stats.counts, stats.areas, stats.problems,
                                now_snapshot.campaign_title)
    own_open = sorted((r for r in current if scope.owner_id is not None
                       and r.owner_id == scope.owner_id and r.state in OPEN_STATES),
                      key=lambda r: (r.deadline or date.max, r.id))
    urged = {r.id: (urges or {})[r.id] for r in current if r.id in (urges or {})}
    seen = followups or Followups()

    def in_scope(counts: Mapping[int, int]) -> dict[int, int]:
        return {r.id: counts[r.id] for r in current if r.id in counts}

    return Digest(now_snapshot.as_of, now_snapshot.campaign_id, now_snapshot.campaign_title,
                  scope, stats, before, changes, headline, now_snapshot.people, own_open, urged,
                  in_scope(seen.rechecks), in_scope(seen.relapses),
                  in_scope(seen.relapses_total))


@dataclass(frozen=True)
class Followups:
    """回头看 by measure: of the week, those of the week that found a relapse (反弹), and every
    relapse up to the digest's moment."""

    rechecks: Mapping[int, int] = field(default_factory=dict)
    relapses: Mapping[int, int] = field(default_factory=dict)
    relapses_total: Mapping[int, int] = field(default_factory=dict)


@dataclass
class DigestInputs:
    """The two snapshots a batch of digests is built from (read once, shared by all readers)."""

    now: Snapshot
    week_ago: Snapshot
    #: 催办 of the week (after ``week_ago.as_of``, up to ``now.as_of``) by measure
    urges: dict[int, int] = field(default_factory=dict)
    #: 回头看 of the week, and every relapse up to ``now.as_of``
    followups: Followups = field(default_factory=Followups)

    def digest(self, scope: Scope, days: WorkdayIndex, *, stagnation: int = 10) -> Digest:
        """One reader's digest from these inputs. Pure."""
        return build_digest(self.now, self.week_ago, scope, days, stagnation=stagnation,
                            urges=self.urges, followups=self.followups)


def _is_relapse(row: HistoryRow) -> bool:
    """A 回头看 that found a relapse (反弹): it left the closed measure in progress."""
    return row.action == Action.RECHECK and row.to_state == State.IN_PROGRESS


def week_followups(session: Session, changes: LaterChanges, campaign_id: int | None,
                   since: datetime, until: datetime) -> Followups:
    """The week's 回头看 and relapses (from the week's history) and every relapse before."""
    rechecks: dict[int, int] = {}
    relapses: dict[int, int] = {}
    for mid, rows in changes.history.items():
        week = [h for h in rows if h.action == Action.RECHECK and since < h.at <= until]
        if week:
            rechecks[mid] = len(week)
        found = sum(1 for h in week if _is_relapse(h))
        if found:
            relapses[mid] = found
    query = (select(HistoryEntry.measure_id, func.count())
             .where(text(RELAPSE_ROWS), HistoryEntry.at <= until)  # ix_measure_history_relapse
             .group_by(HistoryEntry.measure_id))
    if campaign_id is not None:
        query = query.where(HistoryEntry.measure_id.in_(
            select(Measure.id).where(Measure.campaign_id == campaign_id)))
    total = {mid: int(n) for mid, n in session.execute(query)}
    return Followups(rechecks, relapses, total)


def week_urges(changes: LaterChanges, since: datetime, until: datetime) -> dict[int, int]:
    counted: dict[int, int] = {}
    for mid, rows in changes.history.items():
        n = sum(1 for h in rows if h.action == Action.URGE and since < h.at <= until)
        if n:
            counted[mid] = n
    return counted


def load_inputs(session: Session, campaign_id: int | None, as_of: datetime) -> DigestInputs:
    with collector_paused():
        # the history of the week is read once and rewinds both snapshots
        changes = later_changes(session, campaign_id, as_of - WEEK)
        records = _current_records(session, campaign_id)
        current = load_snapshot(session, campaign_id, as_of, current=records, changes=changes)
        week_ago = load_snapshot(session, campaign_id, as_of - WEEK, current=records,
                                 changes=changes)
    since, until = as_utc(as_of - WEEK), as_utc(as_of)
    return DigestInputs(current, week_ago, week_urges(changes, since, until),
                        week_followups(session, changes, campaign_id, since, until))


def digest_for(session: Session, campaign_id: int | None, as_of: datetime, scope: Scope,
               days: WorkdayIndex, *, stagnation: int = 10) -> Digest:
    """Read the snapshots and build one digest (the CLI's and the renderer's entry point)."""
    inputs = load_inputs(session, campaign_id, as_of)
    return inputs.digest(scope, days, stagnation=stagnation)


# ------------------------------------------------------------------ sending


def iso_week(moment: datetime) -> str:
    year, week, _ = local_date(moment).isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class DigestRun:
    readers: int = 0
    empty: int = 0
    messages: list[int] = field(default_factory=list)
    skipped_existing: int = 0

    def as_json(self) -> dict[str, int]:
        return {"readers": self.readers, "empty": self.empty, "messages": len(self.messages),
                "already_sent": self.skipped_existing}


def subject_for_digest(campaign_title: str | None, as_of: datetime) -> str:
    day = local_date(as_of)
    return f"【整改周报】{campaign_title or '整改工作'}（{day.year}年{day.month}月{day.day}日）"


def send_digests(session: Session, *, now: datetime, days: WorkdayIndex, send_at: datetime,
                 configured: frozenset[str], campaign_id: int | None = None,
                 stagnation: int = 10, calendar: Mapping[str, bool] | None = None) -> DigestRun:
    """Write one digest message per reader and channel into the outbox for every campaign (or
    one). Idempotent per reader and ISO week: a repeated weekly run writes nothing twice. An
    empty digest writes nothing. The deliverer renders each message from its payload."""
    run = DigestRun()
    ids = [campaign_id] if campaign_id is not None else list(
        session.scalars(select(Campaign.id).order_by(Campaign.id)))
    week = iso_week(now)
    for cid in ids:
        inputs = load_inputs(session, cid, now)
        readers = readers_for(inputs.now, reviewer_ids(session, cid))
        recipients = load_recipients(session, [r.person_id for r in readers])
        rows: list[dict[str, Any]] = []
        built: dict[Scope, Digest] = {}
        for reader in readers:
            person = recipients.get(reader.person_id)
            if person is None:
                continue
            run.readers += 1
            digest = built.get(reader.scope) or inputs.digest(reader.scope, days,
                                                              stagnation=stagnation)
            built[reader.scope] = digest
            if digest.empty:
                run.empty += 1
                continue
            listed = ([(f.record.id, "overdue") for f in digest.stats.overdue[:20]]
                      + [(f.record.id, "due_soon") for f in digest.stats.due_soon[:20]])
            payload = {
                "campaign_id": cid, "scope": reader.scope.as_json(),
                "as_of": as_utc(now).isoformat(), "name": person.name,
                "stagnation": stagnation, "calendar": dict(calendar or {}),
                "items": [{"measure_id": mid, "rule": Rule.DIGEST, "urgency": 3,
                           "reason": "逾期" if why == "overdue" else "即将到期"}
                          for mid, why in listed],
            }
            for channel in channels_for(person, configured):
                key = f"digest|{cid}|{reader.person_id}|{channel}|{week}"
                rows.append({
                    "channel": channel, "kind": MessageKind.DIGEST, "recipient_id": person.id,
                    "recipient": person.email,
                    "subject": subject_for_digest(inputs.now.campaign_title, now),
                    "payload": payload, "key": key, "status": OutboxStatus.PENDING, "attempts": 0,
                    "not_before": send_at, "created_at": now, "info": {},
                    "lease_until": None, "last_error": None, "sent_at": None})
        created = _insert_messages(session, rows)
        run.messages.extend(created)
        run.skipped_existing += len(rows) - len(created)
    if campaign_id is None:
        _ranking_digests(session, run, now=now, week=week, send_at=send_at,
                         configured=configured, stagnation=stagnation, calendar=calendar)
    return run


RANKING_SUBJECT = "【整改周报】各被巡察单位整改进展排名"


def subject_for_ranking(as_of: datetime) -> str:
    day = local_date(as_of)
    return f"{RANKING_SUBJECT}（{day.year}年{day.month}月{day.day}日）"


def _ranking_digests(session: Session, run: DigestRun, *, now: datetime, week: str,
                     send_at: datetime, configured: frozenset[str], stagnation: int,
                     calendar: Mapping[str, bool] | None) -> None:
    """The 巡察办's weekly digest: every inspected unit ranked (``dashboard.inspected_unit_rows``,
    worked out again at send time), one per supervisor, channel and ISO week. Nothing while no
    campaign names an inspected unit."""
    if session.scalar(select(Campaign.id).where(Campaign.inspected_unit_id.is_not(None))
                      .limit(1)) is None:
        return
    supervisors = sorted(pid for pid, roles in session.execute(
        select(Person.id, Person.roles).where(Person.active.is_(True)))
        if Role.SUPERVISOR in (roles or []))
    recipients = load_recipients(session, supervisors)
    rows: list[dict[str, Any]] = []
    for pid in supervisors:
        person = recipients.get(pid)
        if person is None:
            continue
        run.readers += 1
        payload = {"ranking": True, "as_of": as_utc(now).isoformat(), "name": person.name,
                   "stagnation": stagnation, "calendar": dict(calendar or {}), "items": []}
        for channel in channels_for(person, configured):
            rows.append({
                "channel": channel, "kind": MessageKind.DIGEST, "recipient_id": person.id,
                "recipient": person.email, "subject": subject_for_ranking(now),
                "payload": payload, "key": f"digest|ranking|{pid}|{channel}|{week}",
                "status": OutboxStatus.PENDING, "attempts": 0, "not_before": send_at,
                "created_at": now, "info": {}, "lease_until": None, "last_error": None,
                "sent_at": None})
    created = _insert_messages(session, rows)
    run.messages.extend(created)
    run.skipped_existing += len(rows) - len(created)


def _insert_messages(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert outbox messages; a key written before is skipped (two clocks, a rerun)."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (builder(OutboxMessage).on_conflict_do_nothing(index_elements=["key"])
                 .returning(OutboxMessage.id, OutboxMessage.channel))
    created: list[int] = []
    channels: list[str] = []
    for start in range(0, len(rows), 500):
        for message_id, channel in session.execute(statement, rows[start:start + 500]):
            created.append(message_id)
            channels.append(channel)
    metrics.messages_created(channels, MessageKind.DIGEST)
    return sorted(created)



def send_weekly_digests(session: Session, policies: PolicySet, configured: frozenset[str],
                        now: datetime, campaign_id: int | None = None) -> DigestRun:
    """What the clock calls at the ``[digest]`` schedule (``digest_schedule(policies)``), in one
    transaction: the calendar, the send window and the stagnation threshold come from the policy.
    Safe to call twice in a week or from two clocks: each reader gets one digest per ISO week."""
    ctx = reminder_context(session, policies, configured)
    calendar = {d.isoformat(): o.is_workday
                for d, o in overrides_from_toml(policies.calendar).items()}
    return send_digests(session, now=now, days=ctx.days,
                        send_at=ctx.planner.next_send_time(now, ctx.base), configured=configured,
                        campaign_id=campaign_id, stagnation=ctx.base.stagnation,
                        calendar=calendar)
