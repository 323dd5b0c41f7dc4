"""The figures by unit, leader, area or campaign that ``GET /api/stats`` (and the dashboard)
show: the measures a reader may see, counted by the rules of ``workflow.stats``.

Scope first, then counting: the records are cut to what ``Scope`` lets the reader see before a
group is formed, so a group (another unit's name, another leader's) the reader may not see never
appears, and a group's figures never include measures outside the reader's scope.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.errors import InputError
from workflow.lifecycle import State
from workflow.models import Campaign, Measure, Person
from workflow.reminders import WorkdayIndex
from workflow.services.digest import current_records
from workflow.services.visibility import Scope
from workflow.stats import NO_UNIT, STAGNATION, Counts, MeasureRecord, count_by

#: What the figures may be grouped by, and the word for it.
GROUPINGS: dict[str, str] = {"unit": "部门", "leader": "责任领导", "area": "方面",
                             "campaign": "整改任务"}
NO_LEADER = "（未指定责任领导）"


class BadGrouping(InputError):
    """Raised when the figures are asked for grouped by something there is no grouping for."""

    def __init__(self, by: object) -> None:
        self.by = by
        choices = "、".join(f"{key}（{word}）" for key, word in GROUPINGS.items())
        super().__init__(f"参数 by 应为 {choices} 之一，收到 {by!r}。", field="by")


def visible_records(session: Session, scope: Scope) -> list[MeasureRecord]:
    """The measures as they stand now that ``scope`` covers, in ledger order."""
    records = current_records(session)
    condition = scope.condition()
    if condition is None:
        return records
    visible = set(session.scalars(select(Measure.id).where(condition)))
    return [r for r in records if r.id in visible]


def stats_rows(session: Session, scope: Scope, by: str, today: date, days: WorkdayIndex, *,
               stagnation: int = STAGNATION) -> list[dict[str, Any]]:
    """One row per group of the measures ``scope`` covers: the group's name under ``by``,
    then ``total``, ``closed``, ``in_progress``, ``overdue``, ``completion_rate``,
    ``on_time_rate`` and the rest of ``Counts.as_json``."""
    if by not in GROUPINGS:
        raise BadGrouping(by)
    records = visible_records(session, scope)
    key: Callable[[MeasureRecord], Any] = {
        "unit": lambda r: r.unit or NO_UNIT,
        "leader": lambda r: r.leader_id,
        "area": lambda r: r.area,
        "campaign": lambda r: r.campaign_id,
    }[by]
    groups = count_by(records, key, today, days, stagnation=stagnation)
    names, extra = _names(session, by, list(groups))
    rows = [{by: names[group], **extra.get(group, {}), **_figures(counts)}
            for group, counts in groups.items()]
    if by in ("unit", "leader"):  # areas and campaigns keep the ledger's order
        rows.sort(key=lambda row: str(row[by]))
    return rows


def _figures(counts: Counts) -> dict[str, Any]:
    return {"total": counts.total, "closed": counts.completed,
            "in_progress": counts.by_state[State.IN_PROGRESS.value],
            "overdue": counts.overdue, **{k: v for k, v in counts.as_json().items()
                                          if k not in ("total", "overdue")}}


def _names(session: Session, by: str, groups: list[Any]
           ) -> tuple[dict[Any, str], dict[Any, dict[str, Any]]]:
    """Each group's name, and what else identifies it (a leader's email, a campaign's id)."""
    if by == "leader":
        people = {pid: (name, email) for pid, name, email in session.execute(
            select(Person.id, Person.name, Person.email).where(
                Person.id.in_([g for g in groups if g is not None])))}
        return ({g: people[g][0] if g in people else NO_LEADER for g in groups},
                {g: {"leader_email": people[g][1] if g in people else None} for g in groups})
    if by == "campaign":
        titles = {cid: title for cid, title in session.execute(
            select(Campaign.id, Campaign.title).where(Campaign.id.in_(groups)))}
        return {g: titles[g] for g in groups}, {g: {"campaign_id": g} for g in groups}
    return {g: g for g in groups}, {}
