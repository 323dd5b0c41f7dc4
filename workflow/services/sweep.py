"""The reminder sweep: claim measures whose ``next_reminder_at`` has passed, plan their notices,
write them to the outbox, and move ``next_reminder_at`` on, all in the caller's transaction.

Only due rows are read (a partial index on ``next_reminder_at``), so an idle sweep costs the
same over a thousand measures or a million. The claim reads what planning needs in the same
statement, times as local dates. A burst is read in batches by position (time, then id).

On PostgreSQL the database and Python work at the same time: the sweep's statements (reading
the next batch, writing this one's outbox items, moving its reminder times on) run in order on
its connection from a helper thread (``db.StatementQueue``) while Python plans; it is still one
transaction, and a statement that fails undoes the whole sweep.

Concurrency, without locking each row (a row lock is a write: on a burst it costs as much as
planning):
- sweeps take turns: on PostgreSQL a transaction-scoped advisory lock, on SQLite the write lock
  (``BEGIN IMMEDIATE``); the second of two sweeps at once then finds nothing due;
- a measure changed by an action while it was being planned keeps the ``next_reminder_at`` the
  action gave it (``now``): moving on is ``UPDATE ... WHERE version = <the version planned>``;
- outbox items' unique keys make any overlap harmless.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence, Set
from concurrent.futures import Future
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Date,
    Select,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import psycopg
from sqlalchemy.orm import Session

from workflow import metrics
from workflow.calendar_store import load_calendar
from workflow.db import StatementQueue
from workflow.lifecycle import Kind, State
from workflow.models import Campaign, Measure, OutboxMessage, Person
from workflow.outbox import OutboxWriter, PlannedItem
from workflow.policy import Policy, PolicySet
from workflow.progress import SILENT, Reporter
from workflow.reminders import MeasureSnapshot, Notice, Planner, WorkdayIndex
from workflow.timeutil import SHANGHAI, local_date
from workflow.workcalendar import WorkCalendar, overrides_from_toml

BATCH = 5000


@dataclass
class ReminderContext:
    """Policy, calendar and configured channels: everything a sweep needs besides the rows."""

    policies: PolicySet
    calendar: WorkCalendar
    configured: frozenset[str]

    def __post_init__(self) -> None:
        self.days = WorkdayIndex(self.calendar.is_workday)
        self.planner = Planner(self.days)
        self.base = self.policies.effective(Kind.DEADLINE)

    def policy_for(self, kind: str, campaign_policy: Mapping[str, Any] | None) -> Policy:
        return self.policies.effective(kind, campaign_policy)


def reminder_context(session: Session, policies: PolicySet,
                     configured: frozenset[str]) -> ReminderContext:
    calendar = load_calendar(session, overrides_from_toml(policies.calendar))
    return ReminderContext(policies, calendar, configured)


@dataclass
class Recipients:
    """Resolves recipient roles to people for one sweep, honouring delegation."""

    session: Session
    today: date
    _reviewers: list[int] | None = None
    _people: dict[int, tuple[str, int | None, date | None]] = field(default_factory=dict)

    def reviewers(self) -> list[int]:
        if self._reviewers is None:
            self._reviewers = [pid for pid, roles in self.session.execute(
                select(Person.id, Person.roles).where(Person.active.is_(True)))
                if "reviewer" in (roles or [])]
        return self._reviewers

    def known(self) -> Set[int]:
        return self._people.keys()

    def reviewers_known(self) -> bool:
        return self._reviewers is not None

    def load(self, ids: set[int]) -> None:
        missing = sorted(ids - self._people.keys())
        for start in range(0, len(missing), 1000):
            for pid, name, delegate_id, until in self.session.execute(
                    select(Person.id, Person.name, Person.delegate_id, Person.delegate_until)
                    .where(Person.id.in_(missing[start:start + 1000]))):
                self._people[pid] = (name, delegate_id, until)

    def route(self, person_id: int) -> tuple[int, str | None]:
        """Who receives what is meant for ``person_id``: a delegate while they are away."""
        name, delegate_id, until = self._people.get(person_id, ("", None, None))
        if delegate_id is not None and until is not None and self.today <= until:
            return delegate_id, name
        return person_id, None


@dataclass
class SweepResult:
    measures: int = 0
    messages: list[OutboxMessage] = field(default_factory=list)

    def as_json(self) -> dict[str, int]:
        return {"messages": len(self.messages), "measures": self.measures}


#: A due measure as planning reads it: a plain tuple, which the driver builds in C (a named
#: tuple made per row cost as much as the query). Its columns: id, version, state, kind,
#: deadline, created_on, changed_on, progress_on (local Asia/Shanghai dates), owner_id,
#: leader_id, campaign_id, next_reminder_at.
Due = tuple[int, int, str, str, date | None, date, date, date | None, int | None, int | None,
            int, datetime]
#: Where planning finds what it shares between measures: state to progress_on.
_DATES = slice(2, 8)


def _claim_queries(*columns: Any) -> tuple[Select[Any], Select[Any]]:
    """The claim over ``columns``: the first batch, and a batch after a position.

    The campaign's policy and first responsible come from ``Campaigns``, once per campaign: no
    join, so the claim is a plain scan of the partial index, in its order (time, then id). The
    batches after the first start after the last row of the one before; the position's
    parameters are typed as their columns, so SQLite compares a time as it stores it.
    """
    first = (select(*columns)
             .where(Measure.next_reminder_at.is_not(None),
                    Measure.next_reminder_at <= bindparam("now"))
             .order_by(Measure.next_reminder_at, Measure.id).limit(bindparam("batch")))
    after = first.where(tuple_(Measure.next_reminder_at, Measure.id)
                        > tuple_(bindparam("after_at", type_=Measure.next_reminder_at.type),
                                 bindparam("after_id", type_=Measure.id.type)))
    return first, after


def _local_day(column: Any) -> Any:
    """The column's local date, made by PostgreSQL (a date reads faster than a timestamp)."""
    return cast(func.timezone(literal_column(f"'{SHANGHAI.key}'"), column), Date)


