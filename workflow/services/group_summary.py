"""The campaign group's summary: one WeCom group-robot message per sweep listing escalations.

Every sweep queues it when a group robot is configured, whoever runs the sweep (the command,
the embedded clock, a Celery worker): ``workflow.services.reminding.sweep_round`` is the one
place that decides.

Members get their own reminders; the group (整改工作群) sees only what is overdue (红牌/黄牌),
once per measure and stage, however many people were told about it. The robot accepts 20
messages a minute, so a sweep writes at most one row, whose key is built from the items it
lists: the same sweep run twice writes it once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from workflow import metrics
from workflow.lifecycle import ChannelName, MessageKind, OutboxStatus, Rule, rule_family
from workflow.models import OutboxMessage

CHANNEL = ChannelName.WECOM_ROBOT
#: The recipient shown in the outbox for the group robot (there is no person behind it).
ROBOT_NAME = "整改工作群"


def escalations(messages: Sequence[OutboxMessage]) -> list[dict[str, Any]]:
    """The overdue items of ``messages``, each (measure, rule, deadline) once, most urgent first."""
    found: dict[tuple[int, str, str | None], dict[str, Any]] = {}
    for message in messages:
        if message.channel == CHANNEL:
            continue
        for item in message.payload.get("items", []):
            if rule_family(str(item.get("rule", ""))) is not Rule.OVERDUE:
                continue
            key = (item["measure_id"], item["rule"], item.get("deadline"))
            found.setdefault(key, {**item, "on_behalf_of": None})
    return sorted(found.values(), key=lambda i: (i["urgency"], i["measure_id"], i["rule"]))


def summary_subject(items: Sequence[dict[str, Any]]) -> str:
    red = sum(1 for i in items if i.get("colour") == "red")
    yellow = len(items) - red
    parts = [f"红牌{red}项" if red else "", f"黄牌{yellow}项" if yellow else ""]
    return f"【整改督办·群通报】逾期督办{len(items)}项：{'，'.join(p for p in parts if p)}"


def queue_group_summary(session: Session, messages: Sequence[OutboxMessage], *, now: datetime,
                        send_at: datetime | None = None, robot: str = ROBOT_NAME
                        ) -> OutboxMessage | None:
    """Write one ``wecom_robot`` row summarising the escalations among ``messages`` (what a
    sweep just wrote); None when there are none or the same summary was written before.
    The caller owns the transaction."""
    items = escalations(messages)
    if not items:
        return None
    identity = "\n".join(f"{i['measure_id']}|{i['rule']}|{i.get('deadline')}" for i in items)
    key = f"robot|{robot}|{hashlib.sha256(identity.encode()).hexdigest()[:40]}"
    values = {"channel": CHANNEL, "kind": MessageKind.REMINDER, "recipient_id": None,
              "recipient": robot,
              "subject": summary_subject(items), "payload": {"items": items, "name": robot},
              "key": key, "status": OutboxStatus.PENDING, "attempts": 0, "not_before": send_at or now,
              "created_at": now, "info": {}}
    builder = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    new_id = session.execute(builder(OutboxMessage).values(**values)
                             .on_conflict_do_nothing(index_elements=["key"])
                             .returning(OutboxMessage.id)).scalar()
    if new_id is None:
        return None
    metrics.messages_created([CHANNEL], MessageKind.REMINDER)
    return session.get(OutboxMessage, new_id)
