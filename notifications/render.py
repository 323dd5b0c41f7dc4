"""Rendering outbox messages from their payload with Jinja2 (autoescaped HTML: titles are user
text). Measures are read at send time, so a message shows the measure as it is now; with a
``SendTimeCheck`` its items are checked too (``workflow.services.truth``): what no longer holds
is left out and the rest is worded from current data. One line per measure, with all its
reasons; the subject counts measures."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from notifications.channels.base import Rendered
from notifications.digest import DigestCache, render_digest_message
from notifications.templating import TEMPLATES
from workflow.lifecycle import (
    KIND_LABELS,
    LINK_ACTIONS,
    RULE_LABELS,
    STATE_LABELS,
    ChannelName,
    Kind,
    MessageKind,
    State,
    link_choice,
)
from workflow.models import Campaign, Measure, OutboxMessage, Person, Problem
from workflow.outbox import by_measure, subject_for
from workflow.reminders import URGENCY_LABELS
from workflow.services.group_summary import summary_subject
from workflow.services.truth import SendTimeCheck

#: Makes a link for (message, item) — e.g. a one-time approval link; None for the plain link.
LinkMaker = Callable[[OutboxMessage, dict[str, Any]], str | None]


def load_measures(session: Session, ids: Sequence[int]) -> dict[int, Measure]:
    """The measures ``ids`` with what a message shows of them, 500 to a statement."""
    found: dict[int, Measure] = {}
    for start in range(0, len(ids), 500):
        for measure in session.scalars(
                select(Measure).options(joinedload(Measure.problem).joinedload(Problem.area),
                                        joinedload(Measure.owner), joinedload(Measure.leader),
                                        joinedload(Measure.unit),
                                        joinedload(Measure.campaign).load_only(
                                            Campaign.id, Campaign.policy,
                                            Campaign.first_responsible_id))
                .where(Measure.id.in_(ids[start:start + 500]))).unique():
            found[measure.id] = measure
    return found


#: channels that send mail (text and HTML) and never markdown
_MAIL_CHANNELS = frozenset({ChannelName.EMAIL, ChannelName.FILE})


def _document(document: dict[str, Any] | None, base_url: str) -> dict[str, str] | None:
    """The 督办 document an escalation item issued, with the link to its Word file."""
    if not document:
        return None
    return {"name": f"{document['label']}{document['number']}",
            "link": f"{base_url}/notices/{document['id']}"}


def render(session: Session, message: OutboxMessage, base_url: str,
           link_maker: LinkMaker | None = None, check: SendTimeCheck | None = None,
           now: datetime | None = None,
           measures: Mapping[int, Measure] | None = None,
           digests: DigestCache | None = None) -> Rendered:
    """The texts of one message, for every channel's needs. With ``check`` (and ``now``), items
    no longer true are left out (``extra["dropped"]``); a message left with none has
    ``extra["count"]`` 0 and is not to be sent. ``measures`` are those read already for a
    batch of messages (``load_measures``); by default the message's own are read.
    ``digests``: the digests' snapshots read for the messages rendered before this one."""
    if message.kind == MessageKind.DIGEST:
        return render_digest_message(session, message, base_url, digests)
    payload = message.payload
    items = payload.get("items", [])
    if measures is None:
        measures = load_measures(session, sorted({i["measure_id"] for i in items}))
    dropped: list[dict[str, Any]] = []
    if check is not None and now is not None:
        revision = check.revise(items, measures, planned_at=message.created_at, now=now)
        items, dropped = revision.kept, revision.dropped
    else:
        items = [i for i in items if i["measure_id"] in measures]
    rows = []
    for group_items in by_measure(items):
        first = group_items[0]
        measure = measures[first["measure_id"]]
        linked = next(((item, link) for item in group_items
                       if link_maker and (link := link_maker(message, item))), None)
        special = linked[1] if linked else None
        link_action = LINK_ACTIONS.get(linked[0]["rule"]) if linked else None
        rows.append({
            "id": measure.id,
            "title": measure.title,
            "area": measure.problem.area.title,
            "deadline": measure.deadline.isoformat() if measure.deadline else "—",
            "state": STATE_LABELS[State(measure.state)],
            "kind": KIND_LABELS[Kind(measure.kind)],
            "owner": measure.owner.name if measure.owner else "—",
            "unit": measure.unit.name if measure.unit else "—",
            "rule": first["rule"],
            "reason": "；".join(dict.fromkeys(i["reason"] for i in group_items)),
            "reasons": list(dict.fromkeys(i["reason"] for i in group_items)),
            "colour": first.get("colour"),
            "link": f"{base_url}/measures/{measure.id}",
            "action_link": special,
            # the button names what the link's page does (销号或退回, 审批延期)
            "action_button": (link_choice(link_action).message_button
                              if link_action is not None else "办理"),
            "document": _document(next((i["document"] for i in group_items if i.get("document")),
                                       None), base_url),
            "group": (RULE_LABELS.get(first["rule"], first["rule"])
                      if message.kind == MessageKind.EVENT else URGENCY_LABELS[first["urgency"]]),
        })
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["group"]].append(row)
    if not items or check is None:
        subject = message.subject  # as planned (``subject_for`` counted its measures)
    elif message.channel == ChannelName.WECOM_ROBOT:
        subject = summary_subject(items)
    else:
        subject = subject_for(items, message.kind)
    person = session.get(Person, message.recipient_id) if message.recipient_id else None
    context = {
        "name": payload.get("name") or (person.name if person else message.recipient),
        "subject": subject,
        "groups": list(groups.items()),
        "count": len(rows),
        "base_url": base_url,
        "home": f"{base_url}/my",
    }
    first_link: str = next((r["action_link"] or r["link"] for r in rows), f"{base_url}/my")
    card = "\n".join(
        f"【{group}】\n" + "\n".join(
            f"{n}. {r['title']}（时限 {r['deadline']}，{r['state']}）\n" + "\n".join(r["reasons"])
            for n, r in enumerate(rows_of, start=1))
        for group, rows_of in groups.items())
    return Rendered(
        message_id=message.id, key=message.key, channel=message.channel,
        recipient=message.recipient, recipient_name=str(context["name"]),
        wecom_id=person.wecom_id if person else None, subject=subject,
        text=TEMPLATES.get_template("message.txt").render(context),
        html=TEMPLATES.get_template("message.html").render(context),
        # mail has no use for WeCom's markdown: not rendered for it (a third of rendering)
        markdown=("" if message.channel in _MAIL_CHANNELS
                  else TEMPLATES.get_template("message.md").render(context)),
        # the mail's Date: when it goes out (a message planned Friday night and sent Monday is
        # dated Monday, as what it says is)
        url=first_link, created_at=now or message.created_at,
        extra={"count": len(rows), "home": context["home"], "dropped": dropped, "card": card},
    )
