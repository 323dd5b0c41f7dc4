"""Helpers for web tests: the test password, CSRF tokens in pages, and moving a measure to a
state through the services."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from workflow import db
from workflow.lifecycle import Action, State
from workflow.services.measures import ActionRequest, load_measure, perform

PASSWORD = "correct-horse-9"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "page has no CSRF token"
    return found.group(1)


#: The next step forward from each state, as (action, comment).
NEXT: dict[State, tuple[Action, str | None]] = {
    State.ASSIGNED: (Action.START, None),
    State.IN_PROGRESS: (Action.SUBMIT, "已修订采购办法并印发"),
    State.SUBMITTED: (Action.VERIFY, None),
    State.VERIFIED: (Action.CLOSE, None),
}


def bring(sessions: sessionmaker[Session], measure_id: int, state: State, admin: Any,
          now: datetime) -> None:
    """Move the measure forward (as the admin) until it is in ``state``."""
    with db.transaction(sessions) as session:
        for _ in NEXT:
            current = State(load_measure(session, measure_id).state)
            if current == state:
                return
            action, comment = NEXT[current]
            perform(session, ActionRequest(measure_id=measure_id, action=action,
                                           actor=admin.email, comment=comment), now=now)
    assert state_of(sessions, measure_id) == state.value


def state_of(sessions: sessionmaker[Session], measure_id: int) -> str:
    with db.transaction(sessions) as session:
        return str(load_measure(session, measure_id).state)
