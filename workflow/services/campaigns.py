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
from workflow.lifecycle import ACCEPTOR_RELATIONS, OPEN_STATES, SEE_EVERYTHING_ROLES, State
from workflow.models import Campaign, Measure, Person, Unit
from workflow.services.people import find_person, get_or_create_unit, unit_ancestors
from workflow.services.visibility import Scope, person_reaches

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
                    acceptors: Iterable[str] = (), inspected_unit: str | None = None,
                    creator: Person | None = None) -> Campaign:
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
    set_inspected_unit(session, campaign,
                       inspected_unit or default_inspected_unit(session, creator))
    check_may_inspect(session, creator, campaign)
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


def set_inspected_unit(session: Session, campaign: Campaign, name: str | None) -> Unit | None:
    """Name the unit ``campaign`` inspected (被巡察单位), creating the unit if it is new; None or
    blank leaves the campaign as it is. A campaign keeps the inspected unit it has: naming
    another one is refused (its measures' units sit under the first)."""
    name = (name or "").strip()
    if not name:
        return campaign.inspected_unit
    if len(name) > 200:
        raise InputError("被巡察单位名称过长（最多 200 字）", field="inspected_unit")
    unit = get_or_create_unit(session, name)
    current = campaign.inspected_unit_id
    if current is not None and current != unit.id:
        held = session.get(Unit, current)
        raise InputError(f"整改任务「{campaign.title}」的被巡察单位已是「{held.name if held else current}」，"
                         f"不能改为「{name}」", field="inspected_unit")
    campaign.inspected_unit_id = unit.id
    campaign.inspected_unit = unit
    session.flush()
    return unit


def place_unit(session: Session, campaign: Campaign, unit_id: int) -> None:
    """Put a unit named by ``campaign``'s ledger under its inspected unit: a unit already below
    it stays; a top-level unit that is not above it moves under it; a unit that belongs to
    another inspected unit is refused (names are unique in the installation)."""
    inspected = campaign.inspected_unit_id
    if inspected is None:
        return
    above = unit_ancestors(session, unit_id)
    if inspected in above:
        return
    unit = session.get(Unit, unit_id)
    assert unit is not None
    if unit.parent_id is None and unit_id not in unit_ancestors(session, inspected):
        unit.parent_id = inspected
        session.flush()
        return
    owner = session.get(Unit, inspected)
    raise InputError(f"部门「{unit.name}」不属于被巡察单位「{owner.name if owner else inspected}」"
                     "（已属于其他单位）；请改用能区分单位的部门名称，如「{单位}{部门}」",
                     field="unit")


def get_campaign(session: Session, campaign_id: int, scope: Scope | None = None) -> Campaign:
    """The campaign; NotFound (404) if there is none, or if ``scope`` does not cover it (a
    campaign of another inspected unit does not exist for the asker)."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or (scope is not None and not scope.sees_campaign(campaign_id)):
        raise NotFound("整改任务", campaign_id)
    return campaign


def check_may_inspect(session: Session, creator: Person | None, campaign: Campaign) -> None:
    """A reviewer may only create or fill campaigns of their own inspected unit (or of none)."""
    if creator is not None and not person_reaches(session, creator, campaign):
        raise InputError("只能为本单位（被巡察单位）新建或导入整改任务", field="inspected_unit")


def default_inspected_unit(session: Session, creator: Person | None) -> str | None:
    """The inspected unit a scoped reviewer's new campaign belongs to: the nearest unit at or
    above theirs that is already some campaign's inspected unit; None for admins, the 巡察办
    and people outside every inspected unit."""
    if creator is None or creator.unit_id is None or set(creator.roles or ()) & SEE_EVERYTHING_ROLES:
        return None
    inspected = set(session.scalars(select(Campaign.inspected_unit_id).distinct()))
    current: int | None = creator.unit_id
    seen: set[int] = set()
    while current is not None and current not in seen:
        seen.add(current)
        if current in inspected:
            return session.get(Unit, current).name  # type: ignore[union-attr]
        current = session.scalar(select(Unit.parent_id).where(Unit.id == current))
    return None


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


def seen_campaigns(scope: Scope) -> frozenset[int] | None:
    """The campaigns ``scope`` covers whole (None: every campaign)."""
    return None if scope.everything else scope.campaigns


def campaign_figures(session: Session, today: date,
                     campaign_ids: frozenset[int] | None = None) -> Sequence[CampaignFigures]:
    """Every campaign (or those of ``campaign_ids``), newest first, with its closed, open and
    overdue counts."""
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
            for c in session.scalars(select(Campaign).order_by(Campaign.id.desc()))
            if campaign_ids is None or c.id in campaign_ids]
