"""Small frozen event records emitted by services, and the hook the entry points subscribe to.

The domain does not know who listens: the CLI, web app and tasks register handlers (for example
the outbox writer) that run inside the same transaction, so notifications commit with the change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class MeasureChanged:
    """A measure was created or moved by an action; ids and an aware time only."""

    measure_id: int
    action: str
    from_state: str | None
    to_state: str
    actor_id: int | None
    on_behalf_of_id: int | None
    at: datetime


Handler = Callable[[Session, Sequence[MeasureChanged]], None]
_handlers: dict[str, Handler] = {}


def subscribe(name: str, handler: Handler) -> None:
    """Register ``handler`` under ``name`` (replacing any before it); it is called with the
    session and the events before commit."""
    _handlers[name] = handler


def unsubscribe(name: str) -> None:
    _handlers.pop(name, None)


def publish(session: Session, events: Iterable[MeasureChanged]) -> None:
    batch = list(events)
    if not batch:
        return
    for handler in list(_handlers.values()):
        handler(session, batch)
