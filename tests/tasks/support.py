"""Helpers and fixtures for the process tests: Redis (shared, with a key prefix per test), an
aiosmtpd server counting what it receives, ``rectiflow`` subprocesses that are always killed,
and a ledger with a few hundred due email messages.

Test modules import the ``*_fixture`` functions: a conftest.py here would shadow the root one,
which tests import by the name ``conftest``. Redis is reached through
``RECTIFLOW_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, update

from workflow import db
from workflow.models import Measure, OutboxMessage
from workflow.policy import load_policy_file
from workflow.schedule import set_next_reminder
from workflow.services.sweep import reminder_context, sweep
from workflow.timeutil import SHANGHAI, system_now

if TYPE_CHECKING:  # the root conftest; importing it here at run time would import this file
    from dbfixtures import Database

REDIS_URL = os.environ.get("RECTIFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, what: str,
             interval: float = 0.1) -> None:
    stop = time.monotonic() + timeout
    while time.monotonic() < stop:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# ------------------------------------------------------------------ Redis


@dataclass
class Broker:
    """A broker URL and this test's key prefix, with a client to look inside."""

    url: str
    prefix: str
    client: redis.Redis

    def queued(self) -> list[bytes]:
        return list(self.client.lrange(f"{self.prefix}rectiflow", 0, -1))


@pytest.fixture(name="broker")
def broker_fixture() -> Iterator[Broker]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}); start it or set "
                    "RECTIFLOW_TEST_REDIS_URL")
    prefix = f"rftest-{uuid.uuid4().hex[:10]}-"
    yield Broker(REDIS_URL, prefix, client)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@dataclass
class RedisServer:
    """A redis-server of our own, on a free port, that a test may kill and start again."""

    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        wait_for(lambda: _pings(client), 10, "redis-server to start")
        client.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture(name="own_redis")
def own_redis_fixture() -> Iterator[RedisServer]:
    server = RedisServer(free_port())
    server.start()
    yield server
    server.kill()


# ------------------------------------------------------------------ SMTP


@dataclass
class Mailbox:
    """What the SMTP server received: one entry per DATA, by outbox key."""

    delay: float = 0.0
    keys: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        if self.delay:
            await asyncio.sleep(self.delay)
        message = message_from_bytes(envelope.content)  # type: ignore[attr-defined]
        with self.lock:
            self.keys.append(str(message["X-Rectiflow-Key"]))
        return "250 OK"

    def received(self) -> int:
        with self.lock:
            return len(self.keys)

    def distinct(self) -> set[str]:
        with self.lock:
            return set(self.keys)

    def duplicates(self) -> int:
        with self.lock:
            return sum(n - 1 for n in Counter(self.keys).values())


@dataclass
class SmtpServer:
    host: str
    port: int
    mailbox: Mailbox


@pytest.fixture(name="smtp")
def smtp_fixture() -> Iterator[SmtpServer]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield SmtpServer("127.0.0.1", port, mailbox)
    controller.stop()


