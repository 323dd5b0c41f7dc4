"""The reminder sweep: read the measures whose ``next_reminder_at`` has passed, plan their
notices, write them to the outbox, and move ``next_reminder_at`` on, all in the caller's
transaction.

The algorithm, batch by batch (earliest due first):

1. ``SweepStore.read_due`` reads the next batch of due measures (``DueMeasure`` rows);
2. ``Planning.load`` reads the campaigns and people the batch mentions, once per sweep;
3. ``plan_items`` plans each measure (``workflow.reminders``): the outbox items to write and its
   next reminder time (``NextReminder``);
4. ``OutboxWriter.write`` writes the items, ``SweepStore.move_on`` the next reminder times.

Steps 1 and 2 for the next batch come before step 4 for this one, so nothing reads from the
database between a batch's writes and the planning of the next: on PostgreSQL the adapter runs
the writes while Python plans.

At the end ``OutboxWriter.finish`` gives each recipient and channel one message listing all its
items. ``SweepStore`` runs portable SQLAlchemy statements; on PostgreSQL the sweep uses its
faster subclass in ``workflow.pg.sweep``, which must produce exactly the same rows.

Reminder times live in ``reminder_schedule``, a narrow table of their own (moving 100,000 of
them on rewrites small rows with two indexes, not the measures). Only due rows are read (a
partial index on ``next_reminder_at``), so an idle sweep costs the
same over a thousand measures or a million. Batches are read by position, (time, then id).

Concurrency, without locking each row (a row lock is a write: on a burst it costs as much as
planning):
- sweeps take turns: on PostgreSQL a transaction-scoped advisory lock, on SQLite the write lock
  (``BEGIN IMMEDIATE``); the second of two sweeps at once then finds nothing due;
- a measure changed by an action while it was being planned keeps the ``next_reminder_at`` the
  action gave it (``now``): moving on is ``UPDATE ... WHERE`` the measure's version is the one
  planned and its reminder time the one read (an action running meanwhile writes the time after
  the version: PostgreSQL re-checks the time once the action commits, not the measure's version);
- outbox items' unique keys make any overlap harmless.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, text, tuple_, update
from sqlalchemy.orm import Session

from workflow import metrics
from workflow.calendar_store import load_calendar
from workflow.gcpause import cyclic_gc_paused
from workflow.lifecycle import Kind, Relation, Role, Rule, State
from workflow.models import (
    Campaign,
    Measure,
    MeasureAssistingUnit,
    OutboxMessage,
    Person,
    ReminderSchedule,
)
from workflow.outbox import ItemRow, OutboxWriter, PlannedItem, PortableItems
from workflow.policy import Policy, PolicySet
from workflow.progress import SILENT, Reporter
from workflow.reminders import MeasureSnapshot, Notice, Planner, WorkdayIndex
from workflow.services.notices import DocumentRequest, issue_notices
from workflow.services.visibility import reviewers_reaching, unit_parents
from workflow.timeutil import local_date
from workflow.workcalendar import WorkCalendar, overrides_from_toml

BATCH = 5000
#: What a copy to an assisting unit's member (协办单位) adds to the owner's sentence.
COPY_NOTE = "（协办抄送）"
#: pg_advisory_xact_lock's key for "a sweep is running" (any constant unique to rectiflow).
SWEEP_LOCK_KEY = 0x5245_4354  # "RECT"


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


#: Who receives what is meant for a person, and the name of the absent person when it is a
#: delegate (while they are away).
Route = tuple[int, str | None]


@dataclass
class Recipients:
    """Resolves recipient roles to people for one sweep, honouring delegation."""

    session: Session
    today: date
    _reviewers: list[int] | None = None
    _reviewer_units: dict[int, int | None] = field(default_factory=dict)
    _by_inspected: dict[int, list[int]] = field(default_factory=dict)
    _parents: dict[int, int | None] | None = None
    _routes: dict[int, Route] = field(default_factory=dict)  # each person's, for ``today``

    def reviewers(self) -> list[int]:
        """The active people with the reviewer role, read once."""
        if self._reviewers is None:
            found = [(pid, unit_id) for pid, roles, unit_id in self.session.execute(
                select(Person.id, Person.roles, Person.unit_id).where(Person.active.is_(True)))
                if Role.REVIEWER in (roles or [])]
            self._reviewers = [pid for pid, _ in found]
            self._reviewer_units = dict(found)
        return self._reviewers

    def reviewers_for(self, inspected_unit_id: int | None) -> list[int]:
        """The reviewers (整改办) of a campaign inspecting ``inspected_unit_id``: those whose
        unit is it or below it; every reviewer for a campaign without an inspected unit."""
        everyone = self.reviewers()
        if inspected_unit_id is None:
            return everyone
        found = self._by_inspected.get(inspected_unit_id)
        if found is None:
            if self._parents is None:
                self._parents = unit_parents(self.session)
            found = self._by_inspected[inspected_unit_id] = reviewers_reaching(
                self._reviewer_units, inspected_unit_id, self._parents)
        return found

    def load(self, ids: set[int]) -> None:
        """Read the people of ``ids`` not read before, and where their messages go today."""
        missing = sorted(ids - self._routes.keys())
        for start in range(0, len(missing), 1000):
            for pid, name, delegate_id, until in self.session.execute(
                    select(Person.id, Person.name, Person.delegate_id, Person.delegate_until)
                    .where(Person.id.in_(missing[start:start + 1000]))):
                if delegate_id is not None and until is not None and self.today <= until:
                    self._routes[pid] = (delegate_id, name)  # away: their delegate
                else:
                    self._routes[pid] = (pid, None)

    def route(self, person_id: int) -> Route:
        """Who receives what is meant for ``person_id`` (``load``: read before)."""
        found = self._routes.get(person_id)
        return found if found is not None else (person_id, None)


class CampaignFacts(NamedTuple):
    policy: Mapping[str, Any] | None
    first_responsible_id: int | None
    inspected_unit_id: int | None = None


@dataclass
class Campaigns:
    """Each campaign's policy override and first responsible, read once per sweep."""

    session: Session
    _known: dict[int, CampaignFacts] = field(default_factory=dict)

    def load(self, ids: set[int]) -> None:
        missing = sorted(ids - self._known.keys())
        if missing:
            query = (select(Campaign.id, Campaign.policy, Campaign.first_responsible_id,
                            Campaign.inspected_unit_id).where(Campaign.id.in_(missing)))
            self._known.update((cid, CampaignFacts(policy, first, inspected))
                               for cid, policy, first, inspected in self.session.execute(query))

    def __getitem__(self, campaign_id: int) -> CampaignFacts:
        return self._known[campaign_id]


