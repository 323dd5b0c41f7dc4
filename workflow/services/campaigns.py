"""Campaigns (整改任务): creating one, and the figures the clerk's campaign list shows.

The CLI's ``campaign add`` and the web's campaign form and ``POST /api/campaigns`` both create
through ``create_campaign``; the caller owns the transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workflow.acceptance import party_key, party_label
from workflow.errors import AlreadyExists, InputError, NotFound
from workflow.ledger import campaign_dict
from workflow.lifecycle import ACCEPTOR_RELATIONS, OPEN_STATES, State
from workflow.models import Campaign, Measure, Person
from workflow.services.people import find_person

MAX_TITLE = 300


def _person(session: Session, key: str, field: str) -> Person:
    try:
        return find_person(session, key)
    except NotFound as exc:
        raise InputError(str(exc), field=field) from None
    except InputError as exc:
        raise InputError(str(exc), field=field) from None


def create_campaign(session: Session, *, title: str, now: datetime,
                    first_responsible: str | None = None, feedback_date: date | None = None,
                    acceptors: Iterable[str] = ()) -> Campaign:
    """A new campaign; the title must be given and new. People are named by email or unique
    name; an unknown one is bad input naming its field."""
    title = (title or "").strip()
    if not title:
        raise InputError("整改任务名称不能为空", field="title")
    if len(title) > MAX_TITLE:
        raise InputError(f"整改任务名称过长（最多 {MAX_TITLE} 字）", field="title")
    if session.scalar(select(Campaign.id).where(Campaign.title == title)) is not None:
        raise AlreadyExists(f"整改任务「{title}」已存在", field="title")
    campaign = Campaign(title=title, created_at=now, feedback_date=feedback_date)
    if first_responsible and first_responsible.strip():
        campaign.first_responsible = _person(session, first_responsible, "first_responsible")
    campaign.acceptors = parse_acceptors(session, acceptors) or None
    session.add(campaign)
    session.flush()
    return campaign


def split_names(value: str) -> list[str]:
    """Names given in one text, separated by commas, 、 or semicolons."""
    return [part.strip() for part in re.split(r"[,，、;；]", value) if part.strip()]


def parse_acceptors(session: Session, keys: Iterable[str]) -> list[int | str]:
    """The acceptors (三方验收) named by ``keys``: a relation by its code name or label
    (reviewer/整改办, leader/责任领导, first_responsible/第一责任人) or a person by email or
    unique name; each once, in order. An unknown one is bad input naming ``acceptors``."""
    accepting: list[int | str] = []
    for key in keys:
        key = key.strip()
        if not key:
            continue
        relation = next((r for r in ACCEPTOR_RELATIONS if key in (r.value, r.label)), None)
        entry: int | str = (relation.value if relation is not None
                            else _person(session, key, "acceptors").id)
        if entry not in accepting:
            accepting.append(entry)
    return accepting


def set_acceptors(session: Session, campaign: Campaign, keys: Iterable[str]) -> list[int | str]:
    """Name the campaign's acceptors (三方验收); none clears them (a single verify again).

    A submission some acceptors have already verified keeps those verifications: they count
    against the new list where they name one of its parties."""
    accepting = parse_acceptors(session, keys)
    campaign.acceptors = accepting or None
    return accepting


def acceptor_labels(session: Session, acceptors: Sequence[int | str] | None) -> list[str]:
    """How a campaign's acceptors are shown: people's names, relations' labels."""
    ids = [a for a in acceptors or () if isinstance(a, int)]
    names = dict(session.execute(select(Person.id, Person.name).where(Person.id.in_(ids))).all()
                 ) if ids else {}
    return [party_label(party_key(a), names) for a in acceptors or ()]


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("整改任务", campaign_id)
    return campaign


@dataclass(frozen=True)
class CampaignFigures:
    """One row of the campaign list: the campaign's counts as of ``today``."""

    campaign: dict[str, Any]
    closed: int
    open: int
    overdue: int

    @property
    def completion_rate(self) -> float:
        """The closed share of all measures (the digest's definition), 0 when there are none."""
        total = self.campaign["measures"]
        return self.closed / total if total else 0.0


def campaign_figures(session: Session, today: date) -> Sequence[CampaignFigures]:
    """Every campaign, newest first, with its closed, open and overdue counts."""
    open_states = [s.value for s in OPEN_STATES]
    closed = dict(session.execute(select(Measure.campaign_id, func.count()).where(
        Measure.state == State.CLOSED).group_by(Measure.campaign_id)).all())
    still_open = dict(session.execute(select(Measure.campaign_id, func.count()).where(
        Measure.state.in_(open_states)).group_by(Measure.campaign_id)).all())
    overdue = dict(session.execute(select(Measure.campaign_id, func.count()).where(
        Measure.state.in_(open_states), Measure.deadline < today)
        .group_by(Measure.campaign_id)).all())
    return [CampaignFigures(campaign_dict(session, c), closed.get(c.id, 0),
                            still_open.get(c.id, 0), overdue.get(c.id, 0))
            for c in session.scalars(select(Campaign).order_by(Campaign.id.desc()))]
