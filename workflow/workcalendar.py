"""Working days by the official Chinese calendar (法定节假日 and 调休 working weekends).

Pure: no database, no files. ``chinese_calendar`` supplies the years it ships (2004–2026 in
1.11.0); admin overrides (entered with ``rectiflow calendar add`` or in the policy file's
``[calendar]`` table) always win over it. Any other year falls back to Monday–Friday plus the
overrides, and deadlines computed on such a year are *provisional*.

Each year has one source (see :class:`YearSource`):

- ``official``: ``chinese_calendar`` knows the year (overrides still win day by day);
- ``admin``: the package does not know it, but an admin entered at least one day of it; entering
  any day of a year is taken as the statement that the year's holidays are entered
  (``rectiflow calendar coverage`` shows how many, so a half-entered year is visible);
- ``fallback``: neither; Monday–Friday are working days, results are provisional, and the first
  look at such a year logs one warning per process on ``rectiflow.calendar``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, NamedTuple

import chinese_calendar

from workflow.errors import InputError

log = logging.getLogger("rectiflow.calendar")

ONE_DAY = timedelta(days=1)
MAX_RANGE_DAYS = 366
WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")

# chinese_calendar's Holiday values (English) → the names people read.
HOLIDAY_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日",
}


def _probe_official_years() -> frozenset[int]:
    """The years chinese_calendar answers for, found once through its public API."""
    years = set()
    for year in range(1990, 2100):
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
        except NotImplementedError:
            continue
        years.add(year)
    return frozenset(years)


OFFICIAL_YEARS = _probe_official_years()

_warned_years: set[int] = set()
_warned_lock = threading.Lock()


def reset_fallback_warnings() -> None:
    """Forget which fallback years were already warned about (for tests)."""
    with _warned_lock:
        _warned_years.clear()


def _warn_fallback_once(year: int) -> None:
    with _warned_lock:
        if year in _warned_years:
            return
        _warned_years.add(year)
    covered = (f"{min(OFFICIAL_YEARS)}–{max(OFFICIAL_YEARS)}" if OFFICIAL_YEARS else "无")
    log.warning(
        "%d 年不在 chinese_calendar 的覆盖范围（%s）内，也没有录入该年的节假日："
        "暂按周一至周五计算工作日，据此算出的期限为临时期限。"
        "国务院公布该年放假安排后，请用 `rectiflow calendar add 日期 --holiday/--workday` "
        "录入放假日和调休上班日，或写入策略文件的 [calendar] 表。",
        year, covered)


class YearSource(StrEnum):
    """Where a year's working days come from."""

    OFFICIAL = "official"
    ADMIN = "admin"
    FALLBACK = "fallback"


YEAR_SOURCE_LABELS = {
    YearSource.OFFICIAL: "官方日历（chinese_calendar）",
    YearSource.ADMIN: "管理员录入",
    YearSource.FALLBACK: "未覆盖，暂按周一至周五（临时）",
}


class DayOverride(NamedTuple):
    """An admin's word on one day: a holiday or a working day, with a note (e.g. "春节")."""

    is_workday: bool
    note: str = ""


class Deadline(NamedTuple):
    """A computed deadline; ``provisional`` when a fallback year was counted over."""

    day: date
    provisional: bool


@dataclass(frozen=True)
class DeadlineRule:
    """A deadline given as "``workdays`` working days after ``counted_from``" (the feedback
    date): kept with the measure so the deadline can be counted again when holidays are entered."""

    counted_from: date
    workdays: int

    def apply(self, calendar: WorkCalendar) -> Deadline:
        return calendar.deadline_after(self.counted_from, self.workdays)

    def as_json(self) -> dict[str, Any]:
        return {"counted_from": self.counted_from.isoformat(), "workdays": self.workdays}


@dataclass(frozen=True)
class DayInfo:
    """Why a day is or is not a working day."""

    day: date
    is_workday: bool
    source: str  # "admin", "official" or "fallback"
    provisional: bool
    holiday: str | None
    description: str

    def as_json(self) -> dict[str, Any]:
        return {"date": self.day.isoformat(), "is_workday": self.is_workday,
                "source": self.source, "provisional": self.provisional,
                "holiday": self.holiday, "description": self.description}


def _check_day(d: object) -> date:
    # A datetime is a date too, but its .date() may be the wrong day in Beijing: refuse it.
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"expected a datetime.date (a day in Asia/Shanghai), got {d!r}")
    return d


