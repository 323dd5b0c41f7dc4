"""Reading the ledger: queries and the JSON shapes of the CLI and API contracts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from workflow.lifecycle import OPEN_STATES, Kind, State
from workflow.models import (
    Area,
    Campaign,
    HistoryEntry,
    Measure,
    Problem,
    ProgressReport,
)
from workflow.services.measures import load_measure
from workflow.timeutil import as_utc


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


def measure_query(flt: MeasureFilter, today: date) -> Select[Measure]:
    query = select(Measure).options(
        joinedload(Measure.problem).joinedload(Problem.area),
        joinedload(Measure.owner), joinedload(Measure.leader), joinedload(Measure.unit),
    )
    if flt.campaign_id is not None:
        query = query.where(Measure.campaign_id == flt.campaign_id)
    if flt.state is not None:
        query = query.where(Measure.state == flt.state)
    if flt.kind is not None:
        query = query.where(Measure.kind == flt.kind)
    for column, value in ((Measure.owner_id, flt.owner_id), (Measure.leader_id, flt.leader_id),
                          (Measure.unit_id, flt.unit_id)):
        if value is not None:
            query = query.where(column == value)
    if flt.overdue:
        query = query.where(Measure.deadline < today,
                            Measure.state.in_([s.value for s in OPEN_STATES]))
    return query.order_by(Measure.campaign_id, Measure.position, Measure.id)


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
        "original_deadline": _iso(measure.original_deadline or measure.deadline),
        "owner": measure.owner.email if measure.owner else None,
        "leader": measure.leader.email if measure.leader else None,
        "unit": measure.unit.name if measure.unit else None,
        "overdue": is_overdue(measure.state, measure.kind, measure.deadline, today),
        "version": measure.version,
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
    problems = session.scalar(select(func.count(Problem.id)).join(Area)
                              .where(Area.campaign_id == campaign.id))
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
    }

