"""A leader away (出差/休假) names a delegate until a date; the delegate signs off in their name.

The history records who acted (the delegate) and for whom (the leader); the day after the
until-date the delegate is an ordinary person again.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from workflow import db
from workflow.errors import NotPermitted
from workflow.lifecycle import Action, State
from workflow.models import Measure, Person
from workflow.services.measures import ActionRequest, perform
from workflow.services.people import set_delegate
from workflow.timeutil import SHANGHAI

AWAY_UNTIL = date(2026, 12, 10)  # a Thursday; the delegation covers that day too


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI)


def verified(sessions: sessionmaker[Session], measure_id: int, admin: Person, now: datetime) -> int:
    for action in (Action.START, Action.SUBMIT, Action.VERIFY):
        with db.transaction(sessions) as session:
            perform(session, ActionRequest(measure_id, action, admin.email, comment="已整改"),
                    now=now)
    return measure_id


def state_and_version(sessions: sessionmaker[Session], measure_id: int) -> tuple[str, int]:
    with db.transaction(sessions) as session:
        measure = session.get_one(Measure, measure_id)
        return str(measure.state), measure.version


@pytest.fixture
def deputy(ledger, sessions, cast, now) -> Person:
    """The leader's deputy, named delegate while the leader is away until AWAY_UNTIL."""
    deputy = ledger.person("Deputy", "leader", unit="后勤处")
    with db.transaction(sessions) as session:
        set_delegate(session, session.get_one(Person, cast.leader.id),
                     session.get_one(Person, deputy.id), AWAY_UNTIL)
    return deputy


@pytest.fixture
def second_measure(ledger, sessions, cast, now) -> int:
    [_, measure] = ledger.measures(cast.campaign, [{
        "leader": cast.leader, "owner": cast.owner, "unit": "饮食服务中心", "seq": "2",
        "title": "建立食堂食品安全日巡查制度"}])
    return verified(sessions, measure.id, cast.admin, now)


def test_the_delegate_closes_for_the_leader_and_history_says_so(rectiflow, sessions, cast, deputy,
                                                                now):
    # Given a verified measure whose leader is away, with a delegate named until 12-10
    measure_id = verified(sessions, cast.measure.id, cast.admin, now)

    # When the delegate signs it off on 12-08
    result = rectiflow("measure", "do", str(measure_id), "close", "--as", deputy.email,
                       "--comment", "代为销号", "--now", at(date(2026, 12, 8)).isoformat())

    # Then it is closed
    assert result.code == 0, result.err
    assert "销号完成" in result.out
    shown = rectiflow("measure", "show", str(measure_id), "--json").json()
    assert shown["state"] == "closed"
    # And the history names the delegate as actor and the leader as the one acted for
    last = shown["history"][-1]
    assert (last["action"], last["from"], last["to"]) == ("close", "verified", "closed")
    assert last["actor"] == deputy.email
    assert last["on_behalf_of"] == cast.leader.email
    assert last["comment"] == "代为销号"
    assert last["data"]["on_behalf_of_name"] == cast.leader.name
    # And the plain-text view says so too
    assert f"{deputy.email}（代 {cast.leader.email}）" in rectiflow("measure", "show",
                                                                   str(measure_id)).out


def test_the_until_date_itself_is_covered(sessions, cast, deputy):
    measure_id = verified(sessions, cast.measure.id, cast.admin, at(date(2026, 12, 7)))
    # When the delegate closes late on the last day of the delegation, Beijing time
    with db.transaction(sessions) as session:
        outcome = perform(session, ActionRequest(measure_id, Action.CLOSE, deputy.email),
                          now=at(AWAY_UNTIL, hour=23))
        # Then it goes through, on the leader's behalf
        assert (outcome.entry.actor_id, outcome.entry.on_behalf_of_id) == (deputy.id,
                                                                           cast.leader.id)
        assert outcome.event.on_behalf_of_id == cast.leader.id
    assert state_and_version(sessions, measure_id)[0] == State.CLOSED


def test_after_the_until_date_the_delegate_is_refused(rectiflow, sessions, cast, deputy,
                                                      second_measure):
    # Given a verified measure and a delegation that ended on 12-10
    before = state_and_version(sessions, second_measure)
    the_day_after = at(AWAY_UNTIL + timedelta(days=1), hour=0)

    # When the former delegate tries to close it on 12-11
    with pytest.raises(NotPermitted, match=f"^Deputy 无权对措施 {second_measure} 执行「销号」；"
                                           "只有责任领导、第一责任人、管理员可以执行"):
        with db.transaction(sessions) as session:
            perform(session, ActionRequest(second_measure, Action.CLOSE, deputy.email),
                    now=the_day_after)
    # And through the command line
    result = rectiflow("measure", "do", str(second_measure), "close", "--as", deputy.email,
                       "--now", the_day_after.isoformat())

    # Then they are not permitted (exit 3) and nothing changed
    assert result.code == 3
    assert "无权" in result.err and "销号" in result.err
    assert state_and_version(sessions, second_measure) == before


def test_the_leader_can_still_act_while_away(sessions, cast, deputy, now):
    measure_id = verified(sessions, cast.measure.id, cast.admin, now)
    with db.transaction(sessions) as session:
        outcome = perform(session, ActionRequest(measure_id, Action.CLOSE, cast.leader.email),
                          now=at(date(2026, 12, 8)))
        # Acting for themselves: no one is named as acted for
        assert (outcome.entry.actor_id, outcome.entry.on_behalf_of_id) == (cast.leader.id, None)


def test_a_delegate_gets_only_what_the_leader_may_do(sessions, cast, deputy):
    # Given an assigned measure: starting it is for its owner and unit, not its leader
    before = state_and_version(sessions, cast.measure.id)
    # When the leader's delegate tries to start it
    with pytest.raises(NotPermitted, match="执行「开始整改」；只有责任人、责任部门成员、管理员可以执行"):
        with db.transaction(sessions) as session:
            perform(session, ActionRequest(cast.measure.id, Action.START, deputy.email),
                    now=at(date(2026, 12, 8)))
    # Then nothing changed
    assert state_and_version(sessions, cast.measure.id) == before


def test_a_cleared_delegation_ends_at_once(sessions, cast, deputy, second_measure):
    # Given the leader came back early and cleared the delegation
    with db.transaction(sessions) as session:
        set_delegate(session, session.get_one(Person, cast.leader.id), None, None)
    # Then the deputy may no longer close within the old period
    with pytest.raises(NotPermitted):
        with db.transaction(sessions) as session:
            perform(session, ActionRequest(second_measure, Action.CLOSE, deputy.email),
                    now=at(date(2026, 12, 8)))
