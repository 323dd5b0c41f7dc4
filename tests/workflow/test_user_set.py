"""`rectiflow user set`: how a person is reached, and whether they may act."""

from __future__ import annotations

from sqlalchemy import select

from workflow import db
from workflow.models import Person


def test_channel_preference_and_contact_details(rectiflow, cast, sessions):
    # When the clerk says the leader only reads email, and gives the owner a WeCom id
    assert rectiflow("user", "set", cast.leader.email, "--channel", "email").code == 0
    result = rectiflow("user", "set", "Owner", "--wecom-id", "chenjl", "--mobile", "13800000009",
                       "--json")
    # Then both are stored
    assert result.code == 0, result.err
    assert result.json()["wecom_id"] == "chenjl"
    with db.transaction(sessions) as session:
        leader = session.scalar(select(Person).where(Person.email == cast.leader.email))
        assert leader.channel_preference == "email"
    # And an empty value clears a detail
    assert rectiflow("user", "set", "Owner", "--wecom-id", "").code == 0
    with db.transaction(sessions) as session:
        assert session.scalar(select(Person.wecom_id).where(Person.name == "Owner")) is None


def test_an_inactive_person_may_no_longer_act(rectiflow, cast):
    assert rectiflow("user", "set", "Owner", "--inactive").code == 0
    refused = rectiflow("measure", "do", str(cast.measure.id), "start", "--as", "Owner")
    assert refused.code == 3
    assert rectiflow("user", "set", "Owner", "--active").code == 0
    assert rectiflow("measure", "do", str(cast.measure.id), "start", "--as", "Owner").code == 0


def test_bad_requests_are_refused_and_change_nothing(rectiflow, cast):
    nothing = rectiflow("user", "set", "Owner")
    assert nothing.code == 2 and "没有要修改的内容" in nothing.err
    bad = rectiflow("user", "set", "Owner", "--channel", "pigeon")
    assert bad.code == 2 and "pigeon" in bad.err
    unknown = rectiflow("user", "set", "nobody@example.edu.cn", "--channel", "email")
    assert unknown.code == 2 and "找不到人员" in unknown.err
