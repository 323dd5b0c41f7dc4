"""A message is true when it is sent: its items checked against the measures as they are now.

Messages are planned with their items and sent later (the send window, a retry, a queue). By
then a measure may have been signed off, reopened, extended or reassigned, or its deadline may
have passed. At send time each item is checked against its rule's ``Truth``
(``workflow.lifecycle.RULE_TRUTH``): an item whose reason no longer holds is dropped, and the
sentence of a reminder is worked out again from the measure's current deadline and dates, with
the group it is listed under. Pure once the measures are read: the renderer reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from workflow.lifecycle import (
    RECOUNTED_RULES,
    RULE_TRUTH,
    Kind,
    Relation,
    Rule,
    State,
    Timing,
    Truth,
    rule_family,
)
from workflow.models import Measure
from workflow.reminders import MeasureSnapshot, Notice, describe
from workflow.services.sweep import COPY_NOTE, ReminderContext
from workflow.timeutil import local_date

#: Rules whose sentence counts from the change of state (the others from the last activity).
_WAITING = frozenset({Rule.REVIEW_SLA, Rule.CLOSURE_SLA, Rule.FOLLOWUP})


@dataclass
class Revision:
    """A message's items as they stand at send time: those still true (with fresh sentences
    and groups), and those dropped with why."""

    kept: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)


def _snapshot(measure: Measure) -> MeasureSnapshot:
    return MeasureSnapshot(
        measure.id, State(measure.state), Kind(measure.kind), measure.deadline,
        local_date(measure.created_at), local_date(measure.state_changed_at),
        local_date(measure.last_progress_at) if measure.last_progress_at else None,
        local_date(measure.rechecked_at) if measure.rechecked_at else None)


class SendTimeCheck:
    """Checks and re-words a message's items at send time, under the policy and calendar."""

    def __init__(self, ctx: ReminderContext) -> None:
        self.ctx = ctx

    def revise(self, items: Iterable[dict[str, Any]], measures: Mapping[int, Measure], *,
               planned_at: datetime, now: datetime) -> Revision:
        revision = Revision()
        today = local_date(now)
        for item in items:
            measure = measures.get(item["measure_id"])
            why = "措施已不存在" if measure is None else self.why_not(item, measure, planned_at,
                                                                  today)
            if why is not None:
                revision.dropped.append({**item, "dropped": why})
                continue
            assert measure is not None
            revision.kept.append(self._fresh(item, measure, now, today))
        return revision

    def _deadline(self, measure: Measure) -> date | None:
        policy = self.ctx.policy_for(measure.kind, measure.campaign.policy)
        return self.ctx.planner.effective_deadline(_snapshot(measure), policy)

    def why_not(self, item: Mapping[str, Any], measure: Measure, planned_at: datetime,
                today: date) -> str | None:
        """Why ``item`` no longer holds for ``measure`` (None: it still does)."""
        family = rule_family(item["rule"])
        truth: Truth | None = RULE_TRUTH.get(family) if family is not None else None
        if truth is None:
            return None
        state = State(measure.state)
        if state not in truth.states:
            return f"措施当前状态为「{state.label}」"
        planned_version = item.get("version")
        if truth.same_version and planned_version is not None \
                and planned_version != measure.version:
            return "措施在计划发送后又有变化"
        deadline = self._deadline(measure)
        if truth.same_deadline and item.get("deadline") is not None \
                and (deadline is None or item["deadline"] != deadline.isoformat()):
            return f"完成时限已改为 {deadline}"
        days = self.ctx.days
        if truth.timing is Timing.NOT_PAST_DUE and deadline is not None \
                and today > days.on_or_before(deadline):
            return "完成时限已过"
        if truth.timing is Timing.PAST_DUE and deadline is not None and today <= deadline:
            return "尚未逾期"
        if truth.timing is Timing.NO_PROGRESS_SINCE and measure.last_progress_at is not None \
                and measure.last_progress_at > planned_at:
            return "计划发送后已报送进展"
        if truth.timing is Timing.REQUEST_WAITING and (
                measure.extension_deadline is None or measure.extension_at is None
                or measure.extension_at > planned_at):
            return "延期申请已处理"
        if truth.same_person and item.get("meant_for") is not None:
            holder = self._holder(measure, item.get("relation"))
            if holder is not None and holder != item["meant_for"]:
                return "收件人已不是该措施的" + Relation(item["relation"]).label
        return None

    @staticmethod
    def _holder(measure: Measure, relation: str | None) -> int | None:
        if relation == Relation.OWNER:
            return measure.owner_id
        if relation == Relation.LEADER:
            return measure.leader_id
        if relation == Relation.FIRST_RESPONSIBLE:
            return measure.campaign.first_responsible_id
        return None  # reviewers: the role, not the measure, makes them one

    def _fresh(self, item: dict[str, Any], measure: Measure, now: datetime,
               today: date) -> dict[str, Any]:
        """The item with its sentence and group worked out from the measure as it is now."""
        family = rule_family(item["rule"])
        if family not in RECOUNTED_RULES:
            return dict(item)
        snapshot = _snapshot(measure)
        deadline = self._deadline(measure)
        notice = Notice(measure.id, item["rule"], "", (), item["urgency"], now, deadline,
                        item.get("colour"))
        anchor = snapshot.changed_on if family in _WAITING else snapshot.active_on
        reason = describe(notice, now, self.ctx.days, anchor)
        if item.get("relation") == Relation.ASSISTING_MEMBER:
            reason += COPY_NOTE
        if item.get("on_behalf_of"):
            reason += f"（代{item['on_behalf_of']}接收）"
        urgency = self.ctx.planner.urgency(item["rule"], item.get("colour"), deadline, today)
        return {**item, "reason": reason, "urgency": urgency,
                "deadline": deadline.isoformat() if deadline else None}