@dataclass
class SweepResult:
    measures: int = 0
    messages: list[OutboxMessage] = field(default_factory=list)
    documents: int = 0  # 督办 documents issued

    def as_json(self) -> dict[str, int]:
        return {"messages": len(self.messages), "measures": self.measures}


class DueMeasure(NamedTuple):
    """A due measure as planning reads it. Its ``*_on`` dates are local (Asia/Shanghai)."""

    id: int
    version: int
    state: str
    kind: str
    deadline: date | None
    created_on: date
    changed_on: date
    progress_on: date | None
    rechecked_on: date | None
    owner_id: int | None
    leader_id: int | None
    campaign_id: int
    next_reminder_at: datetime
    assisted: bool = False  # has assisting units (协办单位), whose members get copies

    def snapshot(self) -> MeasureSnapshot:
        return MeasureSnapshot(self.id, State(self.state), Kind(self.kind), self.deadline,
                               self.created_on, self.changed_on, self.progress_on,
                               self.rechecked_on)


class NextReminder(NamedTuple):
    """A planned measure's next reminder time, written unless an action changed the measure
    (its ``version``) or its reminder time (``was``, the time read) since it was read."""

    measure_id: int
    version: int
    at: datetime | None
    was: datetime


_SCHEDULE = ReminderSchedule.__table__
#: When a measure was created, changed state, last reported progress and was last rechecked
#: (回头看): planning counts the local dates of these.
MEASURE_TIMES = (Measure.created_at, Measure.state_changed_at, Measure.last_progress_at,
                 Measure.rechecked_at)


