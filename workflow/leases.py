"""Leases and heartbeats in ``runtime_state``: small facts shared by processes on any machine.

A lease names one holder until a time. Taking it is one atomic upsert
(``INSERT ... ON CONFLICT (name) DO UPDATE ... WHERE free, expired or already ours RETURNING``),
so of two processes asking at the same moment exactly one gets it, on PostgreSQL and on SQLite.
The clock uses a lease so that a second clock is a warm standby instead of a second schedule.

Like every service these functions take the caller's session and do not commit. Times are
parameters; hosts that share a lease should keep their clocks in sync (NTP).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from workflow.models import RuntimeState
from workflow.timeutil import as_utc


class HeartbeatName(StrEnum):
    """The heartbeats processes write and ``doctor`` reads."""

    CLOCK = "clock:heartbeat"
    SWEEP = "task:sweep"
    DIGEST = "task:digest"
    DELIVER = "task:deliver"


def _upsert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(RuntimeState)
    if dialect == "sqlite":
        return sqlite.insert(RuntimeState)
    raise NotImplementedError(f"runtime_state upsert is not implemented for {dialect}")


def acquire_lease(session: Session, name: str, holder: str, now: datetime,
                  ttl: timedelta) -> bool:
    """Take or renew the lease ``name`` for ``holder`` until ``now + ttl``.

    Succeeds when nobody holds it, when the last holder's time has run out, or when ``holder``
    already holds it (a renewal); otherwise changes nothing and returns False.
    """
    now = as_utc(now)
    table = RuntimeState.__table__
    statement = _upsert(session).values(name=name, holder=holder, expires_at=now + ttl,
                                        updated_at=now)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.name],
        set_={"holder": statement.excluded.holder, "expires_at": statement.excluded.expires_at,
              "updated_at": statement.excluded.updated_at},
        where=or_(table.c.holder.is_(None), table.c.holder == holder,
                  table.c.expires_at.is_(None), table.c.expires_at <= now),
    ).returning(table.c.holder)
    won = session.execute(statement).scalar_one_or_none()
    return won == holder


def release_lease(session: Session, name: str, holder: str, now: datetime) -> bool:
    """Give the lease up at once (a clean shutdown), so a standby need not wait for it to expire."""
    result = session.execute(
        update(RuntimeState)
        .where(RuntimeState.name == name, RuntimeState.holder == holder)
        .values(holder=None, expires_at=None, updated_at=as_utc(now))
        .execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class LeaseInfo:
    """Who holds a lease and until when (None when it is free or has run out)."""

    name: str
    holder: str | None
    expires_at: datetime | None
    updated_at: datetime


def lease_holder(session: Session, name: str, now: datetime) -> LeaseInfo | None:
    """The current holder of ``name``, or None when nobody holds it now."""
    row = session.get(RuntimeState, name, populate_existing=True)
    if row is None or row.holder is None or row.expires_at is None:
        return None
    if row.expires_at <= as_utc(now):
        return None
    return LeaseInfo(row.name, row.holder, row.expires_at, row.updated_at)


def heartbeat(session: Session, name: str, now: datetime, value: str | None = None) -> None:
    """Record that ``name`` (a clock, a task, a worker) was alive at ``now``."""
    now = as_utc(now)
    table = RuntimeState.__table__
    statement = _upsert(session).values(name=name, value=value, updated_at=now)
    session.execute(statement.on_conflict_do_update(
        index_elements=[table.c.name],
        set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at}))


@dataclass(frozen=True)
class Heartbeat:
    name: str
    at: datetime
    value: str | None

    def age(self, now: datetime) -> timedelta:
        return as_utc(now) - self.at


def read_heartbeat(session: Session, name: str) -> Heartbeat | None:
    """The last heartbeat recorded under ``name``, or None if there never was one."""
    row = session.execute(select(RuntimeState.name, RuntimeState.updated_at, RuntimeState.value)
                          .where(RuntimeState.name == name)).one_or_none()
    if row is None:
        return None
    return Heartbeat(row.name, row.updated_at, row.value)
