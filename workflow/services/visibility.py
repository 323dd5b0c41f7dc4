"""Which measures a person may see (the web app and API apply it to every read).

The rule: admins and the 巡察办 (supervisor) see every measure. Reviewers (整改办) and viewers
see every measure of the campaigns of their own inspected unit (their unit, or a unit above it,
is the campaign's ``inspected_unit``) and of the campaigns without an inspected unit, which
belong to the whole installation; while no campaign names an inspected unit that is every
measure, as before. Anyone else sees the measures they own, lead, or are first responsible for
(through the campaign), and the measures of their unit and of the units below it, as 责任部门 or
as 协办单位 (an assisting unit), in the campaigns their units reach; a delegate also sees what
the people who named them see while the delegation lasts. A measure someone may not see does not
exist for them (HTTP 404, not 403), so its existence does not leak.

This is the one place visibility is decided: lists, pages, the API, exports, reports, digests,
statistics, notices and evidence all ask ``scope_of`` (or ``campaign_ids_of``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.orm import Session

from workflow.lifecycle import SEE_ALL_ROLES, SEE_EVERYTHING_ROLES
from workflow.models import Campaign, Measure, MeasureAssistingUnit, Person, Unit
from workflow.services.people import principals_for, unit_ancestors


@dataclass(frozen=True)
class Scope:
    """What one person sees on one day; ``everything`` or the ids below."""

    everything: bool
    people: frozenset[int] = frozenset()
    units: frozenset[int] = frozenset()
    campaigns: frozenset[int] = frozenset()
    #: Campaigns the unit clause applies in (None: every campaign). A person's unit reaches the
    #: campaigns of its own inspected unit and those without one, not another unit's.
    unit_campaigns: frozenset[int] | None = None

    def condition(self) -> ColumnElement[bool] | None:
        """A WHERE clause on ``Measure`` (None: no restriction)."""
        if self.everything:
            return None
        clauses: list[ColumnElement[bool]] = []
        if self.people:
            clauses += [Measure.owner_id.in_(self.people), Measure.leader_id.in_(self.people)]
        if self.units:
            in_units = or_(Measure.unit_id.in_(self.units),
                           Measure.id.in_(select(MeasureAssistingUnit.measure_id).where(
                               MeasureAssistingUnit.unit_id.in_(self.units))))
            clauses.append(in_units if self.unit_campaigns is None
                           else and_(in_units, Measure.campaign_id.in_(self.unit_campaigns)))
        if self.campaigns:
            clauses.append(Measure.campaign_id.in_(self.campaigns))
        return or_(*clauses) if clauses else false()

    def sees(self, measure: Measure) -> bool:
        return (self.everything or measure.owner_id in self.people
                or measure.leader_id in self.people or measure.campaign_id in self.campaigns
                or (self._in_units(measure)
                    and (self.unit_campaigns is None
                         or measure.campaign_id in self.unit_campaigns)))

    def _in_units(self, measure: Measure) -> bool:
        """Whether the measure's 责任部门 or one of its 协办单位 is among ``units``."""
        return bool(self.units) and (
            measure.unit_id in self.units
            or any(link.unit_id in self.units for link in measure.assisting))

    def sees_campaign(self, campaign_id: int) -> bool:
        """Whether the whole campaign is in scope (its report, digest and statistics)."""
        return self.everything or campaign_id in self.campaigns


def unit_parents(session: Session) -> dict[int, int | None]:
    """Each unit's parent unit (None at the top), by unit id."""
    return dict(session.execute(select(Unit.id, Unit.parent_id)).all())


def unit_subtrees(session: Session, roots: set[int],
                  parents: Mapping[int, int | None] | None = None) -> set[int]:
    """The units ``roots`` and every unit below them."""
    if not roots:
        return set()
    children: dict[int, list[int]] = defaultdict(list)
    for unit_id, parent_id in (parents if parents is not None else unit_parents(session)).items():
        if parent_id is not None:
            children[parent_id].append(unit_id)
    found: set[int] = set()
    stack = list(roots)
    while stack:
        current = stack.pop()
        if current not in found:
            found.add(current)
            stack.extend(children.get(current, ()))
    return found


