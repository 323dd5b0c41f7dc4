"""Operating delivery: a mail server down for four hours (the clock moved in 5-minute steps)
keeps the whole queue alive and doctor names the outage; messages that did die come back with
one bulk retry; a killed ``rectiflow deliver`` strands only RECTIFLOW_DELIVERY_BATCH messages,
and only for RECTIFLOW_DELIVERY_LEASE seconds. A real SMTP server (aiosmtpd) throughout."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from test_deliverer import queue
from test_email import EMAIL, ROOT, RecordingHandler, SmtpServer, smtp_env

from notifications.deliverer import MAX_ATTEMPTS
from workflow import db
from workflow.models import Measure, OutboxMessage
from workflow.outbox import PlannedItem, write_notices
from workflow.timeutil import SHANGHAI

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=SHANGHAI)  # a Monday morning, inside the send window


def queue_mail(sessions: sessionmaker[Session], ledger: Any, count: int) -> list[int]:
    """``count`` email reminders due at ``T0`` (``test_deliverer.queue``)."""
    return queue(sessions, ledger, count, T0, EMAIL)


def messages(sessions: sessionmaker[Session]) -> list[OutboxMessage]:
    with db.transaction(sessions) as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def doctor_line(rectiflow: Any, now: datetime, name: str = "delivery_outage") -> dict[str, str]:
    checks = rectiflow("doctor", "--json", "--now", now.isoformat()).json()
    [check] = [c for c in checks if c["name"] == name]
    return check


def ride_out(rectiflow: Any, sessions: Any, start: datetime, until: Any,
             limit: timedelta) -> datetime:
    """Run ``rectiflow deliver`` every 5 minutes from ``start`` until ``until(rows)`` or limit."""
    moment = start
    while moment - start <= limit:
        result = rectiflow("deliver", "--json", "--now", moment.isoformat())
        assert result.code == 0, result.err
        if until(messages(sessions)):
            return moment
        moment += timedelta(minutes=5)
    return moment


@pytest.fixture
def mail_down(cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> SmtpServer:
    """A mail server configured but not running (connection refused), started by the test."""
    server = SmtpServer()
    for key, value in smtp_env(server.port).items():
        monkeypatch.setenv(key, value)
    yield server
    server.stop()


def test_a_four_hour_mail_outage_kills_nothing_and_doctor_names_it(rectiflow, sessions, ledger,
                                                                 mail_down):
    ids = queue_mail(sessions, ledger, 6)
    # While the mail server is down, the deliverer keeps failing and retrying
    two_hours = ride_out(rectiflow, sessions, T0, lambda rows: False, timedelta(hours=2))
    line = doctor_line(rectiflow, two_hours)
    assert line["status"] == "fail"
    assert "邮件发送中断：自 2026-12-07 09:00" in line["message"]
    assert "6 条消息发送失败、没有一条发出" in line["message"]
    assert "RECTIFLOW_SMTP_HOST" in line["message"]
    # ... through four hours and beyond the nine tries that used to kill the queue
    ended = ride_out(rectiflow, sessions, two_hours,
                     lambda rows: all(m.attempts >= MAX_ATTEMPTS for m in rows),
                     timedelta(hours=4))
    assert ended - T0 >= timedelta(hours=4)
    rows = messages(sessions)
    assert all(m.attempts >= MAX_ATTEMPTS for m in rows), [m.attempts for m in rows]
    assert {m.status for m in rows} == {"pending"}, [(m.status, m.last_error) for m in rows]
    assert all(m.not_before - ended <= timedelta(hours=1, minutes=15) for m in rows)
    # When the mail server is back, the next runs send every message, once
    mail_down.start()
    ride_out(rectiflow, sessions, ended + timedelta(minutes=5),
             lambda rows: all(m.status == "sent" for m in rows), timedelta(hours=2))
    received = sorted(r.rcpt_tos for r in mail_down.handler.received)
    assert received == sorted((f"owner{i}@example.edu.cn",) for i in range(len(ids)))
    assert doctor_line(rectiflow, ended + timedelta(hours=2))["status"] == "ok"


def test_messages_that_died_come_back_with_one_bulk_retry(rectiflow, sessions, ledger,
                                                         mail_down, monkeypatch):
    # Given an installation that gives up after one hour, and a four-hour outage
    monkeypatch.setenv("RECTIFLOW_DELIVERY_RETRY_HOURS", "1")
    queue_mail(sessions, ledger, 5)
    ended = ride_out(rectiflow, sessions, T0,
                     lambda rows: all(m.status == "dead" for m in rows), timedelta(hours=6))
    assert ended - T0 < timedelta(hours=6)
    rows = messages(sessions)
    assert all(m.attempts >= MAX_ATTEMPTS for m in rows)
    # And one dead message of another channel
    with db.transaction(sessions) as session:
        other = write_notices(session, [PlannedItem(
            measure_id=session.scalar(select(Measure.id).limit(1)), rule="before:1",
            stage="before:1", deadline=date(2026, 12, 31), recipient_id=rows[0].recipient_id,
            urgency=1, reason="距完成时限还有1个工作日")], now=T0, send_at=T0,
            configured=frozenset())
        session.execute(update(OutboxMessage).where(OutboxMessage.id == other[0].id)
                        .values(status="dead", last_error="磁盘已满", attempts=9))
    # Bad requests are refused and change nothing
    for args in (["outbox", "retry"], ["outbox", "retry", "--channel", "email"],
                 ["outbox", "retry", "1", "--all-dead"],
                 ["outbox", "retry", "--all-dead", "--channel", "sms"]):
        result = rectiflow(*args)
        assert result.code == 2, (args, result.err)
    assert "未知的发送渠道「sms」" in rectiflow("outbox", "retry", "--all-dead", "--channel",
                                              "sms").err
    assert sum(m.status == "dead" for m in messages(sessions)) == 6
    # When the server is back and the admin retries every dead email at once
    mail_down.start()
    result = rectiflow("outbox", "retry", "--all-dead", "--channel", "email", "--json",
                       "--now", ended.isoformat())
    assert result.code == 0, result.err
    assert result.json() == {"retried": 5}
    delivered = rectiflow("deliver", "--json", "--now", ended.isoformat()).json()
    assert delivered["sent"] == 5
    assert len(mail_down.handler.received) == 5
    by_channel = {(m.channel, m.status) for m in messages(sessions)}
    assert by_channel == {("email", "sent"), ("file", "dead")}
    # And the rest with no channel named
    assert rectiflow("outbox", "retry", "--all-dead", "--json").json() == {"retried": 1}


class StallingHandler(RecordingHandler):
    """Accepts the connection, then never answers DATA: a send that hangs."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(120)
        return "451 too late"