_TIMES = (Measure.created_at, Measure.state_changed_at, Measure.last_progress_at)
#: SQLite has no time zones: Python makes the local dates (see ``Claims``).
_CLAIM_SQLITE, _AFTER_SQLITE = _claim_queries(
    Measure.id, Measure.version, Measure.state, Measure.kind, Measure.deadline, *_TIMES,
    Measure.owner_id, Measure.leader_id, Measure.campaign_id, Measure.next_reminder_at)
#: PostgreSQL's are sent by the driver (``StatementQueue``), as compiled once here.
CLAIM_PG, _AFTER_PG = (str(query.compile(dialect=psycopg.dialect())) for query in _claim_queries(
    Measure.id, Measure.version, Measure.state, Measure.kind, Measure.deadline,
    *map(_local_day, _TIMES), Measure.owner_id, Measure.leader_id, Measure.campaign_id,
    Measure.next_reminder_at))
#: pg_advisory_xact_lock's key for "a sweep is running" (any constant unique to rectiflow).
SWEEP_LOCK_KEY = 0x5245_4354  # "RECT"


def _take_turn(session: Session) -> None:
    """Wait for any other sweep to commit; held until this transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SWEEP_LOCK_KEY})


class Claims:
    """Reads the due measures batch by batch, earliest first, by position (time, then id).

    On PostgreSQL the next batch is asked for through the sweep's ``StatementQueue`` as soon
    as the position is known, so the server reads it while Python plans the current one.
    """

    def __init__(self, session: Session, queue: StatementQueue | None, now: datetime,
                 batch: int) -> None:
        self.session, self.queue, self.now, self.batch = session, queue, now, batch
        self._next: Future[list[Due]] | None = None

    def first(self) -> list[Due]:
        if self.queue is not None:
            return self.queue.fetch_now(CLAIM_PG, {"now": self.now, "batch": self.batch})
        return self._sqlite(self.session.execute(
            _CLAIM_SQLITE, {"now": self.now, "batch": self.batch}))

    def ask_after(self, rows: list[Due]) -> None:
        """Start reading the batch after ``rows`` (a full batch: there may be more)."""
        self._next = None
        if self.queue is not None and len(rows) == self.batch:
            self._next = self.queue.fetch(_AFTER_PG, self._after(rows))

    def after(self, rows: list[Due]) -> list[Due]:
        """The batch after ``rows``; empty when ``rows`` was the last."""
        if len(rows) < self.batch:
            return []
        if self.queue is not None:
            assert self._next is not None, "ask_after first"
            return self._next.result()
        return self._sqlite(self.session.execute(_AFTER_SQLITE, self._after(rows)))

    def _after(self, rows: list[Due]) -> dict[str, Any]:
        return {"now": self.now, "batch": self.batch,
                "after_at": rows[-1][11], "after_id": rows[-1][0]}

    @staticmethod
    def _sqlite(rows: Any) -> list[Due]:
        return [(mid, version, state, kind, deadline, local_date(created), local_date(changed),
                 local_date(progress) if progress else None, owner, leader, cid, next_at)
                for (mid, version, state, kind, deadline, created, changed, progress, owner,
                     leader, cid, next_at) in rows]


@dataclass
class Campaigns:
    """Each campaign's policy override and first responsible, read once per sweep for the
    campaigns it meets."""

    session: Session
    _known: dict[int, tuple[Mapping[str, Any] | None, int | None]] = field(default_factory=dict)

    def load(self, ids: set[int]) -> None:
        missing = ids - self._known.keys()
        if missing:
            query = (select(Campaign.id, Campaign.policy, Campaign.first_responsible_id)
                     .where(Campaign.id.in_(sorted(missing))))
            self._known.update((cid, (policy, first)) for cid, policy, first
                               in self.session.execute(query))

    def known(self) -> Set[int]:
        return self._known.keys()

    def policy(self, campaign_id: int) -> Mapping[str, Any] | None:
        return self._known[campaign_id][0]

    def first_responsible(self, campaign_id: int) -> int | None:
        return self._known[campaign_id][1]


def load_people(planning: Planning, rows: Sequence[Due]) -> None:
    """Read what planning ``rows`` needs besides the rows: their campaigns, and the people
    they may notify (owners, leaders, first responsibles, reviewers)."""
    campaigns, recipients = planning.campaigns, planning.recipients
    campaign_ids = set(map(itemgetter(10), rows))
    if not campaign_ids <= campaigns.known():
        planning.sync()
        campaigns.load(campaign_ids)
    people = set(map(itemgetter(8), rows))
    people.update(map(itemgetter(9), rows))
    people.update(map(campaigns.first_responsible, campaign_ids))
    people.discard(None)
    if not people <= recipients.known():
        planning.sync()
        recipients.load(people)
    if not recipients.reviewers_known():
        planning.sync()
        recipients.reviewers()


@dataclass
class Planning:
    """What planning the batches of one sweep shares: its context, people and campaigns, and
    the notices worked out for each combination of dates met so far."""

    ctx: ReminderContext
    recipients: Recipients
    campaigns: Campaigns
    now: datetime
    #: Called before planning reads from the session (the sweep's ``StatementQueue.wait``).
    sync: Callable[[], None] = lambda: None
    #: ((state, kind, deadline, created_on, changed_on, progress_on), policy) -> (next_at, the
    #: notices with their reasons)
    shared: dict[tuple[Any, ...], tuple[datetime | None, tuple[tuple[Notice, str], ...]]] = (
        field(default_factory=dict))
    _policies: dict[tuple[str, int], Policy] = field(default_factory=dict)

    def policy(self, kind: str, campaign_id: int) -> Policy:
        found = self._policies.get((kind, campaign_id))
        if found is None:
            found = self._policies[(kind, campaign_id)] = self.ctx.policy_for(
                kind, self.campaigns.policy(campaign_id))
        return found

    def notices(self, row: Due, policy: Policy
                ) -> tuple[datetime | None, tuple[tuple[Notice, str], ...]]:
        """The next reminder time and the due notices (``measure_id`` 0) with their reasons
        for a measure with ``row``'s dates."""
        key = (row[_DATES], policy)
        found = self.shared.get(key)
        if found is None:
            planner, now = self.ctx.planner, self.now
            _, _, state, kind, deadline, created_on, changed_on, progress_on, *_ = row
            snapshot = MeasureSnapshot(0, State(state), Kind(kind), deadline, created_on,
                                       changed_on, progress_on)
            plan = planner.shared_plan(snapshot, policy, now)
            found = self.shared[key] = (plan.next_at, tuple(
                (notice, planner.reason(notice, now, snapshot.changed_on
                                        if notice.rule in ("review_sla", "closure_sla")
                                        else snapshot.active_on))
                for notice in plan.notices))
        return found


