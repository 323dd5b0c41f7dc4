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


def password_hash_of(sessions, name: str) -> str | None:
    with db.transaction(sessions) as session:
        return session.scalar(select(Person.password_hash).where(Person.name == name))


def test_a_new_password_for_an_existing_person(rectiflow, cast, sessions):
    from workflow.passwords import verify_password

    # Given the owner, added without a password (as an archive --without-passwords leaves them)
    assert password_hash_of(sessions, "Owner") is None
    # When the clerk sets one from standard input
    result = rectiflow("user", "set", "Owner", "--password-stdin", stdin="correct horse\n")
    # Then it is stored as an argon2 hash, never in clear, and the owner can log in with it
    assert result.code == 0, result.err
    assert "已设置新的登录密码" in result.out
    stored = password_hash_of(sessions, "Owner")
    assert stored.startswith("$argon2") and "correct horse" not in stored
    assert verify_password(stored, "correct horse")
    # And a second change replaces it
    assert rectiflow("user", "set", cast.owner.email, "--password-stdin",
                     stdin="battery staple\r\n").code == 0
    assert verify_password(password_hash_of(sessions, "Owner"), "battery staple")
    assert not verify_password(password_hash_of(sessions, "Owner"), "correct horse")


def test_an_empty_or_short_password_is_refused_and_changes_nothing(rectiflow, cast, sessions):
    assert rectiflow("user", "set", "Owner", "--password-stdin", stdin="correct horse\n").code == 0
    before = password_hash_of(sessions, "Owner")
    for given in ("\n", "", "short\n"):
        # When a clerk gives an empty or too short password, along with another change
        result = rectiflow("user", "set", "Owner", "--mobile", "13800000009", "--password-stdin",
                           stdin=given)
        # Then it is refused with exit 2 and nothing is written
        assert result.code == 2, (given, result.err)
        assert "密码至少需要 8 个字符" in result.err
        assert password_hash_of(sessions, "Owner") == before
        with db.transaction(sessions) as session:
            assert session.scalar(select(Person.mobile).where(Person.name == "Owner")) is None
