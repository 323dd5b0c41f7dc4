"""Benchmark of outbox delivery by email, and of the latency from "due" to "accepted".

Run from the repository root::

    python3 bench/deliver.py                    # 1,000 messages, 3 runs each
    python3 bench/deliver.py --messages 200 --server inprocess

An aiosmtpd server runs in a subprocess by default (``--server inprocess`` runs it in this
process instead, where it shares the GIL with the deliverer); it logs every connection and
every accepted message with the time it accepted it.

1. Throughput: N email rows queued in a fresh SQLite database (and in a fresh PostgreSQL schema
   when one is reachable: ``RECTIFLOW_BENCH_PG_URL``, default the local ``test`` database; the
   schema is dropped afterwards). The real Deliverer and EmailChannel send them (one connection
   per batch); median messages/second of the runs, against the goal of 100/s. Side by side, the
   naive way: yagmail's ``send()`` per message, which logs in on a new connection every time.
2. Latency in the embedded default (SQLite, the clock's jobs in this process): K measures fall
   due at known moments spread over two sweep ticks; the embedded clock's jobs run on their
   ticks; p50/p99 of (accepted by the SMTP server − due), against "one clock tick plus 5 s".
   The clock runs on a virtual timeline that starts on a working Monday at 10:00 (inside the
   send window) and advances with the wall clock.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchdb import PG_URL, pg_schema_url  # noqa: E402
from sqlalchemy import Engine, text, update  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from config.settings import load_settings  # noqa: E402
from notifications.channels.base import Channel, DeliveryError, Rendered  # noqa: E402
from notifications.deliverer import Deliverer  # noqa: E402
from workflow import db  # noqa: E402
from workflow.models import Area, Campaign, Measure, OutboxMessage, Person, Problem  # noqa: E402
from workflow.outbox import PlannedItem, write_notices  # noqa: E402
from workflow.runtime import Runtime  # noqa: E402
from workflow.timeutil import SHANGHAI  # noqa: E402

SENDER = "duban@example.edu.cn"
#: A working Monday, inside the send window.
BASE = datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI)
GOAL_PER_SECOND = 100


# ------------------------------------------------------------------ the SMTP server


class LoggingHandler:
    """Writes ``C time`` per connection and ``M time recipient`` per accepted message."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.lock = threading.Lock()

    def _write(self, line: str) -> None:
        with self.lock:
            self.log.write(line + "\n")
            self.log.flush()

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        self._write(f"C {time.time():.6f}")
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self._write(f"M {time.time():.6f} {','.join(envelope.rcpt_tos)}")
        return "250 2.0.0 accepted"


