"""The processes end to end: refusals without a broker, the embedded ``serve``, the tasks
in-process, and real ``rectiflow clock`` + ``rectiflow worker`` subprocesses on Redis delivering a
few hundred messages to an aiosmtpd server, through worker crashes and a Redis restart."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from datetime import datetime, timedelta

import pytest
from dbfixtures import BACKEND
from sqlalchemy import func, select, update
from support import (  # noqa: F401
    Outbox,
    broker_env,
    broker_fixture,
    due_email_messages,
    free_port,
    own_redis_fixture,
    processes_fixture,
    smtp_env,
    smtp_fixture,
    wait_for,
)

from workflow import db
from workflow.leases import lease_holder, read_heartbeat
from workflow.models import OutboxMessage
from workflow.timeutil import SHANGHAI, system_now

NEEDS_POSTGRES = pytest.mark.skipif(
    BACKEND != "postgresql",
    reason="production processes run on PostgreSQL (FOR UPDATE SKIP LOCKED between worker "
           "machines); run with RECTIFLOW_TEST_DB=postgresql")


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize("command", ["worker", "clock"])
def test_worker_and_clock_refuse_to_start_without_a_broker(rectiflow, command):
    result = rectiflow(command)
    assert result.code == 2
    assert "RECTIFLOW_BROKER_URL" in result.err and "rectiflow serve" in result.err


# ------------------------------------------------------------------ the tasks, in this process


def test_sweep_task_writes_then_wakes_a_deliverer_and_deliver_task_sends(
        database, cli_env, monkeypatch, broker, ledger):
    import tasks.work
    from tasks.celery_app import configure
    from tasks.jobs import deliver_task, sweep_task

    # Given three overdue measures, a pinned Monday morning, and this test's Redis prefix
    ledger.now = datetime(2026, 9, 1, 10, 0, tzinfo=SHANGHAI)
    leader, owner = ledger.person("Leader", "leader"), ledger.person("Owner", "owner")
    campaign = ledger.campaign(first_responsible=ledger.person("Secretary", "leader"))
    ledger.measures(campaign, [{"leader": leader, "owner": owner,
                                "deadline": datetime(2026, 10, 9).date()}] * 3)
    monkeypatch.setenv("RECTIFLOW_NOW", "2026-10-13T09:00:00+08:00")
    monkeypatch.setenv("RECTIFLOW_BROKER_URL", broker.url)
    monkeypatch.setenv("RECTIFLOW_BROKER_PREFIX", broker.prefix)
    monkeypatch.setattr(tasks.work, "_work", None)
    from config.settings import load_settings

    configure(load_settings())
    # When the sweep task runs
    assert sweep_task() == {"messages": 3, "measures": 3, "group_messages": 0}
    # Then after its commit it enqueued one deliver task (and nothing else)
    queued = [json.loads(body)["headers"]["task"] for body in broker.queued()]
    assert queued == ["rectiflow.deliver"]
    # And run again it finds nothing and enqueues nothing
    assert sweep_task() == {"messages": 0, "measures": 0, "group_messages": 0}
    assert len(broker.queued()) == 1
    # When the deliver task runs, everything goes out by the file channel
    assert deliver_task()["sent"] == 3
    assert deliver_task()["sent"] == 0
    with db.transaction(database.sessions) as session:
        assert read_heartbeat(session, "task:sweep") is not None
        assert read_heartbeat(session, "task:deliver") is not None


# ------------------------------------------------------------------ rectiflow serve


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - a local test server
        return json.loads(answer.read())


def healthy(url: str) -> bool:
    try:
        return get_json(url) == {"status": "ok"}
    except OSError:
        return False


@pytest.mark.slow
def test_serve_embedded_sweeps_delivers_and_stops_cleanly(database, processes, smtp):
    # Given twenty due messages and no broker
    outbox = due_email_messages(database, 18)
    port = free_port()
    # When rectiflow serve runs
    serve = processes.start("serve", "serve", "--port", str(port), **smtp_env(smtp))
    # Then it answers /healthz and its in-process clock delivers everything
    wait_for(lambda: healthy(f"http://127.0.0.1:{port}/healthz"), 20, "serve to answer")
    wait_for(outbox.all_sent, 30, "the embedded clock to deliver")
    assert smtp.mailbox.distinct() == outbox.keys()
    assert smtp.mailbox.duplicates() == 0
    # And on SIGTERM it stops with 0 and gives the clock lease up
    assert serve.stop() == 0
    with db.transaction(database.sessions) as session:
        assert lease_holder(session, "clock", system_now()) is None
    assert "嵌入模式" in serve.output()


@pytest.mark.slow
def test_serve_with_a_broker_only_serves_the_web_app(database, processes, smtp, broker):
    outbox = due_email_messages(database, 3)
    port = free_port()
    serve = processes.start("serve", "serve", "--port", str(port), **smtp_env(smtp),
                            **broker_env(broker.url, broker.prefix))
    wait_for(lambda: healthy(f"http://127.0.0.1:{port}/healthz"), 20, "serve to answer")
    time.sleep(2.5)  # two ticks of an embedded clock, were there one
    assert outbox.counts() == {"pending": 5}
    assert broker.queued() == []
    assert serve.stop() == 0


# ------------------------------------------------------------------ clock + workers on Redis


def sent_in_log(log: str) -> int:
    """Messages a worker reports sent, from its per-task ``deliver: {...}`` log lines."""
    return sum(int(n) for n in re.findall(r"deliver: \{'sent': (\d+)", log))


def wait_all_sent(outbox: Outbox, timeout: float) -> None:
    wait_for(outbox.all_sent, timeout, f"every message to be sent (now {outbox.counts()})",
             interval=0.25)


def check_delivered_once_per_key(outbox: Outbox, smtp, max_duplicates: int) -> None:
    keys = outbox.keys()
    sent = outbox.sent_per_key()
    assert set(sent) == keys and set(sent.values()) == {1}
    assert smtp.mailbox.distinct() == keys
    assert smtp.mailbox.duplicates() <= max_duplicates


@pytest.mark.slow
@NEEDS_POSTGRES
def test_a_clock_and_two_workers_deliver_a_few_hundred_messages(database, processes, smtp,
                                                                 broker):
    # Given 302 due messages, an SMTP server, a clock and two workers on one Redis
    outbox = due_email_messages(database, 300)
    env = {**smtp_env(smtp), **broker_env(broker.url, broker.prefix),
           "RECTIFLOW_DELIVERY_BATCH": "25"}  # small claims, so every process gets a share
    workers = [processes.start(f"worker-{i}", "worker", "--concurrency", "2", **env)
               for i in (1, 2)]
    processes.start("clock", "clock", **env)
    # When they run, then every message is delivered once
    wait_all_sent(outbox, 90)
    check_delivered_once_per_key(outbox, smtp, max_duplicates=0)
    assert smtp.mailbox.received() == 302
    # and the workers' own counts add up to every message, none twice (how the work splits
    # between them depends on timing: one fast task may take it all)
    # (each task logs its count after its last commit: give the last one a moment)
    wait_for(lambda: sum(sent_in_log(w.output()) for w in workers) >= 302, 15, "the task logs")
    sent_by = [sent_in_log(worker.output()) for worker in workers]
    assert sum(sent_by) == 302, sent_by
    assert all(worker.alive() for worker in workers)


@pytest.mark.slow
def test_workers_killed_mid_batch_lose_nothing(database, processes, smtp, broker):
    # Given 122 due messages, a short outbox lease, small batches and a mail server taking
    # 50 ms a message (a batch of 20 then lasts a second, so a kill lands inside one; at full
    # speed a batch takes 20 ms and the kills would fall between batches)
    outbox = due_email_messages(database, 120)
    smtp.mailbox.delay = 0.05
    env = {**smtp_env(smtp), **broker_env(broker.url, broker.prefix),
           "RECTIFLOW_DELIVERY_LEASE": "5", "RECTIFLOW_DELIVERY_BATCH": "20"}
    processes.start("clock", "clock", **env)
    worker = processes.start("worker", "worker", "--concurrency", "1", **env)
    kills = mid_batch = 0
    # When the one worker is SIGKILLed three times while it is sending, and restarted each time
    for threshold in (15, 45, 75):
        wait_for(lambda t=threshold: smtp.mailbox.received() >= t, 60,
                 f"{threshold} messages received")
        worker.crash()
        kills += 1
        # (did it die holding claimed rows, mid-batch? usually; a kill between two batches
        # is possible too)
        mid_batch += outbox.counts().get("sending", 0) > 0
        worker = processes.start("worker", "worker", "--concurrency", "1", **env)
    assert mid_batch >= 1, "no kill happened mid-batch: the test proved nothing"
    # Then every message is delivered, one sent per key, and the SMTP server saw at most one
    # duplicate per kill (the message in flight)
    wait_all_sent(outbox, 90)
    check_delivered_once_per_key(outbox, smtp, max_duplicates=kills)
    assert smtp.mailbox.received() <= 122 + kills


@pytest.mark.slow
def test_redis_restarted_mid_run_loses_nothing(database, processes, smtp, own_redis):
    # Given a clock and a worker on our own Redis, and 122 messages not yet due
    outbox = due_email_messages(database, 120)
    with db.transaction(database.sessions) as session:
        session.execute(update(OutboxMessage).values(not_before=system_now() + timedelta(days=1)))
    env = {**smtp_env(smtp), **broker_env(own_redis.url)}
    clock = processes.start("clock", "clock", **env)
    worker = processes.start("worker", "worker", "--concurrency", "1", **env)
    wait_for(lambda: "rectiflow.deliver" in worker.output() and "succeeded" in worker.output(),
             30, "the worker to run a first deliver task")
    # When Redis dies and the messages fall due while it is down
    own_redis.kill()
    time.sleep(1)
    with db.transaction(database.sessions) as session:
        session.execute(update(OutboxMessage).values(not_before=system_now() - timedelta(minutes=1)))
    time.sleep(2)
    assert smtp.mailbox.received() == 0  # nothing wakes a worker without Redis
    # Then once Redis is back (empty: it keeps nothing), the clock and worker carry on
    own_redis.start()
    wait_for(lambda: smtp.mailbox.received() >= 30, 60, "delivery to resume")
    # And Redis dying again mid-run loses nothing either
    own_redis.kill()
    time.sleep(2)
    own_redis.start()
    wait_all_sent(outbox, 90)
    check_delivered_once_per_key(outbox, smtp, max_duplicates=0)
    assert clock.alive() and worker.alive()
    with db.transaction(database.sessions) as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 122
