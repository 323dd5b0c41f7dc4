"""The ledger (台账) as SQLAlchemy 2 typed models.

Campaign → Area → Problem (→ sub-problems) → Measure, with people, units, progress reports,
evidence files and the append-only, hash-chained history. Times are stored as aware UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from workflow.lifecycle import Kind, MessageKind, OutboxStatus, Preference, State

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores naive text otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class Unit(Base):
    """A department (部门/处室/科室); units form a tree."""

    __tablename__ = "unit"
    __table_args__ = (Index("ix_unit_parent", "parent_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))

    parent: Mapped[Unit | None] = relationship(remote_side=[id])


class Person(Base):
    """Someone who works on, reviews, leads or administers rectification."""

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    wecom_id: Mapped[str | None] = mapped_column(String(64))
    mobile: Mapped[str | None] = mapped_column(String(32))
    roles: Mapped[list[str]] = mapped_column(default=list)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    delegate_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    delegate_until: Mapped[date | None] = mapped_column(Date)
    channel_preference: Mapped[str] = mapped_column(String(16), default=Preference.AUTO)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    #: Bumped by logout, a password change and deactivation: sessions carry the number they
    #: were made with, and one made before the bump no longer opens anything.
    session_version: Mapped[int] = mapped_column(default=0, server_default=text("0"))

    unit: Mapped[Unit | None] = relationship()
    delegate: Mapped[Person | None] = relationship(remote_side=[id])

    def has_role(self, role: str) -> bool:
        return role in (self.roles or [])


class Campaign(Base):
    """One round of inspection (巡察), audit or special governance feedback to rectify."""

    __tablename__ = "campaign"
    __table_args__ = (Index("ix_campaign_inspected_unit", "inspected_unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300), unique=True)
    feedback_date: Mapped[date | None] = mapped_column(Date)
    first_responsible_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime]
    #: Overrides of the reminder policy for this campaign (same shape as the policy file).
    policy: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: How the imported report counts its results (``Counting.as_json()``), so the report
    #: written back counts the same way; None for campaigns not imported from a report.
    counting: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: The acceptors (三方验收): person ids, and relation names (``reviewer``: any 整改办
    #: member, ``leader``: the measure's 责任领导, ``first_responsible``). With any, a submitted
    #: measure is verified only when each of them has verified it (``workflow.acceptance``).
    acceptors: Mapped[list[int | str] | None] = mapped_column(JSON)
    #: The official report's 主送机关 and 落款 (``report --to/--from`` override them).
    report_to: Mapped[str | None] = mapped_column(String(200))
    report_from: Mapped[str | None] = mapped_column(String(200))
    #: The report's editable parts: 一、组织整改落实情况 and 三、下一步工作打算 (paragraphs
    #: separated by line breaks); None: the report states the ledger's facts instead.
    organisation_text: Mapped[str | None] = mapped_column(Text)
    next_steps_text: Mapped[str | None] = mapped_column(Text)
    #: Who issues the campaign's 督办 documents (the supervising office, 整改办).
    supervising_office: Mapped[str | None] = mapped_column(String(200))
    #: The unit this round inspected (被巡察单位); its people's reviewer, leader and viewer
    #: rights reach this campaign. None: the campaign belongs to the whole installation.
    inspected_unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))

    first_responsible: Mapped[Person | None] = relationship()
    inspected_unit: Mapped[Unit | None] = relationship()
    areas: Mapped[list[Area]] = relationship(back_populates="campaign", order_by="Area.position")


class Area(Base):
    """A group of problems (方面) in the feedback."""

    __tablename__ = "area"
    __table_args__ = (UniqueConstraint("campaign_id", "title"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    title: Mapped[str] = mapped_column(Text)

    campaign: Mapped[Campaign] = relationship(back_populates="areas")
    problems: Mapped[list[Problem]] = relationship(back_populates="area",
                                                   order_by="Problem.position")


class Problem(Base):
    """One finding (问题); may have sub-findings (问题①②) through ``parent``."""

    __tablename__ = "problem"

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("problem.id"))
    position: Mapped[int] = mapped_column(default=0)
    text: Mapped[str] = mapped_column(Text)

    area: Mapped[Area] = relationship(back_populates="problems")
    parent: Mapped[Problem | None] = relationship(remote_side=[id])
    measures: Mapped[list[Measure]] = relationship(back_populates="problem",
                                                   order_by="Measure.position")


class Measure(Base):
    """A rectification measure (整改措施): the unit of work in the state machine.

    ``state`` and ``version`` are written only by ``workflow.services.measures``. ``version``
    counts the actions: it equals the ``seq`` of the measure's last history row, and an action's
    UPDATE carries ``WHERE version = :seen`` (optimistic locking). Other writes (the sweep's
    ``next_reminder_at``, a progress report's ``last_progress_at``, any ORM change) leave it
    alone, so there is deliberately no ``version_id_col``: it would bump the version on every
    ORM flush and break the history chain.

    ``next_reminder_at`` lives in ``ReminderSchedule``, off this row (see there); the attribute
    reads and writes it.
    """

    __tablename__ = "measure"
    __table_args__ = (
        UniqueConstraint("campaign_id", "seq"),
        Index("ix_measure_campaign_state", "campaign_id", "state"),
        Index("ix_measure_owner", "owner_id"),
        Index("ix_measure_leader", "leader_id"),
        Index("ix_measure_unit", "unit_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    problem_id: Mapped[int] = mapped_column(ForeignKey("problem.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    seq: Mapped[str | None] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text)
    kind: Mapped[Kind] = mapped_column(String(16), default=Kind.DEADLINE)
    state: Mapped[State] = mapped_column(String(16), default=State.ASSIGNED)
    deadline: Mapped[date | None] = mapped_column(Date)
    original_deadline: Mapped[date | None] = mapped_column(Date)
    #: The deadline was counted ("N working days after feedback") over a year whose holidays
    #: were not yet known (Monday–Friday fallback): it may move once they are entered.
    deadline_provisional: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    #: How the deadline was given when it was "N working days after feedback": N and the day
    #: counted from. While set, the deadline follows the calendar (``rectiflow calendar add``
    #: counts it again); an extension, a date a leader chose, clears both.
    deadline_workdays: Mapped[int | None]
    deadline_counted_from: Mapped[date | None] = mapped_column(Date)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    leader_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime]
    state_changed_at: Mapped[datetime]
    last_progress_at: Mapped[datetime | None]
    #: An extension request (延期申请) waiting for the leader: the date asked for, the reason,
    #: who asked and when; all None when none waits (written only by the measure service).
    extension_deadline: Mapped[date | None] = mapped_column(Date)
    extension_reason: Mapped[str | None] = mapped_column(Text)
    extension_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", name="fk_measure_extension_by"))
    extension_at: Mapped[datetime | None]
    #: When the last 回头看 (recheck) was recorded; a closed measure rechecked since it was
    #: closed does not come up for a re-check again.
    rechecked_at: Mapped[datetime | None]

    campaign: Mapped[Campaign] = relationship()
    problem: Mapped[Problem] = relationship(back_populates="measures")
    owner: Mapped[Person | None] = relationship(foreign_keys=[owner_id])
    leader: Mapped[Person | None] = relationship(foreign_keys=[leader_id])
    extension_by: Mapped[Person | None] = relationship(foreign_keys=[extension_by_id])
    unit: Mapped[Unit | None] = relationship()
    progress: Mapped[list[ProgressReport]] = relationship(
        back_populates="measure", order_by="ProgressReport.id")
    history: Mapped[list[HistoryEntry]] = relationship(
        back_populates="measure", order_by="HistoryEntry.seq", viewonly=True)
    #: 协办单位: units that assist the 责任部门, in the ledger's order
    assisting: Mapped[list[MeasureAssistingUnit]] = relationship(
        order_by="MeasureAssistingUnit.position", cascade="all, delete-orphan")
    schedule: Mapped[ReminderSchedule | None] = relationship(cascade="all, delete-orphan")

    @property
    def assisting_units(self) -> list[Unit]:
        return [link.unit for link in self.assisting]

    @hybrid_property
    def next_reminder_at(self) -> datetime | None:
        """When the sweep next looks at this measure (``ReminderSchedule``); None: never."""
        return self.schedule.next_reminder_at if self.schedule is not None else None

    @next_reminder_at.inplace.setter
    def _next_reminder_at_setter(self, value: datetime | None) -> None:
        if self.schedule is None:
            self.schedule = ReminderSchedule(next_reminder_at=value)
        else:
            self.schedule.next_reminder_at = value

    @next_reminder_at.inplace.expression
    @classmethod
    def _next_reminder_at_expression(cls) -> Any:
        return (select(ReminderSchedule.next_reminder_at)
                .where(ReminderSchedule.measure_id == cls.id)
                .scalar_subquery().label("next_reminder_at"))


class ReminderSchedule(Base):
    """When the sweep next looks at a measure (``next_reminder_at``; NULL or no row: never).

    A narrow table of its own, not a column of ``measure``: a burst sweep moves the time of
    100,000 measures on, and on the measure row every such UPDATE rewrote the row and an entry
    in each of its indexes. Here it rewrites a row of three fields and two index entries.
    Only measures with something still to plan are indexed (closed ones are NULL, except
    long-term measures that keep periodic check-ins), so a sweep's cost follows the due rows;
    (time, id): a burst is read in batches by the last row's position.
    """

    __tablename__ = "reminder_schedule"
    __table_args__ = (
        Index("ix_reminder_schedule_due", "next_reminder_at", "measure_id",
              postgresql_where=text("next_reminder_at IS NOT NULL"),
              sqlite_where=text("next_reminder_at IS NOT NULL")),
    )

    measure_id: Mapped[int] = mapped_column(ForeignKey("measure.id", ondelete="CASCADE"),
                                            primary_key=True)
    next_reminder_at: Mapped[datetime | None]


class MeasureAssistingUnit(Base):
    """A unit assisting with a measure (协办单位) besides its 责任部门: its members see the
    measure, may report progress on it and get its reminders as copies."""

    __tablename__ = "measure_assisting_unit"

    measure_id: Mapped[int] = mapped_column(ForeignKey("measure.id"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(default=0)

    unit: Mapped[Unit] = relationship()


class ProgressReport(Base):
    """Dated progress text (整改情况/进展) with evidence files (佐证材料)."""

    __tablename__ = "progress_report"
    # the measures reported on after a moment, which a digest rewinds
    __table_args__ = (Index("ix_progress_report_at", "at", "measure_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    measure_id: Mapped[int] = mapped_column(ForeignKey("measure.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]

    measure: Mapped[Measure] = relationship(back_populates="progress")
    author: Mapped[Person | None] = relationship()
    evidence: Mapped[list[Evidence]] = relationship(back_populates="report",
                                                    order_by="Evidence.id")


class Evidence(Base):
    """One evidence file, stored content-addressed under the evidence folder."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("progress_report.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    stored_path: Mapped[str] = mapped_column(String(500))

    report: Mapped[ProgressReport] = relationship(back_populates="evidence")


#: History rows of a 回头看 that found a relapse (反弹): it left the closed measure in progress.
#: Written out as the partial index's condition, which a query with bound parameters would not
#: match.
RELAPSE_ROWS = "action = 'recheck' AND to_state = 'in_progress'"


class HistoryEntry(Base):
    """An append-only record of one action on a measure, chained to the previous by hash.

    Updates and deletes are refused by database triggers (see the first migration), and on
    PostgreSQL TRUNCATE as well (migration 0013).
    """

    __tablename__ = "measure_history"
    __table_args__ = (UniqueConstraint("measure_id", "seq"),
                      # the few 回头看 that found a relapse (反弹), counted by every digest
                      Index("ix_measure_history_relapse", "measure_id",
                            postgresql_where=text(RELAPSE_ROWS), sqlite_where=text(RELAPSE_ROWS)),
                      # the measures changed after a moment, which a digest rewinds
                      Index("ix_measure_history_at", "at", "measure_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    measure_id: Mapped[int] = mapped_column(ForeignKey("measure.id"))
    seq: Mapped[int]
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    on_behalf_of_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    comment: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    measure: Mapped[Measure] = relationship(back_populates="history", viewonly=True)
    actor: Mapped[Person | None] = relationship(foreign_keys=[actor_id])
    on_behalf_of: Mapped[Person | None] = relationship(foreign_keys=[on_behalf_of_id])


class CalendarDay(Base):
    """An admin override of the official calendar: a holiday or a working weekend (调休上班).

    Overrides always win over the ``chinese_calendar`` package; for years the package does not
    know yet, they are the only source besides Monday–Friday.
    """

    __tablename__ = "calendar_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool]
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class OutboxMessage(Base):
    """A notification to deliver, written in the transaction that caused it.

    ``payload`` holds what the channel renders at send time (approval links are made then, so
    no clear token is ever stored). ``status`` moves pending → sending → sent, or → dead.
    """

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_due", "status", "not_before"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16), default=MessageKind.REMINDER)
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    not_before: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    #: When the current run of temporary failures began (None while none): a message is
    #: ``dead`` only when it failed often enough *and* for long enough.
    failing_since: Mapped[datetime | None]
    info: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]

    items: Mapped[list[OutboxItem]] = relationship(
        back_populates="message", order_by="OutboxItem.id",
        primaryjoin="OutboxMessage.id == foreign(OutboxItem.message_id)")


class OutboxItem(Base):
    """One measure in one message, with the rule that fired; ``key`` makes it happen once:
    (measure, deadline, stage, recipient, channel).

    ``message_id`` and ``measure_id`` are indexed but carry no foreign key (migration 0009): a
    burst writes a quarter of a million items, and checking both keys cost half of that. Their
    only writer, ``outbox.OutboxWriter``, points items at messages it has just inserted and
    measures it has just read, in the same transaction; neither table is ever deleted from.
    """

    __tablename__ = "outbox_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int | None] = mapped_column(index=True)
    measure_id: Mapped[int] = mapped_column(index=True)
    rule: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(300), unique=True)

    message: Mapped[OutboxMessage | None] = relationship(
        back_populates="items", primaryjoin="foreign(OutboxItem.message_id) == OutboxMessage.id")


class RuntimeState(Base):
    """Small shared facts between processes: leases (the clock's), heartbeats, cached tokens.

    Kept in the database so that every worker on every machine sees the same value.
    """

    __tablename__ = "runtime_state"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)
    holder: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class ApprovalLink(Base):
    """A one-time link that lets one person do one action on one version of a measure.

    Only the SHA-256 of the token is stored: the clear token exists in the sent message alone.
    """

    __tablename__ = "approval_link"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    measure_id: Mapped[int] = mapped_column(ForeignKey("measure.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    version: Mapped[int]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    message_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_message.id"))

    measure: Mapped[Measure] = relationship()
    person: Mapped[Person] = relationship()


