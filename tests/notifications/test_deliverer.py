"""The deliverer's rules on a real database, with the in-memory and the file channels: exclusive
claims, leases that run out, the send window, retry delays, dead letters, and the .eml files of
the embedded default."""

from __future__ import annotations

import itertools
import random
import threading
from datetime import date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from notifications.channels.base import DeliveryError, MemoryChannel, Rendered
from notifications.channels.file import FileChannel
from notifications.deliverer import MAX_ATTEMPTS, RETRY_DELAYS, Deliverer, claim, retry_delay
from workflow import db
from workflow.models import OutboxMessage, Person
from workflow.outbox import PlannedItem, write_notices
from workflow.policy import load_policy_file
from workflow.services.sweep import reminder_context
from workflow.timeutil import SHANGHAI

POLICIES = load_policy_file(None)
FILE_ONLY: frozenset[str] = frozenset()
BASE_URL = "http://127.0.0.1:8000"


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S" if text.count(":") == 2
                             else "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


def queue(sessions: sessionmaker[Session], ledger: Any, count: int, now: datetime,
          channels: frozenset[str] = FILE_ONLY) -> list[int]:
    """``count`` people with one measure each and one reminder each on ``channels`` (the file
    channel by default), due ``now``."""
    with db.transaction(sessions) as session:
        people = [Person(name=f"责任人{i}", email=f"owner{i}@example.edu.cn", roles=["owner"])
                  for i in range(count)]
        leader = Person(name="张局长", email="leader@example.edu.cn", roles=["leader"])
        session.add_all([*people, leader])
    measures = ledger.measures(ledger.campaign(), [
        {"leader": leader, "owner": p, "title": f"整改措施{i}", "deadline": date(2026, 12, 31)}
        for i, p in enumerate(people)])
    with db.transaction(sessions) as session:
        written = write_notices(session, [PlannedItem(
            measure_id=m.id, rule="before:3", stage="before:3", deadline=m.deadline,
            recipient_id=m.owner_id, urgency=3, reason="距完成时限还有3个工作日")
            for m in measures], now=now, send_at=now, configured=channels)
        return [m.id for m in written]


def rows(sessions: sessionmaker[Session]) -> dict[int, OutboxMessage]:
    with db.transaction(sessions) as session:
        return {m.id: m for m in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))}


