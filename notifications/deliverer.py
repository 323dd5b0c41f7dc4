"""The outbox deliverer: claim due rows with a lease, send them, mark each sent at once.

A claim is one statement (``UPDATE ... WHERE id IN (SELECT ... [FOR UPDATE SKIP LOCKED])
RETURNING id``), so two deliverers never take the same row, and a deliverer that dies leaves its
rows to be reclaimed when the lease runs out. The batch is claimed, read and rendered in one
transaction (a few statements for the whole batch, not a few per message); each message sent is
marked by one statement right after the send: a crash repeats at most the one message in
flight. (Marking the whole batch at its end would save that statement, and repeat up to a batch
per crash.) On PostgreSQL a helper thread runs the mark while the next message's first steps go
out (SMTP's MAIL and RCPT, which deliver nothing); the next message is delivered only once the
mark is committed (``Marks.settled``), so the guarantee is the same.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Executable, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from notifications.channels.base import Channel, DeliveryError, Rendered
from notifications.digest import DigestCache
from notifications.render import LinkMaker, load_measures, render
from workflow import db, metrics
from workflow.errors import InputError, NotFound
from workflow.lifecycle import ChannelName, MessageKind, OutboxStatus
from workflow.models import OutboxMessage, Person
from workflow.pg.delivery import marks_without_flush_wait
from workflow.services.truth import SendTimeCheck

log = logging.getLogger("rectiflow.deliver")

#: Retry delays: first within 10 minutes, growing, never beyond an hour, then hourly.
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=3), timedelta(minutes=9),
                timedelta(minutes=20), timedelta(minutes=40), timedelta(hours=1),
                timedelta(hours=1), timedelta(hours=1))
#: A temporary failure is ``dead`` only after this many tries *and* ``retry_for`` of failing:
#: a mail server down for an afternoon must not kill the queue.
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
RETRY_FOR = timedelta(hours=24)


def retry_delay(attempts: int, rng: random.Random) -> timedelta:
    """Delay before try number ``attempts + 1``, with ±20% jitter, capped at one hour."""
    base = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
    jittered = base * rng.uniform(0.8, 1.2)
    return min(jittered, timedelta(hours=1))


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    deferred: int = 0
    #: messages not sent because nothing in them held any more at send time
    cancelled: int = 0

    def add(self, other: DeliveryReport) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.dead += other.dead
        self.deferred += other.deferred
        self.cancelled += other.cancelled

    def as_json(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "dead": self.dead,
                "deferred": self.deferred, "cancelled": self.cancelled}


def claim(session: Session, now: datetime, *, limit: int, lease: timedelta,
          channels: frozenset[str]) -> list[int]:
    """Take up to ``limit`` due rows for ``lease``; rows whose lease ran out are due again."""
    due = (select(OutboxMessage.id)
           .where(OutboxMessage.channel.in_(sorted(channels)),
                  or_(and_(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.not_before <= now),
                      and_(OutboxMessage.status == OutboxStatus.SENDING,
                           OutboxMessage.lease_until < now)))
           .order_by(OutboxMessage.not_before, OutboxMessage.id)
           .limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    statement = (update(OutboxMessage)
                 .where(OutboxMessage.id.in_(due.scalar_subquery()))
                 .values(status=OutboxStatus.SENDING, lease_until=now + lease)
                 .returning(OutboxMessage.id)
                 .execution_options(synchronize_session=False))
    return sorted(session.scalars(statement).all())


_OUTBOX = OutboxMessage.__table__
#: Marking a message sent, built once (a statement built per message cost more than running it)
_MARK_SENT = (update(_OUTBOX)  # type: ignore[arg-type]
              .where(_OUTBOX.c.id == bindparam("mark_id"),
                     _OUTBOX.c.status == OutboxStatus.SENDING,
                     _OUTBOX.c.lease_until == bindparam("held_until"))
              .values(status=OutboxStatus.SENT, sent_at=bindparam("sent_at"), lease_until=None,
                      attempts=_OUTBOX.c.attempts + 1, last_error=None, failing_since=None,
                      info=bindparam("info")))
#: The same, keeping the subject as sent when it differs from the planned one
_MARK_SENT_AS = _MARK_SENT.values(subject=bindparam("sent_subject"))



class MarkFailed(Exception):
    """Raised when marking a sent message failed: the batch stops there (the message is sent
    again once its lease runs out)."""


class Marks:
    """Marks messages sent, one committed statement each, in order. With a ``helper`` thread a
    mark runs while the caller goes on; ``settled`` waits for it. The deliverer calls
    ``settled`` before the next message can reach anyone, so at most the message in flight is
    sent without its mark, as when each mark is waited for at once."""

    def __init__(self, run: Callable[[Executable, dict[str, Any]], Any],
                 helper: Executor | None = None) -> None:
        self._run = run
        self._helper = helper
        self._pending: Future[Any] | None = None

    def mark(self, statement: Executable, params: dict[str, Any]) -> None:
        self.settled()
        if self._helper is None:
            self._run(statement, params)
        else:
            self._pending = self._helper.submit(self._run, statement, params)

    def settled(self) -> None:
        """Returns once every mark given is committed; raises MarkFailed if one failed."""
        pending, self._pending = self._pending, None
        if pending is not None:
            try:
                pending.result()
            except Exception as exc:
                raise MarkFailed(f"marking an outbox message sent failed: {exc}") from exc


@dataclass(frozen=True)
class Ready:
    """A claimed message rendered and ready to send, with what marking it sent writes."""

    id: int
    channel: str
    due: datetime
    rendered: Rendered | None  # None: rendered right before sending (a digest)
    info: dict[str, Any]  # the row's info as it stands (with what was dropped)
    subject: str | None  # the subject as sent, when it differs from the planned one


class Deliverer:
    """Sends what is due through the configured channels."""

    def __init__(self, sessions: sessionmaker[Session], channels: Mapping[str, Channel], *,
                 base_url: str, send_window: Callable[[datetime], datetime] | None = None,
                 link_maker: LinkMaker | None = None, lease: timedelta = timedelta(minutes=5),
                 batch: int = 200, rng: random.Random | None = None,
                 check: SendTimeCheck | None = None,
                 retry_for: timedelta = RETRY_FOR) -> None:
        self.sessions = sessions
        self.channels = dict(channels)
        self.base_url = base_url
        self.send_window = send_window or (lambda moment: moment)
        self.link_maker = link_maker
        self.lease = lease
        self.batch = batch
        self.rng = rng or random.Random()
        #: checks each message's items at send time (None: sent as planned)
        self.check = check
        self.retry_for = retry_for
        #: the week's digests are cut from one read of their campaign (seconds for a large one)
        self.digests = DigestCache()

    def run(self, now_fn: Callable[[], datetime], *, max_batches: int = 1000) -> DeliveryReport:
        """Deliver batches until nothing is due (or ``max_batches``)."""
        report = DeliveryReport()
        for _ in range(max_batches):
            once = self.run_once(now_fn())
            report.add(once)
            if once.sent + once.failed + once.dead + once.deferred + once.cancelled == 0:
                break
        return report

    def run_once(self, now: datetime) -> DeliveryReport:
        """Claim one batch, read and render it in the same transaction, and send it over one
        connection per channel, each message marked sent by one statement right after it went
        out (a crash repeats at most the message in flight). Rows are only sent while this
        deliverer still holds their lease: a batch that takes too long hands what is left back
        instead of racing the deliverer that would reclaim it."""
        lease_until = now + self.lease
        started = time.monotonic()
        report = DeliveryReport()
        with self._transaction() as session:
            ids = claim(session, now, limit=self.batch, lease=self.lease,
                        channels=frozenset(self.channels))
            if not ids:
                return report
            ready = self._prepare(session, ids, now, report)
        by_channel: dict[str, list[Ready]] = defaultdict(list)
        for one in ready:
            by_channel[one.channel].append(one)
        budget = self.lease.total_seconds() * 0.8
        left: list[int] = []
        with self._marks() as marks:
            for name, messages in by_channel.items():
                sender = self.channels[name]
                try:
                    for one in messages:
                        if time.monotonic() - started > budget:
                            left.append(one.id)
                            continue
                        self._send(sender, one, now, lease_until, report, marks)
                finally:
                    sender.close()
        if left:
            self._hand_back(left, lease_until)
        return report

    def _transaction(self) -> AbstractContextManager[Session]:
        # On SQLite, take the write lock up front: a transaction that read first and writes
        # later fails at once ("database is locked") when another process wrote meanwhile.
        return db.transaction(self.sessions, write_lock=True)

    def _hand_back(self, ids: list[int], lease_until: datetime) -> None:
        with self._transaction() as session:
            session.execute(update(OutboxMessage)
                            .where(OutboxMessage.id.in_(ids), OutboxMessage.status == OutboxStatus.SENDING,
                                   OutboxMessage.lease_until == lease_until)
                            .values(status=OutboxStatus.PENDING, lease_until=None)
                            .execution_options(synchronize_session=False))
        log.info("handed %s unsent outbox messages back: the batch outlasted its lease", len(ids))

    # ------------------------------------------------------------------ the batch

    def _prepare(self, session: Session, ids: list[int], now: datetime,
                 report: DeliveryReport) -> list[Ready]:
        """Read the claimed messages with their measures and recipients (a few statements for
        the whole batch), defer those over a channel's limit, cancel those with nothing true
        left in them, and render the rest."""
        messages = session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))
                                   .order_by(OutboxMessage.id)).all()
        measures = load_measures(session, sorted({
            item["measure_id"] for message in messages if message.kind != MessageKind.DIGEST
            for item in message.payload.get("items", [])}))
        people = sorted({m.recipient_id for m in messages if m.recipient_id is not None})
        if people:  # into the session, where render finds them without a statement each
            session.scalars(select(Person).where(Person.id.in_(people))).all()
        waits = self._paced(session, messages, now)
        ready: list[Ready] = []
        for message in messages:
            wait_until = waits.get(message.id)
            if wait_until is not None:
                message.status = OutboxStatus.PENDING
                message.not_before = wait_until
                message.lease_until = None
                report.deferred += 1
                metrics.message_deferred(message.channel)
                continue
            if message.kind == MessageKind.DIGEST:
                # a digest may read its campaign's snapshots (seconds for a large one; once a
                # week's worth, see DigestCache): rendered alone right before it goes out, not
                # while the batch's transaction is open
                ready.append(Ready(message.id, message.channel, message.not_before, None, {},
                                   None))
                continue
            rendered = render(session, message, self.base_url, self.link_maker, self.check, now,
                              measures=measures)
            dropped = rendered.extra.get("dropped") or []
            if dropped and not rendered.extra.get("count"):
                # nothing in it is true any more: not sent, and kept with why
                message.status = OutboxStatus.CANCELLED
                message.lease_until = None
                message.info = {**message.info, "dropped": _why(dropped)}
                report.cancelled += 1
                log.info("outbox message %s not sent: none of its items holds any more",
                         message.id, extra={"message_id": message.id, "channel": message.channel})
                continue
            info = {**message.info, "dropped": _why(dropped)} if dropped else dict(message.info)
            ready.append(Ready(message.id, message.channel, message.not_before, rendered, info,
                               rendered.subject if rendered.subject != message.subject else None))
        return ready

    def _paced(self, session: Session, messages: Sequence[OutboxMessage],
               now: datetime) -> dict[int, datetime]:
        """The messages over a per-recipient limit of their channel, and when the oldest send
        leaves the window. Sends counted are those done and those planned in this batch."""
        waits: dict[int, datetime] = {}
        recent: dict[tuple[str, str, int], tuple[int, datetime | None]] = {}
        for message in messages:
            limits = self.channels[message.channel].limits
            for count, seconds in limits:
                window = (message.channel, message.recipient, seconds)
                if window not in recent:
                    recent[window] = tuple(session.execute(  # type: ignore[assignment]
                        select(func.count(), func.min(OutboxMessage.sent_at))
                        .where(OutboxMessage.channel == message.channel,
                               OutboxMessage.recipient == message.recipient,
                               OutboxMessage.status == OutboxStatus.SENT,
                               OutboxMessage.sent_at > now - timedelta(seconds=seconds))).one())
                sent, oldest = recent[window]
                if sent >= count:
                    waits[message.id] = (oldest or now) + timedelta(seconds=seconds,
                                                                    milliseconds=100)
                    break
            else:
                for _, seconds in limits:  # this one goes out now: it counts for the next
                    window = (message.channel, message.recipient, seconds)
                    sent, oldest = recent[window]
                    recent[window] = (sent + 1, min(oldest, now) if oldest else now)
        return waits

    # ------------------------------------------------------------------ one message

    def _render_alone(self, message_id: int, lease_until: datetime) -> Ready | None:
        """A message rendered in a transaction of its own (a digest); None when it is no longer
        this deliverer's to send."""
        with self._transaction() as session:
            message = session.get(OutboxMessage, message_id)
            if (message is None or message.status != OutboxStatus.SENDING
                    or message.lease_until != lease_until):
                return None  # sent meanwhile, or reclaimed by another deliverer: theirs now
            rendered = render(session, message, self.base_url, self.link_maker,
                              digests=self.digests)
            return Ready(message.id, message.channel, message.not_before, rendered,
                         dict(message.info),
                         rendered.subject if rendered.subject != message.subject else None)

    def _send(self, channel: Channel, one: Ready, now: datetime, lease_until: datetime,
              report: DeliveryReport, marks: Marks) -> None:
        if one.rendered is None:
            alone = self._render_alone(one.id, lease_until)
            if alone is None:
                return
            one = alone
        assert one.rendered is not None
        try:
            info = channel.send_after(one.rendered, marks.settled)
        except MarkFailed:
            raise  # the database, not the channel: the batch stops, as on any database error
        except DeliveryError as exc:
            self._failed(one.id, exc, now, report)
            return
        except Exception as exc:  # a bug or an unexpected library error: keep it, retry
            log.exception("unexpected error sending outbox message %s", one.id,
                          extra={"message_id": one.id, "channel": one.channel})
            self._failed(one.id, DeliveryError(channel.name, repr(exc), retryable=True),
                         now, report)
            return
        marks.mark(*self._sent(one, info, now, lease_until))
        report.sent += 1
        metrics.message_sent(one.channel, (now - one.due).total_seconds())
        log.info("sent outbox message %s by %s", one.id, one.channel,
                 extra={"message_id": one.id, "channel": one.channel})

    @staticmethod
    def _sent(one: Ready, info: Mapping[str, Any], now: datetime,
              lease_until: datetime) -> tuple[Executable, dict[str, Any]]:
        """The statement that marks ``one`` sent and its parameters; a message whose lease was
        taken over meanwhile is left to the deliverer that holds it."""
        params: dict[str, Any] = {"mark_id": one.id, "held_until": lease_until, "sent_at": now,
                                  "info": {**one.info, **info}}
        if one.subject is None:
            return _MARK_SENT, params
        return _MARK_SENT_AS, {**params, "sent_subject": one.subject}  # what the person saw

    @contextmanager
    def _marks(self) -> Iterator[Marks]:
        """Each mark its own committed transaction; on PostgreSQL one round trip that does not
        wait for the disk (``workflow.pg.delivery``), run by a helper thread while the next
        message's first SMTP steps go out."""
        engine = self.sessions.kw["bind"]
        if engine.dialect.name != "postgresql":
            yield Marks(self._mark_in_transaction)
            return
        with (marks_without_flush_wait(engine) as connection,
              ThreadPoolExecutor(1, thread_name_prefix="rectiflow-marks") as helper):
            marks = Marks(lambda statement, params: connection.execute(statement, params),
                          helper)
            try:
                yield marks
            finally:
                marks.settled()

    def _mark_in_transaction(self, statement: Executable, params: dict[str, Any]) -> None:
        with db.transaction(self.sessions) as session:
            session.execute(statement, params)

    def _failed(self, message_id: int, error: DeliveryError, now: datetime,
                report: DeliveryReport) -> None:
        with self._transaction() as session:
            message = session.get(OutboxMessage, message_id)
            assert message is not None
            message.attempts += 1
            message.last_error = str(error)
            message.lease_until = None
            if message.failing_since is None:
                message.failing_since = now
            if error.retryable and not hopeless(message.attempts, now - message.failing_since,
                                                self.retry_for):
                delay = (timedelta(seconds=error.retry_after) if error.retry_after
                         else retry_delay(message.attempts, self.rng))
                message.status = OutboxStatus.PENDING
                message.not_before = self.send_window(now + delay)
                report.failed += 1
                metrics.message_failed(message.channel)
                log.warning("outbox message %s failed (try %s), retry at %s: %s", message_id,
                            message.attempts, message.not_before.isoformat(), error,
                            extra={"message_id": message_id, "channel": message.channel,
                                   "error_code": error.code})
                return
            message.status = OutboxStatus.DEAD
            report.dead += 1
            metrics.message_dead(message.channel)
            log.error("outbox message %s is dead after %s tries over %s: %s", message_id,
                      message.attempts, now - message.failing_since, error,
                      extra={"message_id": message_id, "channel": message.channel,
                             "error_code": error.code})
            self._fall_back_to_email(session, message, now)

    def _fall_back_to_email(self, session: Session, message: OutboxMessage,
                            now: datetime) -> None:
        """A person WeCom cannot reach permanently gets the message by email instead."""
        if message.channel != ChannelName.WECOM or ChannelName.EMAIL not in self.channels:
            return
        person = session.get(Person, message.recipient_id) if message.recipient_id else None
        if person is None or not person.email:
            return
        fallback = OutboxMessage(
            channel=ChannelName.EMAIL, kind=message.kind, recipient_id=person.id, recipient=person.email,
            subject=message.subject, payload=message.payload, key=f"{message.key}|email-fallback",
            status=OutboxStatus.PENDING, attempts=0, not_before=now, created_at=now,
            info={"fallback_for": message.id})
        session.add(fallback)
        session.flush()
        metrics.messages_created([ChannelName.EMAIL], message.kind)
        log.info("outbox message %s: WeCom failed permanently, falling back to email as %s",
                 message.id, fallback.id)


