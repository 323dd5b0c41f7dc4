"""Turns the domain's events into outbox rows, in the transaction that caused them.

Which history action causes which notifications is a column of the lifecycle table
(``workflow.lifecycle``, ``Notify``): every action that changes what someone must do tells them.
A new or reassigned measure tells its owner (``assigned``) and a reassignment the former owner
(``reassigned``); a submission tells the reviewers (``submitted``); a rejection or a reopening
tells the owner with the reason (``returned``, ``reopened``); an extension tells the owner the
old and new deadline and why (``extended``); a verified measure asks its leader to sign it off
(``to_close``); a sign-off tells the owner and the owning unit's other members, each once
(``closed``); an extension request asks the leader (``extension_request``, with a link to
approve) and the decision tells the owner with the reason; an urge (催办) tells the owner, and
from the second one on the leader too (``urge``); in a campaign with acceptors (三方验收) a
submission asks each acceptor, and only the last acceptance asks the leader to sign off; a 回头看
that finds a relapse tells the owner and the leader why (``relapse``). Messages respect the send
window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.events import Handler, MeasureChanged
from workflow.lifecycle import (
    Detail,
    Former,
    MessageKind,
    Notify,
    Relation,
    notifications_for,
)
from workflow.models import Campaign, HistoryEntry, Measure, Person
from workflow.outbox import PlannedItem, write_notices
from workflow.policy import PolicySet
from workflow.reminders import day_text
from workflow.services.sweep import Recipients, reminder_context
from workflow.timeutil import local_date, local_text


def _day(value: str | None) -> str:
    return day_text(date.fromisoformat(value)) if value else "未定"


def event_reason(notice: Notify, entry: HistoryEntry | None, names: dict[int, str]) -> str:
    """The notice's sentence with what its history row adds: the actor's reason, the old and
    new deadline, the new owner, and who decided it when (pure). Two returns of one measure
    for the same reason are then two different messages (WeCom drops a repeated body)."""
    if entry is None or notice.detail is Detail.NONE:
        return notice.reason
    data: dict[str, Any] = entry.data or {}
    comment = (entry.comment or "").strip()
    who = names.get(entry.actor_id or 0, "")
    by = f"（{who} {local_text(entry.at)}）" if who else f"（{local_text(entry.at)}）"
    if notice.detail is Detail.COMMENT:
        return f"{notice.reason}。理由：{comment}{by}" if comment else notice.reason + by
    if notice.detail is Detail.DEADLINE:
        # an approved request quotes the owner's reason (the leader's comment may be a link's)
        reason = data.get("reason") or comment or "未说明"
        return (f"{notice.reason}：完成时限由 {_day(data.get('deadline_from'))} 延至 "
                f"{_day(data.get('deadline_to'))}。理由：{reason}{by}")
    new_owner = names.get(data.get("owner_to") or 0)
    return f"{notice.reason}（新责任人：{new_owner}）" if new_owner else notice.reason


@dataclass
class _Facts:
    """What the notices of a batch of events need to read: the measures, the history rows
    whose details they quote, people's names, and the owning units' members."""

    rows: dict[int, Any] = field(default_factory=dict)
    entries: dict[int, HistoryEntry] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    members: dict[int, list[int]] = field(default_factory=dict)
    people: set[int] = field(default_factory=set)
    #: each campaign's acceptors (三方验收) and first responsible, where a notice needs them
    campaigns: dict[int, tuple[list[int | str], int | None]] = field(default_factory=dict)


def _read_facts(session: Session, relevant: Sequence[tuple[MeasureChanged, Notify]]) -> _Facts:
    facts = _Facts()
    ids = sorted({e.measure_id for e, _ in relevant})
    for start in range(0, len(ids), 1000):
        for row in session.execute(
                select(Measure.id, Measure.owner_id, Measure.leader_id, Measure.deadline,
                       Measure.version, Measure.unit_id, Measure.campaign_id,
                       Campaign.inspected_unit_id)
                .join(Campaign, Campaign.id == Measure.campaign_id)
                .where(Measure.id.in_(ids[start:start + 1000]))):
            facts.rows[row.id] = row
    wanted = sorted({e.entry_id for e, n in relevant if e.entry_id is not None
                     and (n.detail is not Detail.NONE or isinstance(n.recipient, Former)
                          or n.from_nth > 1)})
    if wanted:
        facts.entries = {h.id: h for h in session.scalars(
            select(HistoryEntry).where(HistoryEntry.id.in_(wanted)))}
    people = facts.people
    people.update(pid for r in facts.rows.values() for pid in (r.owner_id, r.leader_id) if pid)
    wanted_campaigns = sorted({facts.rows[e.measure_id].campaign_id for e, n in relevant
                               if n.recipient is Relation.ACCEPTOR})
    if wanted_campaigns:
        for cid, acceptors, first in session.execute(
                select(Campaign.id, Campaign.acceptors, Campaign.first_responsible_id)
                .where(Campaign.id.in_(wanted_campaigns))):
            facts.campaigns[cid] = (list(acceptors or []), first)
            people.update(a for a in acceptors or [] if isinstance(a, int))
            if first:
                people.add(first)
    for h in facts.entries.values():
        data = h.data or {}
        people.update(pid for pid in (data.get("owner_from"), data.get("owner_to"), h.actor_id)
                      if pid)
    if people:
        facts.names = {pid: name for pid, name in session.execute(
            select(Person.id, Person.name).where(Person.id.in_(sorted(people))))}
    units = sorted({facts.rows[e.measure_id].unit_id for e, n in relevant
                    if n.recipient is Relation.UNIT_MEMBER and facts.rows[e.measure_id].unit_id})
    if units:
        for pid, unit_id in session.execute(
                select(Person.id, Person.unit_id)
                .where(Person.unit_id.in_(units), Person.active.is_(True)).order_by(Person.id)):
            facts.members.setdefault(unit_id or 0, []).append(pid)
            people.add(pid)
    return facts


def _targets(notice: Notify, event: MeasureChanged, row: Any, entry: HistoryEntry | None,
             facts: _Facts, recipients: Recipients) -> list[int]:
    """Whom ``notice`` is meant for, before delegation."""
    if notice.recipient is Relation.REVIEWER:
        # a reviewer who submitted (an admin) needs no news of it
        # the 整改办 of the campaign's inspected unit (all of them for a campaign without one)
        return [pid for pid in recipients.reviewers_for(row.inspected_unit_id)
                if pid != event.actor_id]
    if notice.recipient is Relation.UNIT_MEMBER:
        # the owner hears as the owner, the one who acted needs no news of it
        return [pid for pid in facts.members.get(row.unit_id or 0, [])
                if pid not in (row.owner_id, event.actor_id)]
    if notice.recipient is Relation.ACCEPTOR:
        # 三方验收: the people named, and whom the relations named stand for
        acceptors, first = facts.campaigns.get(row.campaign_id, ([], None))
        found: list[int] = []
        for party in acceptors:
            if isinstance(party, int):
                found.append(party)
            elif party == Relation.REVIEWER:
                found.extend(recipients.reviewers())
            elif party == Relation.LEADER and row.leader_id:
                found.append(row.leader_id)
            elif party == Relation.FIRST_RESPONSIBLE and first:
                found.append(first)
        return [pid for pid in dict.fromkeys(found) if pid != event.actor_id]
    if notice.recipient is Former.OWNER:
        former = (entry.data or {}).get("owner_from") if entry is not None else None
        return [former] if former else []
    target = row.owner_id if notice.recipient is Relation.OWNER else row.leader_id
    return [target] if target else []


def make_outbox_writer(policies: PolicySet, configured: frozenset[str]) -> Handler:
    """An event handler that writes the notifications events cause into the outbox."""

    def write(session: Session, events: Sequence[MeasureChanged]) -> None:
        relevant = [(e, notice) for e in events for notice in notifications_for(e.action)
                    if notice.only_to is None or e.to_state == notice.only_to]
        if not relevant:
            return
        now = max(e.at for e, _ in relevant)
        ctx = reminder_context(session, policies, configured)
        recipients = Recipients(session, local_date(now))
        facts = _read_facts(session, relevant)
        recipients.load(facts.people)
        items: list[PlannedItem] = []
        for event, notice in relevant:
            row = facts.rows[event.measure_id]
            entry = facts.entries.get(event.entry_id) if event.entry_id is not None else None
            if notice.from_nth > 1 and (entry is None
                                        or (entry.data or {}).get("nth", 1) < notice.from_nth):
                continue
            reason = event_reason(notice, entry, facts.names)
            told: set[int] = set()
            for target in _targets(notice, event, row, entry, facts, recipients):
                if notice.not_to_actor and target in (event.actor_id, event.on_behalf_of_id):
                    continue
                receiver, absent = recipients.route(target)
                if receiver in told:
                    continue
                told.add(receiver)
                items.append(PlannedItem(
                    measure_id=row.id, rule=notice.rule,
                    stage=f"{notice.rule}@v{row.version}", deadline=row.deadline,
                    recipient_id=receiver, urgency=notice.urgency,
                    reason=reason + (f"（代{absent}接收）" if absent else ""),
                    on_behalf_of=absent, version=row.version, relation=notice.recipient.value,
                    meant_for=target, headline=notice.reason))
        send_at = ctx.planner.next_send_time(now, ctx.base)
        write_notices(session, items, now=now, send_at=send_at, configured=configured,
                      kind=MessageKind.EVENT)

    return write