def free_port() -> int:
    """aiosmtpd's Controller refuses port 0: ask the kernel for a free port first."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(port: int, log_path: str) -> None:
    """The subprocess: run the server until stdin closes."""
    from aiosmtpd.controller import Controller

    with open(log_path, "a", encoding="utf-8") as log:
        controller = Controller(LoggingHandler(log), hostname="127.0.0.1", port=port)
        controller.start()
        print("READY", flush=True)
        sys.stdin.read()
        controller.stop()


class SmtpServer:
    """The aiosmtpd server, in a subprocess or in this process, and its log."""

    def __init__(self, mode: str, folder: Path) -> None:
        self.mode = mode
        self.port = free_port()
        self.log_path = folder / f"smtp-{mode}.log"
        self.log_path.touch()
        self._process: subprocess.Popen[str] | None = None
        self._controller: Any = None
        self._log: Any = None

    def __enter__(self) -> SmtpServer:
        if self.mode == "subprocess":
            self._process = subprocess.Popen(
                [sys.executable, __file__, "--serve", str(self.port), str(self.log_path)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert self._process.stdout is not None
            if self._process.stdout.readline().strip() != "READY":
                raise RuntimeError("the SMTP server subprocess did not start")
        else:
            from aiosmtpd.controller import Controller

            self._log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115
            self._controller = Controller(LoggingHandler(self._log), hostname="127.0.0.1",
                                          port=self.port)
            self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            self._process.wait(timeout=30)
        if self._controller is not None:
            self._controller.stop()
            self._log.close()

    def lines(self) -> list[list[str]]:
        return [line.split() for line in self.log_path.read_text(encoding="utf-8").splitlines()]

    def counts(self) -> tuple[int, int]:
        """(connections, messages) so far."""
        lines = self.lines()
        return sum(1 for p in lines if p[0] == "C"), sum(1 for p in lines if p[0] == "M")

    def env(self) -> dict[str, str]:
        return {"RECTIFLOW_SMTP_HOST": "127.0.0.1", "RECTIFLOW_SMTP_PORT": str(self.port),
                "RECTIFLOW_SMTP_SENDER": SENDER}


class NaiveYagmailChannel(Channel):
    """The naive way: yagmail's ``send()`` for each message, a new login every time."""

    name = "email"

    def __init__(self, port: int) -> None:
        self.port = port

    def send(self, message: Rendered) -> dict[str, Any]:
        import yagmail

        client = yagmail.SMTP(SENDER, host="127.0.0.1", port=self.port, smtp_ssl=False,
                              smtp_starttls=False, smtp_skip_login=True, timeout=10,
                              soft_email_validation=False)
        try:
            result = client.send(to=message.recipient, subject=message.subject,
                                 contents=message.text, message_id=f"<naive.{message.message_id}@b>")
        finally:
            client.close()
        if result is False or result:
            raise DeliveryError(self.name, f"yagmail: {result!r}", retryable=True)
        return {}


# ------------------------------------------------------------------ databases


@dataclass
class Backend:
    name: str
    url: str
    engine: Engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        return db.session_factory(self.engine)


@contextmanager
def sqlite_backend(folder: Path) -> Iterator[Backend]:
    url = f"sqlite:///{folder / f'deliver-{uuid.uuid4().hex[:6]}.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    try:
        yield Backend("SQLite", url, engine)
    finally:
        engine.dispose()


def pg_reachable() -> bool:
    try:
        engine = db.make_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception as exc:  # any failure means: skip PostgreSQL, and say why
        print(f"(PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}; skipped)")
        return False


@contextmanager
def pg_backend() -> Iterator[Backend]:
    with pg_schema_url("rf_bench_deliver") as url:
        engine = db.make_engine(url)
        try:
            db.upgrade(engine)
            yield Backend("PostgreSQL", url, engine)
        finally:
            engine.dispose()


def add_measures(sessions: sessionmaker[Session], count: int, *, deadline: date,
                 created: datetime, due: Callable[[int], datetime | None]) -> list[Measure]:
    """``count`` owners with one measure each (and one leader, one campaign)."""
    with db.transaction(sessions) as session:
        leader = Person(name="张局长", email="leader@example.edu.cn", roles=["leader"])
        owners = [Person(name=f"责任人{i}", email=f"owner{i}@example.edu.cn", roles=["owner"])
                  for i in range(count)]
        campaign = Campaign(title=f"第五轮巡察反馈问题整改-{uuid.uuid4().hex[:6]}",
                            created_at=created)
        area = Area(campaign=campaign, title="学习传达有差距")
        problem = Problem(area=area, text="组织学习还不到位")
        session.add_all([leader, *owners, campaign, area, problem])
        session.flush()
        measures = [Measure(campaign_id=campaign.id, problem_id=problem.id, position=i,
                            seq=str(i + 1), title=f"整改措施{i + 1}：修订管理办法", deadline=deadline,
                            original_deadline=deadline, owner_id=owner.id, leader_id=leader.id,
                            version=1, next_reminder_at=due(i), created_at=created,
                            state_changed_at=created)
                    for i, owner in enumerate(owners)]
        session.add_all(measures)
        return measures