def ancestors_of(unit_id: int | None, parents: Mapping[int, int | None]) -> set[int]:
    """The unit and every unit above it (pure, over a loaded parent map)."""
    seen: set[int] = set()
    current = unit_id
    while current is not None and current not in seen:
        seen.add(current)
        current = parents.get(current)
    return seen


def reachable_campaigns(campaigns: Iterable[tuple[int, int | None]], unit_id: int | None,
                        parents: Mapping[int, int | None]) -> set[int]:
    """The campaigns a person of ``unit_id`` belongs to: those without an inspected unit and
    those whose inspected unit is ``unit_id`` or above it (pure)."""
    above = ancestors_of(unit_id, parents)
    return {cid for cid, inspected in campaigns if inspected is None or inspected in above}


def scope_of(session: Session, person: Person, today: date) -> Scope:
    principals = principals_for(session, person, today)
    if any(set(p.roles or ()) & SEE_EVERYTHING_ROLES for p in principals):
        return Scope(everything=True)
    campaigns = session.execute(select(Campaign.id, Campaign.inspected_unit_id)).all()
    parents = unit_parents(session) if any(i is not None for _, i in campaigns) else {}
    reach: set[int] = set()
    whole: set[int] = set()
    sees_all = False
    for p in principals:
        mine = reachable_campaigns(campaigns, p.unit_id, parents)
        reach |= mine
        if set(p.roles or ()) & SEE_ALL_ROLES:
            sees_all = True
            whole |= mine
    if sees_all and len(whole) == len(campaigns):
        return Scope(everything=True)  # nothing inspected elsewhere: today's rule
    people = {p.id for p in principals}
    units = unit_subtrees(session, {p.unit_id for p in principals if p.unit_id is not None},
                          parents or None)
    responsible = set(session.scalars(select(Campaign.id).where(
        Campaign.first_responsible_id.in_(people))))
    return Scope(False, frozenset(people), frozenset(units), frozenset(responsible | whole),
                 None if len(reach) == len(campaigns) else frozenset(reach))


def sees_campaign(session: Session, person: Person, campaign: Campaign, today: date) -> bool:
    """Whether ``person`` may read the whole of ``campaign`` (its report, digest, statistics,
    imports): admins and the 巡察办 everywhere, reviewers and viewers in their inspected unit's
    campaigns and those without one, a first responsible in their own."""
    return scope_of(session, person, today).sees_campaign(campaign.id)


def person_reaches(session: Session, person: Person, campaign: Campaign) -> bool:
    """Whether ``person``'s standing roles (整改办, leader, viewer) reach ``campaign``: it has no
    inspected unit, or the person's unit is it or below it. Admins and the 巡察办 reach all."""
    if set(person.roles or ()) & SEE_EVERYTHING_ROLES or campaign.inspected_unit_id is None:
        return True
    if person.unit_id is None:
        return False
    return campaign.inspected_unit_id in unit_ancestors(session, person.unit_id)


def reviewers_reaching(reviewer_units: Mapping[int, int | None], inspected_unit_id: int,
                       parents: Mapping[int, int | None]) -> list[int]:
    """The reviewers (by id → unit) whose unit is ``inspected_unit_id`` or below it (pure)."""
    return sorted(pid for pid, unit_id in reviewer_units.items()
                  if inspected_unit_id in ancestors_of(unit_id, parents))


def foreign_units(session: Session, person: Person, today: date) -> set[int]:
    """The units that lie inside another inspected unit than ``person``'s: their people and
    names are not offered to ``person`` (lists of people, autocomplete, filters). Empty for
    admins and the 巡察办, and while no campaign names an inspected unit."""
    principals = principals_for(session, person, today)
    if any(set(p.roles or ()) & SEE_EVERYTHING_ROLES for p in principals):
        return set()
    inspected = {i for i in session.scalars(select(Campaign.inspected_unit_id).distinct())
                 if i is not None}
    if not inspected:
        return set()
    parents = unit_parents(session)
    mine: set[int] = set()
    for p in principals:
        mine |= ancestors_of(p.unit_id, parents)
    return unit_subtrees(session, inspected - mine, parents) - mine