class WorkCalendar:
    """Working days: admin overrides, then chinese_calendar, then Monday–Friday.

    Answers are cached per instance; build a new instance when overrides change.
    """

    def __init__(self, overrides: Mapping[date, DayOverride | tuple[bool, str]] | None = None
                 ) -> None:
        self._overrides: dict[date, DayOverride] = {}
        for day, value in (overrides or {}).items():
            is_workday, note = value
            self._overrides[_check_day(day)] = DayOverride(bool(is_workday), note or "")
        self._admin_years = frozenset(d.year for d in self._overrides)
        self._cache: dict[date, bool] = {}

    @property
    def overrides(self) -> Mapping[date, DayOverride]:
        return dict(self._overrides)

    # ------------------------------------------------------------------ single days

    def year_source(self, year: int) -> YearSource:
        """``official`` if chinese_calendar knows the year, else ``admin`` if any day of it was
        entered, else ``fallback``."""
        if year in OFFICIAL_YEARS:
            return YearSource.OFFICIAL
        if year in self._admin_years:
            return YearSource.ADMIN
        return YearSource.FALLBACK

    def is_workday(self, d: date) -> bool:
        """True if people work on ``d``: override, else chinese_calendar, else Monday–Friday."""
        try:
            return self._cache[d]
        except KeyError:
            pass
        result = self._compute(_check_day(d))
        self._cache[d] = result
        return result

    def _compute(self, d: date) -> bool:
        override = self._overrides.get(d)
        if override is not None:
            return override.is_workday
        if d.year in OFFICIAL_YEARS:
            return _official_workday(d)
        if d.year not in self._admin_years:
            _warn_fallback_once(d.year)
        return d.weekday() < 5

    def is_provisional(self, d: date) -> bool:
        """True when ``d``'s year is a fallback year (neither official nor admin-entered)."""
        return self.year_source(_check_day(d).year) is YearSource.FALLBACK

    # ------------------------------------------------------------------ counting

    def add_workdays(self, d: date, n: int) -> date:
        """The ``n``-th working day after ``d`` (before it when ``n`` < 0); ``d`` itself is not
        counted. ``n`` = 0 gives ``d`` if it is a working day, else the next working day."""
        step = ONE_DAY if n >= 0 else -ONE_DAY
        remaining = abs(n)
        current = _check_day(d)
        if remaining == 0:
            while not self.is_workday(current):
                current += step
            return current
        while remaining:
            current += step
            if self.is_workday(current):
                remaining -= 1
        return current

    def deadline_after(self, feedback_date: date, n: int) -> Deadline:
        """The deadline "``n`` working days after feedback" and whether it is provisional (a
        fallback year lies between the feedback and the result)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        day = self.add_workdays(feedback_date, n)
        return Deadline(day, self.span_provisional(feedback_date, day))

    def span_provisional(self, a: date, b: date) -> bool:
        """True if any year from ``a`` to ``b`` (either order, inclusive) is a fallback year."""
        low, high = sorted((_check_day(a).year, _check_day(b).year))
        return any(self.year_source(y) is YearSource.FALLBACK for y in range(low, high + 1))

    # ------------------------------------------------------------------ explaining

    def explain(self, d: date) -> DayInfo:
        """Whether ``d`` is a working day, where that comes from, and a Chinese description."""
        d = _check_day(d)
        workday = self.is_workday(d)
        provisional = self.is_provisional(d)
        override = self._overrides.get(d)
        holiday: str | None = None
        if override is not None:
            source = "admin"
            note = override.note.strip()
            if workday:
                label = f"调休上班（管理员录入{'：' + note if note else ''}）"
            else:
                holiday = note or None
                label = f"{note or '放假'}（管理员录入的放假日）"
        elif d.year in OFFICIAL_YEARS:
            source = "official"
            label, holiday = self._official_label(d, workday)
        else:
            source = "fallback" if provisional else "admin"
            label = f"{'工作日' if workday else '休息日'}（{WEEKDAYS[d.weekday()]}）"
        description = f"{d.isoformat()} {label}"
        if provisional:
            description += (f"；{d.year} 年的放假安排尚未录入，暂按周一至周五推算（临时），"
                            "请在国务院公布后用 rectiflow calendar add 录入")
        return DayInfo(d, workday, source, provisional, holiday, description)

    def describe(self, d: date) -> str:
        """One line in Chinese, e.g. "2025-10-01 国庆节（法定节假日）", "2025-09-28 调休上班（国庆节）"."""
        return self.explain(d).description

    @staticmethod
    def _official_label(d: date, workday: bool) -> tuple[str, str | None]:
        _, detail = chinese_calendar.get_holiday_detail(d)
        name = HOLIDAY_NAMES.get(str(detail), str(detail)) if detail else None
        weekday = WEEKDAYS[d.weekday()]
        if workday and name and d.weekday() >= 5:
            return f"调休上班（{name}）", None
        if workday:
            return f"工作日（{weekday}）", None
        if name and chinese_calendar.is_in_lieu(d):
            return f"{name}（调休放假）", name
        if name:
            return f"{name}（法定节假日）", name
        return f"休息日（{weekday}）", None

    # ------------------------------------------------------------------ coverage

    def coverage(self, years: Iterable[int]) -> list[dict[str, Any]]:
        """Per year: its source and how many holidays and working days admins entered."""
        rows = []
        for year in sorted(set(years)):
            entered = [o for d, o in self._overrides.items() if d.year == year]
            source = self.year_source(year)
            rows.append({"year": year, "source": source.value,
                         "label": YEAR_SOURCE_LABELS[source],
                         "holidays": sum(not o.is_workday for o in entered),
                         "workdays": sum(o.is_workday for o in entered)})
        return rows


# ------------------------------------------------------------------ parsing days (shared)


def parse_day(text: str, field: str = "date") -> date:
    """A real calendar date written YYYY-MM-DD; InputError naming the value otherwise."""
    value = text.strip()
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"日期「{text}」无效，应为 YYYY-MM-DD 且真实存在", field=field) from None


def parse_days(text: str, field: str = "date") -> list[date]:
    """One date, or an inclusive range "2027-02-10..2027-02-16" (at most a year long)."""
    if ".." not in text:
        return [parse_day(text, field)]
    start_text, _, end_text = text.partition("..")
    start, end = parse_day(start_text, field), parse_day(end_text, field)
    if end < start:
        raise InputError(f"日期范围「{text}」无效：结束日期早于开始日期", field=field)
    if (end - start).days >= MAX_RANGE_DAYS:
        raise InputError(f"日期范围「{text}」超过 {MAX_RANGE_DAYS} 天，请分段录入", field=field)
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


CALENDAR_KEYS = ("holidays", "workdays")


def _toml_days(value: Any, where: str) -> list[tuple[date, str]]:
    if not isinstance(value, list):
        raise InputError(f"配置 {where} 应为日期列表，如 [\"2027-01-01\", \"2027-02-10..2027-02-16\"]，"
                         f"而不是 {value!r}", field=where)
    result: list[tuple[date, str]] = []
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        note = ""
        if isinstance(item, Mapping):
            unknown = sorted(set(item) - {"date", "note"})
            if unknown or "date" not in item:
                raise InputError(f"配置 {at} 应为 {{ date = \"YYYY-MM-DD\", note = \"说明\" }}，"
                                 f"而不是 {item!r}", field=at)
            note = item.get("note", "")
            if not isinstance(note, str):
                raise InputError(f"配置 {at}.note 应为文字，而不是 {note!r}", field=at)
            item = item["date"]
        if isinstance(item, date) and not isinstance(item, datetime):
            days = [item]
        elif isinstance(item, str):
            try:
                days = parse_days(item, at)
            except InputError as exc:
                raise InputError(f"配置 {at}：{exc}", field=at) from None
        else:
            raise InputError(f"配置 {at} 应为 YYYY-MM-DD 日期，而不是 {item!r}", field=at)
        result.extend((d, note) for d in days)
    return result


def overrides_from_toml(table: Mapping[str, Any]) -> dict[date, DayOverride]:
    """Validate the policy file's ``[calendar]`` table (``holidays``/``workdays`` lists of dates,
    ranges or ``{date, note}`` tables) into overrides; InputError naming the bad value."""
    if not isinstance(table, Mapping):
        raise InputError(f"配置 [calendar] 应为一个表，而不是 {table!r}", field="calendar")
    unknown = sorted(set(table) - set(CALENDAR_KEYS))
    if unknown:
        raise InputError(f"配置 [calendar] 中有未知项「{unknown[0]}」；可用：holidays、workdays",
                         field=f"calendar.{unknown[0]}")
    result: dict[date, DayOverride] = {}
    for key in CALENDAR_KEYS:
        is_workday = key == "workdays"
        for day, note in _toml_days(table.get(key, []), f"calendar.{key}"):
            previous = result.get(day)
            if previous is not None and previous.is_workday != is_workday:
                raise InputError(f"配置 [calendar] 中 {day} 同时出现在 holidays 和 workdays 里",
                                 field=f"calendar.{key}")
            result[day] = DayOverride(is_workday, note)
    return result


@lru_cache(maxsize=4096)
def _official_workday(d: date) -> bool:
    """chinese_calendar's answer for a day of an official year: fixed for the installed
    release, and about 70 µs a call, so kept for every calendar built (one per request)."""
    return bool(chinese_calendar.is_workday(d))