def plan_items(planning: Planning, rows: Sequence[Due]
               ) -> tuple[list[PlannedItem], list[dict[str, Any]]]:
    """Plan each claimed measure: the items to write and each measure's next reminder time.
    Pure once ``load_people`` has read the rows' campaigns and people."""
    updates: list[dict[str, Any]] = []
    items: list[PlannedItem] = []
    recipients, campaigns = planning.recipients, planning.campaigns
    reviewers = recipients.reviewers()
    for row in rows:
        mid, version, _, kind, _, _, _, _, owner_id, leader_id, campaign_id, _ = row
        next_at, notices = planning.notices(row, planning.policy(kind, campaign_id))
        updates.append({"measure_id": mid, "version": version, "next_at": next_at})
        for notice, reason in notices:
            targets: list[int] = []
            for role in notice.to:
                if role == "reviewer":
                    targets.extend(reviewers)
                    continue
                pid = (owner_id if role == "owner" else leader_id if role == "leader"
                       else campaigns.first_responsible(campaign_id))
                if pid is not None:
                    targets.append(pid)
            seen: set[int] = set()
            for target in targets:
                receiver, absent = recipients.route(target)
                if receiver in seen:
                    continue
                seen.add(receiver)
                items.append(PlannedItem(
                    mid, notice.rule, notice.stage, notice.deadline, receiver, notice.urgency,
                    reason + f"（代{absent}接收）" if absent else reason, absent, notice.colour))
    return items, updates


