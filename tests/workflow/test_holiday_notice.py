"""Reading the State Council's holiday notice as pasted: checked against the packaged official
calendar for a year it knows, and the ways notices write their days."""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar
import pytest

from workflow.errors import ImportRejected, InputError
from workflow.holiday_notice import notice_year, parse_notice

NOTICE_2026 = """国务院办公厅关于2026年部分节假日安排的通知
各省、自治区、直辖市人民政府，国务院各部委、各直属机构：
经国务院批准，现将2026年元旦、春节、清明节、劳动节、端午节、中秋节和国庆节放假调休日期的具体安排通知如下。
一、元旦：1月1日（周四）至3日（周六）放假调休，共3天。1月4日（周日）上班。
二、春节：2月15日（农历腊月二十八、周日）至23日（农历正月初七、周一）放假调休，共9天。2月14日（周六）、2月28日（周六）上班。
三、清明节：4月4日（周六）至6日（周一）放假，共3天。
四、劳动节：5月1日（周五）至5日（周二）放假调休，共5天。5月9日（周六）上班。
五、端午节：6月19日（周五）至21日（周日）放假，共3天。
六、中秋节：9月25日（周五）至27日（周日）放假，共3天。
七、国庆节：10月1日（周四）至7日（周三）放假调休，共7天。9月20日（周日）、10月10日（周六）上班。
节假日期间，各地区、各部门要妥善安排好值班和安全、保卫、疫情防控等工作。
"""


def test_the_2026_notice_gives_exactly_the_official_calendar() -> None:
    # Given the notice as published, pasted whole (title, preamble and closing words included)
    festivals = parse_notice(NOTICE_2026, notice_year(NOTICE_2026) or 0)
    holidays = {d for f in festivals for d in f.holidays}
    workdays = {d for f in festivals for d in f.workdays}
    # Then its holidays and working weekends are chinese_calendar's for 2026, day for day
    year = [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]
    official_holidays = {d for d in year if chinese_calendar.get_holiday_detail(d)[1]
                         and chinese_calendar.is_holiday(d)}
    official_workdays = {d for d in year if d.weekday() >= 5 and chinese_calendar.is_workday(d)}
    assert holidays == official_holidays
    assert workdays == official_workdays
    assert [f.name for f in festivals] == ["元旦", "春节", "清明节", "劳动节", "端午节", "中秋节",
                                           "国庆节"]


@pytest.mark.parametrize(("text", "holidays", "workdays"), [
    ("一、元旦：2022年12月31日至2023年1月2日放假调休，共3天。", ("2022-12-31", "2023-01-02"), ()),
    ("四、劳动节：4月30日至5月4日放假调休，共5天。4月23日（星期日）、5月6日（星期六）上班。",
     ("2023-04-30", "2023-05-04"), ("2023-04-23", "2023-05-06")),
    ("一、元旦：1月1日（周三）放假1天，不调休。", ("2023-01-01", "2023-01-01"), ()),
    ("二、春节：1月28日（农历除夕、周二）至2月4日（农历正月初七、周二）放假调休，共8天。\n"
     "1月26日（周日）、2月8日（周六）上班。", ("2023-01-28", "2023-02-04"),
     ("2023-01-26", "2023-02-08")),
], ids=["across the year", "across the month", "one day", "working days on the next line"])
def test_ways_notices_write_their_days(text: str, holidays: tuple[str, str],
                                       workdays: tuple[str, ...]) -> None:
    [festival] = parse_notice(text, 2023)
    first, last = (date.fromisoformat(d) for d in holidays)
    assert festival.holidays == [first + timedelta(days=n) for n in range((last - first).days + 1)]
    assert festival.workdays == [date.fromisoformat(d) for d in workdays]


def test_every_unreadable_line_is_named() -> None:
    text = ("一、元旦：1月1日至3日放假。\n二、春节：2月30日至14日放假调休。\n三、清明节：放假3天。\n"
            "四、劳动节：5月5日至1日放假。\n五、端午节：6月1日至8月1日放假。")
    with pytest.raises(ImportRejected) as refused:
        parse_notice(text, 2027)
    found = {(e.row, e.field): e.reason for e in refused.value.errors}
    assert found[(2, "春节")] == "「2月30日」不是有效日期"
    assert found[(3, "清明节")] == "写了放假或上班，但读不出日期"
    assert "起止颠倒" in found[(4, "劳动节")]
    assert "超过 31 天" in found[(5, "端午节")]


def test_a_day_both_off_and_on_is_refused_and_an_empty_paste_says_what_to_paste() -> None:
    with pytest.raises(ImportRejected, match="2027-02-20 既是放假日又是上班日"):
        parse_notice("一、春节：2月14日至20日放假。\n二、调休：2月20日上班。", 2027)
    with pytest.raises(InputError, match="请粘贴通知正文"):
        parse_notice("国务院办公厅关于2027年部分节假日安排的通知", 2027)
