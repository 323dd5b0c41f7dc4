"""The reminder sweep: claim measures whose ``next_reminder_at`` has passed, plan their notices,
write them to the outbox, and move ``next_reminder_at`` on, all in the caller's transaction.

Only due rows are read (a partial index on ``next_reminder_at``), so an idle sweep costs the
same over a thousand measures or a million. The claim reads what planning needs in the same
statement.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from workflow import metrics
from workflow.calendar_store import load_calendar
from workflow.lifecycle import Kind, State
from workflow.models import Campaign, Measure, OutboxMessage, Person
from workflow.outbox import PlannedItem, write_notices
from workflow.policy import Policy, PolicySet
from workflow.progress import SILENT, Reporter
from workflow.reminders import MeasureSnapshot, Notice, Planner, WorkdayIndex
from workflow.timeutil import local_date
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

    def load(self, ids: set[int]) -> None:
        missing = sorted(ids - set(self._people))
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


_SNAPSHOT_COLUMNS = (
    Measure.id, Measure.version, Measure.state, Measure.kind, Measure.deadline,
    Measure.created_at, Measure.state_changed_at, Measure.last_progress_at, Measure.owner_id,
    Measure.leader_id, Measure.campaign_id,
)
#: The campaign's policy and first responsible come from ``Campaigns``, once per campaign: no
#: join, so the claim is a plain scan of the partial index.
_CLAIM = (select(*_SNAPSHOT_COLUMNS)
          .where(Measure.next_reminder_at.is_not(None),
                 Measure.next_reminder_at <= bindparam("now"))
          .order_by(Measure.next_reminder_at).limit(bindparam("batch")))
#: pg_advisory_xact_lock's key for "a sweep is running" (any constant unique to rectiflow).
SWEEP_LOCK_KEY = 0x5245_4354  # "RECT"


def _take_turn(session: Session) -> None:
    """Wait for any other sweep to commit; held until this transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SWEEP_LOCK_KEY})


def _claim(session: Session, now: datetime, batch: int) -> Sequence[Any]:
    """Up to ``batch`` due measures, earliest first, with what planning needs."""
    return session.execute(_CLAIM, {"now": now, "batch": batch}).all()


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

    def policy(self, campaign_id: int) -> Mapping[str, Any] | None:
        return self._known[campaign_id][0]

    def first_responsible(self, campaign_id: int) -> int | None:
        return self._known[campaign_id][1]


def plan_items(ctx: ReminderContext, recipients: Recipients, campaigns: Campaigns,
               rows: Sequence[Any], now: datetime
               ) -> tuple[list[PlannedItem], list[dict[str, Any]]]:
    """Plan each claimed measure: the items to write and each measure's next reminder time."""
    planned: list[tuple[Any, Notice]] = []
    updates: list[dict[str, Any]] = []
    campaign_ids = {row.campaign_id for row in rows}
    campaigns.load(campaign_ids)
    policies: dict[tuple[str, int], Policy] = {}
    for row in rows:
        snapshot = MeasureSnapshot(row.id, State(row.state), Kind(row.kind), row.deadline,
                                   row.created_at, row.state_changed_at, row.last_progress_at)
        policy = policies.get((row.kind, row.campaign_id))
        if policy is None:
            policy = policies[(row.kind, row.campaign_id)] = ctx.policy_for(
                row.kind, campaigns.policy(row.campaign_id))
        plan = ctx.planner.plan(snapshot, policy, now)
        updates.append({"measure_id": row.id, "version": row.version, "next_at": plan.next_at})
        planned.extend((row, notice) for notice in plan.notices)
    first = {cid: campaigns.first_responsible(cid) for cid in campaign_ids}
    recipients.load({pid for row, _ in planned
                     for pid in (row.owner_id, row.leader_id, first[row.campaign_id]) if pid})
    items: list[PlannedItem] = []
    for row, notice in planned:
        anchor = row.state_changed_at if notice.rule in ("review_sla", "closure_sla") else (
            max(filter(None, (row.last_progress_at, row.state_changed_at))))
        reason = ctx.planner.reason(notice, now, anchor)
        targets: list[int] = []
        for role in notice.to:
            if role == "reviewer":
                targets.extend(recipients.reviewers())
            else:
                pid = {"owner": row.owner_id, "leader": row.leader_id,
                       "first_responsible": first[row.campaign_id]}[role]
                if pid is not None:
                    targets.append(pid)
        seen: set[int] = set()
        for target in targets:
            receiver, absent = recipients.route(target)
            if receiver in seen:
                continue
            seen.add(receiver)
            items.append(PlannedItem(
                measure_id=row.id, rule=notice.rule, stage=notice.stage,
                deadline=notice.deadline, recipient_id=receiver, urgency=notice.urgency,
                reason=reason + (f"（代{absent}接收）" if absent else ""),
                on_behalf_of=absent, colour=notice.colour))
    return items, updates


_MOVE_ON_PG = text(
    "UPDATE measure SET next_reminder_at = due.next_at "
    "FROM json_to_recordset(CAST(:due AS json)) AS due(id integer, version integer, "
    "next_at timestamptz) WHERE measure.id = due.id AND measure.version = due.version")
_MEASURES = Measure.__table__
_MOVE_ON = (update(_MEASURES)  # type: ignore[arg-type]
            .where(_MEASURES.c.id == bindparam("measure_id"),
                   _MEASURES.c.version == bindparam("where_version"))
            .values(next_reminder_at=bindparam("next_at")))


def _move_on(session: Session, updates: list[dict[str, Any]]) -> None:
    """Write each claimed measure's next reminder time, unless an action changed the measure
    since it was read. PostgreSQL gets one statement over a JSON document (an executemany costs
    a round trip per row, and the json module encodes far faster than array parameters);
    SQLite an executemany."""
    if not updates:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_MOVE_ON_PG, {"due": json.dumps([
            {"id": u["measure_id"], "version": u["version"],
             "next_at": u["next_at"].isoformat() if u["next_at"] else None} for u in updates])})
        return
    session.execute(_MOVE_ON, [{"measure_id": u["measure_id"], "where_version": u["version"],
                                "next_at": u["next_at"]} for u in updates])


@metrics.observe_sweep
def sweep(session: Session, ctx: ReminderContext, *, now: datetime,
          batch: int = BATCH, reporter: Reporter = SILENT) -> SweepResult:
    """Plan every due measure into the outbox and move its ``next_reminder_at`` on.

    ``reporter`` hears of each batch of measures planned (the count due is not known ahead).
    """
    reporter.phase("扫描到期措施", total=None)
    result = SweepResult()
    recipients = Recipients(session, local_date(now))
    campaigns = Campaigns(session)
    items: list[PlannedItem] = []
    seen: set[int] = set()
    _take_turn(session)
    while True:
        rows = [row for row in _claim(session, now, batch) if row.id not in seen]
        if not rows:
            break
        seen.update(row.id for row in rows)
        batch_items, updates = plan_items(ctx, recipients, campaigns, rows, now)
        items.extend(batch_items)
        _move_on(session, updates)
        result.measures += len(rows)
        reporter.advance(len(rows))
    if items:
        send_at = ctx.planner.next_send_time(now, ctx.base)
        result.messages = write_notices(session, items, now=now, send_at=send_at,
                                        configured=ctx.configured)
    return result
