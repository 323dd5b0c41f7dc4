"""Time helpers: storage is aware UTC, people read Asia/Shanghai. Time is always a parameter."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def system_now() -> datetime:
    """The real clock; entry points call this once and pass ``now`` down."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: rectiflow only handles aware times")
    return moment.astimezone(UTC)


def local_date(moment: datetime) -> date:
    """The calendar date in Asia/Shanghai at ``moment`` (an aware time)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: rectiflow only handles aware times")
    return moment.astimezone(SHANGHAI).date()


def local_text(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return as_utc(moment).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
