"""Reading the State Council's yearly holiday notice (国务院办公厅关于部分节假日安排的通知) as it is
published, pasted whole, into holidays (放假) and working weekends (调休上班). Pure: no I/O.

A notice reads, one festival a line:

    一、元旦：1月1日（周四）至3日（周六）放假调休，共3天。1月4日（周日）上班。
    二、春节：2月15日（农历腊月二十八、周日）至23日（农历正月初七、周一）放假调休，共9天。
    2月14日（周六）、2月28日（周六）上班。

Within a festival a date without a month takes the month before it ("2月15日至23日"), a date
without a year takes the notice's year or the last year written ("2022年12月31日至2023年1月2日").
A sentence with 上班 lists working days; one with 放假 or 休 lists holidays and ranges (至).
Lines naming no day and no 放假/上班 (the title, the preamble, the closing words) are skipped;
a line that says 放假 or 上班 but whose days cannot be read is reported with its number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from workflow.errors import ImportRejected, InputError, RowError

#: "一、元旦：" or "元旦：" at the head of a line.
_HEADING = re.compile(r"^\s*(?:[一二三四五六七八九十]+\s*[、.．]\s*)?([^：:，,。]{1,20}?)\s*[：:]")
_DAY = re.compile(r"(?:(\d{4})\s*年)?\s*(?:(\d{1,2})\s*月)?\s*(\d{1,2})\s*日")
_RANGE_JOIN = re.compile(r"^\s*(?:至|到|—|－|-|~|～)\s*$")
_PARENS = re.compile(r"[（(][^）)]*[）)]")
_TITLE_YEAR = re.compile(r"(\d{4})\s*年")
#: A holiday range longer than this is a typo, not a festival.
LONGEST_HOLIDAY = 31


@dataclass
class Festival:
    """One festival of the notice: its name, its holidays and its working weekends."""

    name: str
    line: int
    holidays: list[date] = field(default_factory=list)
    workdays: list[date] = field(default_factory=list)


def notice_year(text: str) -> int | None:
    """The year the notice is about: the first "YYYY年" of its text (its title names it)."""
    match = _TITLE_YEAR.search(text)
    return int(match.group(1)) if match else None


class _Reader:
    """Reads the days of one line, carrying the year and month from one date to the next."""

    def __init__(self, year: int, number: int) -> None:
        self.year = year
        self.month: int | None = None
        self.number = number

    def day(self, match: re.Match[str]) -> date:
        year_text, month_text, day_text = match.groups()
        if year_text:
            self.year = int(year_text)
        if month_text:
            self.month = int(month_text)
        if self.month is None:
            raise ValueError(f"「{match.group(0).strip()}」没有月份")
        try:
            return date(self.year, self.month, int(day_text))
        except ValueError:
            raise ValueError(f"「{match.group(0).strip()}」不是有效日期") from None

    def days(self, sentence: str) -> list[date]:
        """Every day a sentence names, ranges ("A至B") filled in."""
        found: list[date] = []
        matches = list(_DAY.finditer(sentence))
        index = 0
        while index < len(matches):
            first = self.day(matches[index])
            following = matches[index + 1] if index + 1 < len(matches) else None
            between = (sentence[matches[index].end():following.start()]
                       if following is not None else "")
            if following is not None and _RANGE_JOIN.match(between):
                last = self.day(following)
                if last < first:
                    raise ValueError(f"{first.isoformat()} 至 {last.isoformat()} 起止颠倒")
                if (last - first).days >= LONGEST_HOLIDAY:
                    raise ValueError(f"{first.isoformat()} 至 {last.isoformat()} 超过 "
                                     f"{LONGEST_HOLIDAY} 天，请检查")
                found.extend(first + timedelta(days=n) for n in range((last - first).days + 1))
                index += 2
            else:
                found.append(first)
                index += 1
        return found


def _read_sentences(festival: Festival, body: str, reader: _Reader) -> None:
    for sentence in re.split(r"[。；;]", _PARENS.sub("", body)):
        if not _DAY.search(sentence):
            continue
        if "上班" in sentence:
            festival.workdays.extend(reader.days(sentence))
        elif "放假" in sentence or "休" in sentence:
            festival.holidays.extend(reader.days(sentence))
        else:
            raise ValueError(f"「{sentence.strip()}」没有说明是放假还是上班")


def _conflicts(festivals: list[Festival]) -> list[RowError]:
    """A day given as a holiday in one place and a working day in another."""
    errors: list[RowError] = []
    seen: dict[date, bool] = {}
    for festival in festivals:
        for is_workday, days in ((False, festival.holidays), (True, festival.workdays)):
            for day in days:
                if seen.get(day, is_workday) != is_workday:
                    errors.append(RowError(festival.line, festival.name or None,
                                           f"{day.isoformat()} 既是放假日又是上班日"))
                seen[day] = is_workday
    return errors


def parse_notice(text: str, year: int) -> list[Festival]:
    """The festivals of a pasted notice, for dates written without a year in ``year``;
    ImportRejected naming each line that cannot be read, InputError when nothing is found."""
    festivals: list[Festival] = []
    errors: list[RowError] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        heading = _HEADING.match(line)
        body = line[heading.end():] if heading else line
        says_something = "放假" in body or "上班" in body or "休" in body
        if not _DAY.search(body):
            if says_something and heading:
                errors.append(RowError(number, heading.group(1), "写了放假或上班，但读不出日期", line))
            continue
        if heading is None and not says_something:
            continue
        if heading is None and festivals and festivals[-1].line == number - 1:
            festival = festivals[-1]  # a festival's working days on the line below it
        else:
            festival = Festival(heading.group(1).strip() if heading else "", number)
            festivals.append(festival)
        try:
            _read_sentences(festival, body, _Reader(year, number))
        except ValueError as exc:
            errors.append(RowError(number, festival.name or None, str(exc), line))
            continue
        festival.line = number
    errors += _conflicts(festivals)
    if errors:
        raise ImportRejected("放假安排", errors)
    festivals = [f for f in festivals if f.holidays or f.workdays]
    if not festivals:
        raise InputError("没有读到任何放假或上班日期：请粘贴通知正文，如"
                         "「一、元旦：1月1日至3日放假调休，共3天。1月4日（周日）上班。」",
                         field="notice")
    return festivals