def _why(dropped: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the row keeps of the items left out: which measure, which rule, why."""
    return [{"measure_id": d["measure_id"], "rule": d["rule"], "why": d["dropped"]}
            for d in dropped]


def hopeless(attempts: int, failing_for: timedelta, retry_for: timedelta) -> bool:
    """A temporary failure gives up only when tried often enough *and* failing long enough."""
    return attempts >= MAX_ATTEMPTS and failing_for >= retry_for


_REVIVED = {"status": OutboxStatus.PENDING, "attempts": 0, "lease_until": None,
            "failing_since": None}


def retry_message(session: Session, message_id: int, now: datetime) -> OutboxMessage:
    """Revive a dead (or failing) message: pending again, tries counted from zero."""
    message = session.get(OutboxMessage, message_id)
    if message is None:
        raise NotFound("消息", message_id)
    if message.status == OutboxStatus.SENT:
        raise InputError(f"消息 {message_id} 已发送，无需重试", field="id")
    for name, value in _REVIVED.items():
        setattr(message, name, value)
    message.not_before = now
    return message


def retry_dead(session: Session, now: datetime, channel: str | None = None) -> int:
    """Revive every dead message (of ``channel``) in one statement; return how many."""
    condition = [OutboxMessage.status == OutboxStatus.DEAD]
    if channel is not None:
        if channel not in set(ChannelName):
            known = "、".join(c.value for c in ChannelName)
            raise InputError(f"未知的发送渠道「{channel}」；可用：{known}", field="channel")
        condition.append(OutboxMessage.channel == channel)
    result = session.execute(update(OutboxMessage).where(*condition)
                             .values(**_REVIVED, not_before=now)
                             .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