class HistoryOrigin(Base):
    """The ids an imported history row was hashed over where it was written.

    An archive import gives measures and people fresh ids but keeps each history row's hash, so
    the audit recomputes the digest of such a row from these ids. ``source`` names the archive.
    """

    __tablename__ = "history_origin"

    history_id: Mapped[int] = mapped_column(ForeignKey("measure_history.id"), primary_key=True)
    measure_id: Mapped[int]
    actor_id: Mapped[int | None]
    on_behalf_of_id: Mapped[int | None]
    source: Mapped[str] = mapped_column(String(200))


class OfficialNotice(Base):
    """A numbered 督办 document (督办通知书, 督办提醒书, ...) issued to a measure's unit when the
    sweep reaches an escalation stage that names one.

    ``facts`` keeps what the document says as it was issued (unit, measure, deadlines, days
    overdue, reply due, issuer), so the Word file made from it later is the same document.
    ``number`` (``〔2026〕7号``) counts per kind and year (``NoticeCounter``), never reused;
    ``stage_key`` (measure, deadline, stage) makes a sweep run twice issue it once.
    """

    __tablename__ = "official_notice"
    __table_args__ = (UniqueConstraint("kind", "year", "seq"),
                      Index("ix_official_notice_campaign", "campaign_id", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    measure_id: Mapped[int] = mapped_column(ForeignKey("measure.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    kind: Mapped[str] = mapped_column(String(32))
    year: Mapped[int]
    seq: Mapped[int]
    number: Mapped[str] = mapped_column(String(40))
    stage: Mapped[str] = mapped_column(String(32))
    stage_key: Mapped[str] = mapped_column(String(200), unique=True)
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    reply_due: Mapped[date | None] = mapped_column(Date)
    reply_text: Mapped[str | None] = mapped_column(Text)
    replied_at: Mapped[datetime | None]
    replied_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))

    measure: Mapped[Measure] = relationship()
    replied_by: Mapped[Person | None] = relationship()


class NoticeCounter(Base):
    """The last number given to a 督办 document of one kind in one year: incremented in the
    issuing transaction (a row lock on PostgreSQL), so numbers are never given twice."""

    __tablename__ = "notice_counter"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    last: Mapped[int] = mapped_column(default=0)
