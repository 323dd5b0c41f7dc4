"""The reminder sweep: claim measures whose ``next_reminder_at`` has passed, plan their notices,
write them to the outbox, and move ``next_reminder_at`` on, all in the caller's transaction.

Only due rows are read (a partial index on ``next_reminder_at``), so an idle sweep costs the
same over a thousand measures or a million. On PostgreSQL claimed rows are locked with
``FOR UPDATE SKIP LOCKED``, so two sweeps at once split the work; the outbox items' unique keys
make any overlap harmless.
"""

from __future__ import annotations

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
    Measure.id, Measure.state, Measure.kind, Measure.deadline, Measure.created_at,
    Measure.state_changed_at, Measure.last_progress_at, Measure.owner_id, Measure.leader_id,
    Campaign.first_responsible_id, Campaign.policy,
)


def _claim(session: Session, now: datetime, batch: int) -> Sequence[int]:
    query = (select(Measure.id)
             .where(Measure.next_reminder_at.is_not(None), Measure.next_reminder_at <= now)
             .order_by(Measure.next_reminder_at).limit(batch))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return session.scalars(query).all()


def plan_items(ctx: ReminderContext, recipients: Recipients, rows: Sequence[Any],
               now: datetime) -> tuple[list[PlannedItem], list[dict[str, Any]]]:
    """Plan each claimed measure: the items to write and each measure's next reminder time."""
    planned: list[tuple[Any, Notice]] = []
    updates: list[dict[str, Any]] = []
    for row in rows:
        snapshot = MeasureSnapshot(row.id, State(row.state), Kind(row.kind), row.deadline,
                                   row.created_at, row.state_changed_at, row.last_progress_at)
        policy = ctx.policy_for(row.kind, row.policy)
        plan = ctx.planner.plan(snapshot, policy, now)
        updates.append({"measure_id": row.id, "next_at": plan.next_at})
        planned.extend((row, notice) for notice in plan.notices)
    recipients.load({pid for row, _ in planned
                     for pid in (row.owner_id, row.leader_id, row.first_responsible_id) if pid})
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
                       "first_responsible": row.first_responsible_id}[role]
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


def _move_on(session: Session, updates: list[dict[str, Any]]) -> None:
    """Write each claimed measure's next reminder time: on PostgreSQL one statement over two
    arrays (an executemany costs a round trip per row), elsewhere an executemany."""
    if not updates:
        return
    table = Measure.__table__
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(
            f"UPDATE {table.name} SET next_reminder_at = due.next_at "  # type: ignore[attr-defined]
            "FROM unnest(CAST(:ids AS integer[]), CAST(:times AS timestamptz[])) "
            f"AS due(id, next_at) WHERE {table.name}.id = due.id"),  # type: ignore[attr-defined]
            {"ids": [u["measure_id"] for u in updates],
             "times": [u["next_at"] for u in updates]})
        return
    session.execute(update(table)  # type: ignore[arg-type]
                    .where(table.c.id == bindparam("measure_id"))
                    .values(next_reminder_at=bindparam("next_at")), updates)


@metrics.observe_sweep
def sweep(session: Session, ctx: ReminderContext, *, now: datetime,
          batch: int = BATCH, reporter: Reporter = SILENT) -> SweepResult:
    """Plan every due measure into the outbox and move its ``next_reminder_at`` on.

    ``reporter`` hears of each batch of measures planned (the count due is not known ahead).
    """
    reporter.phase("扫描到期措施", total=None)
    result = SweepResult()
    recipients = Recipients(session, local_date(now))
    items: list[PlannedItem] = []
    seen: set[int] = set()
    while True:
        ids = [i for i in _claim(session, now, batch) if i not in seen]
        if not ids:
            break
        seen.update(ids)
        rows = session.execute(select(*_SNAPSHOT_COLUMNS).join(Campaign)
                               .where(Measure.id.in_(ids))).all()
        batch_items, updates = plan_items(ctx, recipients, rows, now)
        items.extend(batch_items)
        _move_on(session, updates)
        result.measures += len(rows)
        reporter.advance(len(rows))
    if items:
        send_at = ctx.planner.next_send_time(now, ctx.base)
        result.messages = write_notices(session, items, now=now, send_at=send_at,
                                        configured=ctx.configured)
    return result
