"""Admin calendar overrides in the database (table ``calendar_day``), and the WorkCalendar built
from them plus the policy file's ``[calendar]`` table. Services take a Session and never commit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.errors import InputError, NotFound
from workflow.models import CalendarDay
from workflow.timeutil import as_utc
from workflow.workcalendar import DayOverride, WorkCalendar

MAX_NOTE_LENGTH = 200


@dataclass(frozen=True)
class DayChange:
    """What ``add_days`` did to one day: ``added``, ``updated`` or ``unchanged``."""

    day: date
    action: str


def load_calendar(session: Session,
                  extra_overrides: Mapping[date, DayOverride | tuple[bool, str]] | None = None
                  ) -> WorkCalendar:
    """The calendar with config overrides (``extra_overrides``, e.g. from
    ``overrides_from_toml``) and database entries; a database entry wins over config for the
    same day, since it is the later, deliberate word of an admin."""
    merged: dict[date, DayOverride | tuple[bool, str]] = dict(extra_overrides or {})
    for row in session.scalars(select(CalendarDay)):
        merged[row.day] = DayOverride(row.is_workday, row.note)
    return WorkCalendar(merged)


def _validate(days: Iterable[date], note: str) -> tuple[list[date], str]:
    unique: list[date] = []
    for day in days:
        if isinstance(day, datetime) or not isinstance(day, date):
            raise InputError(f"「{day!r}」不是日期（应为 YYYY-MM-DD）", field="date")
        if day not in unique:
            unique.append(day)
    if not unique:
        raise InputError("请至少给出一个日期", field="date")
    note = (note or "").strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise InputError(f"说明过长（{len(note)} 字），最多 {MAX_NOTE_LENGTH} 字", field="note")
    return sorted(unique), note


def add_days(session: Session, days: Iterable[date], is_workday: bool, note: str = "", *,
             now: datetime, dry_run: bool = False) -> list[DayChange]:
    """Enter ``days`` as holidays (``is_workday`` False) or working days; an existing entry for
    a day is replaced. Validates everything before writing anything; ``dry_run`` writes nothing
    and only says what would change."""
    unique, note = _validate(days, note)
    created_at = as_utc(now)
    existing = {row.day: row for row in session.scalars(
        select(CalendarDay).where(CalendarDay.day.in_(unique)))}
    changes = []
    for day in unique:
        row = existing.get(day)
        if dry_run:
            unchanged = row is not None and (row.is_workday, row.note) == (is_workday, note)
            changes.append(DayChange(day, "added" if row is None else
                                     "unchanged" if unchanged else "updated"))
        elif row is None:
            session.add(CalendarDay(day=day, is_workday=is_workday, note=note,
                                    created_at=created_at))
            changes.append(DayChange(day, "added"))
        elif row.is_workday == is_workday and row.note == note:
            changes.append(DayChange(day, "unchanged"))
        else:
            row.is_workday, row.note, row.created_at = is_workday, note, created_at
            changes.append(DayChange(day, "updated"))
    if not dry_run:
        session.flush()
    return changes


def with_days(calendar: WorkCalendar, days: Iterable[date], is_workday: bool,
              note: str = "") -> WorkCalendar:
    """``calendar`` as it would be with ``days`` entered (for a dry run)."""
    overrides = dict(calendar.overrides)
    overrides.update({day: DayOverride(is_workday, note.strip()) for day in days})
    return WorkCalendar(overrides)


def remove_day(session: Session, day: date) -> CalendarDay:
    """Delete the admin entry for ``day``; NotFound if there is none."""
    row = session.get(CalendarDay, day)
    if row is None:
        raise NotFound("管理员录入的日期", day.isoformat())
    session.delete(row)
    session.flush()
    return row


def list_days(session: Session, year: int | None = None) -> list[CalendarDay]:
    """Admin entries in date order, optionally of one year."""
    query = select(CalendarDay).order_by(CalendarDay.day)
    if year is not None:
        if not 1 <= year <= 9998:
            raise InputError(f"年份「{year}」无效", field="year")
        query = query.where(CalendarDay.day >= date(year, 1, 1),
                            CalendarDay.day < date(year + 1, 1, 1))
    return list(session.scalars(query))