def due_query(following: bool, times: Sequence[Any] = MEASURE_TIMES) -> Any:
    """The next batch of due measures (``DueMeasure``'s columns, ``times`` for its three
    dates), in the partial index's order (time, then id): the first, or (``following``) the
    one after a position (``due_parameters``). The position's parameters are typed as their columns, so SQLite
    compares a time as it stores it."""
    due = _SCHEDULE.c.next_reminder_at
    assisted = select(MeasureAssistingUnit.measure_id).where(
        MeasureAssistingUnit.measure_id == Measure.id).exists()
    query = (select(Measure.id, Measure.version, Measure.state, Measure.kind, Measure.deadline,
                    *times, Measure.owner_id, Measure.leader_id, Measure.campaign_id, due,
                    assisted)
             .select_from(_SCHEDULE).join(Measure, Measure.id == _SCHEDULE.c.measure_id)
             .where(due.is_not(None), due <= bindparam("now"))
             .order_by(due, _SCHEDULE.c.measure_id).limit(bindparam("batch")))
    if following:
        query = query.where(tuple_(due, _SCHEDULE.c.measure_id) > tuple_(
            bindparam("after_at", type_=due.type),
            bindparam("after_id", type_=Measure.id.type)))
    return query


def due_parameters(now: datetime, batch: int, after: DueMeasure | None) -> dict[str, Any]:
    parameters: dict[str, Any] = {"now": now, "batch": batch}
    if after is not None:
        parameters.update(after_at=after.next_reminder_at, after_id=after.id)
    return parameters


_MEASURES = Measure.__table__
#: how many ids one ``move_on`` statement names (SQLite allows 999 parameters a statement)
MOVE_ON_IDS = 900


def _move_on_statement(at: datetime | None, version: int, was: datetime, ids: list[int]) -> Any:
    return (update(_SCHEDULE)  # type: ignore[arg-type]
            .where(_SCHEDULE.c.measure_id.in_(ids), _SCHEDULE.c.next_reminder_at == was,
                   select(_MEASURES.c.id).where(_MEASURES.c.id == _SCHEDULE.c.measure_id,
                                                _MEASURES.c.version == version).exists())
            .values(next_reminder_at=at))


