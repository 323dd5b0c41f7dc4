"""The composition root: what a process needs, built once from ``Settings``.

The CLI, the web app, the embedded clock and the Celery workers each build one ``Runtime`` and
take what they need from it: the engine and its sessions, the policies, the channels people are
reached by, the event publisher that turns actions into outbox rows, the deliverer over the
configured channels, evidence storage and the clock. Nothing else computes these.

Like the entry points, the runtime wires the domain to ``notifications``; nothing in the domain
imports it. Parts are built on first use and then kept, so a command that never sends never
checks the mail settings, and ``doctor`` can report a bad policy file instead of dying on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import cached_property

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from notifications.channels.base import Channel
from notifications.channels.wecom.app import WeComAppChannel
from notifications.deliverer import Deliverer
from notifications.events import make_outbox_writer
from notifications.render import LinkMaker
from notifications.setup import build_channels
from workflow import db
from workflow.events import EventPublisher, Handler, MeasureChanged
from workflow.evidence import EvidenceStore
from workflow.lifecycle import ChannelName
from workflow.models import Evidence
from workflow.policy import PolicySet, load_policy_file
from workflow.services.approvals import expiry_after_workdays, make_link_maker
from workflow.services.sweep import ReminderContext, reminder_context
from workflow.services.truth import SendTimeCheck
from workflow.timeutil import system_now


class Runtime:
    """Everything built from one ``Settings``; ``engine`` and ``clock`` may be given instead
    (tests hand in their database and a pinned clock)."""

    def __init__(self, settings: Settings, *, engine: Engine | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self._engine = engine
        self.clock = clock or (lambda: settings.now or system_now())

    def now(self) -> datetime:
        return self.clock()

    # ------------------------------------------------------------------ the database

    @cached_property
    def engine(self) -> Engine:
        return self._engine or db.make_engine(self.settings.database_url)

    def close(self) -> None:
        """Close the pooled connections of an engine this runtime made (one handed in belongs to
        whoever made it). A command run in-process (tests, the web's own jobs) would otherwise
        keep them open until the garbage collector finds the runtime."""
        if self._engine is None and "engine" in self.__dict__:
            self.engine.dispose()  # the engine stays usable: it opens new connections on demand

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """Sessions whose services' events reach this runtime's publisher."""
        return db.session_factory(self.engine, self.publisher)

    @cached_property
    def immediate_sessions(self) -> sessionmaker[Session]:
        """The deliverer's sessions. On SQLite their transactions take the write lock when they
        begin: with another process writing the same file (a clock, a web request), one that
        read first and wrote later would fail at once with "database is locked" instead of
        waiting, leaving a sent message marked as sending."""
        if self.engine.dialect.name != "sqlite":
            return self.sessions
        return db.session_factory(self.engine.execution_options(sqlite_immediate=True),
                                  self.publisher)

    @contextmanager
    def transaction(self, *, write_lock: bool = False) -> Iterator[Session]:
        """One unit of work: committed when the block ends without error."""
        with db.transaction(self.sessions, write_lock=write_lock) as session:
            yield session

    # ------------------------------------------------------------------ rules and reminders

    @cached_property
    def policies(self) -> PolicySet:
        """The policy file (``RECTIFLOW_CONFIG``) or the defaults; a bad file is refused here."""
        return load_policy_file(self.settings.config_file)

    @property
    def person_channels(self) -> frozenset[str]:
        return self.settings.person_channels

    @property
    def group_robot(self) -> bool:
        """Whether a WeCom group robot is configured: each sweep then summarises its
        escalations for the group."""
        return bool(self.settings.wecom_webhook_key)

    def reminder_context(self, session: Session) -> ReminderContext:
        """The calendar, policies and channels that reminders are planned with, read now (an
        admin may have changed the calendar since the last call)."""
        return reminder_context(session, self.policies, self.person_channels)

    def send_window(self) -> Callable[[datetime], datetime]:
        """The policy's send window, as a function from a time to the next allowed time."""
        with self.transaction() as session:
            ctx = self.reminder_context(session)
        return lambda moment: ctx.planner.next_send_time(moment, ctx.base)

    # ------------------------------------------------------------------ events and delivery

    @cached_property
    def publisher(self) -> EventPublisher:
        """Actions write the notifications they cause in their own transaction."""
        return EventPublisher([self._write_outbox])

    def _write_outbox(self, session: Session, events: Sequence[MeasureChanged]) -> None:
        self._outbox_writer(session, events)

    @cached_property
    def _outbox_writer(self) -> Handler:
        return make_outbox_writer(self.policies, self.person_channels)

    @cached_property
    def channels(self) -> dict[str, Channel]:
        """The configured channels; bad channel settings are refused here, on first use."""
        return build_channels(self.settings, self.sessions)

    def wecom_app(self) -> WeComAppChannel | None:
        """The WeCom application channel when WeCom is configured: web sign-in asks it whom a
        sign-in code names, through the same access token the messages use."""
        if not self.settings.wecom_configured:
            return None
        channel = self.channels.get(ChannelName.WECOM)
        return channel if isinstance(channel, WeComAppChannel) else None

    @property
    def link_maker(self) -> LinkMaker:
        """Mints a one-time approval link, at send time, for items that ask the recipient to
        act (a verified measure's ``to_close``); valid the policy's ``[approval_link]
        valid_workdays`` working days, or ``approval_link_hours`` when that is set."""
        with self.transaction() as session:
            ctx = self.reminder_context(session)
        return self._link_maker(ctx)

    def _link_maker(self, ctx: ReminderContext) -> LinkMaker:
        hours = self.settings.approval_link_hours
        ttl = (timedelta(hours=hours) if hours else
               expiry_after_workdays(ctx.base.link_valid_workdays, ctx.days.nth_after))
        return make_link_maker(self.settings.base_url, ttl, self.clock)

    @cached_property
    def _deliverer(self) -> Deliverer:
        return Deliverer(self.immediate_sessions, self.channels, base_url=self.settings.base_url,
                         # A claimed batch must be sent well within its lease, or another
                         # deliverer reclaims rows still waiting their turn here.
                         lease=timedelta(seconds=self.settings.delivery_lease),
                         batch=self.settings.delivery_batch,
                         retry_for=timedelta(hours=self.settings.delivery_retry_hours))

    def deliverer(self) -> Deliverer:
        """This process's deliverer, with the send window, the calendar its send-time check
        counts with and its approval links' lifetime read afresh."""
        deliverer = self._deliverer
        with self.transaction() as session:
            ctx = self.reminder_context(session)
        deliverer.send_window = lambda moment: ctx.planner.next_send_time(moment, ctx.base)
        deliverer.check = SendTimeCheck(ctx)
        deliverer.link_maker = self._link_maker(ctx)
        return deliverer

    @cached_property
    def evidence(self) -> EvidenceStore:
        return EvidenceStore(self.settings.evidence_dir, self.settings.evidence_max_bytes,
                             is_referenced=self._evidence_referenced)

    def _evidence_referenced(self, stored_path: str) -> bool:
        """Does a committed evidence record point at this stored file? (a session of its own)"""
        with self.sessions() as session:
            return session.scalar(select(Evidence.id).where(Evidence.stored_path == stored_path)
                                  .limit(1)) is not None
