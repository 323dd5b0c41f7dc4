"""Reading the ledger: queries and the JSON shapes of the CLI and API contracts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from workflow.acceptance import parties, party_label
from workflow.lifecycle import OPEN_STATES, Action, Kind, State
from workflow.models import (
    Area,
    Campaign,
    HistoryEntry,
    Measure,
    Person,
    Problem,
    ProgressReport,
    Unit,
)
from workflow.services.measures import current_acceptances, load_measure
from workflow.timeutil import SHANGHAI, as_utc


def is_overdue(state: State | str, kind: Kind | str, deadline: date | None, today: date) -> bool:
    """A measure is overdue while its owner still has work and its deadline has passed."""
    return deadline is not None and today > deadline and State(state) in OPEN_STATES


@dataclass(frozen=True)
class MeasureFilter:
    campaign_id: int | None = None
    state: State | None = None
    overdue: bool = False
    owner_id: int | None = None
    leader_id: int | None = None
    unit_id: int | None = None
    kind: Kind | None = None
    area_id: int | None = None
    #: the 方面 by its title, in every campaign (the statistics group 方面 by title)
    area_title: str | None = None
    #: deadline within these days (inclusive)
    due_from: date | None = None
    due_to: date | None = None
    #: signed off (销号, state ``closed``) on these days, Asia/Shanghai (inclusive)
    closed_from: date | None = None
    closed_to: date | None = None
    #: only measures whose owner still has work (``OPEN_STATES``)
    open_only: bool = False
    #: the campaigns of one inspected unit (被巡察单位), by its name
    inspected_unit: str | None = None


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=SHANGHAI)


def measure_query(flt: MeasureFilter, today: date) -> Select[Measure]:
    query = select(Measure).options(
        joinedload(Measure.problem).joinedload(Problem.area),
        joinedload(Measure.owner), joinedload(Measure.leader), joinedload(Measure.unit),
    )
    for condition in (*_equal_to(flt), *_areas(flt), *_dates(flt), *_open(flt, today)):
        query = query.where(condition)
    return query.order_by(Measure.campaign_id, Measure.position, Measure.id)


def _equal_to(flt: MeasureFilter) -> list[ColumnElement[bool]]:
    pairs = ((Measure.campaign_id, flt.campaign_id), (Measure.state, flt.state),
             (Measure.kind, flt.kind), (Measure.owner_id, flt.owner_id),
             (Measure.leader_id, flt.leader_id), (Measure.unit_id, flt.unit_id))
    return [column == value for column, value in pairs if value is not None]


def _areas(flt: MeasureFilter) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if flt.area_id is not None:
        found.append(Measure.problem_id.in_(
            select(Problem.id).where(Problem.area_id == flt.area_id)))
    if flt.inspected_unit is not None:
        found.append(Measure.campaign_id.in_(
            select(Campaign.id).join(Unit, Campaign.inspected_unit_id == Unit.id)
            .where(Unit.name == flt.inspected_unit)))
    if flt.area_title is not None:
        found.append(Measure.problem_id.in_(
            select(Problem.id).join(Area, Problem.area_id == Area.id)
            .where(Area.title == flt.area_title)))
    return found


def _dates(flt: MeasureFilter) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if flt.due_from is not None:
        found.append(Measure.deadline >= flt.due_from)
    if flt.due_to is not None:
        found.append(Measure.deadline <= flt.due_to)
    if flt.closed_from is not None or flt.closed_to is not None:
        # a closed measure's last state change is its sign-off (``MeasureRecord.closed_at``)
        found.append(Measure.state == State.CLOSED.value)
        if flt.closed_from is not None:
            found.append(Measure.state_changed_at >= _local_midnight(flt.closed_from))
        if flt.closed_to is not None:
            found.append(Measure.state_changed_at
                         < _local_midnight(flt.closed_to + timedelta(days=1)))
    return found


def _open(flt: MeasureFilter, today: date) -> list[ColumnElement[bool]]:
    open_values = [s.value for s in OPEN_STATES]
    found: list[ColumnElement[bool]] = []
    if flt.open_only:
        found.append(Measure.state.in_(open_values))
    if flt.overdue:
        found += [Measure.deadline < today, Measure.state.in_(open_values)]
    return found


def list_measures(session: Session, flt: MeasureFilter, today: date) -> Sequence[Measure]:
    return session.scalars(measure_query(flt, today)).unique().all()


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def measure_dict(measure: Measure, today: date) -> dict[str, Any]:
    """The contract shape of one measure (design.md, ``measure list --json``)."""
    return {
        "id": measure.id,
        "campaign_id": measure.campaign_id,
        "seq": measure.seq,
        "area": measure.problem.area.title,
        "problem": measure.problem.text,
        "title": measure.title,
        "kind": str(measure.kind),
        "state": str(measure.state),
        "deadline": _iso(measure.deadline),
        "deadline_provisional": measure.deadline_provisional,
        "deadline_rule": ({"counted_from": measure.deadline_counted_from.isoformat(),
                           "workdays": measure.deadline_workdays}
                          if measure.deadline_workdays is not None
                          and measure.deadline_counted_from is not None else None),
        "original_deadline": _iso(measure.original_deadline or measure.deadline),
        "owner": measure.owner.email if measure.owner else None,
        "leader": measure.leader.email if measure.leader else None,
        "unit": measure.unit.name if measure.unit else None,
        "overdue": is_overdue(measure.state, measure.kind, measure.deadline, today),
        "version": measure.version,
    }


def extension_request_dict(measure: Measure) -> dict[str, Any] | None:
    """The extension request (延期申请) waiting for the leader, or None."""
    if measure.extension_deadline is None:
        return None
    return {"deadline": measure.extension_deadline.isoformat(),
            "reason": measure.extension_reason or "",
            "by": measure.extension_by.email if measure.extension_by else None,
            "at": as_utc(measure.extension_at).isoformat() if measure.extension_at else None}


def acceptance_dict(session: Session, measure: Measure) -> dict[str, Any] | None:
    """三方验收: the campaign's acceptors and who has accepted the current submission (None
    for a campaign without acceptors)."""
    keys = parties(measure.campaign.acceptors)
    if not keys:
        return None
    done = current_acceptances(session, measure.id) if measure.state in (
        State.SUBMITTED, State.VERIFIED, State.CLOSED) else []
    ids = {int(k.split(":")[1]) for k in keys if k.startswith("person:")} | {a.by_id for a in done}
    people = {p.id: p for p in session.scalars(select(Person).where(Person.id.in_(ids)))}
    names = {pid: p.name for pid, p in people.items()}
    accepted = {a.party for a in done}
    return {
        "acceptors": [{"acceptor": party_label(k, names), "key": k,
                       "accepted": k in accepted} for k in keys],
        "acceptances": [{"acceptor": party_label(a.party, names), "key": a.party,
                         "by": people[a.by_id].email if a.by_id in people else None,
                         "by_name": names.get(a.by_id), "at": a.at} for a in done],
    }


def measure_detail(session: Session, measure_id: int, today: date) -> dict[str, Any]:
    """One measure with its history (oldest first) and progress reports."""
    measure = load_measure(session, measure_id)
    entries = session.scalars(
        select(HistoryEntry).options(joinedload(HistoryEntry.actor),
                                     joinedload(HistoryEntry.on_behalf_of))
        .where(HistoryEntry.measure_id == measure_id).order_by(HistoryEntry.seq)
    ).all()
    reports = session.scalars(
        select(ProgressReport).options(selectinload(ProgressReport.evidence),
                                       joinedload(ProgressReport.author))
        .where(ProgressReport.measure_id == measure_id).order_by(ProgressReport.id)
    ).all()
    shown = measure_dict(measure, today)
    shown["extension_request"] = extension_request_dict(measure)
    shown["urges"] = sum(1 for e in entries if e.action == Action.URGE)
    shown["assisting_units"] = [unit.name for unit in measure.assisting_units]
    shown["rechecks"] = [{"result": (e.data or {}).get("result"), "at": as_utc(e.at).isoformat(),
                          "by": e.actor.email if e.actor else None, "comment": e.comment}
                         for e in entries if e.action == Action.RECHECK]
    acceptance = acceptance_dict(session, measure)
    if acceptance is not None:
        shown.update(acceptance)
    shown["history"] = [
        {
            "seq": e.seq,
            "action": e.action,
            "from": e.from_state,
            "to": e.to_state,
            "actor": e.actor.email if e.actor else None,
            "on_behalf_of": e.on_behalf_of.email if e.on_behalf_of else None,
            "comment": e.comment,
            "data": e.data,
            "at": as_utc(e.at).isoformat(),
        }
        for e in entries
    ]
    shown["progress"] = [
        {
            "text": r.text,
            "author": r.author.email if r.author else None,
            "at": as_utc(r.at).isoformat(),
            "evidence": [
                {"filename": ev.filename, "size": ev.size, "sha256": ev.sha256,
                 "content_type": ev.content_type}
                for ev in r.evidence
            ],
        }
        for r in reports
    ]
    return shown


def campaign_dict(session: Session, campaign: Campaign) -> dict[str, Any]:
    areas = session.scalar(select(func.count(Area.id)).where(Area.campaign_id == campaign.id))
    problems = session.scalar(select(func.count(Problem.id)).join(Area)  # not sub-problems
                              .where(Area.campaign_id == campaign.id, Problem.parent_id.is_(None)))
    measures = session.scalar(select(func.count(Measure.id)).where(Measure.campaign_id == campaign.id))
    return {
        "id": campaign.id,
        "title": campaign.title,
        "feedback_date": campaign.feedback_date.isoformat() if campaign.feedback_date else None,
        "first_responsible": campaign.first_responsible.email
        if campaign.first_responsible else None,
        "areas": areas,
        "problems": problems,
        "measures": measures,
        # 三方验收: people by email, roles by name (reviewer, leader, first_responsible)
        "acceptors": _acceptor_keys(session, campaign.acceptors),
        "inspected_unit": campaign.inspected_unit.name if campaign.inspected_unit else None,
    }


def _acceptor_keys(session: Session, acceptors: Sequence[int | str] | None) -> list[str]:
    ids = [a for a in acceptors or () if isinstance(a, int)]
    emails = dict(session.execute(select(Person.id, Person.email).where(Person.id.in_(ids)))
                  .all()) if ids else {}
    return [emails.get(a, str(a)) if isinstance(a, int) else a for a in acceptors or ()]



#: Days before the deadline from which an open measure shows yellow (due soon).
DUE_SOON_DAYS = 7
#: Ways the ledger page may be sorted: name → columns.
SORTS: dict[str, tuple[Any, ...]] = {
    "seq": (Measure.campaign_id, Measure.position, Measure.id),
    "deadline": (Measure.deadline, Measure.id),
    "state": (Measure.state, Measure.id),
    "changed": (Measure.state_changed_at, Measure.id),
}


def deadline_health(state: State | str, deadline: date | None, today: date,
                    soon_days: int = DUE_SOON_DAYS) -> str:
    """``red`` overdue, ``yellow`` due within ``soon_days``, ``green`` on track, ``done``
    for work that left the owner's hands (submitted, verified, closed)."""
    if State(state) not in OPEN_STATES:
        return "done"
    if deadline is None:
        return "green"
    if today > deadline:
        return "red"
    if deadline - today <= timedelta(days=soon_days):
        return "yellow"
    return "green"


