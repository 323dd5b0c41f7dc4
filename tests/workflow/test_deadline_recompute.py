"""Deadlines written "反馈后N个工作日": provisional when the count crosses a year whose holidays
are not known yet, and counted again, with a history row, once an admin enters that year.

The campaign's feedback came on Thursday 2026-12-10. 30 working days later, counted Monday–Friday
over 2027 (chinese_calendar ships 2004–2026), is Thursday 2027-01-21: 15 working days are left in
2026 (12-11, 12-14..18, 12-21..25, 12-28..31), then 2027-01-01, 01-04..08, 01-11..15, 01-18..21.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from workflow import db, workcalendar
from workflow.models import HistoryEntry, Measure
from workflow.services.people import add_person

NOW = "2026-12-14T09:30:00+08:00"
LATER = "2026-12-20T10:00:00+08:00"
CAMPAIGN = "十届校党委第五轮巡察反馈问题整改"
HEADER = "序号,方面,问题,整改措施,责任领导,责任部门,责任人,完成时限,整改类型"
ROWS = [
    "1,学习传达有差距,组织学习还不到位,制订政治理论学习工作规程,王书记,后勤党总支办公室,张伟,反馈后30个工作日,限期整改",
    "2,学习传达有差距,组织学习还不到位,建立学习台账,王书记,后勤党总支办公室,张伟,反馈后30个工作日,限期整改",
    "3,学习传达有差距,传达上级精神不及时,第一议题传达上级精神,王书记,后勤党总支办公室,张伟,反馈后30个工作日,限期整改",
    "4,学习传达有差距,传达上级精神不及时,形成会议纪要,王书记,后勤党总支办公室,张伟,反馈后5个工作日,立行立改",
    "5,学习传达有差距,传达上级精神不及时,修订议事规则,王书记,后勤党总支办公室,张伟,2027-03-31,限期整改",
]


@pytest.fixture(autouse=True)
def _fresh_warnings():
    workcalendar.reset_fallback_warnings()


@pytest.fixture
def staff(sessions):
    with db.transaction(sessions) as session:
        add_person(session, name="王书记", email="wang.shuji@example.edu.cn", roles=["leader"],
                   unit="后勤党总支")
        add_person(session, name="张伟", email="zhang.wei@example.edu.cn", roles=["owner"],
                   unit="后勤党总支办公室")
        add_person(session, name="整改办", email="zgb@example.edu.cn", roles=["reviewer"])


@pytest.fixture
def ledger_csv(tmp_path: Path) -> Path:
    path = tmp_path / "台账.csv"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def imported(rectiflow, staff, ledger_csv) -> dict[str, dict]:
    result = rectiflow("--now", NOW, "import", "ledger", str(ledger_csv), "--campaign", CAMPAIGN,
                       "--feedback-date", "2026-12-10", "--json")
    assert result.code == 0, result.err
    return by_seq(rectiflow)


def by_seq(rectiflow) -> dict[str, dict]:
    listed = rectiflow("--now", NOW, "measure", "list", "--json")
    assert listed.code == 0, listed.err
    return {m["seq"]: m for m in listed.json()}


def history(sessions, measure_id: int) -> list[HistoryEntry]:
    with db.transaction(sessions) as session:
        return list(session.scalars(select(HistoryEntry).where(
            HistoryEntry.measure_id == measure_id).order_by(HistoryEntry.seq)))


def test_dry_run_reports_provisional_deadlines_and_writes_nothing(rectiflow, sessions, staff,
                                                                  ledger_csv):
    # Given a ledger whose 30-working-day deadlines cross into 2027
    # When it is checked with --dry-run
    args = ("--now", NOW, "import", "ledger", str(ledger_csv), "--campaign", CAMPAIGN,
            "--feedback-date", "2026-12-10", "--dry-run")
    checked = rectiflow(*args, "--json")
    # Then the report counts the three provisional deadlines, and nothing is written
    assert checked.code == 0, checked.err
    assert checked.json()["provisional"] == 3 and checked.json()["dry_run"] is True
    text = rectiflow(*args)
    assert "其中 3 项的完成时限" in text.out and "临时期限" in text.out
    with db.transaction(sessions) as session:
        assert session.scalars(select(Measure)).all() == []


def test_import_marks_deadlines_counted_over_an_unknown_year(rectiflow, imported, caplog):
    # Then the three deadlines counted into 2027 are provisional, with their rule kept
    assert {seq: (m["deadline"], m["deadline_provisional"]) for seq, m in imported.items()} == {
        "1": ("2027-01-21", True), "2": ("2027-01-21", True), "3": ("2027-01-21", True),
        # a count that stays in 2026 (a known year) is never provisional
        "4": ("2026-12-17", False),
        # a date written out does not depend on the calendar at all
        "5": ("2027-03-31", False)}
    assert imported["1"]["deadline_rule"] == {"counted_from": "2026-12-10", "workdays": 30}
    assert imported["4"]["deadline_rule"] == {"counted_from": "2026-12-10", "workdays": 5}
    assert imported["5"]["deadline_rule"] is None
    # And measure list marks them with ?, and explains the mark once
    text = rectiflow("--now", NOW, "measure", "list").out
    lines = {line.split()[1]: line for line in text.splitlines() if line.split()[:1] != ["编号"]
             and len(line.split()) > 1 and line.split()[1].isdigit()}
    assert "2027-01-21?" in lines["1"] and "2026-12-17?" not in lines["4"]
    assert "2027-03-31?" not in lines["5"]
    assert "时限后标 ? 的是临时期限" in text
    # And measure show says how the deadline was given and that it is provisional
    shown = rectiflow("--now", NOW, "measure", "show", str(imported["1"]["id"])).out
    assert "完成时限：2027-01-21（2026-12-10 反馈后30个工作日，临时期限）" in shown


def test_entering_the_years_holidays_recomputes_open_measures(rectiflow, sessions, imported):
    first, extended, verified = imported["1"], imported["2"], imported["3"]
    # Given measure 3 was submitted and verified, and measure 2 extended by its leader
    for action, who in (("start", "zhang.wei@example.edu.cn"), ("submit", "zhang.wei@example.edu.cn"),
                        ("verify", "zgb@example.edu.cn")):
        done = rectiflow("--now", NOW, "measure", "do", str(verified["id"]), action, "--as", who,
                         "--comment", "已完成")
        assert done.code == 0, done.err
    done = rectiflow("--now", NOW, "measure", "do", str(extended["id"]), "extend", "--as",
                     "wang.shuji@example.edu.cn", "--deadline", "2027-02-26",
                     "--comment", "涉及采购，申请延期")
    assert done.code == 0, done.err

    # When the admin first tries the 2027 New Year's holiday with --dry-run
    preview = rectiflow("--now", LATER, "calendar", "add", "2027-01-01..2027-01-03", "--holiday",
                        "--note", "元旦", "--dry-run", "--json")
    assert preview.code == 0, preview.err
    assert [c["deadline_to"] for c in preview.json()["deadlines"]["changes"]] == ["2027-01-22"]
    assert by_seq(rectiflow)["1"]["deadline"] == "2027-01-21"  # nothing written

    # And then enters it: Friday 2027-01-01 is no longer a working day
    added = rectiflow("--now", LATER, "calendar", "add", "2027-01-01..2027-01-03", "--holiday",
                      "--note", "元旦")
    assert added.code == 0, added.err
    assert (f"已重新计算 1 项措施的完成时限：措施 {first['id']}（序号 1）2027-01-21 → 2027-01-22，"
            "不再是临时期限") in added.out

    # Then the open measure's deadline moved one working day later and is no longer provisional
    after = by_seq(rectiflow)
    assert (after["1"]["deadline"], after["1"]["deadline_provisional"]) == ("2027-01-22", False)
    assert after["1"]["original_deadline"] == "2027-01-22"  # not a 延期
    assert after["1"]["version"] == first["version"] + 1
    # And the history has the change with both dates, by the system, in the same state
    entry = history(sessions, first["id"])[-1]
    assert (entry.action, entry.from_state, entry.to_state, entry.actor_id) == (
        "recompute_deadline", "assigned", "assigned", None)
    assert entry.comment == "节假日安排录入后重新计算完成时限"
    assert entry.data == {"deadline_from": "2027-01-21", "deadline_to": "2027-01-22",
                          "workdays": 30, "counted_from": "2026-12-10"}
    shown = rectiflow("--now", LATER, "measure", "show", str(first["id"])).out
    assert "重算时限" in shown and "（时限 2027-01-21 → 2027-01-22）" in shown
    # And the verified measure and the extended one are left alone
    assert (after["3"]["deadline"], after["3"]["deadline_provisional"]) == ("2027-01-21", True)
    assert after["3"]["version"] == 4
    assert (after["2"]["deadline"], after["2"]["deadline_provisional"]) == ("2027-02-26", False)
    assert after["2"]["deadline_rule"] is None
    assert [e.action for e in history(sessions, extended["id"])] == ["create", "extend"]

    # When a working Sunday of that span is entered later (a year is entered piece by piece)
    added = rectiflow("--now", LATER, "calendar", "add", "2027-01-10", "--workday", "--json")
    assert added.code == 0, added.err
    # Then the deadline, no longer provisional, still follows the calendar: back one working day
    assert [(c["deadline_from"], c["deadline_to"]) for c in
            added.json()["deadlines"]["changes"]] == [("2027-01-22", "2027-01-21")]
    assert by_seq(rectiflow)["1"]["deadline"] == "2027-01-21"
    assert [e.action for e in history(sessions, first["id"])] == [
        "create", "recompute_deadline", "recompute_deadline"]

    # And the hash chains all verify
    audit = rectiflow("audit", "verify", "--json")
    assert audit.code == 0, audit.err
    assert audit.json()["ok"] is True


def test_a_day_that_changes_nothing_only_clears_the_mark(rectiflow, sessions, imported):
    # When the admin enters a 2027 holiday outside every counted span
    added = rectiflow("--now", LATER, "calendar", "add", "2027-10-01", "--holiday", "--json")
    assert added.code == 0, added.err
    # Then the deadlines stay, are no longer provisional, and no history row is written
    after = by_seq(rectiflow)
    assert [(after[s]["deadline"], after[s]["deadline_provisional"]) for s in "123"] == [
        ("2027-01-21", False)] * 3
    assert all(after[s]["version"] == 1 for s in "123")
    assert [len(history(sessions, after[s]["id"])) for s in "123"] == [1, 1, 1]


def test_removing_the_years_only_entry_makes_deadlines_provisional_again(rectiflow, imported):
    assert rectiflow("--now", LATER, "calendar", "add", "2027-01-01", "--holiday").code == 0
    assert by_seq(rectiflow)["1"]["deadline"] == "2027-01-22"
    # When the entry is removed, 2027 is unknown again
    removed = rectiflow("--now", LATER, "calendar", "remove", "2027-01-01")
    assert removed.code == 0, removed.err
    # Then the deadline is counted Monday–Friday again, and provisional
    assert "已重新计算 3 项措施的完成时限" in removed.out
    after = by_seq(rectiflow)["1"]
    assert (after["deadline"], after["deadline_provisional"]) == ("2027-01-21", True)


def test_policy_file_days_are_applied_by_calendar_recompute(rectiflow, imported, tmp_path,
                                                             monkeypatch):
    # Given 2027's New Year's holiday is written into the policy file's [calendar] table
    policy = tmp_path / "policy.toml"
    policy.write_text('[calendar]\nholidays = [{ date = "2027-01-01..2027-01-03", note = "元旦" }]\n',
                      encoding="utf-8")
    monkeypatch.setenv("RECTIFLOW_CONFIG", str(policy))
    # When the admin asks for a dry run, then for the recompute
    preview = rectiflow("--now", LATER, "calendar", "recompute", "--dry-run")
    assert preview.code == 0, preview.err
    assert "试算（未写入）：将重新计算 3 项措施的完成时限" in preview.out
    assert by_seq(rectiflow)["1"]["deadline"] == "2027-01-21"
    done = rectiflow("--now", LATER, "calendar", "recompute", "--json")
    assert done.code == 0, done.err
    # Then the deadline moved, and a second run finds nothing to do
    assert done.json()["moved"] == 3 and done.json()["still_provisional"] == 0
    assert by_seq(rectiflow)["1"]["deadline"] == "2027-01-22"
    again = rectiflow("--now", LATER, "calendar", "recompute")
    assert again.code == 0 and "没有需要重新计算的完成时限。" in again.out


def test_rule_columns_are_stored(sessions, imported):
    with db.transaction(sessions) as session:
        measure = session.get(Measure, imported["1"]["id"])
        assert measure is not None
        assert (measure.deadline_counted_from, measure.deadline_workdays,
                measure.deadline_provisional) == (date(2026, 12, 10), 30, True)


def test_a_digest_as_of_before_the_recount_shows_the_deadline_then(rectiflow, sessions, imported):
    from datetime import datetime

    from workflow.services.digest import load_snapshot

    first = imported["1"]
    added = rectiflow("--now", LATER, "calendar", "add", "2027-01-01..2027-01-03", "--holiday",
                      "--note", "元旦")
    assert added.code == 0, added.err
    with db.transaction(sessions) as session:
        before = load_snapshot(session, first["campaign_id"], datetime.fromisoformat(NOW))
        after = load_snapshot(session, first["campaign_id"],
                              datetime.fromisoformat("2026-12-21T09:00:00+08:00"))
    then = next(r for r in before.records if r.id == first["id"])
    now = next(r for r in after.records if r.id == first["id"])
    assert (then.deadline, then.original_deadline) == (date(2027, 1, 21), date(2027, 1, 21))
    assert (now.deadline, now.original_deadline) == (date(2027, 1, 22), date(2027, 1, 22))