class SweepStore:
    """The sweep's reads and writes, as SQLAlchemy statements that run on every backend.

    ``workflow.pg.sweep.PostgresSweepStore`` overrides them with faster PostgreSQL statements
    and must produce exactly the same rows (its docstring gives the contract).
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._items = PortableItems(session)

    def read_due(self, now: datetime, batch: int, after: DueMeasure | None) -> list[DueMeasure]:
        """Up to ``batch`` measures due at ``now``, earliest first, after ``after``."""
        return [DueMeasure(mid, version, state, kind, deadline, local_date(created),
                           local_date(changed), local_date(progress) if progress else None,
                           local_date(rechecked) if rechecked else None,
                           owner, leader, campaign, next_at, bool(assisted))
                for (mid, version, state, kind, deadline, created, changed, progress, rechecked,
                     owner, leader, campaign, next_at, assisted)
                in self.session.execute(due_query(after is not None), due_parameters(now, batch, after))]

    def insert_items(self, rows: list[ItemRow]) -> None:
        """Insert outbox items, skipping keys written before."""
        self._items.insert_items(rows)

    def inserted_keys(self) -> set[str] | None:
        """The keys ``insert_items`` inserted in this sweep (``None``: every key sent)."""
        return self._items.inserted_keys()

    def fill_messages(self, rows: list[dict[str, Any]]) -> None:
        """Give the placeholder messages their subject, payload and key."""
        self._items.fill_messages(rows)

    def move_on(self, reminders: Sequence[NextReminder]) -> None:
        """Write each measure's next reminder time, unless its version or its reminder time
        changed since it was read.

        Measures planned alike share their next time, and most share their version and the time
        read too: one statement for each, over the ids of its measures."""
        alike: dict[tuple[datetime | None, int, datetime], list[int]] = defaultdict(list)
        for reminder in reminders:
            alike[(reminder.at, reminder.version, reminder.was)].append(reminder.measure_id)
        for (at, version, was), ids in alike.items():
            for start in range(0, len(ids), MOVE_ON_IDS):
                self.session.execute(_move_on_statement(at, version, was,
                                                        ids[start:start + MOVE_ON_IDS]))


def store_for(session: Session) -> SweepStore:
    """The store for the session's backend: PostgreSQL's adapter, or the portable one."""
    if session.get_bind().dialect.name == "postgresql":
        from workflow.pg.sweep import PostgresSweepStore  # builds on this module's names
        return PostgresSweepStore(session)
    return SweepStore(session)


class SharedPlan(NamedTuple):
    """The next reminder time and the due notices (``measure_id`` 0), each with its reason,
    of every measure with the same dates and policy."""

    next_at: datetime | None
    notices: tuple[tuple[Notice, str], ...]


class PolicyPlans(NamedTuple):
    """A policy, and the plans worked out under it so far, by the dates a plan depends on:
    (state, kind, deadline, created_on, changed_on, progress_on)."""

    policy: Policy
    by_dates: dict[tuple[Any, ...], SharedPlan]


@dataclass
class Planning:
    """What planning the batches of one sweep shares: its context, people and campaigns, and
    the plans worked out so far (a burst has few distinct combinations of dates)."""

    ctx: ReminderContext
    now: datetime
    recipients: Recipients
    campaigns: Campaigns
    #: the members of each measure's assisting units (协办单位), who get copies of what its
    #: owner is reminded of; only measures that have any
    assisting: dict[int, list[int]] = field(default_factory=dict)
    #: the plans worked out so far, by (kind, campaign), shared by campaigns whose policies
    #: are equal
    _plans: dict[tuple[str, int], PolicyPlans] = field(default_factory=dict)
    _by_policy: dict[Policy, PolicyPlans] = field(default_factory=dict)

    def load(self, batch: Sequence[DueMeasure]) -> None:
        """Read what planning ``batch`` needs besides its rows: its campaigns, and the people
        it may notify (owners, leaders, first responsibles, reviewers)."""
        if not batch:
            return
        campaign_ids = {m.campaign_id for m in batch}
        self.campaigns.load(campaign_ids)
        people = {m.owner_id for m in batch} | {m.leader_id for m in batch}
        people.update(self.campaigns[cid].first_responsible_id for cid in campaign_ids)
        people.discard(None)
        # only measures with assisting units are looked up (most have none)
        people.update(self._load_assisting([m.id for m in batch if m.assisted]))
        self.recipients.load(people)  # type: ignore[arg-type]  # None discarded above
        self.recipients.reviewers()

    def _load_assisting(self, ids: list[int]) -> set[int]:
        """Read the members of the batch's assisting units; return them."""
        session = self.recipients.session
        found: set[int] = set()
        for start in range(0, len(ids), 900):
            rows = session.execute(
                select(MeasureAssistingUnit.measure_id, Person.id)
                .join(Person, Person.unit_id == MeasureAssistingUnit.unit_id)
                .where(MeasureAssistingUnit.measure_id.in_(ids[start:start + 900]),
                       Person.active.is_(True))
                .order_by(MeasureAssistingUnit.measure_id, MeasureAssistingUnit.position,
                          Person.id))
            for measure_id, person_id in rows:
                self.assisting.setdefault(measure_id, []).append(person_id)
                found.add(person_id)
        return found

    def plans_for(self, kind: str, campaign_id: int) -> PolicyPlans:
        """The policy of the measures of ``kind`` in the campaign, and their plans so far."""
        found = self._plans.get((kind, campaign_id))
        if found is None:
            policy = self.ctx.policy_for(kind, self.campaigns[campaign_id].policy)
            found = self._by_policy.get(policy)
            if found is None:
                found = self._by_policy[policy] = PolicyPlans(policy, {})
            self._plans[(kind, campaign_id)] = found
        return found

    def plan(self, measure: DueMeasure, policy: Policy) -> SharedPlan:
        """Work out the plan of ``measure`` under ``policy``: what every measure with its
        dates (state, kind, deadline, created, changed, progress) shares."""
        planner, snapshot = self.ctx.planner, measure.snapshot()
        plan = planner.shared_plan(snapshot, policy, self.now)
        return SharedPlan(plan.next_at, tuple(
            (notice, planner.reason(notice, self.now, _waiting_since(notice, snapshot)))
            for notice in plan.notices))


