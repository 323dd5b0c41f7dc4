"""``rectiflow calendar ...`` against a real database: entering, listing, removing and checking
days, coverage of years, and bad input that writes nothing."""

from __future__ import annotations

from datetime import UTC, date

import pytest
from sqlalchemy import func, select

from workflow import db, workcalendar
from workflow.models import CalendarDay

NOW = "--now=2026-12-01T09:00:00+08:00"


@pytest.fixture(autouse=True)
def _fresh_warnings():
    workcalendar.reset_fallback_warnings()


def stored(sessions) -> dict[str, tuple[bool, str]]:
    with db.transaction(sessions) as session:
        return {row.day.isoformat(): (row.is_workday, row.note)
                for row in session.scalars(select(CalendarDay))}


def test_add_list_and_check_a_new_years_holidays(rectiflow, sessions):
    # Given the State Council has published 2027's Spring Festival
    result = rectiflow("calendar", "add", "2027-02-10..2027-02-16", "--holiday", "--note", "春节",
                       NOW)
    assert result.code == 0, result.err
    assert "2027-02-10 至 2027-02-16，共 7 天" in result.out
    assert rectiflow("calendar", "add", "2027-02-07", "2027-02-20", "--workday", NOW).code == 0
    # Then the days are stored, with an aware UTC time
    days = stored(sessions)
    assert len(days) == 9
    assert days["2027-02-12"] == (False, "春节") and days["2027-02-20"] == (True, "")
    with db.transaction(sessions) as session:
        row = session.get(CalendarDay, date(2027, 2, 10))
        assert row is not None and row.created_at.tzinfo is not None
        assert row.created_at.astimezone(UTC).hour == 1
    # And list shows them in order, filtered by year
    listed = rectiflow("calendar", "list", "--year", "2027", "--json").json()
    assert [d["date"] for d in listed][:2] == ["2027-02-07", "2027-02-10"]
    assert all(d["source"] == "database" for d in listed)
    assert rectiflow("calendar", "list", "--year", "2026", "--json").json() == []
    # And check explains a day
    check = rectiflow("calendar", "check", "2027-02-11", "--json").json()
    assert check == {"date": "2027-02-11", "is_workday": False, "source": "admin",
                     "provisional": False, "holiday": "春节",
                     "description": "2027-02-11 春节（管理员录入的放假日）"}
    text = rectiflow("calendar", "check", "2027-02-20")
    assert text.code == 0 and "结论：工作日；依据：管理员录入" in text.out


def test_adding_again_replaces_the_entry(rectiflow, sessions):
    rectiflow("calendar", "add", "2027-10-08", "--holiday", NOW)
    result = rectiflow("calendar", "add", "2027-10-08", "2027-10-09", "--workday", "--note", "调休",
                       "--json", NOW)
    assert result.code == 0, result.err
    assert result.json()["days"] == [{"date": "2027-10-08", "action": "updated"},
                                     {"date": "2027-10-09", "action": "added"}]
    assert stored(sessions)["2027-10-08"] == (True, "调休")


@pytest.mark.parametrize(("args", "message"), [
    (("2027-02-30", "--holiday"), "「2027-02-30」无效"),
    (("garbage", "--holiday"), "「garbage」无效"),
    (("2027-02-16..2027-02-10", "--holiday"), "「2027-02-16..2027-02-10」无效：结束日期早于开始日期"),
    (("2027-01-01", "2027-13-01", "--holiday"), "「2027-13-01」无效"),
    (("2027-01-01",), "--holiday（放假）或 --workday（上班）"),
    (("2027-01-01", "--holiday", "--workday"), "二选一"),
    (("2027-01-01", "--holiday", "--note", "长" * 201), "说明过长"),
])
def test_bad_input_exits_2_and_writes_nothing(rectiflow, sessions, args, message):
    result = rectiflow("calendar", "add", *args, NOW)
    assert result.code == 2
    assert message in result.err
    assert stored(sessions) == {}


@pytest.mark.parametrize("args", [("check", "2027-02-30"), ("check", "tomorrow"),
                                  ("remove", "2027/01/01"), ("list", "--year", "abc")])
def test_other_commands_refuse_bad_dates(rectiflow, args):
    result = rectiflow("calendar", *args)
    assert result.code == 2
    assert args[-1] in result.err


