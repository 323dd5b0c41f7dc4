"""The work itself, without Celery: one sweep, one delivery run. Celery tasks and the embedded
clock of ``rectiflow serve`` both call these.

Each process builds its dependencies (engine, policies, channels) once from settings; every run
re-reads the world from the database and commits its own transactions, so running it twice, or
in two processes at once, does nothing twice.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings, load_settings
from notifications.deliverer import Deliverer, DeliveryReport
from notifications.setup import build_deliverer
from workflow import db
from workflow.cli import App
from workflow.commands.delivery import send_window_for
from workflow.runtime import heartbeat
from workflow.services.sweep import reminder_context, sweep
from workflow.timeutil import system_now

log = logging.getLogger("rectiflow.work")

#: The heartbeat a successful sweep writes in its own transaction; ``doctor`` reads it.
SWEEP_HEARTBEAT = "task:sweep"


def process_name() -> str:
    """``host:pid``, how leases and heartbeats name this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Work:
    """What a process needs to sweep and deliver, built once from settings."""

    settings: Settings
    app: App = field(init=False)
    _deliverer: Deliverer = field(init=False)

    def __post_init__(self) -> None:
        self.app = App(settings=self.settings)
        self.app.policies  # noqa: B018 - a bad policy file is refused at start
        # Channels are built (and their settings checked) once per process.
        self._deliverer = build_deliverer(self.settings, self._deliverer_sessions())
        # A claimed batch must be sent well within its lease, or another deliverer reclaims
        # rows still waiting their turn here: keep batch × send time far below the lease.
        self._deliverer.lease = timedelta(seconds=self.settings.delivery_lease)
        self._deliverer.batch = self.settings.delivery_batch

    def _deliverer_sessions(self) -> sessionmaker[Session]:
        """On SQLite, the deliverer's transactions take the write lock when they begin: with a
        second process writing the same file (a clock, a web request), a transaction that read
        first and writes later would fail at once with "database is locked" (a stale snapshot)
        instead of waiting, leaving a sent message marked as sending."""
        engine = self.app.engine
        if engine.dialect.name == "sqlite":
            return db.session_factory(engine.execution_options(sqlite_immediate=True))
        return self.app.sessions

    def now(self) -> datetime:
        """The pinned time (``RECTIFLOW_NOW``, for demos) or the real one."""
        return self.settings.now or system_now()

    def sweep(self) -> dict[str, int]:
        """Plan every due measure into the outbox; returns ``{"messages", "measures"}``."""
        now = self.now()
        with self.app.transaction(write_lock=True) as session:
            ctx = reminder_context(session, self.app.policies, self.app.configured_channels)
            summary = sweep(session, ctx, now=now).as_json()
            heartbeat(session, SWEEP_HEARTBEAT, system_now(), process_name())
        if summary["messages"]:
            log.info("sweep: %(measures)s measures checked, %(messages)s messages written",
                     summary)
        return summary

    def digest(self) -> dict[str, int]:
        """The weekly digests into the outbox: one per reader per ISO week, so a second call
        in the same week (or a second clock) writes nothing."""
        from workflow.services.digest import send_weekly_digests

        now = self.now()
        with self.app.transaction(write_lock=True) as session:
            summary = send_weekly_digests(session, self.app.policies,
                                          self.app.configured_channels, now).as_json()
            heartbeat(session, "task:digest", system_now(), process_name())
        log.info("digest: %s", summary)
        return summary

    def deliverer(self) -> Deliverer:
        # The send window is read afresh each run: an admin may have changed the calendar.
        self._deliverer.send_window = send_window_for(self.app)  # type: ignore[assignment]
        return self._deliverer

    def deliver(self, budget: float) -> DeliveryReport:
        """Send batches until nothing is due or ``budget`` seconds have passed."""
        deliverer = self.deliverer()
        report = DeliveryReport()
        stop = time.monotonic() + budget
        while True:
            once = deliverer.run_once(self.now())
            report.add(once)
            if once.sent + once.failed + once.dead + once.deferred == 0:
                break
            if time.monotonic() >= stop:
                log.info("deliver: time budget used up; the next tick goes on")
                break
        with self.app.transaction() as session:
            heartbeat(session, "task:deliver", system_now(), process_name())
        if report.sent + report.failed + report.dead:
            log.info("deliver: %s", report.as_json())
        return report


_work: tuple[int, Work] | None = None


def process_work() -> Work:
    """This process's ``Work``, built on first use (after a prefork worker has forked)."""
    global _work
    if _work is None or _work[0] != os.getpid():
        _work = (os.getpid(), Work(load_settings()))
    return _work[1]