def _waiting_since(notice: Notice, snapshot: MeasureSnapshot) -> date:
    """The day a notice's reason counts from: the change of state for the sign-off rules, the
    last activity for the others."""
    if notice.rule in (Rule.REVIEW_SLA, Rule.CLOSURE_SLA, Rule.FOLLOWUP):
        return snapshot.changed_on
    return snapshot.active_on


def plan_items(planning: Planning, batch: Sequence[DueMeasure]
               ) -> tuple[list[PlannedItem], list[NextReminder]]:
    """Plan each measure of ``batch``: the items to write (one per notice and receiver) and
    its next reminder time. Pure once ``Planning.load`` has read the batch's people.

    A burst has few distinct plans: each is worked out once (``Planning.plan``) and looked up
    for the other measures by their dates."""
    items: list[PlannedItem] = []
    reminders: list[NextReminder] = []
    route, campaigns = planning.recipients.route, planning.campaigns
    assisting = planning.assisting
    for measure in batch:
        plans = planning.plans_for(measure.kind, measure.campaign_id)
        dates = (measure.state, measure.kind, measure.deadline, measure.created_on,
                 measure.changed_on, measure.progress_on, measure.rechecked_on)
        plan = plans.by_dates.get(dates)
        if plan is None:
            plan = plans.by_dates[dates] = planning.plan(measure, plans.policy)
        reminders.append(NextReminder(measure.id, measure.version, plan.next_at,
                                      measure.next_reminder_at))
        for notice, reason in plan.notices:
            people: list[tuple[int, str]] = []  # whom the notice's relations name, in order
            for relation in notice.to:
                if relation == Relation.REVIEWER:
                    reviewers = planning.recipients.reviewers_for(
                        campaigns[measure.campaign_id].inspected_unit_id)
                    people.extend((reviewer, relation.value) for reviewer in reviewers)
                    continue
                person = (measure.owner_id if relation == Relation.OWNER
                          else measure.leader_id if relation == Relation.LEADER
                          else campaigns[measure.campaign_id].first_responsible_id)
                if person is not None:
                    people.append((person, relation.value))
                if relation == Relation.OWNER:  # 协办单位 members get a copy
                    people.extend((member, Relation.ASSISTING_MEMBER.value)
                                  for member in assisting.get(measure.id, ()))
            told: set[int] = set()
            for person, meant_as in people:
                receiver, absent = route(person)
                if receiver in told:
                    continue
                told.add(receiver)
                # PlannedItem(measure_id, rule, stage, deadline, recipient_id, urgency, reason,
                # on_behalf_of, colour, version, relation, meant_for)
                copy = COPY_NOTE if meant_as == Relation.ASSISTING_MEMBER else ""
                items.append(PlannedItem(
                    measure.id, notice.rule, notice.stage, notice.deadline, receiver,
                    notice.urgency,
                    reason + copy + (f"（代{absent}接收）" if absent else ""), absent,
                    notice.colour, measure.version, meant_as, person))
    return items, reminders


OVERDUE_PREFIX = f"{Rule.OVERDUE.value}:"