@dataclass(frozen=True)
class LedgerCounts:
    total: int
    by_state: dict[str, int]
    overdue: int
    due_soon: int


@dataclass(frozen=True)
class LedgerPage:
    measures: Sequence[Measure]
    counts: LedgerCounts
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.counts.total // self.per_page))


def _filtered(flt: MeasureFilter, today: date, scope: ColumnElement[bool] | None
              ) -> Select[Measure]:
    query = measure_query(flt, today)
    return query if scope is None else query.where(scope)


def ledger_counts(session: Session, flt: MeasureFilter, today: date,
                  scope: ColumnElement[bool] | None = None) -> LedgerCounts:
    """Counts over the filtered ledger: by state, overdue, and due within DUE_SOON_DAYS."""
    open_states = [s.value for s in OPEN_STATES]
    is_open = Measure.state.in_(open_states)
    overdue = case((is_open & (Measure.deadline < today), 1), else_=0)
    soon = case((is_open & (Measure.deadline >= today)
                 & (Measure.deadline <= today + timedelta(days=DUE_SOON_DAYS)), 1), else_=0)
    # the filter's and scope's conditions are all on ``measure`` (the joins are eager loads),
    # so the counts read the table once rather than joining it to a subquery of itself
    where = _filtered(flt, today, scope).whereclause
    counting = select(Measure.state, func.count(), func.sum(overdue), func.sum(soon))
    if where is not None:
        counting = counting.where(where)
    rows = session.execute(counting.group_by(Measure.state)).all()
    by_state = {s.value: 0 for s in State}
    total = late = due = 0
    for state, count, n_overdue, n_soon in rows:
        by_state[str(state)] = count
        total += count
        late += n_overdue or 0
        due += n_soon or 0
    return LedgerCounts(total, by_state, late, due)


def ledger_page(session: Session, flt: MeasureFilter, today: date, *,
                scope: ColumnElement[bool] | None = None, sort: str = "seq",
                descending: bool = False, page: int = 1, per_page: int = 50) -> LedgerPage:
    """One page of the filtered, scoped ledger with the counts over all of it."""
    counts = ledger_counts(session, flt, today, scope)
    columns = SORTS.get(sort, SORTS["seq"])
    order = [c.desc() if descending else c.asc() for c in columns]
    pages = max(1, -(-counts.total // per_page))
    page = min(max(1, page), pages)
    query = (_filtered(flt, today, scope).order_by(None).order_by(*order)
             .limit(per_page).offset((page - 1) * per_page))
    return LedgerPage(session.scalars(query).unique().all(), counts, page, per_page)