def policy_window(sessions: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    """The send window as ``rectiflow deliver`` uses it: the policy's, on the working calendar."""
    with db.transaction(sessions) as session:
        ctx = reminder_context(session, POLICIES, FILE_ONLY)
    return lambda moment: ctx.planner.next_send_time(moment, ctx.base)


def memory_deliverer(sessions: sessionmaker[Session], channel: MemoryChannel | None = None,
                     **options: Any) -> tuple[Deliverer, MemoryChannel]:
    channel = channel or MemoryChannel("file")
    return Deliverer(sessions, {"file": channel}, base_url=BASE_URL, **options), channel


class FlakyChannel(MemoryChannel):
    """Fails with each error of ``errors`` in turn, then delivers."""

    def __init__(self, *errors: Exception) -> None:
        super().__init__("file")
        self.errors = list(errors)

    def send(self, message: Rendered) -> dict[str, Any]:
        if self.errors:
            raise self.errors.pop(0)
        return super().send(message)


# ------------------------------------------------------------------ claims and leases


def test_two_claims_take_disjoint_rows(database, sessions, ledger, now):
    # Given 30 due messages
    ids = queue(sessions, ledger, 30, now)
    lease = timedelta(minutes=5)
    if database.backend == "postgresql":
        # When two deliverers claim 20 each at the same moment, both transactions still open
        # (without SKIP LOCKED the second would wait for the first and the barrier time out)
        barrier = threading.Barrier(2, timeout=20)
        claimed: list[list[int]] = []

        def take() -> None:
            with db.transaction(sessions, write_lock=True) as session:
                taken = claim(session, now, limit=20, lease=lease, channels=frozenset({"file"}))
                barrier.wait()
            claimed.append(taken)

        threads = [threading.Thread(target=take) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        first, second = claimed
    else:
        # (SQLite has one writer at a time: the claims run one after the other)
        with db.transaction(sessions, write_lock=True) as session:
            first = claim(session, now, limit=20, lease=lease, channels=frozenset({"file"}))
        with db.transaction(sessions, write_lock=True) as session:
            second = claim(session, now, limit=20, lease=lease, channels=frozenset({"file"}))
    # Then no row is taken twice, and together they took every row
    assert not set(first) & set(second)
    assert sorted(first + second) == ids
    assert {len(first), len(second)} == {20, 10}
    assert {m.status for m in rows(sessions).values()} == {"sending"}


def test_two_deliverers_at_once_send_each_message_once(database, sessions, ledger, now):
    if database.backend != "postgresql":
        pytest.skip("concurrent deliverers need row locks: PostgreSQL only")
    # Given 60 due messages and two deliverers with small batches
    ids = queue(sessions, ledger, 60, now)
    deliverers = [memory_deliverer(sessions, batch=7) for _ in range(2)]
    start = threading.Barrier(2, timeout=20)

    def work(deliverer: Deliverer) -> None:
        start.wait()
        deliverer.run(lambda: now)

    # When both run at the same time
    threads = [threading.Thread(target=work, args=(d,)) for d, _ in deliverers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # Then every message was sent exactly once, by one of them
    sent = [m.message_id for _, channel in deliverers for m in channel.sent]
    assert sorted(sent) == ids
    assert all(channel.sent for _, channel in deliverers), "both should have taken a share"
    assert {m.status for m in rows(sessions).values()} == {"sent"}


def test_a_crashed_deliverers_lease_runs_out_and_another_sends(sessions, ledger, now):
    # Given a deliverer that claimed a message and died before sending it
    [message_id] = queue(sessions, ledger, 1, now)
    lease = timedelta(minutes=5)
    with db.transaction(sessions, write_lock=True) as session:
        assert claim(session, now, limit=10, lease=lease, channels=frozenset({"file"})) == [
            message_id]
    deliverer, channel = memory_deliverer(sessions, lease=lease)
    # When another deliverer runs while the lease still holds
    # Then it leaves the message alone
    assert deliverer.run(lambda: now + lease - timedelta(seconds=1)).sent == 0
    assert rows(sessions)[message_id].status == "sending"
    # When it runs again after the lease ran out
    later = now + lease + timedelta(seconds=1)
    report = deliverer.run(lambda: later)
    # Then it sends the message, once, and records one try
    assert report.sent == 1 and [m.message_id for m in channel.sent] == [message_id]
    message = rows(sessions)[message_id]
    assert (message.status, message.attempts, message.sent_at) == ("sent", 1, later)
    assert message.lease_until is None


def test_a_batch_is_read_in_a_few_statements_and_each_message_marked_by_one(database,
                                                                           sessions, ledger,
                                                                           now):
    # Given 33 messages due, each for its own person and measure
    queue(sessions, ledger, 33, now)

    def statements_of_a_batch(size: int) -> list[str]:
        seen: list[str] = []

        def count_it(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]  # noqa: E501
            verb = statement.split(None, 1)[0].upper()
            if verb != "BEGIN":  # SQLite's begin is a statement; PostgreSQL's marks autocommit
                seen.append(verb)

        event.listen(database.engine, "before_cursor_execute", count_it)
        try:
            report = memory_deliverer(sessions, batch=size)[0].run_once(now)
        finally:
            event.remove(database.engine, "before_cursor_execute", count_it)
        assert report.sent == size
        return seen

    # When the deliverer sends a batch of 3, then one of 30
    few, many = statements_of_a_batch(3), statements_of_a_batch(30)
    # Then reading and rendering a batch takes the same few statements whatever its size, and
    # each message sent adds the one UPDATE that marks it (a crash repeats at most one send)
    assert len(many) - len(few) == 27
    assert many.count("UPDATE") == 1 + 30  # the claim, then one mark per message
    assert sorted(m.status for m in rows(sessions).values()) == ["sent"] * 33


# ------------------------------------------------------------------ retries


@pytest.mark.parametrize(("failed_at", "earliest"), [
    # Friday evening: Saturday 2026-10-10 is a 调休 working day
    ("2026-10-09 17:59:30", "2026-10-10 08:30:00"),
    # Saturday (working) evening: Sunday is a day off
    ("2026-10-10 17:59:30", "2026-10-12 08:30:00"),
    # The last day before the National Day holiday: after the whole week off
    ("2026-09-30 17:59:30", "2026-10-08 08:30:00"),
    # Night: the same morning's window
    ("2026-10-13 06:00:00", "2026-10-13 08:30:00"),
])
def test_a_retry_that_would_fall_outside_the_send_window_waits_for_it(sessions, ledger,
                                                                     failed_at, earliest):
    # Given a message that fails with a retryable error at ``failed_at``
    when = at(failed_at)
    [message_id] = queue(sessions, ledger, 1, when)
    channel = FlakyChannel(DeliveryError("file", "磁盘暂时不可写", retryable=True))
    deliverer, _ = memory_deliverer(sessions, channel, send_window=policy_window(sessions))
    # When the deliverer runs
    assert deliverer.run(lambda: when).failed == 1
    # Then the retry is set for the next window's opening, not earlier
    assert rows(sessions)[message_id].not_before == at(earliest)
    assert deliverer.run(lambda: at(earliest) - timedelta(seconds=1)).sent == 0
    assert deliverer.run(lambda: at(earliest)).sent == 1


def test_a_retry_inside_the_window_comes_within_ten_minutes(sessions, ledger):
    # Given a message that fails at 10:00 on a working Tuesday
    when = at("2026-10-13 10:00")
    [message_id] = queue(sessions, ledger, 1, when)
    channel = FlakyChannel(DeliveryError("file", "磁盘暂时不可写", retryable=True))
    deliverer, _ = memory_deliverer(sessions, channel, send_window=policy_window(sessions))
    # When the deliverer runs
    deliverer.run(lambda: when)
    # Then the retry is due within ten minutes
    assert when < rows(sessions)[message_id].not_before <= when + timedelta(minutes=10)


@pytest.mark.parametrize("attempts", range(1, MAX_ATTEMPTS))
def test_retry_delays_stay_within_the_documented_bounds(attempts):
    # Given every try that can still be retried, over many random jitters
    delays = [retry_delay(attempts, random.Random(seed)) for seed in range(200)]
    # Then no delay is over an hour, the first retry comes within ten minutes
    assert all(timedelta(0) < d <= timedelta(hours=1) for d in delays)
    if attempts == 1:
        assert all(d <= timedelta(minutes=10) for d in delays)


def test_retry_delays_grow_and_allow_at_least_five_tries():
    # The table itself: non-decreasing bases, the first within 10 minutes, none over an hour
    assert list(RETRY_DELAYS) == sorted(RETRY_DELAYS)
    assert RETRY_DELAYS[0] <= timedelta(minutes=10) and RETRY_DELAYS[-1] <= timedelta(hours=1)
    assert MAX_ATTEMPTS >= 5


@pytest.mark.parametrize("retry_for", [timedelta(0), timedelta(hours=24)])
def test_a_message_that_always_fails_is_tried_at_least_five_times_then_dead(sessions, ledger,
                                                                           now, retry_for):
    # Given a channel that always fails with a retryable error
    [message_id] = queue(sessions, ledger, 1, now)
    error = DeliveryError("file", "磁盘暂时不可写", retryable=True)
    deliverer, _ = memory_deliverer(sessions, MemoryChannel("file", fail_with=error),
                                    rng=random.Random(7), retry_for=retry_for)
    # When the deliverer runs whenever the message is due again
    tries = [now]
    while True:
        deliverer.run(lambda: tries[-1])
        message = rows(sessions)[message_id]
        if message.status == "dead":
            break
        assert message.status == "pending"
        tries.append(message.not_before)
    # Then it was tried at least MAX_ATTEMPTS (≥ 5) times, never waiting over an hour, and is
    # dead only once it has also been failing for ``retry_for`` (a day by default)
    assert message.attempts == len(tries) >= MAX_ATTEMPTS >= 5
    gaps = [b - a for a, b in itertools.pairwise(tries)]
    assert gaps[0] <= timedelta(minutes=10) and max(gaps) <= timedelta(hours=1)
    assert tries[-1] - tries[0] >= retry_for
    assert tries[-2] - tries[0] < retry_for or len(tries) == MAX_ATTEMPTS
    assert "磁盘暂时不可写" in (message.last_error or "")


@pytest.mark.parametrize(("error", "status", "report"), [
    (DeliveryError("file", "收件人不存在", retryable=False, code=550), "dead",
     {"sent": 0, "failed": 0, "dead": 1, "deferred": 0, "cancelled": 0}),
    (DeliveryError("file", "服务器繁忙", retryable=True, code=451), "pending",
     {"sent": 0, "failed": 1, "dead": 0, "deferred": 0, "cancelled": 0}),
    (RuntimeError("程序缺陷"), "pending",  # an unexpected error is kept and retried
     {"sent": 0, "failed": 1, "dead": 0, "deferred": 0, "cancelled": 0}),
])
def test_permanent_errors_are_dead_at_once_others_retried(sessions, ledger, now, error, status,
                                                          report):
    # Given a message whose first send fails with ``error``
    [message_id] = queue(sessions, ledger, 1, now)
    deliverer, _ = memory_deliverer(sessions, FlakyChannel(error))
    # When the deliverer runs
    assert deliverer.run(lambda: now).as_json() == report
    # Then a permanent error is dead after one try, others wait; the error is kept either way
    message = rows(sessions)[message_id]
    assert (message.status, message.attempts) == (status, 1)
    reason = error.reason if isinstance(error, DeliveryError) else str(error)
    assert reason in (message.last_error or "")


def test_a_rate_limited_retry_waits_as_long_as_the_channel_says(sessions, ledger, now):
    # Given a channel that answers "wait 60 s" (WeCom's 45009, say)
    [message_id] = queue(sessions, ledger, 1, now)
    channel = FlakyChannel(DeliveryError("file", "限流", retryable=True, retry_after=60))
    deliverer, _ = memory_deliverer(sessions, channel)
    # When the send fails, Then the retry waits exactly that long
    deliverer.run(lambda: now)
    assert rows(sessions)[message_id].not_before == now + timedelta(seconds=60)


# ------------------------------------------------------------------ the file channel


def test_the_file_channel_writes_one_readable_eml_per_message(sessions, ledger, now, tmp_path):
    # Given three reminders and the file channel of the embedded default
    ids = queue(sessions, ledger, 3, now)
    folder = tmp_path / "outbox"
    deliverer = Deliverer(sessions, {"file": FileChannel(folder)}, base_url=BASE_URL)
    # When the deliverer runs
    assert deliverer.run(lambda: now).sent == 3
    # Then each message is one .eml file a mail program can read, and the row says which
    files = sorted(folder.glob("*.eml"))
    assert len(files) == 3 and not list(folder.glob("*.tmp"))
    sent = rows(sessions)
    for message_id, path in zip(ids, files, strict=True):
        assert sent[message_id].info["file"] == str(path)
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert mail["Subject"] == sent[message_id].subject
        assert mail["To"].addresses[0].addr_spec == sent[message_id].recipient
        assert mail["From"].addresses[0].display_name == "整改督办"
        assert mail["X-Rectiflow-Key"] == sent[message_id].key
        text = mail.get_body(preferencelist=("plain",)).get_content()
        html = mail.get_body(preferencelist=("html",)).get_content()
        assert "整改措施" in text and "<html" not in text and "<html" in html


def test_deliver_json_on_the_embedded_default_writes_files(rectiflow, cli_env, sessions,
                                                          ledger):
    # Given an embedded setup (no SMTP, no WeCom) with reminders due
    now = at("2026-12-28 09:00")
    queue(sessions, ledger, 2, now)
    # When ``rectiflow deliver --json`` runs
    result = rectiflow("deliver", "--json", "--now", "2026-12-28T09:05:00+08:00")
    # Then it reports two sent, and the two messages are files in RECTIFLOW_OUTBOX_DIR
    assert result.code == 0, result.err
    assert result.json() == {"sent": 2, "failed": 0, "dead": 0, "deferred": 0, "cancelled": 0}
    files = sorted(Path(cli_env["RECTIFLOW_OUTBOX_DIR"]).glob("*.eml"))
    assert len(files) == 2
    assert {message_from_bytes(f.read_bytes(), policy=policy.default)["To"].addresses[0].addr_spec
            for f in files} == {"owner0@example.edu.cn", "owner1@example.edu.cn"}
    # And the outbox list shows them sent
    listed = rectiflow("outbox", "list", "--json", "--status", "sent")
    assert [m["channel"] for m in listed.json()] == ["file", "file"]


class WitnessChannel(MemoryChannel):
    """Records, as each message goes out, which of those it sent before are marked sent."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        super().__init__("file")
        self.sessions = sessions
        self.unmarked_at_send: list[list[int]] = []

    def send(self, message: Rendered) -> dict[str, Any]:
        earlier = [r.message_id for r in self.sent]
        with db.transaction(self.sessions) as session:
            marked = set(session.scalars(select(OutboxMessage.id).where(
                OutboxMessage.id.in_(earlier), OutboxMessage.status == "sent")))
        self.unmarked_at_send.append([i for i in earlier if i not in marked])
        return super().send(message)


def test_every_message_sent_is_marked_before_the_next_goes_out(sessions, ledger):
    # Given a batch of due messages
    now = at("2026-12-07 09:30")
    ids = queue(sessions, ledger, 12, now)
    channel = WitnessChannel(sessions)
    deliverer, _ = memory_deliverer(sessions, channel)
    # When they are delivered (on PostgreSQL a helper thread runs the marks)
    report = deliverer.run(lambda: now)
    # Then each went out only once all before it were marked sent: a crash repeats at most one
    assert report.sent == 12
    assert [r.message_id for r in channel.sent] == ids
    assert channel.unmarked_at_send == [[]] * 12
    assert all(row.status == "sent" for row in rows(sessions).values())


def test_a_failed_mark_stops_the_batch_and_leaves_the_rest_leased(sessions, ledger, monkeypatch):
    # Given due messages, and a database that refuses the second mark
    now = at("2026-12-07 09:30")
    queue(sessions, ledger, 4, now)
    deliverer, channel = memory_deliverer(sessions)
    from notifications import deliverer as module

    calls = itertools.count()
    real_mark = module.Marks.mark

    def mark(self: module.Marks, statement: Any, params: dict[str, Any]) -> None:
        if next(calls) == 1:
            def refuse(*args: Any) -> None:
                raise RuntimeError("the database went away")
            original, self._run = self._run, refuse
            try:
                real_mark(self, statement, params)
            finally:
                self._run = original
            return
        real_mark(self, statement, params)

    monkeypatch.setattr(module.Marks, "mark", mark)
    # When they are delivered
    with pytest.raises((module.MarkFailed, RuntimeError), match="the database went away"):
        deliverer.run(lambda: now)
    # Then the batch stopped there: two sent, the first marked, the rest still leased
    statuses = sorted(row.status for row in rows(sessions).values())
    assert len(channel.sent) <= 3
    assert statuses.count("sent") == 1
    assert statuses.count("sending") == 3
