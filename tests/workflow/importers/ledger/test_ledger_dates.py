"""The table of ways a deadline is written (pure): each pattern, its reading and its refusals."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from workflow.importers.ledger.dates import DATE_PATTERNS, DateContext, read_deadline
from workflow.lifecycle import Kind

#: Feedback on 2026-11-20: a month before November belongs to 2027.
FEEDBACK = DateContext(today=date(2026, 12, 7), feedback=date(2026, 11, 20))
#: No feedback date: the import day (2026-12-07) is the reference.
TODAY = DateContext(today=date(2026, 12, 7))

#: (cell, context, pattern name, day, kind, how the preview shows it).
READINGS: list[tuple[object, DateContext, str, date | None, Kind | None, str]] = [
    ("2026-12-31", TODAY, "年-月-日", date(2026, 12, 31), None, "2026-12-31"),
    ("2026/12/31", TODAY, "年-月-日", date(2026, 12, 31), None, "2026-12-31"),
    ("2026.12.31", TODAY, "年-月-日", date(2026, 12, 31), None, "2026-12-31"),
    ("2026年12月31日", TODAY, "年月日", date(2026, 12, 31), None, "2026-12-31"),
    ("2026 年 1 月 5 日", TODAY, "年月日", date(2026, 1, 5), None, "2026-01-05"),
    ("2026年12月31日前", TODAY, "年月日", date(2026, 12, 31), None, "2026-12-31"),
    ("20261231", TODAY, "八位数字", date(2026, 12, 31), None, "2026-12-31"),
    ("2026年12月底", TODAY, "年月（月底）", date(2026, 12, 31), None, "2026-12-31（按月底）"),
    ("2026年12月", TODAY, "年月（月底）", date(2026, 12, 31), None, "2026-12-31（按月底）"),
    ("2028年2月", TODAY, "年月（月底）", date(2028, 2, 29), None, "2028-02-29（按月底）"),
    ("2027年2月底前", TODAY, "年月（月底）", date(2027, 2, 28), None, "2027-02-28（按月底）"),
    ("2026-06", TODAY, "年-月（月底）", date(2026, 6, 30), None, "2026-06-30（按月底）"),
    ("12月底", FEEDBACK, "月底（整改年度）", date(2026, 12, 31), None,
     "2026-12-31（按月底，2026年）"),
    ("3月底", FEEDBACK, "月底（整改年度）", date(2027, 3, 31), None, "2027-03-31（按月底，2027年）"),
    ("11月底", FEEDBACK, "月底（整改年度）", date(2026, 11, 30), None,
     "2026-11-30（按月底，2026年）"),
    ("12月31日", TODAY, "月日（整改年度）", date(2026, 12, 31), None, "2026-12-31（按2026年）"),
    ("1月15日", TODAY, "月日（整改年度）", date(2027, 1, 15), None, "2027-01-15（按2027年）"),
    ("46387", TODAY, "Excel 日期序号", date(2026, 12, 31), None,
     "2026-12-31（Excel 日期序号 46387）"),
    (46387, TODAY, "Excel 日期序号", date(2026, 12, 31), None, "2026-12-31（Excel 日期序号 46387）"),
    (46402.5, TODAY, "Excel 日期序号", date(2027, 1, 15), None,
     "2027-01-15（Excel 日期序号 46402）"),
    (datetime(2026, 12, 31, 17, 30), TODAY, "Excel 日期", date(2026, 12, 31), None, "2026-12-31"),
    (date(2026, 12, 31), TODAY, "Excel 日期", date(2026, 12, 31), None, "2026-12-31"),
    ("长期", TODAY, "长期", None, Kind.LONG_TERM, "无完成时限（长期坚持）"),
    ("长期坚持", TODAY, "长期", None, Kind.LONG_TERM, "无完成时限（长期坚持）"),
    ("持续推进", TODAY, "长期", None, Kind.LONG_TERM, "无完成时限（长期坚持）"),
    ("立即", TODAY, "立即", date(2026, 12, 7), Kind.IMMEDIATE, "2026-12-07（立行立改，按导入当天）"),
    ("立行立改", FEEDBACK, "立即", date(2026, 11, 20), Kind.IMMEDIATE,
     "2026-11-20（立行立改，按反馈日期）"),
]


@pytest.mark.parametrize(("cell", "context", "name", "day", "kind", "shown"), READINGS,
                         ids=[str(r[0]) for r in READINGS])
def test_each_written_form_is_read(cell, context, name, day, kind, shown):
    found_name, reading = read_deadline(cell, context)
    assert (found_name, reading.day, reading.kind, reading.shown()) == (name, day, kind, shown)


@pytest.mark.parametrize(("cell", "reason"), [
    ("", "完成时限为空"),
    (None, "完成时限为空"),
    ("2026-02-30", "日期「2026-02-30」不存在"),
    ("2026年13月", "日期「2026年13月」不存在"),
    ("13月底", "日期「13月底」不存在"),
    ("2月30日", "日期「2月30日」不存在"),
    ("12345", "数字「12345」不是日期"),
    (7, "数字「7」不是日期"),
    ("12/31/2026", "无法识别的日期「12/31/2026」（可写作 2026-12-31、2026年12月31日、2026年12月底、"
                   "12月底、长期坚持 或 立即）"),
    ("年底前", "无法识别的日期「年底前」"),
])
def test_cells_that_are_not_dates_say_why(cell, reason):
    with pytest.raises(ValueError) as refused:
        read_deadline(cell, TODAY)
    assert str(refused.value).startswith(reason)


def test_every_pattern_of_the_table_is_exercised():
    # The table is data: a pattern added without a case above would go untested.
    assert {name for _, _, name, *_ in READINGS} >= {p.name for p in DATE_PATTERNS}