def queue_email(sessions: sessionmaker[Session], count: int) -> None:
    measures = add_measures(sessions, count, deadline=BASE.date() + timedelta(days=3),
                            created=BASE - timedelta(days=30), due=lambda _: None)
    with db.transaction(sessions) as session:
        write_notices(session, [PlannedItem(
            measure_id=m.id, rule="before:3", stage="before:3", deadline=m.deadline,
            recipient_id=m.owner_id or 0, urgency=3, reason="距完成时限还有3个工作日")
            for m in measures], now=BASE, send_at=BASE, configured=frozenset({"email"}))


def requeue(sessions: sessionmaker[Session]) -> None:
    with db.transaction(sessions) as session:
        session.execute(update(OutboxMessage).values(
            status="pending", attempts=0, sent_at=None, lease_until=None, not_before=BASE))


# ------------------------------------------------------------------ 1. throughput


def throughput(backend: Backend, server: SmtpServer, messages: int, runs: int,
               naive_messages: int, temp: Path) -> None:
    sessions = backend.sessions
    queue_email(sessions, messages)
    settings = load_settings({**server.env(), "RECTIFLOW_OUTBOX_DIR": str(temp / "outbox")})

    def timed(deliverer: Deliverer, expected: int) -> tuple[float, int]:
        requeue(sessions)
        before = server.counts()
        started = time.perf_counter()
        report = deliverer.run(lambda: BASE)
        elapsed = time.perf_counter() - started
        after = server.counts()
        if report.sent != expected or after[1] - before[1] != expected:
            raise RuntimeError(f"expected {expected} sent, got {report.as_json()} "
                               f"and {after[1] - before[1]} at the server")
        return expected / elapsed, after[0] - before[0]

    reuse = [timed(Runtime(settings, engine=backend.engine).deliverer(), messages)
             for _ in range(runs)]
    # the naive way on the first ``naive_messages`` rows (they are the same kind of row)
    with db.transaction(sessions) as session:
        session.execute(text("DELETE FROM outbox_item"))
        ids = [i for (i,) in session.execute(text("SELECT id FROM outbox_message ORDER BY id"))]
        session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids[naive_messages:]))
                        .values(channel="unused"))
    naive_deliverer = Deliverer(sessions, {"email": NaiveYagmailChannel(server.port)},
                                base_url=settings.base_url)
    naive = [timed(naive_deliverer, naive_messages) for _ in range(runs)]
    reuse_rate = statistics.median(r for r, _ in reuse)
    naive_rate = statistics.median(r for r, _ in naive)
    verdict = "meets" if reuse_rate >= GOAL_PER_SECOND else "MISSES"
    print(f"  {backend.name:<10} Deliverer + EmailChannel (connection reuse): "
          f"{reuse_rate:8.1f} msg/s  median of {runs} runs of {messages}  "
          f"[{', '.join(f'{r:.0f}' for r, _ in reuse)}]  connections/run {reuse[0][1]}  "
          f"→ {verdict} the goal of ≥ {GOAL_PER_SECOND}/s")
    print(f"  {backend.name:<10} naive yagmail send() per message:          "
          f"{naive_rate:8.1f} msg/s  median of {runs} runs of {naive_messages}  "
          f"[{', '.join(f'{r:.0f}' for r, _ in naive)}]  connections/run {naive[0][1]}")
    print(f"  {backend.name:<10} reuse / naive = {reuse_rate / naive_rate:.1f}×")