def test_a_killed_deliver_strands_one_batch_for_one_lease(database, rectiflow, cli_env, sessions,
                                                          ledger, monkeypatch):
    queue_mail(sessions, ledger, 7)
    stalling = SmtpServer()
    stalling.handler = StallingHandler()
    stalling.start()
    working = SmtpServer()
    working.start()
    try:
        # Given `rectiflow deliver` run with a batch of 3 and a lease of 60 seconds
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECTIFLOW_")}
        env.update(smtp_env(stalling.port), RECTIFLOW_DATABASE_URL=database.url,
                   RECTIFLOW_OUTBOX_DIR=cli_env["RECTIFLOW_OUTBOX_DIR"],
                   RECTIFLOW_DELIVERY_BATCH="3", RECTIFLOW_DELIVERY_LEASE="60",
                   PYTHONPATH=str(ROOT))
        process = subprocess.Popen(
            [sys.executable, "-c", "import sys; from workflow.cli import main; main(sys.argv[1:])",
             "deliver", "--now", T0.isoformat()],
            env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        # When it is killed (SIGKILL) while its first send hangs
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if stalling.handler.connections and any(m.status == "sending"
                                                    for m in messages(sessions)):
                break
            time.sleep(0.1)
        time.sleep(0.5)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        # Then exactly one batch is stranded, leased for exactly the configured 60 seconds
        stranded = [m for m in messages(sessions) if m.status == "sending"]
        assert len(stranded) == 3
        assert {m.lease_until for m in stranded} == {T0 + timedelta(seconds=60)}
        # And another deliverer sends the others at once, and the stranded ones after the lease
        for key, value in smtp_env(working.port).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("RECTIFLOW_DELIVERY_LEASE", "60")
        early = rectiflow("deliver", "--json", "--now", (T0 + timedelta(seconds=30)).isoformat())
        assert early.json()["sent"] == 4
        assert len([m for m in messages(sessions) if m.status == "sending"]) == 3
        late = rectiflow("deliver", "--json", "--now", (T0 + timedelta(seconds=61)).isoformat())
        assert late.json()["sent"] == 3
        assert {m.status for m in messages(sessions)} == {"sent"}
        assert len(working.handler.received) == 7
    finally:
        stalling.stop()
        working.stop()
