"""The clock: wall-clock triggers, the lease that makes a second clock a standby, and two real
``rectiflow clock`` processes against Redis enqueueing each tick once."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
from support import broker_env, broker_fixture, processes_fixture, wait_for  # noqa: F401

from config.settings import Settings
from tasks.clock import LEASE, Clock, lease_ttl, tick_stamp, tick_trigger
from workflow import db
from workflow.leases import lease_holder, read_heartbeat
from workflow.runtime import Runtime
from workflow.timeutil import SHANGHAI

T0 = datetime(2026, 12, 7, 9, 30, tzinfo=SHANGHAI)


@pytest.mark.parametrize("seconds, fields", [
    (1, {"second": "*/1"}), (30, {"second": "*/30"}),
    (60, {"minute": "*/1", "second": "0"}), (300, {"minute": "*/5", "second": "0"}),
])
def test_ticks_are_cron_triggers_on_the_beijing_wall_clock(seconds, fields):
    trigger = tick_trigger(seconds)
    assert str(trigger.timezone) == "Asia/Shanghai"
    shown = {f.name: str(f) for f in trigger.fields}
    assert {k: shown[k] for k in fields} == fields
    fire = trigger.get_next_fire_time(None, T0 + timedelta(seconds=1))
    assert fire is not None and int(fire.timestamp()) % seconds == 0


@pytest.mark.parametrize("seconds", [7, 90, 3600])
def test_a_tick_must_divide_a_minute_or_an_hour(seconds):
    with pytest.raises(ValueError):
        tick_trigger(seconds)


def test_the_lease_outlives_two_ticks_and_expires_between_ticks():
    assert lease_ttl(30) == timedelta(seconds=75)
    assert tick_stamp(T0 + timedelta(seconds=44), 30) == "20261207T093030"


class FakeTime:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def test_a_second_clock_stands_by_and_takes_over_when_the_first_stops(sessions):
    settings = Settings(clock_tick=10, sweep_tick=10)
    time_now = FakeTime(T0)
    calls: list[tuple[str, str]] = []

    def clock(name: str) -> Clock:
        return Clock(settings, sessions, {"sweep": (10, lambda now: calls.append((name, "sweep")))},
                     holder=name, now_fn=time_now)

    first, second = clock("A"), clock("B")
    # Given both clocks tick at the same instants for a minute
    for _ in range(6):
        first.run_job("sweep")
        second.run_job("sweep")
        time_now.now += timedelta(seconds=10)
    # Then only the first enqueued, once per tick, and the second knows it stands by
    assert calls == [("A", "sweep")] * 6
    assert (first.leading, second.leading) == (True, False)
    # When the first dies (stops ticking), the second takes over within three ticks
    calls.clear()
    for _ in range(3):
        second.run_job("sweep")
        time_now.now += timedelta(seconds=10)
    assert calls == [("B", "sweep")]
    with db.transaction(sessions) as session:
        beat = read_heartbeat(session, "clock:heartbeat")
        assert beat is not None and beat.value == "B"
    # And the first, back again, stands by
    first.run_job("sweep")
    assert first.leading is False and calls == [("B", "sweep")]


def test_a_clean_shutdown_hands_over_at_the_next_tick(sessions):
    settings = Settings(clock_tick=10)
    time_now = FakeTime(T0)
    calls: list[str] = []
    first = Clock(settings, sessions, {"sweep": (10, lambda now: calls.append("A"))},
                  holder="A", now_fn=time_now)
    second = Clock(settings, sessions, {"sweep": (10, lambda now: calls.append("B"))},
                   holder="B", now_fn=time_now)
    first.run_job("sweep")
    first.release()
    time_now.now += timedelta(seconds=10)
    second.run_job("sweep")
    assert calls == ["A", "B"]


def test_a_failing_job_is_logged_and_the_clock_goes_on(sessions, caplog):
    def broken(now: datetime) -> None:
        raise ConnectionError("redis is down")

    clock = Clock(Settings(clock_tick=10), sessions, {"deliver": (10, broken)}, holder="A",
                  now_fn=FakeTime(T0))
    clock.run_job("deliver")
    assert "deliver" in caplog.text and "redis is down" in caplog.text
    assert clock.leading is True


# ------------------------------------------------------------------ two real clock processes


def sweep_ticks(raw: list[bytes]) -> Counter[str]:
    """Sweep task ids in the queue, with the process (Celery's ``origin``) that sent each."""
    ids: Counter[str] = Counter()
    for body in raw:
        headers = json.loads(body)["headers"]
        if headers["task"] == "rectiflow.sweep":
            ids[headers["id"]] += 1
    return ids


def origins(raw: list[bytes]) -> set[str]:
    return {json.loads(body)["headers"]["origin"] for body in raw}


@pytest.mark.slow
def test_two_clock_processes_enqueue_each_tick_once(database, processes, broker):
    env = broker_env(broker.url, broker.prefix)
    # Given two clocks ticking every second against one database and one Redis
    first = processes.start("clock-1", "clock", **env)
    second = processes.start("clock-2", "clock", **env)
    wait_for(lambda: len(sweep_ticks(broker.queued())) >= 4, 20, "the first sweep ticks")
    time.sleep(3)
    # When the clock holding the lease is killed outright (no release)
    with db.transaction(database.sessions) as session:
        info = lease_holder(session, LEASE, datetime.now(SHANGHAI))
    assert info is not None and info.holder is not None
    leader_pid = int(info.holder.split(":")[1])
    leader, standby = (first, second) if leader_pid == first.process.pid else (second, first)
    assert leader.process.pid == leader_pid
    before = origins(broker.queued())
    leader.crash()
    # Then the standby takes over within a few ticks
    wait_for(lambda: len(origins(broker.queued())) == 2, 10, "the standby to take over")
    time.sleep(2)
    # And stops cleanly on SIGTERM, giving the lease up
    assert standby.stop() == 0
    with db.transaction(database.sessions) as session:
        assert lease_holder(session, LEASE, datetime.now(SHANGHAI)) is None
    assert "待命" in standby.output()
    # Every sweep tick was enqueued exactly once, by one clock or the other
    ticks = sweep_ticks(broker.queued())
    assert len(before) == 1
    assert max(ticks.values()) == 1, ticks
    assert len(ticks) >= 8
    # and the ticks form one run, with a gap of a few ticks at most (the takeover; a busy CI
    # machine may also skip a tick)
    stamps = sorted(datetime.strptime(t.removeprefix("sweep-"), "%Y%m%dT%H%M%S") for t in ticks)
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False)]
    assert max(gaps) <= 5.0, gaps