# ------------------------------------------------------------------ 2. latency


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def latency(server: SmtpServer, measures: int, clock_tick: int, sweep_tick: int,
            temp: Path) -> None:
    """K measures fall due over two sweep ticks; the embedded clock's jobs run on their ticks."""
    folder = temp / f"latency-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    url = f"sqlite:///{folder / 'rectiflow.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    sessions = db.session_factory(engine)
    spread = 2 * sweep_tick
    lead = 2.0
    due_at = {f"owner{i}@example.edu.cn": BASE + timedelta(seconds=lead + spread * i / measures)
              for i in range(measures)}
    # deadline today: the before:0 stage is due from the window's opening; next_reminder_at says
    # exactly when each measure falls due
    add_measures(sessions, measures, deadline=BASE.date(), created=BASE - timedelta(days=30),
                 due=lambda i: due_at[f"owner{i}@example.edu.cn"])
    engine.dispose()
    env = {**server.env(), "RECTIFLOW_DATABASE_URL": url,
           "RECTIFLOW_OUTBOX_DIR": str(folder / "outbox"),
           "RECTIFLOW_CLOCK_TICK": str(clock_tick), "RECTIFLOW_SWEEP_TICK": str(sweep_tick)}
    settings = load_settings(env)
    started = time.time()

    def virtual_now() -> datetime:
        return BASE + timedelta(seconds=time.time() - started)

    jobs, loop = embedded_loop(settings, virtual_now)
    already = len([p for p in server.lines() if p[0] == "M"])
    end = lead + spread + 3 * max(clock_tick, sweep_tick)
    tick = math.gcd(clock_tick, sweep_tick)
    instant = 0
    while instant <= end:
        wait = started + instant - time.time()
        if wait > 0:
            time.sleep(wait)
        for every, job in jobs.values():  # in order, one thread, like the clock
            if isinstance(every, int) and instant % every == 0:  # (the weekly digest: not here)
                job(virtual_now())
        instant += tick
    accepted = [p for p in server.lines() if p[0] == "M"][already:]
    delays = [float(p[1]) - started - (due_at[p[2]] - BASE).total_seconds() for p in accepted]
    if len(delays) != measures:
        raise RuntimeError(f"expected {measures} mails, the server accepted {len(delays)}")
    p50, p99 = percentile(delays, 0.50), percentile(delays, 0.99)
    goal = clock_tick + 5
    verdict = "meets" if p99 <= goal else "MISSES"
    print(f"  loop: {loop}")
    print(f"  ticks: clock {clock_tick} s, sweep {sweep_tick} s; {measures} measures falling due "
          f"over {spread} s")
    print(f"  accepted − due: p50 {p50:.2f} s, p99 {p99:.2f} s, max {max(delays):.2f} s  "
          f"→ {verdict} the goal p99 ≤ one clock tick + 5 s = {goal} s")


def embedded_loop(settings: Any, virtual_now: Callable[[], datetime]
                  ) -> tuple[dict[str, tuple[int, Callable[[datetime], object]]], str]:
    """The embedded clock's jobs (``tasks.clock.embedded_jobs``) on the virtual timeline."""
    from tasks.clock import embedded_jobs

    runtime = Runtime(settings, clock=virtual_now)
    return embedded_jobs(runtime), "tasks.clock.embedded_jobs (the embedded clock's own jobs)"


ALWAYS_OPEN_POLICY = """[send_window]
start = "00:00"
end = "23:59"
working_days_only = false
"""


