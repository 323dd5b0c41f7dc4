"""A measure walked from assigned to closed through the service, as the README shows."""

from __future__ import annotations

from datetime import timedelta

from workflow import db
from workflow.lifecycle import Action, State
from workflow.services.audit import verify_history
from workflow.services.measures import ActionRequest, perform


def test_walk_from_assigned_to_closed(sessions, cast, now):
    # Given a freshly imported measure
    steps = [
        (Action.START, cast.owner, {}),
        (Action.SUBMIT, cast.owner, {"comment": "已修订并印发采购管理办法"}),
        (Action.VERIFY, cast.reviewer, {}),
        (Action.CLOSE, cast.leader, {}),
    ]
    # When each person does their step
    for i, (action, person, extra) in enumerate(steps):
        with db.transaction(sessions) as session:
            perform(session, ActionRequest(cast.measure.id, action, person.email, **extra),
                    now=now + timedelta(hours=i))
    # Then the measure is closed, with one history row per step after creation
    with db.transaction(sessions) as session:
        measure = session.get(type(cast.measure), cast.measure.id)
        assert measure.state == State.CLOSED
        assert measure.version == 5
        assert [h.action for h in measure.history] == ["create", "start", "submit", "verify",
                                                       "close"]
        assert verify_history(session).ok
