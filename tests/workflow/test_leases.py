"""Leases and heartbeats in runtime_state, on the test backend: one holder at a time, expiry,
takeover, release, and a race of many holders at one instant."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from workflow import db
from workflow.leases import (
    acquire_lease,
    heartbeat,
    lease_holder,
    read_heartbeat,
    release_lease,
)
from workflow.timeutil import SHANGHAI

T0 = datetime(2026, 12, 7, 9, 30, tzinfo=SHANGHAI)
TTL = timedelta(seconds=25)


def take(sessions, holder: str, at: datetime, name: str = "clock") -> bool:
    with db.transaction(sessions) as session:
        return acquire_lease(session, name, holder, at, TTL)


def holder_of(sessions, at: datetime, name: str = "clock") -> str | None:
    with db.transaction(sessions) as session:
        info = lease_holder(session, name, at)
        return info.holder if info else None


def test_one_holder_at_a_time_until_the_lease_runs_out(sessions):
    # Given clock A takes the free lease
    assert take(sessions, "A", T0)
    # Then B cannot take it while it runs, and A can renew it
    assert not take(sessions, "B", T0 + timedelta(seconds=1))
    assert take(sessions, "A", T0 + timedelta(seconds=10))       # now until T0+35 s
    assert not take(sessions, "B", T0 + timedelta(seconds=34))
    assert holder_of(sessions, T0 + timedelta(seconds=34)) == "A"
    # When A stops renewing and the lease runs out, B takes over
    assert holder_of(sessions, T0 + timedelta(seconds=35)) is None
    assert take(sessions, "B", T0 + timedelta(seconds=35))
    # And A, coming back, cannot have it
    assert not take(sessions, "A", T0 + timedelta(seconds=36))
    assert holder_of(sessions, T0 + timedelta(seconds=36)) == "B"


def test_leases_with_different_names_are_independent(sessions):
    assert take(sessions, "A", T0, name="clock")
    assert take(sessions, "B", T0, name="other")
    assert not take(sessions, "B", T0, name="clock")


def test_a_released_lease_is_free_at_once(sessions):
    assert take(sessions, "A", T0)
    with db.transaction(sessions) as session:
        assert not release_lease(session, "clock", "B", T0)   # not B's to give up
        assert release_lease(session, "clock", "A", T0)
    assert holder_of(sessions, T0) is None
    assert take(sessions, "B", T0 + timedelta(seconds=1))


def test_the_holder_is_kept_when_a_transaction_rolls_back(sessions):
    assert take(sessions, "A", T0)
    with pytest.raises(RuntimeError), db.transaction(sessions) as session:
        assert acquire_lease(session, "clock", "B", T0 + timedelta(minutes=5), TTL)
        raise RuntimeError("the enqueue failed")
    assert holder_of(sessions, T0 + timedelta(seconds=1)) == "A"


@pytest.mark.parametrize("expired", [False, True], ids=["free", "expired"])
def test_many_holders_at_one_instant_exactly_one_wins(sessions, expired):
    # Given a lease nobody holds, or one whose holder is gone
    if expired:
        assert take(sessions, "gone", T0 - timedelta(minutes=5))
    # When eight clocks ask for it at the same instant, each on its own connection
    barrier = threading.Barrier(8)
    won: list[str] = []
    errors: list[BaseException] = []

    def contend(holder: str) -> None:
        try:
            barrier.wait()
            if take(sessions, holder, T0):
                won.append(holder)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(f"clock-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Then exactly one has it, and the database agrees
    assert errors == []
    assert len(won) == 1
    assert holder_of(sessions, T0) == won[0]


def test_heartbeats_are_upserted_and_read_back(sessions):
    with db.transaction(sessions) as session:
        assert read_heartbeat(session, "task:sweep") is None
        heartbeat(session, "task:sweep", T0, "host:1")
    with db.transaction(sessions) as session:
        heartbeat(session, "task:sweep", T0 + timedelta(minutes=1), "host:2")
    with db.transaction(sessions) as session:
        beat = read_heartbeat(session, "task:sweep")
    assert beat is not None
    assert (beat.at, beat.value) == (T0 + timedelta(minutes=1), "host:2")
    assert beat.age(T0 + timedelta(minutes=3)) == timedelta(minutes=2)


def test_a_heartbeat_does_not_touch_a_lease_of_another_name(sessions):
    assert take(sessions, "A", T0)
    with db.transaction(sessions) as session:
        heartbeat(session, "clock:heartbeat", T0 + timedelta(seconds=5), "A")
    assert holder_of(sessions, T0 + timedelta(seconds=20)) == "A"
