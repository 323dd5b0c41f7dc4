"""Turns the domain's events into outbox rows, in the transaction that caused them.

Which history action causes which notification is a column of the lifecycle table
(``workflow.lifecycle``, ``Notify``): a new or reassigned measure tells its owner (``assigned``);
a rejection tells the owner (``returned``); a reopened measure tells the owner (``reopened``); a
verified measure asks its leader to sign it off (``to_close``). Messages respect the send window.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.events import Handler, MeasureChanged
from workflow.lifecycle import MessageKind, Relation, notification_for
from workflow.models import Measure
from workflow.outbox import PlannedItem, write_notices
from workflow.policy import PolicySet
from workflow.services.sweep import Recipients, reminder_context
from workflow.timeutil import local_date


def make_outbox_writer(policies: PolicySet, configured: frozenset[str]) -> Handler:
    """An event handler that writes the notifications events cause into the outbox."""

    def write(session: Session, events: Sequence[MeasureChanged]) -> None:
        relevant = [(e, notice) for e in events
                    if (notice := notification_for(e.action)) is not None]
        if not relevant:
            return
        now = max(e.at for e, _ in relevant)
        ctx = reminder_context(session, policies, configured)
        recipients = Recipients(session, local_date(now))
        ids = sorted({e.measure_id for e, _ in relevant})
        rows = {}
        for start in range(0, len(ids), 1000):
            for row in session.execute(
                    select(Measure.id, Measure.owner_id, Measure.leader_id, Measure.deadline)
                    .where(Measure.id.in_(ids[start:start + 1000]))):
                rows[row.id] = row
        recipients.load({pid for r in rows.values() for pid in (r.owner_id, r.leader_id) if pid})
        items: list[PlannedItem] = []
        for event, notice in relevant:
            rule, urgency, reason = notice.rule, notice.urgency, notice.reason
            row = rows[event.measure_id]
            target = row.owner_id if notice.recipient is Relation.OWNER else row.leader_id
            if target is None:
                continue
            receiver, absent = recipients.route(target)
            items.append(PlannedItem(
                measure_id=row.id, rule=rule, stage=f"{rule}@{event.at.isoformat()}",
                deadline=row.deadline, recipient_id=receiver, urgency=urgency,
                reason=reason + (f"（代{absent}接收）" if absent else ""), on_behalf_of=absent))
        send_at = ctx.planner.next_send_time(now, ctx.base)
        write_notices(session, items, now=now, send_at=send_at, configured=configured,
                      kind=MessageKind.EVENT)

    return write
