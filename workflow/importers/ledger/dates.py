"""How people write a deadline in a ledger cell, as a table of patterns (pure, no I/O).

Each :class:`DatePattern` pairs a regular expression with the reading it gives. A reading keeps
the day, what the words imply about the measure's kind (长期 → long-term, 立即 → immediate), and a
short note of how the cell was read when that is not plain ("按月底", "按整改年度"), shown in the
import preview so a clerk sees that "2026年12月" became the 31st, not the 1st.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from workflow.lifecycle import Kind

#: Day 0 of Excel's serial dates (1900 system, past its fictitious 1900-02-29).
EXCEL_EPOCH = date(1899, 12, 30)
#: Serial numbers read as dates: 2000-01-01 to 2099-12-31; other numbers are not deadlines.
EXCEL_SERIALS = range(36526, 73051)


@dataclass(frozen=True)
class DateContext:
    """What a date without a year is read against: the campaign's feedback date, else today.

    "12月底" takes the reference's year; a month before the reference's month is in the next
    year (feedback in November, "3月底" is next March).
    """

    today: date
    feedback: date | None = None

    @property
    def reference(self) -> date:
        return self.feedback or self.today

    def year_for(self, month: int) -> int:
        reference = self.reference
        return reference.year + (1 if month < reference.month else 0)


@dataclass(frozen=True)
class DateReading:
    """A deadline cell as read: the day (None: no deadline), the kind it implies, and how."""

    day: date | None
    kind: Kind | None = None
    how: str | None = None

    def shown(self) -> str:
        """The day as the preview shows it: "2026-12-31（按月底）", "无完成时限（长期坚持）"."""
        text = self.day.isoformat() if self.day else "无完成时限"
        return f"{text}（{self.how}）" if self.how else text


Reader = Callable[[re.Match[str], DateContext], DateReading]


@dataclass(frozen=True)
class DatePattern:
    """One way of writing a deadline: its name (for the preview), the pattern, the reading."""

    name: str
    pattern: re.Pattern[str]
    read: Reader


def _day(year: int, month: int, day: int, text: str) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"日期「{text}」不存在") from None


def _month_end(year: int, month: int, text: str) -> date:
    if not 1 <= month <= 12:
        raise ValueError(f"日期「{text}」不存在")
    first_of_next = date(year + month // 12, month % 12 + 1, 1)
    return first_of_next - timedelta(days=1)


def _ymd(match: re.Match[str], _context: DateContext) -> DateReading:
    year, month, day = (int(g) for g in match.groups())
    return DateReading(_day(year, month, day, match.string))


def _year_month(match: re.Match[str], _context: DateContext) -> DateReading:
    year, month = int(match.group(1)), int(match.group(2))
    return DateReading(_month_end(year, month, match.string), how="按月底")


def _month_only(match: re.Match[str], context: DateContext) -> DateReading:
    month = int(match.group(1))
    if not 1 <= month <= 12:
        raise ValueError(f"日期「{match.string}」不存在")
    year = context.year_for(month)
    return DateReading(_month_end(year, month, match.string), how=f"按月底，{year}年")


def _month_day(match: re.Match[str], context: DateContext) -> DateReading:
    month, day = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        raise ValueError(f"日期「{match.string}」不存在")
    year = context.year_for(month)
    return DateReading(_day(year, month, day, match.string), how=f"按{year}年")


def _serial(match: re.Match[str], _context: DateContext) -> DateReading:
    return _from_serial(float(match.group(1)), match.string)


def _long_term(_match: re.Match[str], _context: DateContext) -> DateReading:
    return DateReading(None, Kind.LONG_TERM, "长期坚持")


def _immediate(_match: re.Match[str], context: DateContext) -> DateReading:
    source = "反馈日期" if context.feedback else "导入当天"
    return DateReading(context.reference, Kind.IMMEDIATE, f"立行立改，按{source}")


def _from_serial(serial: float, text: str) -> DateReading:
    whole = int(serial)
    if whole not in EXCEL_SERIALS:
        raise ValueError(f"数字「{text}」不是日期（Excel 日期序号应在 {EXCEL_SERIALS.start}–"
                         f"{EXCEL_SERIALS.stop - 1} 之间）")
    return DateReading(EXCEL_EPOCH + timedelta(days=whole), how=f"Excel 日期序号 {whole}")


#: Every written form a deadline cell may take, tried in order on the cell's text with spaces
#: removed. "反馈后N个工作日" is read apart: it needs the campaign's calendar.
DATE_PATTERNS: tuple[DatePattern, ...] = (
    DatePattern("年-月-日", re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$"), _ymd),
    DatePattern("年月日", re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})[日号]?(?:前)?$"), _ymd),
    DatePattern("八位数字", re.compile(r"^(\d{4})(\d{2})(\d{2})$"), _ymd),
    DatePattern("年月（月底）", re.compile(r"^(\d{4})年(\d{1,2})月(?:底|末|份)?(?:前)?$"), _year_month),
    DatePattern("年-月（月底）", re.compile(r"^(\d{4})[-/.](\d{1,2})$"), _year_month),
    DatePattern("月底（整改年度）", re.compile(r"^(\d{1,2})月(?:底|末)(?:前)?$"), _month_only),
    DatePattern("月日（整改年度）", re.compile(r"^(\d{1,2})月(\d{1,2})[日号](?:前)?$"), _month_day),
    DatePattern("Excel 日期序号", re.compile(r"^(\d{5}(?:\.\d+)?)$"), _serial),
    DatePattern("长期", re.compile(r"^(?:长期|长期坚持|长期整改|持续|持续推进|持续整改|常态化)$"),
                _long_term),
    DatePattern("立即", re.compile(r"^(?:立即|立行立改|立即整改|即知即改)$"), _immediate),
)

#: What the refusal of an unreadable cell suggests.
EXAMPLES = "2026-12-31、2026年12月31日、2026年12月底、12月底、长期坚持 或 立即"


def read_deadline(value: Any, context: DateContext) -> tuple[str, DateReading]:
    """The pattern's name and the reading of one deadline cell; ValueError saying why not."""
    if isinstance(value, datetime):
        return "Excel 日期", DateReading(value.date())
    if isinstance(value, date):
        return "Excel 日期", DateReading(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "Excel 日期序号", _from_serial(float(value), _number_text(value))
    text = re.sub(r"\s+", "", "" if value is None else str(value))
    if not text:
        raise ValueError("完成时限为空")
    for pattern in DATE_PATTERNS:
        match = pattern.pattern.match(text)
        if match:
            return pattern.name, pattern.read(match, context)
    raise ValueError(f"无法识别的日期「{text}」（可写作 {EXAMPLES}）")


def parse_deadline(value: Any, context: DateContext | None = None) -> date | None:
    """The day of a deadline cell (None for a long-term word); ValueError if it is not a date."""
    return read_deadline(value, context or DateContext(date.today()))[1].day


def _number_text(value: int | float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