_MOVE_ON_PG = (
    "UPDATE measure SET next_reminder_at = due.next_at "
    "FROM json_to_recordset(CAST(%(due)s AS json)) AS due(id integer, version integer, "
    "next_at timestamptz) WHERE measure.id = due.id AND measure.version = due.version")
_MEASURES = Measure.__table__
_MOVE_ON = (update(_MEASURES)  # type: ignore[arg-type]
            .where(_MEASURES.c.id == bindparam("measure_id"),
                   _MEASURES.c.version == bindparam("where_version"))
            .values(next_reminder_at=bindparam("next_at")))


def _move_on(session: Session, queue: StatementQueue | None, updates: list[dict[str, Any]]
             ) -> None:
    """Write each claimed measure's next reminder time, unless an action changed the measure
    since it was read. PostgreSQL gets one statement over a JSON document, through ``queue``
    (an executemany costs a round trip per row, and the json module encodes far faster than
    array parameters); SQLite an executemany."""
    if not updates:
        return
    if queue is not None:
        # encoded here, not in the queue's thread: this thread waits for the server more than
        # it works; measures planned alike share their next time, so each is formatted once
        times: dict[datetime | None, str | None] = {None: None}
        times.update((at, at.isoformat()) for at in {u["next_at"] for u in updates} if at)
        queue.execute(_MOVE_ON_PG, {"due": json.dumps([
            {"id": u["measure_id"], "version": u["version"], "next_at": times[u["next_at"]]}
            for u in updates])})
        return
    session.execute(_MOVE_ON, [{"measure_id": u["measure_id"], "where_version": u["version"],
                                "next_at": u["next_at"]} for u in updates])


@metrics.observe_sweep
def sweep(session: Session, ctx: ReminderContext, *, now: datetime,
          batch: int = BATCH, reporter: Reporter = SILENT) -> SweepResult:
    """Plan every due measure into the outbox and move its ``next_reminder_at`` on.

    Due measures are read in batches. On PostgreSQL the server reads the next batch and writes
    this one's outbox items and reminder times while Python plans (``StatementQueue``, one
    transaction throughout); the session itself is used only once those have finished.
    ``reporter`` hears of each batch of measures planned (the count due is not known ahead).
    """
    reporter.phase("扫描到期措施", total=None)
    result = SweepResult()
    _take_turn(session)
    postgresql = session.get_bind().dialect.name == "postgresql"
    with StatementQueue(session) if postgresql else nullcontext() as queue:
        claims = Claims(session, queue, now, batch)
        rows = claims.first()
        if not rows:
            return result
        planning = Planning(ctx, Recipients(session, local_date(now)), Campaigns(session), now,
                            sync=queue.wait if queue is not None else lambda: None)
        outbox = OutboxWriter(session, now=now, send_at=ctx.planner.next_send_time(now, ctx.base),
                              configured=ctx.configured, queue=queue)
        load_people(planning, rows)
        while rows:
            claims.ask_after(rows)  # PostgreSQL: read while this batch is planned
            items, updates = plan_items(planning, rows)
            staged = outbox.stage(items)
            following = claims.after(rows)
            if following:  # what this needs from the session, before this batch's writes
                load_people(planning, following)  # are sent: no wait for them
            outbox.insert(staged)
            _move_on(session, queue, updates)
            result.measures += len(rows)
            reporter.advance(len(rows))
            rows = following
        result.messages = outbox.finish()
    return result
