"""Email through a real SMTP server: aiosmtpd runs in this process on a free port, and the real
Deliverer with the EmailChannel, configured from settings as the CLI does, sends to it.

What arrives is parsed with the ``email`` package (``policy=default``), so the tests see what a
mail program sees: decoded Chinese headers, an escaped HTML part, a plain-text alternative.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config.settings import load_settings
from notifications.deliverer import MAX_ATTEMPTS, Deliverer
from notifications.mime import build_email
from notifications.render import render
from workflow import db
from workflow.models import OutboxMessage, Person
from workflow.outbox import PlannedItem, write_notices
from workflow.policy import load_policy_file
from workflow.runtime import Runtime
from workflow.services.people import add_person
from workflow.services.sweep import reminder_context, sweep
from workflow.timeutil import SHANGHAI

ROOT = Path(__file__).resolve().parents[2]
POLICIES = load_policy_file(None)
EMAIL = frozenset({"email"})
SENDER = "duban@example.edu.cn"
XSS_TITLE = "<script>alert(1)</script> & 「引号」"


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


# ------------------------------------------------------------------ the SMTP server


@dataclass(frozen=True)
class Received:
    """One message as the server accepted it: on which connection, and its raw bytes."""

    connection: int
    rcpt_tos: tuple[str, ...]
    raw: bytes

    def parsed(self) -> EmailMessage:
        message = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message


class RecordingHandler:
    """Keeps every accepted message; counts connections (one EHLO each); can refuse recipients."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self.received: list[Received] = []
        self.connections = 0
        #: recipient address → the reply that refuses it, e.g. "550 5.1.1 ..."
        self.refuse: dict[str, str] = {}

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        with self._lock:
            self.connections += 1
            session.rf_connection = next(self._numbers)
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        refusal = self.refuse.get(address)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.received.append(Received(getattr(session, "rf_connection", 0),
                                          tuple(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 2.0.0 accepted"

    def message_ids(self) -> list[str]:
        return [r.parsed()["Message-ID"] for r in self.received]


def free_port() -> int:
    """aiosmtpd's Controller refuses port 0: ask the kernel for a free port first."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpServer:
    """A real SMTP server on 127.0.0.1 that can be stopped and started again on its port."""

    def __init__(self) -> None:
        self.handler = RecordingHandler()
        self.port = free_port()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp() -> Any:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


def smtp_env(port: int) -> dict[str, str]:
    return {"RECTIFLOW_SMTP_HOST": "127.0.0.1", "RECTIFLOW_SMTP_PORT": str(port),
            "RECTIFLOW_SMTP_SENDER": SENDER}


def email_deliverer(sessions: sessionmaker[Session], port: int, outbox_dir: Path,
                    **options: Any) -> Deliverer:
    """The deliverer as ``rectiflow deliver`` builds it: settings, channels, the send window."""
    settings = load_settings({**smtp_env(port), "RECTIFLOW_OUTBOX_DIR": str(outbox_dir)})
    deliverer = Runtime(settings, engine=sessions.kw["bind"]).deliverer()
    for name, value in options.items():
        setattr(deliverer, name, value)
    return deliverer


# ------------------------------------------------------------------ the ledger


def person(sessions: sessionmaker[Session], name: str, email: str, *roles: str) -> Person:
    with db.transaction(sessions) as session:
        return add_person(session, name=name, email=email, roles=roles or ("owner",))


@pytest.fixture
def due_ledger(ledger: Any, sessions: sessionmaker[Session]) -> dict[str, Any]:
    """王小明 owns three measures due Thursday 2026-12-31 (one with a hostile title), 李华 one;
    imported Monday 2026-12-21, so ``before:7`` falls due Tuesday 2026-12-22."""
    ledger.now = at("2026-12-21 10:00")
    leader = person(sessions, "张局长", "leader@example.edu.cn", "leader")
    owner = person(sessions, "王小明", "wang@example.edu.cn")
    other = person(sessions, "李华", "lihua@example.edu.cn")
    campaign = ledger.campaign()
    deadline = date(2026, 12, 31)
    measures = ledger.measures(campaign, [
        {"leader": leader, "owner": owner, "deadline": deadline, "title": XSS_TITLE},
        {"leader": leader, "owner": owner, "deadline": deadline, "title": "修订食堂原材料采购管理办法"},
        {"leader": leader, "owner": owner, "deadline": deadline, "title": "建立食品安全周检制度"},
        {"leader": leader, "owner": other, "deadline": deadline, "title": "完善物业服务考核细则"},
    ])
    return {"owner": owner, "other": other, "leader": leader, "measures": measures}


def run_sweep(sessions: sessionmaker[Session], now: datetime) -> list[int]:
    with db.transaction(sessions, write_lock=True) as session:
        ctx = reminder_context(session, POLICIES, EMAIL)
        return [m.id for m in sweep(session, ctx, now=now).messages]


def rows(sessions: sessionmaker[Session]) -> dict[int, OutboxMessage]:
    with db.transaction(sessions) as session:
        return {m.id: m for m in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))}


def parts(message: EmailMessage) -> tuple[str, str]:
    """(text/plain, text/html) of a multipart/alternative message."""
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


# ------------------------------------------------------------------ what a mail program sees


def test_chinese_headers_escaped_html_and_a_real_text_alternative(sessions, due_ledger, smtp,
                                                                 tmp_path):
    # Given the before:7 reminders of Tuesday 2026-12-22 in the outbox
    now = at("2026-12-22 09:00")
    assert len(run_sweep(sessions, now)) == 2
    # When the deliverer sends them to the SMTP server
    report = email_deliverer(sessions, smtp.port, tmp_path).run(lambda: now)
    # Then both arrive
    assert report.as_json() == {"sent": 2, "failed": 0, "dead": 0, "deferred": 0, "cancelled": 0}
    by_rcpt = {r.rcpt_tos: r.parsed() for r in smtp.handler.received}
    mail = by_rcpt[("wang@example.edu.cn",)]
    row = next(m for m in rows(sessions).values() if m.recipient == "wang@example.edu.cn")
    # And the Chinese subject and names decode to what the outbox holds
    assert mail["Subject"] == row.subject and "【整改督办】" in mail["Subject"]
    assert mail["From"].addresses[0].display_name == "整改督办"
    assert mail["From"].addresses[0].addr_spec == SENDER
    assert mail["To"].addresses[0].display_name == "王小明"
    # (on the wire the headers are RFC 2047 encoded ASCII)
    raw = next(r.raw for r in smtp.handler.received if r.rcpt_tos == ("wang@example.edu.cn",))
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    assert header_block.isascii() and b"=?utf-8?" in header_block.lower()
    text, html = parts(mail)
    # And the HTML part escapes the hostile title, the text part shows it as written
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; 「引号」" in html
    assert XSS_TITLE in text
    # And the plain-text alternative is text: no tags besides the title the user typed
    assert re.search(r"</?[a-zA-Z][^>]*>", text.replace(XSS_TITLE, "")) is None
    assert "<br>" not in text and "&lt;" not in text
    # And the text lists every measure, one per line with its details
    for title in ("修订食堂原材料采购管理办法", "建立食品安全周检制度"):
        assert title in text and title in html


def test_one_owner_with_three_due_measures_gets_one_mail_listing_three(sessions, due_ledger,
                                                                      smtp, tmp_path):
    # Given three of 王小明's measures and one of 李华's falling due on the same morning
    now = at("2026-12-22 09:00")
    run_sweep(sessions, now)
    # When the deliverer runs
    email_deliverer(sessions, smtp.port, tmp_path).run(lambda: now)
    # Then 王小明 gets one mail, not three, and it lists all three measures
    to_wang = [r for r in smtp.handler.received if r.rcpt_tos == ("wang@example.edu.cn",)]
    assert len(to_wang) == 1
    text, html = parts(to_wang[0].parsed())
    titles = [m.title for m in due_ledger["measures"][:3]]
    assert all(title in text for title in titles)
    assert len(re.findall(r"^\s+\d+\. ", text, flags=re.M)) == 3
    assert "3项" in to_wang[0].parsed()["Subject"]
    # And 李华's mail mentions only their own measure
    [to_li] = [r for r in smtp.handler.received if r.rcpt_tos == ("lihua@example.edu.cn",)]
    li_text, _ = parts(to_li.parsed())
    assert "完善物业服务考核细则" in li_text and not any(t in li_text for t in titles)


def test_every_outbox_row_has_its_own_stable_message_id(sessions, due_ledger, smtp, tmp_path):
    # Given two reminders to the same person with the same subject, each for one of their
    # measures (both still true when sent)
    owner = due_ledger["owner"]
    now = at("2026-12-22 09:00")
    with db.transaction(sessions) as session:
        for measure in due_ledger["measures"][1:3]:
            write_notices(session, [PlannedItem(
                measure_id=measure.id, rule="before:7", stage="before:7",
                deadline=date(2026, 12, 31), recipient_id=owner.id, urgency=3,
                reason="距完成时限还有7个工作日")],
                now=now, send_at=now, configured=EMAIL)
    messages = list(rows(sessions).values())
    assert len(messages) == 2 and messages[0].subject == messages[1].subject
    # When both are delivered
    email_deliverer(sessions, smtp.port, tmp_path).run(lambda: now)
    # Then they arrive with different Message-IDs
    received = smtp.handler.message_ids()
    assert len(received) == 2 and len(set(received)) == 2
    # And each is the one recorded on its row, and rendering the row again gives it again
    recorded = {m.id: m.info["message_id"] for m in rows(sessions).values()}
    assert sorted(received) == sorted(recorded.values())
    with db.transaction(sessions) as session:
        for message in session.scalars(select(OutboxMessage)):
            again = build_email(render(session, message, "http://127.0.0.1:8000"), SENDER)
            assert again["Message-ID"] == recorded[message.id]


# ------------------------------------------------------------------ connections


def queue_reminders(sessions: sessionmaker[Session], ledger: Any, count: int,
                    now: datetime) -> None:
    """``count`` people with one measure each, all reminded at ``now``."""
    leader = person(sessions, "张局长", "leader@example.edu.cn", "leader")
    people = [person(sessions, f"责任人{i}", f"owner{i}@example.edu.cn") for i in range(count)]
    measures = ledger.measures(ledger.campaign(), [
        {"leader": leader, "owner": p, "title": f"整改措施{i}"} for i, p in enumerate(people)])
    with db.transaction(sessions) as session:
        write_notices(session, [PlannedItem(
            measure_id=m.id, rule="before:3", stage="before:3", deadline=m.deadline,
            recipient_id=m.owner_id, urgency=3, reason="距完成时限还有3个工作日")
            for m in measures], now=now, send_at=now, configured=EMAIL)


@pytest.mark.parametrize(("messages", "batch", "connections"), [(5, 200, 1), (5, 2, 3)])
def test_one_smtp_connection_per_batch(sessions, ledger, smtp, tmp_path, now, messages, batch,
                                       connections):
    # Given five reminders to five people
    queue_reminders(sessions, ledger, messages, now)
    # When the deliverer sends them in batches of ``batch``
    report = email_deliverer(sessions, smtp.port, tmp_path, batch=batch).run(lambda: now)
    # Then every message arrives, over one connection per batch
    assert report.sent == messages == len(smtp.handler.received)
    assert smtp.handler.connections == connections
    assert len({r.connection for r in smtp.handler.received}) == connections


# ------------------------------------------------------------------ outages and refusals


def test_an_smtp_outage_of_several_minutes_loses_and_repeats_nothing(sessions, due_ledger,
                                                                     smtp, tmp_path):
    # Given two reminders due at 09:00 and an SMTP server that has just gone down
    start = at("2026-12-22 09:00")
    ids = run_sweep(sessions, start)
    assert len(ids) == 2
    smtp.stop()
    deliverer = email_deliverer(sessions, smtp.port, tmp_path)
    tries: dict[int, list[datetime]] = {i: [] for i in ids}
    seen_attempts: dict[int, int] = dict.fromkeys(ids, 0)

    def tick(moment: datetime) -> None:
        deliverer.run(lambda: moment)
        for message in rows(sessions).values():
            if message.attempts > seen_attempts[message.id]:
                seen_attempts[message.id] = message.attempts
                tries[message.id].append(moment)
            assert message.status != "dead", message.last_error

    # When the deliverer runs every minute for eight minutes with the server down
    for minute in range(9):
        tick(start + timedelta(minutes=minute))
    # Then every message has failed more than once and is still waiting, with the error kept
    for message in rows(sessions).values():
        assert message.status == "pending" and message.attempts >= 2
        assert "SMTP" in (message.last_error or "")
    # When the server comes back on the same port and the deliverer keeps running
    smtp.start()
    for minute in range(9, 120):
        tick(start + timedelta(minutes=minute))
    # Then every message was accepted exactly once, and none became dead
    received = smtp.handler.message_ids()
    assert len(received) == len(set(received)) == 2
    final = rows(sessions)
    assert {m.status for m in final.values()} == {"sent"}
    for message_id, moments in tries.items():
        # And tries followed the documented delays: the first retry within 10 minutes, no wait
        # longer than an hour, every try recorded
        gaps = [b - a for a, b in itertools.pairwise(moments)]
        assert gaps[0] <= timedelta(minutes=10)
        assert all(gap <= timedelta(hours=1) for gap in gaps)
        assert final[message_id].attempts == len(moments) < MAX_ATTEMPTS
        assert final[message_id].sent_at == moments[-1]


def test_a_temporary_refusal_is_retried(sessions, due_ledger, smtp, tmp_path):
    # Given a server that answers 451 for 李华 for now
    now = at("2026-12-22 09:00")
    run_sweep(sessions, now)
    smtp.handler.refuse["lihua@example.edu.cn"] = "451 4.3.0 mailbox busy, try later"
    deliverer = email_deliverer(sessions, smtp.port, tmp_path)
    # When the deliverer runs
    assert deliverer.run(lambda: now).as_json() == {"sent": 1, "failed": 1, "dead": 0,
                                                    "deferred": 0, "cancelled": 0}
    [waiting] = [m for m in rows(sessions).values() if m.status == "pending"]
    assert "451" in (waiting.last_error or "") and waiting.not_before <= now + timedelta(minutes=10)
    # Then, once the server accepts again, the next run after the delay sends it
    smtp.handler.refuse.clear()
    assert deliverer.run(lambda: waiting.not_before).sent == 1
    assert len(smtp.handler.received) == 2


def test_a_refused_recipient_is_dead_at_once_and_can_be_revived(sessions, due_ledger, smtp,
                                                                tmp_path, rectiflow):
    # Given a server that does not know 李华's mailbox
    now = at("2026-12-22 09:00")
    run_sweep(sessions, now)
    smtp.handler.refuse["lihua@example.edu.cn"] = "550 5.1.1 <lihua@example.edu.cn>: no such user"
    # When the deliverer runs
    report = email_deliverer(sessions, smtp.port, tmp_path).run(lambda: now)
    # Then that message is dead after one try, and the other one went out
    assert report.as_json() == {"sent": 1, "failed": 0, "dead": 1, "deferred": 0, "cancelled": 0}
    # And an admin sees it, with the server's answer, in the outbox list
    listed = rectiflow("outbox", "list", "--json", "--status", "dead")
    assert listed.code == 0, listed.err
    [dead] = listed.json()
    assert dead["recipient"] == "lihua@example.edu.cn" and dead["attempts"] == 1
    assert "550" in dead["last_error"] and "no such user" in dead["last_error"]
    # When the admin asks for it to be retried (the address was fixed meanwhile)
    retried = rectiflow("--now", "2026-12-22T09:30:00+08:00", "outbox", "retry", str(dead["id"]))
    # Then it is pending again with its tries counted from zero
    assert retried.code == 0, retried.err
    assert "重新排队" in retried.out
    revived = rows(sessions)[dead["id"]]
    assert (revived.status, revived.attempts) == ("pending", 0)
    smtp.handler.refuse.clear()
    assert email_deliverer(sessions, smtp.port, tmp_path).run(lambda: at("2026-12-22 09:30")).sent == 1
    # And a sent message or an unknown id cannot be retried
    sent_id = next(m.id for m in rows(sessions).values() if m.status == "sent")
    refused = rectiflow("outbox", "retry", str(sent_id))
    assert refused.code == 2 and "已发送" in refused.err
    unknown = rectiflow("outbox", "retry", "999999")
    assert unknown.code == 2 and "999999" in unknown.err


# ------------------------------------------------------------------ through the command line


def test_deliver_json_through_the_command_line(sessions, due_ledger, smtp, rectiflow,
                                               monkeypatch):
    # Given the reminders of Tuesday morning and SMTP settings pointing at the server
    run_sweep(sessions, at("2026-12-22 09:00"))
    for key, value in smtp_env(smtp.port).items():
        monkeypatch.setenv(key, value)
    # When ``rectiflow deliver --json`` runs
    result = rectiflow("deliver", "--json", "--now", "2026-12-22T09:05:00+08:00")
    # Then it prints the report and the server has both mails
    assert result.code == 0, result.err
    assert result.json() == {"sent": 2, "failed": 0, "dead": 0, "deferred": 0, "cancelled": 0}
    assert sorted(r.rcpt_tos for r in smtp.handler.received) == [
        ("lihua@example.edu.cn",), ("wang@example.edu.cn",)]
    # And a second run finds nothing left to send
    again = rectiflow("deliver", "--json", "--now", "2026-12-22T09:06:00+08:00")
    assert again.json() == {"sent": 0, "failed": 0, "dead": 0, "deferred": 0, "cancelled": 0}


def test_a_user_without_a_password_is_refused_at_start_without_a_prompt(database, sessions,
                                                                        due_ledger, smtp):
    # Given SMTP settings with a user name but no password, and no terminal to type into
    run_sweep(sessions, at("2026-12-22 09:00"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECTIFLOW_")}
    env.update(smtp_env(smtp.port), RECTIFLOW_DATABASE_URL=database.url,
               RECTIFLOW_SMTP_USER="duban@example.edu.cn", PYTHONPATH=str(ROOT))
    # When ``rectiflow deliver`` starts with stdin closed and no controlling terminal
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from workflow.cli import main; main(sys.argv[1:])",
         "deliver", "--now", "2026-12-22T09:05:00+08:00"],
        env=env, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=60, start_new_session=True)
    # Then it stops with exit code 2 and a Chinese message naming the missing variable
    assert result.returncode == 2, result.stderr
    assert "RECTIFLOW_SMTP_PASSWORD" in result.stderr and "密码" in result.stderr
    # And nothing was sent or changed
    assert smtp.handler.received == [] and smtp.handler.connections == 0
    assert {m.status for m in rows(sessions).values()} == {"pending"}
