"""One reminder round: the sweep, and the group's summary of what it escalated.

Every entry point that sweeps (``rectiflow sweep``, the embedded clock of ``rectiflow serve``,
the Celery worker's task) runs this, so each does the same thing. The caller owns the
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from workflow.models import OutboxMessage
from workflow.progress import SILENT, Reporter
from workflow.services.group_summary import queue_group_summary
from workflow.services.sweep import ReminderContext, SweepResult, sweep


@dataclass(frozen=True)
class Round:
    """What one round wrote: the sweep's messages, and the group summary if one was due."""

    sweep: SweepResult
    group_message: OutboxMessage | None

    @property
    def messages(self) -> list[OutboxMessage]:
        """Every message written, the group summary included."""
        group = [self.group_message] if self.group_message is not None else []
        return [*self.sweep.messages, *group]

    def as_json(self) -> dict[str, int]:
        """``sweep --json``: ``messages`` and ``measures`` of the sweep, and ``group_messages``."""
        return {**self.sweep.as_json(), "group_messages": int(self.group_message is not None)}


def sweep_round(session: Session, ctx: ReminderContext, *, now: datetime, group_robot: bool,
                reporter: Reporter = SILENT) -> Round:
    """Plan every due measure into the outbox; with a group robot configured (``group_robot``),
    queue one summary of this round's escalations for the campaign group, sent with them."""
    result = sweep(session, ctx, now=now, reporter=reporter)
    group = None
    if group_robot and result.messages:
        group = queue_group_summary(session, result.messages, now=now,
                                    send_at=min(m.not_before for m in result.messages))
    return Round(result, group)