def latency_celery(backend: Backend, server: SmtpServer, measures: int, clock_tick: int,
                   sweep_tick: int, temp: Path, broker: str) -> None:
    """K measures fall due over two sweep ticks in real time; a `rectiflow clock` and two
    `rectiflow worker` processes do the rest. Real time may be outside office hours, so this
    run's policy opens the send window all day (the window is not what is measured)."""
    folder = temp / f"celery-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    policy = folder / "policy.toml"
    policy.write_text(ALWAYS_OPEN_POLICY, encoding="utf-8")
    spread = 2 * sweep_tick
    lead = 3 * max(clock_tick, sweep_tick)  # the processes start and take the clock's lease
    started = time.time()
    base = datetime.now(SHANGHAI)
    due_at = {f"owner{i}@example.edu.cn": base + timedelta(seconds=lead + spread * i / measures)
              for i in range(measures)}
    add_measures(backend.sessions, measures, deadline=base.date(),
                 created=base - timedelta(days=30),
                 due=lambda i: due_at[f"owner{i}@example.edu.cn"])
    env = {**os.environ, **server.env(), "RECTIFLOW_DATABASE_URL": backend.url,
           "RECTIFLOW_BROKER_URL": broker,
           "RECTIFLOW_BROKER_PREFIX": f"bench-{uuid.uuid4().hex[:6]}",
           "RECTIFLOW_CONFIG": str(policy), "RECTIFLOW_OUTBOX_DIR": str(folder / "outbox"),
           "RECTIFLOW_CLOCK_TICK": str(clock_tick), "RECTIFLOW_SWEEP_TICK": str(sweep_tick)}
    env.pop("RECTIFLOW_NOW", None)
    command = [sys.executable, "-c", "from workflow.cli import main; main()"]
    logs = [open(folder / f"{name}.log", "w") for name in ("clock", "worker1", "worker2")]
    processes = [
        subprocess.Popen([*command, "clock"], env=env, stdout=logs[0], stderr=logs[0]),
        *(subprocess.Popen([*command, "worker", "--concurrency", "1", "--name", f"w{n}@bench"],
                           env=env, stdout=log, stderr=log) for n, log in ((1, logs[1]),
                                                                          (2, logs[2])))]
    already = len([p for p in server.lines() if p[0] == "M"])
    try:
        deadline = started + lead + spread + 6 * max(clock_tick, sweep_tick) + 30
        while time.time() < deadline:
            accepted = [p for p in server.lines() if p[0] == "M"][already:]
            if len(accepted) >= measures:
                break
            time.sleep(1)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()
    accepted = [p for p in server.lines() if p[0] == "M"][already:]
    ours = [p for p in accepted if p[2] in due_at]
    if len(ours) < measures:
        print(f"  only {len(ours)} of {measures} mails arrived; logs in {folder}")
        return
    delays = [float(p[1]) - due_at[p[2]].timestamp() for p in ours]
    p50, p99 = percentile(delays, 0.50), percentile(delays, 0.99)
    goal = sweep_tick + 5
    verdict = "meets" if p99 <= goal else "MISSES"
    print(f"  ticks: clock {clock_tick} s, sweep {sweep_tick} s; {measures} measures falling due "
          f"over {spread} s")
    print(f"  accepted − due: p50 {p50:.2f} s, p99 {p99:.2f} s, max {max(delays):.2f} s  "
          f"→ {verdict} the goal p99 ≤ one clock tick + 5 s = {goal} s")


# ------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--naive-messages", type=int, default=None,
                        help="messages for the naive way (default: --messages)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--server", choices=("subprocess", "inprocess"), default="subprocess")
    parser.add_argument("--latency-measures", type=int, default=200)
    parser.add_argument("--clock-tick", type=int, default=10)
    parser.add_argument("--sweep-tick", type=int, default=10)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--celery", action="store_true",
                        help="also measure the latency through real clock and worker processes")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "LOG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1])
        return
    import logging

    logging.disable(logging.WARNING)  # the deliverer's per-message logs are not the point here
    temp = Path(tempfile.mkdtemp(prefix="rectiflow-bench-deliver-"))
    try:
        with SmtpServer(args.server, temp) as server:
            where = ("in a subprocess" if args.server == "subprocess"
                     else "in this process (shares the GIL)")
            print(f"SMTP server: aiosmtpd {where} on 127.0.0.1:{server.port}")
            print(f"1. throughput, {args.messages} email messages, batches of 200")
            with sqlite_backend(temp) as backend:
                throughput(backend, server, args.messages, args.runs,
                           args.naive_messages or args.messages, temp)
            if pg_reachable():
                with pg_backend() as backend:
                    throughput(backend, server, args.messages, args.runs,
                               args.naive_messages or args.messages, temp)
            if not args.skip_latency:
                print("2. latency in the embedded default (SQLite, jobs in this process)")
                latency(server, args.latency_measures, args.clock_tick, args.sweep_tick, temp)
            if args.celery and pg_reachable():
                print("3. latency with Celery (PostgreSQL, Redis, one `rectiflow clock`, "
                      "two `rectiflow worker` processes)")
                with pg_backend() as backend:
                    latency_celery(backend, server, args.latency_measures, args.clock_tick,
                                   args.sweep_tick, temp, args.broker)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    main()
