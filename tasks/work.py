"""The work itself, without Celery: one reminder round, one digest run, one delivery run.
Celery tasks and the embedded clock of ``rectiflow serve`` both call these.

Each process builds its ``Runtime`` (engine, policies, channels, deliverer) once; every run
re-reads the world from the database and commits its own transactions, so running it twice, or
in two processes at once, does nothing twice.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass

from config.settings import load_settings
from notifications.deliverer import DeliveryReport
from workflow.leases import HeartbeatName, heartbeat
from workflow.runtime import Runtime
from workflow.services.digest import send_weekly_digests
from workflow.services.reminding import sweep_round
from workflow.timeutil import system_now

log = logging.getLogger("rectiflow.work")

def process_name() -> str:
    """``host:pid``, how leases and heartbeats name this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Work:
    """Sweeps, digests and deliveries over one runtime."""

    runtime: Runtime

    def __post_init__(self) -> None:
        self.runtime.policies  # noqa: B018 - a bad policy file is refused at start
        self.runtime.channels  # noqa: B018 - and so are bad channel settings

    def sweep(self) -> dict[str, int]:
        """One reminder round into the outbox: ``{"messages", "measures", "group_messages"}``."""
        runtime = self.runtime
        now = runtime.now()
        with runtime.transaction(write_lock=True) as session:
            summary = sweep_round(session, runtime.reminder_context(session), now=now,
                                  group_robot=runtime.group_robot).as_json()
            heartbeat(session, HeartbeatName.SWEEP, system_now(), process_name())
        if summary["messages"]:
            log.info("sweep: %(measures)s measures checked, %(messages)s messages written, "
                     "%(group_messages)s group summary", summary)
        return summary

    def digest(self) -> dict[str, int]:
        """The weekly digests into the outbox: one per reader per ISO week, so a second call
        in the same week (or a second clock) writes nothing."""
        runtime = self.runtime
        with runtime.transaction(write_lock=True) as session:
            summary = send_weekly_digests(session, runtime.policies, runtime.person_channels,
                                          runtime.now()).as_json()
            heartbeat(session, HeartbeatName.DIGEST, system_now(), process_name())
        log.info("digest: %s", summary)
        return summary

    def deliver(self, budget: float) -> DeliveryReport:
        """Send batches until nothing is due or ``budget`` seconds have passed."""
        deliverer = self.runtime.deliverer()
        report = DeliveryReport()
        stop = time.monotonic() + budget
        while True:
            once = deliverer.run_once(self.runtime.now())
            report.add(once)
            if once.sent + once.failed + once.dead + once.deferred == 0:
                break
            if time.monotonic() >= stop:
                log.info("deliver: time budget used up; the next tick goes on")
                break
        with self.runtime.transaction() as session:
            heartbeat(session, HeartbeatName.DELIVER, system_now(), process_name())
        if report.sent + report.failed + report.dead:
            log.info("deliver: %s", report.as_json())
        return report


def wrote_messages(summary: dict[str, int]) -> bool:
    """Whether a sweep or digest summary says messages were written (a deliverer is due)."""
    return bool(summary.get("messages") or summary.get("group_messages"))


_work: tuple[int, Work] | None = None


def process_work() -> Work:
    """This process's ``Work``, built on first use (after a prefork worker has forked)."""
    global _work
    if _work is None or _work[0] != os.getpid():
        _work = (os.getpid(), Work(Runtime(load_settings())))
    return _work[1]