def test_clock_sigterm_exits_cleanly(database, processes, broker):
    clock = processes.start("clock", "clock", **broker_env(broker.url, broker.prefix))
    wait_for(lambda: bool(broker.queued()), 15, "the clock's first tick")
    clock.process.send_signal(signal.SIGINT)
    assert clock.process.wait(15) == 0
    assert "已释放租约" in clock.output()


def test_the_weekly_digest_is_scheduled_from_the_policy(tmp_path):
    # Given a policy that moves the digest to Friday 16:30
    from apscheduler.schedulers.background import BackgroundScheduler

    from tasks.clock import digest_trigger, embedded_jobs

    policy = tmp_path / "policy.toml"
    policy.write_text('[digest]\nweekday = "fri"\ntime = "16:30"\n', encoding="utf-8")
    settings = Settings(config_file=policy, database_url=f"sqlite:///{tmp_path / 'x.db'}")
    # Then the trigger fires on Fridays at 16:30 Beijing time, and the default is Monday 09:00
    trigger = digest_trigger(Runtime(settings).policies)
    after = datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI)  # a Monday
    assert trigger.get_next_fire_time(None, after) == datetime(2026, 12, 11, 16, 30,
                                                                 tzinfo=SHANGHAI)
    default = digest_trigger(Runtime(Settings()).policies)
    assert default.get_next_fire_time(None, after) == datetime(2026, 12, 14, 9, 0,
                                                                 tzinfo=SHANGHAI)
    # And the embedded clock schedules it beside the sweep and the deliverer
    scheduler = BackgroundScheduler(timezone=SHANGHAI)
    Clock(settings, db.session_factory(db.make_engine(settings.database_url)),
          embedded_jobs(Runtime(settings))).schedule(scheduler)
    assert {job.id for job in scheduler.get_jobs()} == {"heartbeat", "sweep", "deliver",
                                                        "digest"}


def test_the_digest_job_writes_each_readers_digest_once_a_week(database, cli_env, ledger,
                                                                  monkeypatch):
    # Given a campaign with an overdue measure and the embedded work of a process
    from datetime import date

    from sqlalchemy import func, select

    from config.settings import load_settings
    from tasks.work import Work
    from workflow.models import OutboxMessage

    ledger.now = datetime(2026, 9, 1, 10, 0, tzinfo=SHANGHAI)
    secretary = ledger.person("Secretary", "leader")
    leader = ledger.person("Leader", "leader")
    owner = ledger.person("Owner", "owner")
    campaign = ledger.campaign(first_responsible=secretary)
    ledger.measures(campaign, [{"leader": leader, "owner": owner,
                                "deadline": date(2026, 10, 9)}])
    monkeypatch.setenv("RECTIFLOW_NOW", "2026-12-07T09:00:00+08:00")
    work = Work(Runtime(load_settings()))
    # When the Monday digest runs twice
    first = work.digest()
    second = work.digest()
    # Then the first writes one digest per reader and the second nothing
    assert first["messages"] == 3 and second["messages"] == 0
    with database.sessions() as session:
        kinds = session.scalars(select(OutboxMessage.kind)).all()
        assert kinds.count("digest") == 3
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) >= 3
