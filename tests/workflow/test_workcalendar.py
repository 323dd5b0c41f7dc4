"""The working-day calendar: official holidays and 调休, the Monday–Friday fallback for years the
package does not know, admin overrides, and the counting the reminder planner relies on."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

import chinese_calendar
import pytest

from workflow import workcalendar
from workflow.errors import InputError
from workflow.reminders import WorkdayIndex
from workflow.workcalendar import (
    OFFICIAL_YEARS,
    DayOverride,
    WorkCalendar,
    YearSource,
    _official_workday,
    overrides_from_toml,
    parse_days,
)

D = date.fromisoformat


@pytest.fixture(autouse=True)
def _fresh_warnings():
    workcalendar.reset_fallback_warnings()
    yield
    workcalendar.reset_fallback_warnings()


@pytest.fixture
def calendar() -> WorkCalendar:
    return WorkCalendar()


def counted(calendar: WorkCalendar) -> WorkdayIndex:
    """The working-day arithmetic the reminder planner and the statistics use, over ``calendar``."""
    return WorkdayIndex(calendar.is_workday)


def fallback_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == "rectiflow.calendar" and r.levelno == logging.WARNING]


# The State Council's notices, as people know them (not read back from the package).
OFFICIAL_DAYS = [
    # 2024 National Day: 10-01..07 off; Sunday 09-29 and Saturday 10-12 worked.
    ("2024-09-29", True, "2024-09-29 调休上班（国庆节）"),
    ("2024-10-01", False, "2024-10-01 国庆节（法定节假日）"),
    ("2024-10-04", False, None),
    ("2024-10-07", False, None),
    ("2024-10-08", True, "2024-10-08 工作日（周二）"),
    ("2024-10-12", True, "2024-10-12 调休上班（国庆节）"),
    ("2024-10-13", False, "2024-10-13 休息日（周日）"),
    # 2025: National Day with Mid-Autumn, Sunday 09-28 worked.
    ("2025-09-28", True, "2025-09-28 调休上班（国庆节）"),
    ("2025-10-01", False, "2025-10-01 国庆节（法定节假日）"),
    ("2025-10-08", False, None),
    ("2025-10-11", True, None),
    # 2026 New Year's Day: 01-01..03 off, Sunday 01-04 worked.
    ("2026-01-01", False, "2026-01-01 元旦（法定节假日）"),
    ("2026-01-02", False, "2026-01-02 元旦（调休放假）"),  # swapped with Sunday 01-04
    ("2026-01-04", True, "2026-01-04 调休上班（元旦）"),
    # 2026 Spring Festival: 02-15..23 off; Saturdays 02-14 and 02-28 worked.
    ("2026-02-14", True, "2026-02-14 调休上班（春节）"),
    ("2026-02-16", False, "2026-02-16 春节（法定节假日）"),
    ("2026-02-23", False, "2026-02-23 春节（调休放假）"),
    ("2026-02-24", True, None),
    ("2026-02-28", True, None),
    # 2026 Qingming 04-04..06, Labour Day 05-01..05 with Saturday 05-09 worked.
    ("2026-04-06", False, "2026-04-06 清明节（法定节假日）"),
    ("2026-05-05", False, None),
    ("2026-05-09", True, "2026-05-09 调休上班（劳动节）"),
    # 2026 Dragon Boat 06-19..21, Mid-Autumn 09-25..27.
    ("2026-06-19", False, "2026-06-19 端午节（法定节假日）"),
    ("2026-09-25", False, "2026-09-25 中秋节（法定节假日）"),
    # 2026 National Day 10-01..07; Sunday 09-20 and Saturday 10-10 worked.
    ("2026-09-20", True, None),
    ("2026-10-01", False, "2026-10-01 国庆节（法定节假日）"),
    ("2026-10-07", False, None),
    ("2026-10-08", True, None),
    ("2026-10-10", True, "2026-10-10 调休上班（国庆节）"),
    # Ordinary days at the end of 2026.
    ("2026-12-26", False, "2026-12-26 休息日（周六）"),
    ("2026-12-31", True, "2026-12-31 工作日（周四）"),
]


@pytest.mark.parametrize(("day", "workday", "description"), OFFICIAL_DAYS)
def test_official_calendar(calendar, day, workday, description):
    d = D(day)
    assert calendar.is_workday(d) is workday
    assert not calendar.is_provisional(d)
    if description is not None:
        assert calendar.describe(d) == description


def test_package_years_are_probed_once_from_its_range():
    assert {2004, 2024, 2025, 2026} <= OFFICIAL_YEARS
    assert 2003 not in OFFICIAL_YEARS
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(max(OFFICIAL_YEARS) + 1, 1, 4))


# ------------------------------------------------------------------ the fallback year


FALLBACK_DAYS = [
    ("2027-01-01", True),   # Friday: really New Year's Day, but nobody has entered it yet
    ("2027-01-02", False),  # Saturday
    ("2027-01-03", False),  # Sunday
    ("2027-02-08", True),   # Monday
    ("2027-10-01", True),   # Friday
]


@pytest.mark.parametrize(("day", "workday"), FALLBACK_DAYS)
def test_unknown_year_falls_back_to_monday_to_friday(calendar, day, workday):
    assert calendar.is_workday(D(day)) is workday
    assert calendar.is_provisional(D(day))
    assert calendar.year_source(2027) is YearSource.FALLBACK
    assert "临时" in calendar.describe(D(day))


def test_fallback_warns_once_per_year_per_process(caplog):
    caplog.set_level(logging.WARNING, logger="rectiflow.calendar")
    # When two calendars look at many 2027 days
    for cal in (WorkCalendar(), WorkCalendar()):
        for offset in range(40):
            cal.add_workdays(date(2027, 1, 1), offset)
    # Then one warning names the year and how to enter holidays
    [record] = fallback_warnings(caplog)
    message = record.getMessage()
    assert "2027" in message and "rectiflow calendar add" in message
    # And another unknown year gets its own warning
    WorkCalendar().is_workday(date(2031, 3, 3))
    assert [r.getMessage()[:4] for r in fallback_warnings(caplog)] == ["2027", "2031"]


def test_unknown_years_never_reach_the_package(calendar, monkeypatch):
    calls: list[date] = []

    def recording(d: date) -> bool:
        calls.append(d)
        raise NotImplementedError(f"no available data for year {d.year}")

    monkeypatch.setattr(chinese_calendar, "is_workday", recording)
    assert calendar.is_workday(date(2027, 3, 1))
    assert calendar.add_workdays(date(2027, 12, 30), 3) == date(2028, 1, 4)
    assert calls == []


def test_answers_are_cached(calendar, monkeypatch):
    calls: list[date] = []
    real = chinese_calendar.is_workday

    def counting(d: date) -> bool:
        calls.append(d)
        return bool(real(d))

    monkeypatch.setattr(chinese_calendar, "is_workday", counting)
    _official_workday.cache_clear()
    for _ in range(1000):
        calendar.is_workday(date(2026, 10, 1))
    # and a calendar built later (one per request) asks the package no more
    assert not WorkCalendar().is_workday(date(2026, 10, 1))
    assert calls == [date(2026, 10, 1)]


def test_a_datetime_is_refused(calendar):
    with pytest.raises(TypeError, match="datetime.date"):
        calendar.is_workday(datetime(2026, 10, 1, 9, 0))


# ------------------------------------------------------------------ admin overrides


def test_admin_overrides_win_and_make_the_year_admin_entered():
    # Given an admin entered New Year's Day 2027, a working Saturday, and two 2026 changes
    calendar = WorkCalendar({
        D("2027-01-01"): DayOverride(False, "元旦"),
        D("2027-02-06"): (True, "春节调休"),
        D("2026-12-31"): (False, "校庆放假"),
        D("2026-10-07"): (True, ""),
    })
    # Then they win over Monday–Friday and over the package
    assert not calendar.is_workday(D("2027-01-01"))
    assert calendar.is_workday(D("2027-02-06"))
    assert not calendar.is_workday(D("2026-12-31"))
    assert calendar.is_workday(D("2026-10-07"))
    # And 2027 is no longer provisional, other days of it still Monday–Friday
    assert calendar.year_source(2027) is YearSource.ADMIN
    assert not calendar.is_provisional(D("2027-05-03"))
    assert calendar.is_workday(D("2027-05-03")) and not calendar.is_workday(D("2027-05-08"))
    assert calendar.describe(D("2027-01-01")) == "2027-01-01 元旦（管理员录入的放假日）"
    assert calendar.describe(D("2027-02-06")) == "2027-02-06 调休上班（管理员录入：春节调休）"
    assert calendar.explain(D("2026-12-31")).source == "admin"
    # And an admin-entered year logs no fallback warning


def test_admin_year_logs_no_warning(caplog):
    caplog.set_level(logging.WARNING, logger="rectiflow.calendar")
    calendar = WorkCalendar({D("2027-01-01"): (False, "元旦")})
    counted(calendar).count_between(D("2027-01-01"), D("2027-12-31"))
    assert fallback_warnings(caplog) == []


# ------------------------------------------------------------------ counting


@pytest.mark.parametrize(("n", "expected"), [
    (7, "2026-12-22"),  # design.md: Tuesday
    (3, "2026-12-28"),  # design.md: Monday, over the weekend
    (1, "2026-12-30"),
    (0, "2026-12-31"),
])
def test_reminders_before_a_thursday_deadline(calendar, n, expected):
    assert counted(calendar).before_deadline(D("2026-12-31"), n) == D(expected)


@pytest.mark.parametrize(("deadline", "n", "expected"), [
    # A deadline on a holiday: before:0 is the last working day before it, before:1 the one
    # before that (never the same day: issue 14)
    ("2026-10-03", 0, "2026-09-30"),
    ("2026-10-03", 1, "2026-09-29"),
    ("2026-10-03", 2, "2026-09-28"),
    # Counting back over the Mid-Autumn holiday and onto the working Sunday 09-20
    ("2026-09-29", 2, "2026-09-24"),
    ("2026-09-22", 2, "2026-09-20"),
])
def test_reminders_before_skip_holidays(calendar, deadline, n, expected):
    assert counted(calendar).before_deadline(D(deadline), n) == D(expected)


def test_overdue_one_is_the_first_working_day_after_the_deadline():
    # (``overdue:n`` falls on the n-th working day after the deadline)
    assert counted(WorkCalendar()).nth_after(D("2026-09-30"), 1) == D("2026-10-08")
    # Unknown 2027: New Year's Day counts as a working day, provisionally
    assert counted(WorkCalendar()).nth_after(D("2026-12-31"), 1) == D("2027-01-01")
    # Once an admin enters it, the escalation moves to Monday
    entered = WorkCalendar({D("2027-01-01"): (False, "元旦")})
    assert counted(entered).nth_after(D("2026-12-31"), 1) == D("2027-01-04")


def test_counting_across_the_year_boundary():
    fallback = WorkCalendar()
    entered = WorkCalendar({D("2027-01-01"): (False, "元旦")})
    # 12-29, 12-30, 12-31, (01-01), 01-04 … 01-08
    assert counted(fallback).count_between(D("2026-12-28"), D("2027-01-08")) == 9
    assert counted(entered).count_between(D("2026-12-28"), D("2027-01-08")) == 8
    assert counted(fallback).count_between(D("2027-01-08"), D("2026-12-28")) == 0
    assert counted(fallback).count_between(D("2026-12-31"), D("2026-12-31")) == 0
    # The deadline day itself is not overdue; the next working day is 1 overdue
    assert counted(fallback).count_between(D("2026-12-31"), D("2027-01-01")) == 1
    assert fallback.span_provisional(D("2026-12-28"), D("2027-01-08"))
    assert not entered.span_provisional(D("2026-12-28"), D("2027-01-08"))


def test_counting_over_national_day(calendar):
    # 09-28, 09-29, 09-30, (10-01 … 10-07 off), 10-08, 10-09, 10-10 (working Saturday)
    assert counted(calendar).count_between(D("2026-09-27"), D("2026-10-11")) == 6


@pytest.mark.parametrize(("start", "n", "expected"), [
    ("2026-10-01", 0, "2026-10-08"),   # 0 on a holiday: the next working day
    ("2026-09-30", 0, "2026-09-30"),
    ("2026-10-08", -1, "2026-09-30"),
    ("2026-02-13", 1, "2026-02-14"),   # Friday → the working Saturday before Spring Festival
    ("2026-02-14", 1, "2026-02-24"),
])
def test_add_workdays(calendar, start, n, expected):
    assert calendar.add_workdays(D(start), n) == D(expected)


@pytest.mark.parametrize(("feedback", "n", "day", "provisional"), [
    # Over Mid-Autumn and National Day: 09-28, 09-29, 09-30, 10-08, 10-09
    ("2026-09-24", 5, "2026-10-09", False),
    # Over Spring Festival: 02-14 (working Saturday), 02-24, 02-25
    ("2026-02-13", 3, "2026-02-25", False),
    # Into the unknown 2027: 12-29, 12-30, 12-31, 01-01, 01-04
    ("2026-12-28", 5, "2027-01-04", True),
    ("2026-12-28", 3, "2026-12-31", False),
])
def test_deadline_after_feedback(calendar, feedback, n, day, provisional):
    result = calendar.deadline_after(D(feedback), n)
    assert result.day == D(day)
    assert result.provisional is provisional


def test_negative_counts_are_refused(calendar):
    with pytest.raises(ValueError):
        calendar.deadline_after(D("2026-12-31"), -1)


# ------------------------------------------------------------------ config and parsing


def test_overrides_from_toml():
    overrides = overrides_from_toml({
        "holidays": ["2027-01-01", date(2027, 2, 10), "2027-02-11..2027-02-12",
                     {"date": "2027-05-03", "note": "劳动节"}],
        "workdays": ["2027-02-07"],
    })
    assert overrides == {
        D("2027-01-01"): DayOverride(False, ""),
        D("2027-02-10"): DayOverride(False, ""),
        D("2027-02-11"): DayOverride(False, ""),
        D("2027-02-12"): DayOverride(False, ""),
        D("2027-05-03"): DayOverride(False, "劳动节"),
        D("2027-02-07"): DayOverride(True, ""),
    }
    assert overrides_from_toml({}) == {}


@pytest.mark.parametrize(("table", "match"), [
    ({"holidays": ["2027-02-30"]}, r"calendar\.holidays\[0\].*「2027-02-30」"),
    ({"holidays": ["2027-01-01", "假期"]}, r"calendar\.holidays\[1\].*「假期」"),
    ({"workdays": ["2027-02-16..2027-02-10"]}, "结束日期早于开始日期"),
    ({"holidays": "2027-01-01"}, "应为日期列表"),
    ({"holidays": [20270101]}, "20270101"),
    ({"holiday": ["2027-01-01"]}, "未知项「holiday」"),
    ({"holidays": ["2027-02-07"], "workdays": ["2027-02-07"]}, "同时出现"),
    ({"holidays": [{"day": "2027-01-01"}]}, r"calendar\.holidays\[0\]"),
    ({"holidays": [datetime(2027, 1, 1, 8, 0)]}, r"calendar\.holidays\[0\]"),
])
def test_overrides_from_toml_refuses_bad_values(table, match):
    with pytest.raises(InputError, match=match):
        overrides_from_toml(table)


@pytest.mark.parametrize(("text", "count"), [
    ("2027-02-10", 1), ("2027-02-10..2027-02-16", 7), ("2027-12-31..2028-01-01", 2)])
def test_parse_days(text, count):
    days = parse_days(text)
    assert len(days) == count and days[0] == D(text[:10])


@pytest.mark.parametrize("text", ["2027-2-1", "2027-02-30", "", "..", "2027-01-01..2028-12-31",
                                  "20270210"])
def test_parse_days_refuses(text):
    with pytest.raises(InputError, match="日期"):
        parse_days(text)


# ------------------------------------------------------------------ properties

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SHARED = WorkCalendar({D("2027-01-01"): (False, "元旦"), D("2027-02-06"): (True, "")})
SHARED_DAYS = counted(SHARED)


@settings(max_examples=300, deadline=None)
@given(start=st.dates(date(2025, 11, 1), date(2027, 3, 1)), n=st.integers(-40, 40))
def test_counting_agrees_with_adding(start, n):
    # Given any day around the official/fallback boundary and any count
    result = SHARED.add_workdays(start, n)
    # Then the result is a working day, n working days away (0: the day or the next workday)
    assert SHARED.is_workday(result)
    if n == 0:
        assert result >= start and SHARED_DAYS.count_between(start, result) <= 1
    elif n > 0:  # working days in (start, result]
        assert SHARED_DAYS.count_between(start, result) == n
    else:  # working days in [result, start)
        assert SHARED_DAYS.count_between(result - timedelta(days=1), start - timedelta(days=1)) == -n
    if n > 0:
        assert SHARED_DAYS.before_deadline(result, n) <= start