# ------------------------------------------------------------------ rectiflow subprocesses


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def crash(self) -> None:
        """SIGKILL the whole process group: the worker and its pool children die at once."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, as systemd stops a service; returns the exit code."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.crash()
            raise AssertionError(f"{self.name} did not stop within {timeout} s on SIGTERM") from None


@dataclass
class Processes:
    """Starts ``rectiflow ...`` with the test's environment; kills everything at teardown."""

    env: dict[str, str]
    folder: Path
    started: list[Proc] = field(default_factory=list)

    def start(self, name: str, *args: str, **extra_env: str) -> Proc:
        log = self.folder / f"{name}-{len(self.started)}.log"
        handle = log.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-c", "from workflow.cli import main; main()", *args],
            env={**self.env, **extra_env}, cwd=self.folder, stdout=handle,
            stderr=subprocess.STDOUT, start_new_session=True)
        handle.close()
        proc = Proc(name, process, log)
        self.started.append(proc)
        return proc

    def worker(self, name: str, concurrency: int = 1) -> Proc:
        return self.start(name, "worker", "--concurrency", str(concurrency), "--loglevel", "INFO",
                          "--name", f"{name}-{uuid.uuid4().hex[:6]}@%h")

    def kill_all(self) -> None:
        for proc in self.started:
            if proc.alive():
                try:
                    os.killpg(proc.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.process.wait(10)

    def logs(self) -> str:
        return "\n".join(f"----- {p.name} ({p.log.name})\n{p.output()[-4000:]}"
                         for p in self.started)


@pytest.fixture(name="processes")
def processes_fixture(database: Database, tmp_path: Path) -> Iterator[Processes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECTIFLOW_")}
    env.update({
        "RECTIFLOW_DATABASE_URL": database.url,
        "RECTIFLOW_OUTBOX_DIR": str(tmp_path / "outbox"),
        "RECTIFLOW_EVIDENCE_DIR": str(tmp_path / "evidence"),
        "RECTIFLOW_CLOCK_TICK": "1",
        "RECTIFLOW_SWEEP_TICK": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    })
    manager = Processes(env, tmp_path)
    yield manager
    manager.kill_all()
    print(manager.logs())  # shown when the test failed


# ------------------------------------------------------------------ a few hundred due messages


@dataclass
class Outbox:
    database: Database

    def counts(self) -> dict[str, int]:
        with db.transaction(self.database.sessions) as session:
            return dict(session.execute(select(OutboxMessage.status, func.count())
                                        .group_by(OutboxMessage.status)).all())

    def keys(self) -> set[str]:
        with db.transaction(self.database.sessions) as session:
            return set(session.scalars(select(OutboxMessage.key)))

    def sent_per_key(self) -> Counter[str]:
        with db.transaction(self.database.sessions) as session:
            return Counter(session.scalars(select(OutboxMessage.key)
                                           .where(OutboxMessage.status == "sent")))

    def all_sent(self) -> bool:
        counts = self.counts()
        return set(counts) == {"sent"}


def due_email_messages(database: Database, owners: int) -> Outbox:
    """``owners`` people with one overdue measure each, swept into the outbox (email), and made
    due now in real time: ``owners + 2`` messages (each owner, the leader, the secretary)."""
    from dbfixtures import Ledger

    sessions = database.sessions
    ledger = Ledger(sessions, datetime(2026, 9, 1, 10, 0, tzinfo=SHANGHAI))
    secretary = ledger.person("Secretary", "leader")
    leader = ledger.person("Leader", "leader")
    people = [ledger.person(f"Owner{i:03d}", "owner") for i in range(owners)]
    campaign = ledger.campaign(first_responsible=secretary)
    ledger.measures(campaign, [{"leader": leader, "owner": person, "deadline": date(2026, 10, 9),
                                "title": f"整改措施{i}"} for i, person in enumerate(people)])
    swept_at = datetime(2026, 10, 13, 9, 0, tzinfo=SHANGHAI)
    with db.transaction(sessions, write_lock=True) as session:
        ctx = reminder_context(session, load_policy_file(None), frozenset({"email"}))
        result = sweep(session, ctx, now=swept_at)
        assert len(result.messages) == owners + 2
        # Due now, in real time; and no further reminders planned while the processes run
        session.execute(update(OutboxMessage).values(not_before=system_now() - timedelta(minutes=1)))
        set_next_reminder(session, session.scalars(select(Measure.id)).all(), None)
    return Outbox(database)


def smtp_env(server: SmtpServer) -> dict[str, str]:
    return {"RECTIFLOW_SMTP_HOST": server.host, "RECTIFLOW_SMTP_PORT": str(server.port),
            "RECTIFLOW_SMTP_SENDER": "zgb@example.edu.cn"}


def broker_env(url: str, prefix: str | None = None) -> dict[str, str]:
    env = {"RECTIFLOW_BROKER_URL": url}
    if prefix:
        env["RECTIFLOW_BROKER_PREFIX"] = prefix
    return env
