"""Rendering outbox messages from their payload with Jinja2 (autoescaped HTML: titles are user
text). Measures are read at send time, so a message shows the measure as it is now."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from notifications.channels.base import Rendered
from notifications.digest import render_digest_message
from notifications.templating import TEMPLATES
from workflow.lifecycle import KIND_LABELS, RULE_LABELS, STATE_LABELS, Kind, MessageKind, State
from workflow.models import Measure, OutboxMessage, Person, Problem
from workflow.reminders import URGENCY_LABELS

#: Makes a link for (message, item) — e.g. a one-time approval link; None for the plain link.
LinkMaker = Callable[[OutboxMessage, dict[str, Any]], str | None]


def _measures(session: Session, ids: Sequence[int]) -> dict[int, Measure]:
    found: dict[int, Measure] = {}
    for start in range(0, len(ids), 500):
        for measure in session.scalars(
                select(Measure).options(joinedload(Measure.problem).joinedload(Problem.area),
                                        joinedload(Measure.owner), joinedload(Measure.leader),
                                        joinedload(Measure.unit))
                .where(Measure.id.in_(ids[start:start + 500]))).unique():
            found[measure.id] = measure
    return found


def _document(document: dict[str, Any] | None, base_url: str) -> dict[str, str] | None:
    """The 督办 document an escalation item issued, with the link to its Word file."""
    if not document:
        return None
    return {"name": f"{document['label']}{document['number']}",
            "link": f"{base_url}/notices/{document['id']}"}


def render(session: Session, message: OutboxMessage, base_url: str,
           link_maker: LinkMaker | None = None) -> Rendered:
    """The texts of one message, for every channel's needs."""
    if message.kind == MessageKind.DIGEST:
        return render_digest_message(session, message, base_url)
    payload = message.payload
    items = payload.get("items", [])
    measures = _measures(session, sorted({i["measure_id"] for i in items}))
    rows = []
    for item in items:
        measure = measures.get(item["measure_id"])
        if measure is None:
            continue
        special = link_maker(message, item) if link_maker else None
        rows.append({
            "id": measure.id,
            "title": measure.title,
            "area": measure.problem.area.title,
            "deadline": measure.deadline.isoformat() if measure.deadline else "—",
            "state": STATE_LABELS[State(measure.state)],
            "kind": KIND_LABELS[Kind(measure.kind)],
            "owner": measure.owner.name if measure.owner else "—",
            "unit": measure.unit.name if measure.unit else "—",
            "rule": item["rule"],
            "reason": item["reason"],
            "colour": item.get("colour"),
            "link": f"{base_url}/measures/{measure.id}",
            "action_link": special,
            "document": _document(item.get("document"), base_url),
            "group": (RULE_LABELS.get(item["rule"], item["rule"]) if message.kind == MessageKind.EVENT
                      else URGENCY_LABELS[item["urgency"]]),
        })
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["group"]].append(row)
    person = session.get(Person, message.recipient_id) if message.recipient_id else None
    context = {
        "name": payload.get("name") or (person.name if person else message.recipient),
        "subject": message.subject,
        "groups": list(groups.items()),
        "count": len(rows),
        "base_url": base_url,
        "home": f"{base_url}/my",
    }
    first_link: str = next((r["action_link"] or r["link"] for r in rows), f"{base_url}/my")
    return Rendered(
        message_id=message.id, key=message.key, channel=message.channel,
        recipient=message.recipient, recipient_name=str(context["name"]),
        wecom_id=person.wecom_id if person else None, subject=message.subject,
        text=TEMPLATES.get_template("message.txt").render(context),
        html=TEMPLATES.get_template("message.html").render(context),
        markdown=TEMPLATES.get_template("message.md").render(context),
        url=first_link, created_at=message.created_at,
        extra={"count": len(rows), "home": context["home"]},
    )
