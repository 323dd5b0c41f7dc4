"""Which measures a person may see (the web app and API apply it to every read).

The rule: admins, reviewers (整改办) and viewers see every measure. Anyone else sees the measures
they own, lead, or are first responsible for (through the campaign), and the measures of their
unit and of the units below it, as 责任部门 or as 协办单位 (an assisting unit); a delegate also
sees what the people who named them see while the delegation lasts. A measure someone may not
see does not exist for them (HTTP 404, not 403), so its existence does not leak.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.orm import Session

from workflow.lifecycle import SEE_ALL_ROLES
from workflow.models import Campaign, Measure, MeasureAssistingUnit, Person, Unit
from workflow.services.people import principals_for


@dataclass(frozen=True)
class Scope:
    """What one person sees on one day; ``everything`` or the ids below."""

    everything: bool
    people: frozenset[int] = frozenset()
    units: frozenset[int] = frozenset()
    campaigns: frozenset[int] = frozenset()

    def condition(self) -> ColumnElement[bool] | None:
        """A WHERE clause on ``Measure`` (None: no restriction)."""
        if self.everything:
            return None
        clauses: list[ColumnElement[bool]] = []
        if self.people:
            clauses += [Measure.owner_id.in_(self.people), Measure.leader_id.in_(self.people)]
        if self.units:
            clauses.append(Measure.unit_id.in_(self.units))
            clauses.append(Measure.id.in_(select(MeasureAssistingUnit.measure_id).where(
                MeasureAssistingUnit.unit_id.in_(self.units))))
        if self.campaigns:
            clauses.append(Measure.campaign_id.in_(self.campaigns))
        return or_(*clauses) if clauses else false()

    def sees(self, measure: Measure) -> bool:
        return (self.everything or measure.owner_id in self.people
                or measure.leader_id in self.people or measure.unit_id in self.units
                or measure.campaign_id in self.campaigns
                or (bool(self.units)
                    and any(link.unit_id in self.units for link in measure.assisting)))


def unit_subtrees(session: Session, roots: set[int]) -> set[int]:
    """The units ``roots`` and every unit below them."""
    if not roots:
        return set()
    children: dict[int, list[int]] = defaultdict(list)
    for unit_id, parent_id in session.execute(select(Unit.id, Unit.parent_id)):
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


def scope_of(session: Session, person: Person, today: date) -> Scope:
    principals = principals_for(session, person, today)
    if any(set(p.roles or ()) & SEE_ALL_ROLES for p in principals):
        return Scope(everything=True)
    people = {p.id for p in principals}
    units = unit_subtrees(session, {p.unit_id for p in principals if p.unit_id is not None})
    campaigns = set(session.scalars(select(Campaign.id).where(
        Campaign.first_responsible_id.in_(people))))
    return Scope(False, frozenset(people), frozenset(units), frozenset(campaigns))
