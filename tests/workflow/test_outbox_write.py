"""write_notices on a real database: each key once, even when part of a batch was written before."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from workflow import db
from workflow.models import OutboxItem, OutboxMessage
from workflow.outbox import PlannedItem, write_notices


def _item(measure_id: int, recipient_id: int, stage: str = "overdue:1") -> PlannedItem:
    return PlannedItem(measure_id=measure_id, rule=stage, stage=stage, deadline=date(2026, 10, 9),
                       recipient_id=recipient_id, urgency=1, reason="逾期1个工作日")


def test_only_the_new_keys_are_written_and_listed(sessions, ledger, now):
    owner = ledger.person("Owner", "owner")
    other = ledger.person("Other", "owner")
    leader = ledger.person("Leader", "leader")
    campaign = ledger.campaign()
    m1, m2, m3 = (m.id for m in ledger.measures(campaign, [
        {"leader": leader, "owner": owner, "deadline": date(2026, 10, 9)} for _ in range(3)]))
    with db.transaction(sessions) as session:
        first = write_notices(session, [_item(m1, owner.id), _item(m2, owner.id)], now=now,
                              send_at=now, configured=frozenset())
    assert [len(m.payload["items"]) for m in first] == [2]

    # Given two of the owner's keys written before, and a new one for each person
    with db.transaction(sessions) as session:
        second = write_notices(session, [_item(m1, owner.id), _item(m2, owner.id),
                                         _item(m3, owner.id), _item(m1, other.id)],
                               now=now, send_at=now, configured=frozenset())
        listed = {m.recipient: [i["measure_id"] for i in m.payload["items"]] for m in second}
    # Then each message lists only what it added
    assert listed == {owner.email: [m3], other.email: [m1]}

    # And a batch made only of old keys writes no message at all
    with db.transaction(sessions) as session:
        assert write_notices(session, [_item(m1, owner.id), _item(m3, owner.id)], now=now,
                             send_at=now, configured=frozenset()) == []
    with db.transaction(sessions) as session:
        keys = session.scalars(select(OutboxItem.key)).all()
        messages = session.scalars(select(OutboxMessage)).all()
    assert len(keys) == len(set(keys)) == 4
    assert len(messages) == 3
    assert all(m.subject and m.payload["items"] and "writing-" not in m.key for m in messages)


def test_subjects_count_measures_not_reasons() -> None:
    from workflow.outbox import by_measure, subject_for
    items = [{"measure_id": 1, "rule": "before:3", "urgency": 3, "reason": "a"},
             {"measure_id": 1, "rule": "stagnation:1", "urgency": 6, "reason": "b"},
             {"measure_id": 2, "rule": "overdue:1", "urgency": 1, "reason": "c"}]
    assert subject_for(items, "reminder") == \
        "【整改督办】您有2项整改措施需要关注：已逾期（黄牌）1项，即将到期1项"
    assert [[i["reason"] for i in group] for group in by_measure(items)] == [["c"], ["a", "b"]]


def test_more_messages_than_one_fill_statement_carries(sessions, ledger, now):
    """``finish`` fills its placeholders a chunk at a time: every message is filled, those
    whose items were all written before are deleted wherever they fall among the chunks, and
    the Chinese words come back as written."""
    from workflow.outbox import FILL_CHUNK

    people = [ledger.person(f"责任人{n}", "owner") for n in range(FILL_CHUNK * 2 + 5)]
    leader = ledger.person("Leader", "leader")
    campaign = ledger.campaign()
    measure = ledger.measures(campaign, [{"leader": leader, "owner": people[0],
                                          "deadline": date(2026, 10, 9)}])[0].id
    old = people[FILL_CHUNK - 1::7]  # written before: their placeholders end up empty
    with db.transaction(sessions) as session:
        write_notices(session, [_item(measure, p.id) for p in old], now=now, send_at=now,
                      configured=frozenset())
    with db.transaction(sessions) as session:
        made = write_notices(session, [_item(measure, p.id) for p in people], now=now,
                             send_at=now, configured=frozenset())
        assert len(made) == len(people) - len(old)
    with db.transaction(sessions) as session:
        messages = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        by_name = {m.payload["name"]: m for m in messages}
    assert len(messages) == len(people)  # the old ones and the new ones, no placeholder left
    assert set(by_name) == {p.name for p in people}
    assert all("writing-" not in m.key and m.subject.startswith("【整改督办】") for m in messages)
    assert all(m.payload["items"][0]["reason"] == "逾期1个工作日" for m in messages)
