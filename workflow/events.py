"""Small frozen event records emitted by services, and the publisher that carries them.

The domain does not know who listens. The composition root (``workflow.runtime``) builds one
``EventPublisher`` with its handlers (the outbox writer, for one) and hands it to the sessions it
makes; a service calls ``publish(session, events)`` and the handlers run inside the same
transaction, so notifications commit with the change. A session made without a publisher
(a test's, a script's) publishes to nobody.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
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
    #: the history row the change wrote (None for rows written in bulk by an import)
    entry_id: int | None = None


Handler = Callable[[Session, Sequence[MeasureChanged]], None]

#: Where a session made by the runtime keeps its publisher (``Session.info``).
PUBLISHER_KEY = "rectiflow.publisher"


class EventPublisher:
    """The handlers that a process's events go to, in the order they were subscribed."""

    def __init__(self, handlers: Iterable[Handler] = ()) -> None:
        self._handlers = list(handlers)

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def publish(self, session: Session, events: Sequence[MeasureChanged]) -> None:
        for handler in self._handlers:
            handler(session, events)


def publish(session: Session, events: Iterable[MeasureChanged]) -> None:
    """Hand ``events`` to the publisher of ``session`` (none: nobody listens), before commit."""
    publisher: EventPublisher | None = session.info.get(PUBLISHER_KEY)
    batch = list(events)
    if publisher is not None and batch:
        publisher.publish(session, batch)


@contextmanager
def silenced(session: Session) -> Iterator[None]:
    """Inside the block, ``session``'s events reach nobody: for history written after the fact
    (the demo's past weeks), which nobody is to be told of now as if it had just happened."""
    publisher = session.info.pop(PUBLISHER_KEY, None)
    try:
        yield
    finally:
        if publisher is not None:
            session.info[PUBLISHER_KEY] = publisher