def test_remove(rectiflow, sessions):
    rectiflow("calendar", "add", "2027-01-01", "--holiday", "--note", "元旦", NOW)
    result = rectiflow("calendar", "remove", "2027-01-01")
    assert result.code == 0, result.err
    assert "原为放假日" in result.out and "2027-01-01 工作日（周五）" in result.out
    assert stored(sessions) == {}
    missing = rectiflow("calendar", "remove", "2027-01-01")
    assert missing.code == 2 and "找不到" in missing.err and "2027-01-01" in missing.err


def test_check_official_and_fallback_days(rectiflow):
    official = rectiflow("calendar", "check", "2025-09-28")
    assert official.code == 0
    assert official.out.splitlines() == ["2025-09-28 调休上班（国庆节）",
                                         "结论：工作日；依据：内置官方日历（chinese_calendar）"]
    fallback = rectiflow("calendar", "check", "2027-01-01", "--json").json()
    assert fallback["is_workday"] is True
    assert fallback["source"] == "fallback" and fallback["provisional"] is True
    # And once an admin enters the day, it is no longer provisional
    rectiflow("calendar", "add", "2027-01-01", "--holiday", "--note", "元旦", NOW)
    entered = rectiflow("calendar", "check", "2027-01-01", "--json").json()
    assert (entered["is_workday"], entered["source"], entered["provisional"]) == (
        False, "admin", False)


def test_coverage_warns_before_the_new_year(rectiflow):
    # Given December 2026 and nothing entered for 2027
    report = rectiflow("calendar", "coverage", "--json", NOW).json()
    assert report["official"] == {"from": 2004, "to": 2026}
    assert [(y["year"], y["source"]) for y in report["years"]] == [(2026, "official"),
                                                                  (2027, "fallback")]
    assert len(report["warnings"]) == 1 and "2027" in report["warnings"][0]
    text = rectiflow("calendar", "coverage", NOW)
    assert "2027 年  未覆盖" in text.out and "注意：2027 年尚无放假安排" in text.out
    # When the admin enters 2027's holidays
    rectiflow("calendar", "add", "2027-01-01", "2027-02-10..2027-02-16", "--holiday", NOW)
    rectiflow("calendar", "add", "2027-02-07", "--workday", NOW)
    # Then 2027 is admin-entered, with its counts, and there is no warning
    report = rectiflow("calendar", "coverage", "--json", NOW).json()
    assert report["years"][1] == {"year": 2027, "source": "admin", "label": "管理员录入",
                                  "holidays": 8, "workdays": 1}
    assert report["warnings"] == []


def test_policy_file_calendar_table(rectiflow, tmp_path, monkeypatch, sessions):
    # Given a policy file that enters 2027's New Year's Day
    policy = tmp_path / "policy.toml"
    policy.write_text('[calendar]\nholidays = ["2027-01-01"]\nworkdays = []\n', encoding="utf-8")
    monkeypatch.setenv("RECTIFLOW_CONFIG", str(policy))
    # Then check and list see it
    assert rectiflow("calendar", "check", "2027-01-01", "--json").json()["is_workday"] is False
    assert rectiflow("calendar", "list", "--json").json() == [
        {"date": "2027-01-01", "is_workday": False, "note": "", "source": "config"}]
    # And a database entry for the same day wins
    rectiflow("calendar", "add", "2027-01-01", "--workday", NOW)
    assert rectiflow("calendar", "check", "2027-01-01", "--json").json()["is_workday"] is True
    rectiflow("calendar", "remove", "2027-01-01")
    # And a config entry cannot be removed from the command line
    result = rectiflow("calendar", "remove", "2027-01-01")
    assert result.code == 2 and "策略文件" in result.err


def test_bad_policy_calendar_is_named(rectiflow, tmp_path, monkeypatch, sessions):
    policy = tmp_path / "policy.toml"
    policy.write_text('[calendar]\nholidays = ["2027-02-29"]\n', encoding="utf-8")
    monkeypatch.setenv("RECTIFLOW_CONFIG", str(policy))
    result = rectiflow("calendar", "add", "2027-01-01", "--holiday", NOW)
    assert result.code == 2
    assert "calendar.holidays[0]" in result.err and "2027-02-29" in result.err
    with db.transaction(sessions) as session:
        assert session.scalar(select(func.count()).select_from(CalendarDay)) == 0
