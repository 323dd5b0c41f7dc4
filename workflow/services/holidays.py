"""Entering a whole year's holiday notice at once (the calendar page): every festival's holidays
and working weekends, then the deadlines counted from feedback counted again. The caller owns
the transaction; ``dry_run`` writes nothing and says what would change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from workflow.calendar_store import DayChange, add_days, load_calendar, with_days
from workflow.holiday_notice import Festival
from workflow.models import Person
from workflow.services.deadlines import Recomputed, recompute_deadlines
from workflow.workcalendar import DayOverride, WorkCalendar


@dataclass(frozen=True)
class NoticeEntered:
    """What entering a notice did (or would do): each day's change, the calendar as it then
    stands, and the deadlines counted again."""

    changes: list[DayChange]
    calendar: WorkCalendar
    recomputed: Recomputed

    def counts(self) -> dict[str, int]:
        found = {"added": 0, "updated": 0, "unchanged": 0}
        for change in self.changes:
            found[change.action] = found.get(change.action, 0) + 1
        return found

    def years(self) -> list[int]:
        return sorted({c.day.year for c in self.changes})

    def coverage(self) -> list[dict[str, Any]]:
        return self.calendar.coverage(self.years())


def enter_notice(session: Session, festivals: Sequence[Festival], *, now: datetime,
                 configured: Mapping[date, DayOverride], actor: Person | None,
                 dry_run: bool = False) -> NoticeEntered:
    """Enter each festival's holidays (noted with its name) and working days (noted
    "<name>调休上班"), then recompute the deadlines; ``configured`` are the policy file's days."""
    changes: list[DayChange] = []
    calendar = load_calendar(session, configured)
    for festival in festivals:
        for days, is_workday, note in ((festival.holidays, False, festival.name),
                                       (festival.workdays, True,
                                        f"{festival.name}调休上班" if festival.name else "调休上班")):
            if not days:
                continue
            changes += add_days(session, days, is_workday, note, now=now, dry_run=dry_run)
            if dry_run:
                calendar = with_days(calendar, days, is_workday, note)
    if not dry_run:
        calendar = load_calendar(session, configured)
    recomputed = recompute_deadlines(session, calendar, actor=actor, now=now, dry_run=dry_run)
    return NoticeEntered(changes, calendar, recomputed)
