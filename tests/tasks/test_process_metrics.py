"""The production processes' own ``/metrics``: a prefork ``rectiflow worker`` reports the sum over
its children, and ``rectiflow clock`` whether it leads and what it ran."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import (  # noqa: F401
    broker_env,
    broker_fixture,
    due_email_messages,
    free_port,
    processes_fixture,
    smtp_env,
    smtp_fixture,
    wait_for,
)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def answers(port: int) -> bool:
    try:
        scrape(port)
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_a_prefork_worker_and_the_clock_expose_their_counts(database, processes, smtp, broker):
    # Given twelve due emails, and a worker with two pool processes and a clock, each with a
    # metrics port
    outbox = due_email_messages(database, 10)
    worker_port, clock_port = free_port(), free_port()
    env = {**smtp_env(smtp), **broker_env(broker.url, broker.prefix)}
    processes.start("worker", "worker", "--concurrency", "2", **env,
                    RECTIFLOW_METRICS_PORT=str(worker_port))
    processes.start("clock", "clock", **env, RECTIFLOW_METRICS_PORT=str(clock_port))
    # When they have delivered everything
    wait_for(outbox.all_sent, 60, f"every message to be sent (now {outbox.counts()})",
             interval=0.25)
    wait_for(lambda: answers(worker_port), 20, "the worker's metrics port")
    # Then the worker's one port reports all twelve sends, whichever child made them
    sent = ("rectiflow_messages_sent_total", (("channel", "email"),))
    wait_for(lambda: scrape(worker_port).get(sent) == 12, 10, "the worker to report 12 sends")
    # And a sweep has run (in whichever child took it: the first in a child builds its runtime,
    # so it may finish after the sends)
    swept = ("rectiflow_sweeps_total", (("outcome", "ok"),))
    wait_for(lambda: scrape(worker_port).get(swept, 0) >= 1, 10, "the worker to report a sweep")
    worker = scrape(worker_port)
    assert worker[("rectiflow_message_delay_seconds_count", (("channel", "email"),))] == 12
    assert worker.get(swept, 0) >= 1
    # And the configured channels' counters are there at zero before anything goes wrong
    for channel in ("email", "file"):
        assert worker[("rectiflow_messages_dead_total", (("channel", channel),))] == 0
        assert worker[("rectiflow_messages_failed_total", (("channel", channel),))] == 0
    # And the clock reports that it leads and what it ran
    clock = scrape(clock_port)
    assert clock[("rectiflow_clock_leader", ())] == 1
    assert clock[("rectiflow_clock_jobs_total", (("job", "deliver"), ("outcome", "ok")))] >= 1
    assert clock[("rectiflow_clock_jobs_total", (("job", "sweep"), ("outcome", "error")))] == 0
