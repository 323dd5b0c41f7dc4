"""Turns the domain's events into outbox rows, in the transaction that caused them.

A new or reassigned measure tells its owner (``assigned``); a rejection tells the owner
(``returned``); a reopened measure tells the owner (``reopened``); a verified measure asks its
leader to sign it off (``to_close``). Messages respect the send window.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.events import Handler, MeasureChanged
from workflow.models import Measure
from workflow.outbox import PlannedItem, write_notices
from workflow.policy import PolicySet
from workflow.services.sweep import Recipients, reminder_context
from workflow.timeutil import local_date

#: action → (rule, recipient role, urgency, reason)
EVENT_RULES: dict[str, tuple[str, str, int, str]] = {
    "create": ("assigned", "owner", 3, "新交办的整改措施，请按时限推进"),
    "reassign": ("assigned", "owner", 3, "改派给您的整改措施，请按时限推进"),
    "reject": ("returned", "owner", 2, "整改材料被退回，请按意见修改后重新提交"),
    "reopen": ("reopened", "owner", 2, "已销号/核验的措施被重新打开，请继续整改"),
    "verify": ("to_close", "leader", 2, "已核验通过，待您审阅并销号"),
}


def make_outbox_writer(policies: PolicySet, configured: frozenset[str]) -> Handler:
    """An event handler that writes the notifications events cause into the outbox."""

    def write(session: Session, events: Sequence[MeasureChanged]) -> None:
        relevant = [e for e in events if e.action in EVENT_RULES]
        if not relevant:
            return
        now = max(e.at for e in relevant)
        ctx = reminder_context(session, policies, configured)
        recipients = Recipients(session, local_date(now))
        ids = sorted({e.measure_id for e in relevant})
        rows = {}
        for start in range(0, len(ids), 1000):
            for row in session.execute(
                    select(Measure.id, Measure.owner_id, Measure.leader_id, Measure.deadline)
                    .where(Measure.id.in_(ids[start:start + 1000]))):
                rows[row.id] = row
        recipients.load({pid for r in rows.values() for pid in (r.owner_id, r.leader_id) if pid})
        items: list[PlannedItem] = []
        for event in relevant:
            rule, role, urgency, reason = EVENT_RULES[event.action]
            row = rows[event.measure_id]
            target = row.owner_id if role == "owner" else row.leader_id
            if target is None:
                continue
            receiver, absent = recipients.route(target)
            items.append(PlannedItem(
                measure_id=row.id, rule=rule, stage=f"{rule}@{event.at.isoformat()}",
                deadline=row.deadline, recipient_id=receiver, urgency=urgency,
                reason=reason + (f"（代{absent}接收）" if absent else ""), on_behalf_of=absent))
        send_at = ctx.planner.next_send_time(now, ctx.base)
        write_notices(session, items, now=now, send_at=send_at, configured=configured,
                      kind="event")

    return write