@dataclass
class Documents:
    """The 督办 documents a sweep's batches call for, gathered batch by batch and issued once,
    after the last batch is written (``attach``): each issuing's statements wait for the writes
    still running (``workflow.pg.sweep``), and the numbers then follow the measures' order
    across the whole sweep."""

    planning: Planning
    #: by stage key (measure, deadline, stage): a stage's document is asked for once
    requests: dict[str, DocumentRequest] = field(default_factory=dict)
    #: the escalation items that link to one, with its stage key
    linked: list[tuple[str, PlannedItem]] = field(default_factory=list)
    #: how many documents ``attach`` issued (not found issued before)
    issued: int = 0

    def collect(self, batch: Sequence[DueMeasure], items: Sequence[PlannedItem]) -> None:
        """The documents the batch's escalation items call for: an ``overdue:N`` item whose
        stage of the measure's policy names a document (repeats of the last stage name none)."""
        measures = {m.id: m for m in batch}
        requests = self.requests
        asked: set[str] = set()  # the stage keys looked at in this batch
        for item in items:
            if not item.rule.startswith(OVERDUE_PREFIX) or item.deadline is None:
                continue
            key = f"{item.measure_id}|{item.stage}"
            if key not in asked:
                asked.add(key)
                measure = measures[item.measure_id]
                policy = self.planning.plans_for(measure.kind, measure.campaign_id).policy
                kind = policy.document_at(int(item.rule.split(":", 1)[1]))
                if kind is not None:
                    requests[key] = DocumentRequest(item.measure_id, kind, item.rule, key,
                                                    item.deadline, policy.reply_days)
            if key in requests:
                self.linked.append((key, item))

    def attach(self, session: Session) -> list[PlannedItem]:
        """Issue the documents asked for (those issued before are found, not issued again) and
        point the items that named them at them (``item.document``: their messages link to the
        Word file); returns those items."""
        if not self.requests:
            return []
        issued = issue_notices(session, list(self.requests.values()), now=self.planning.now,
                               days=self.planning.ctx.days)
        self.issued = sum(1 for notice in issued.values() if notice.new)
        for key, item in self.linked:
            item.document = issued[key].as_payload()
        return [item for _, item in self.linked]


def _take_turn(session: Session) -> None:
    """Wait for any other sweep to commit (PostgreSQL: an advisory lock held until this
    transaction ends; SQLite: the caller holds the write lock already)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SWEEP_LOCK_KEY})


@metrics.observe_sweep
@cyclic_gc_paused()  # workflow.gcpause: the sweep's objects live until it returns
def sweep(session: Session, ctx: ReminderContext, *, now: datetime, batch: int = BATCH,
          reporter: Reporter = SILENT,
          make_store: Callable[[Session], SweepStore] = store_for) -> SweepResult:
    """Plan every due measure into the outbox and move its ``next_reminder_at`` on.

    ``reporter`` hears of each batch of measures planned (the count due is not known ahead).
    ``make_store`` makes the reads and writes: the backend's fastest by default; ``SweepStore``
    for the portable ones on any backend.
    """
    reporter.phase("扫描到期措施", total=None)
    _take_turn(session)
    store = make_store(session)
    planning = Planning(ctx, now, Recipients(session, local_date(now)), Campaigns(session))
    outbox = OutboxWriter(session, now=now, send_at=ctx.planner.next_send_time(now, ctx.base),
                          configured=ctx.configured, store=store)
    result = SweepResult()
    documents = Documents(planning)
    due = store.read_due(now, batch, after=None)
    planning.load(due)
    while due:
        items, reminders = plan_items(planning, due)
        documents.collect(due, items)
        # The next batch and what planning it needs are read before this one is written (its
        # writes move measures before the next batch's position, so they do not change it): on
        # PostgreSQL the writes then run while Python plans the next batch.
        following = store.read_due(now, batch, after=due[-1]) if len(due) == batch else []
        planning.load(following)
        outbox.write(items)
        store.move_on(reminders)
        result.measures += len(due)
        reporter.advance(len(due))
        due = following
    outbox.amend(documents.attach(session))  # the items written, now with their link
    result.documents = documents.issued
    result.messages = outbox.finish()
    return result


