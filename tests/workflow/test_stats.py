"""Statistics over snapshots, checked by hand on a fixture with measures in every state and kind.

The day is Tuesday 2026-09-29. The official calendar around it: Sunday 2026-09-20 is a working
day (调休 for National Day), Friday 2026-09-25 is the Mid-autumn holiday, 2026-10-01..07 (but for
the weekend 3–4) are National Day holidays, Saturday 2026-10-10 is a working day.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from workflow.lifecycle import Kind, State
from workflow.reminders import WorkdayIndex
from workflow.stats import (
    NO_UNIT,
    Counts,
    MeasureRecord,
    changes_between,
    compute,
    count,
    count_by,
    official_summary,
    percent,
    week_on_week,
)
from workflow.timeutil import SHANGHAI
from workflow.workcalendar import WorkCalendar

TODAY = date(2026, 9, 29)
AREA_1, AREA_2 = "学习传达有差距", "履行职能职责有不足"


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=10, tzinfo=SHANGHAI)


def record(mid: int, state: State, kind: Kind, deadline: str | None, *, area: str = AREA_1,
           problem: int = 1, unit: str | None = None, leader: int = 100,
           original: str | None = None, changed: str = "2026-09-01",
           progress: str | None = None, closed: str | None = None) -> MeasureRecord:
    due = date.fromisoformat(deadline) if deadline else None
    return MeasureRecord(
        id=mid, campaign_id=1, seq=str(mid), area=area, problem=f"问题{problem}",
        title=f"整改措施{mid}", kind=kind, state=state, deadline=due,
        original_deadline=date.fromisoformat(original) if original else due,
        owner_id=10 + mid, leader_id=leader, unit=unit, created_at=at("2026-09-01"),
        state_changed_at=at(changed), last_progress_at=at(progress) if progress else None,
        closed_at=at(closed) if closed else None, problem_id=problem)


S, K = State, Kind
FIXTURE = [
    # 1: open, overdue since Thursday 09-24: 09-28 and 09-29 count, the holiday and weekend don't
    record(1, S.ASSIGNED, K.DEADLINE, "2026-09-24", unit="饮食服务中心", progress="2026-09-22"),
    # 2: due on 10-09: 3 working days left over the National Day holidays; idle since 09-10
    record(2, S.IN_PROGRESS, K.DEADLINE, "2026-10-09", unit="饮食服务中心", changed="2026-09-10"),
    # 3: deadline passed but submitted: waiting for review, not overdue
    record(3, S.SUBMITTED, K.IMMEDIATE, "2026-09-20", problem=2, unit="物业管理科"),
    record(4, S.VERIFIED, K.DEADLINE, "2026-09-30", problem=2, unit="物业管理科"),
    # 5: extended 09-15 → 09-30, closed on 09-20: in time for the new deadline, late for the old
    record(5, S.CLOSED, K.DEADLINE, "2026-09-30", original="2026-09-15", area=AREA_2,
           problem=3, unit="物业管理科", closed="2026-09-20"),
    record(6, S.CLOSED, K.IMMEDIATE, "2026-09-10", area=AREA_2, problem=3, leader=200,
           closed="2026-09-08"),
    record(7, S.VERIFIED, K.LONG_TERM, None, area=AREA_2, problem=3, leader=200),
    record(8, S.CLOSED, K.LONG_TERM, "2026-06-30", area=AREA_2, problem=4, leader=200,
           closed="2026-06-30"),
    # 9: long-term, still in progress, no progress report since 09-01: 20 working days idle
    record(9, S.IN_PROGRESS, K.LONG_TERM, None, area=AREA_2, problem=4, leader=200),
]


@pytest.fixture(scope="module")
def days() -> WorkdayIndex:
    return WorkdayIndex(WorkCalendar().is_workday)


def test_totals_by_state_and_kind(days: WorkdayIndex) -> None:
    # Given measures in every state and kind
    # When the statistics are computed for 2026-09-29
    stats = compute(FIXTURE, TODAY, days)
    counts = stats.counts
    # Then the counts are those counted by hand
    assert counts.total == 9
    assert counts.by_state == {"assigned": 1, "in_progress": 2, "submitted": 1, "verified": 2,
                               "closed": 3}
    assert counts.by_kind == {"immediate": 2, "deadline": 4, "long_term": 3}
    assert (counts.completed, counts.finished, counts.long_term, counts.unfinished) == (3, 2, 2, 5)
    assert counts.completion_rate == pytest.approx(3 / 9)
    assert (stats.areas, stats.problems) == (2, 4)


def test_overdue_counts_working_days_over_a_holiday(days: WorkdayIndex) -> None:
    # Given measure 1 due on Thursday 09-24, before the Mid-autumn Friday and a weekend
    stats = compute(FIXTURE, TODAY, days)
    # Then only it is overdue (3 is past its deadline but submitted), by 2 working days
    assert [(f.record.id, f.days) for f in stats.overdue] == [(1, 2)]
    assert stats.counts.overdue == 1


def test_due_soon_and_stagnating(days: WorkdayIndex) -> None:
    stats = compute(FIXTURE, TODAY, days)
    # Then 2 falls due in 3 working days (09-30, 10-08, 10-09: the holidays don't count)
    assert [(f.record.id, f.days) for f in stats.due_soon] == [(2, 3)]
    # And 9 (idle since 09-01, 20 working days with Sunday 09-20) and 2 (since 09-10, 13) stagnate;
    # 1 reported progress on 09-22, 4 working days ago
    assert [(f.record.id, f.days) for f in stats.stagnating] == [(9, 20), (2, 13)]


def test_on_time_rate_counts_against_the_original_deadline(days: WorkdayIndex) -> None:
    # Given measure 5 closed on 09-20 after its deadline was extended from 09-15 to 09-30
    stats = compute(FIXTURE, TODAY, days)
    # Then it is late against the original deadline: due are 1, 3, 5, 6, 8; on time 6 and 8
    assert (stats.counts.on_time_due, stats.counts.on_time) == (5, 2)
    assert stats.counts.on_time_rate == pytest.approx(0.4)
    # And without the extension it would have been on time
    unextended = [r._replace(original_deadline=r.deadline) if r.id == 5 else r for r in FIXTURE]
    assert compute(unextended, TODAY, days).counts.on_time == 3


def test_count_gives_the_totals_without_the_lists(days: WorkdayIndex) -> None:
    # Given the fixture read on 2026-09-29
    # When only the counts are asked for (what week-on-week reads)
    counts = count(FIXTURE, TODAY, days)
    # Then they are those counted by hand above
    assert (counts.total, counts.completed, counts.finished, counts.long_term) == (9, 3, 2, 2)
    assert (counts.overdue, counts.due_soon, counts.stagnating) == (1, 1, 2)
    assert (counts.on_time_due, counts.on_time) == (5, 2)
    assert counts.by_state == {"assigned": 1, "in_progress": 2, "submitted": 1, "verified": 2,
                               "closed": 3}


@pytest.mark.parametrize(("state", "kind", "label"), [
    (S.CLOSED, K.DEADLINE, "完成"),
    (S.CLOSED, K.IMMEDIATE, "完成"),
    (S.CLOSED, K.LONG_TERM, "基本完成，长期坚持"),
    (S.VERIFIED, K.LONG_TERM, "基本完成，长期坚持"),
    (S.VERIFIED, K.DEADLINE, "暂未完成"),
    (S.IN_PROGRESS, K.LONG_TERM, "暂未完成"),
])
def test_result_label_follows_finished_and_long_term(state: State, kind: Kind,
                                                     label: str) -> None:
    assert record(1, state, kind, None).result_label == label


def test_breakdowns_by_area_unit_and_leader(days: WorkdayIndex) -> None:
    stats = compute(FIXTURE, TODAY, days)
    assert list(stats.by_area) == [AREA_1, AREA_2]
    first, second = stats.by_area[AREA_1], stats.by_area[AREA_2]
    assert (first.total, first.completed, first.overdue, first.due_soon) == (4, 0, 1, 1)
    assert (second.total, second.completed, second.finished, second.long_term) == (5, 3, 2, 2)
    assert {k: c.total for k, c in stats.by_unit.items()} == {
        "物业管理科": 3, "饮食服务中心": 2, NO_UNIT: 4}
    assert stats.by_unit["饮食服务中心"].overdue == 1
    assert {k: (c.total, c.completed) for k, c in stats.by_leader.items()} == {
        100: (5, 1), 200: (4, 2)}


def test_count_by_any_key_agrees_with_the_breakdowns(days: WorkdayIndex) -> None:
    # Given the breakdowns compute() makes, count_by() by the same keys counts alike
    stats = compute(FIXTURE, TODAY, days)
    by_unit = count_by(FIXTURE, lambda r: r.unit or NO_UNIT, TODAY, days)
    assert {k: c.as_json() for k, c in by_unit.items()} == {
        k: c.as_json() for k, c in stats.by_unit.items()}
    assert list(count_by(FIXTURE, lambda r: r.area, TODAY, days)) == [AREA_1, AREA_2]
    by_leader = count_by(FIXTURE, lambda r: r.leader_id, TODAY, days)
    assert {k: c.as_json() for k, c in by_leader.items()} == {
        k: c.as_json() for k, c in stats.by_leader.items()}
    assert count_by([], lambda r: r.unit, TODAY, days) == {}


def test_week_on_week_and_the_changes(days: WorkdayIndex) -> None:
    # Given a week earlier: 6 was still in progress and 9 did not exist yet
    before = [r._replace(state=State.IN_PROGRESS, closed_at=None) if r.id == 6 else r
              for r in FIXTURE if r.id != 9]
    previous = compute(before, date(2026, 9, 22), days).counts
    current = compute(FIXTURE, TODAY, days).counts
    # When compared
    delta = week_on_week(current, previous)
    # Then one more measure, one more closed; 6 was overdue then (due 09-10), 1 is now
    assert delta["total"] == 1
    assert delta["completed"] == 1
    assert delta["overdue"] == 0
    assert delta["completion_rate"] == pytest.approx(3 / 9 - 2 / 8, abs=1e-6)
    # on time then: due 3, 5, 6, 8 and only 8 on time (1/4); now 2/5
    assert delta["on_time_rate"] == pytest.approx(0.4 - 0.25, abs=1e-6)
    # And the changes name 6 (in progress → closed) and 9 (new)
    changes = changes_between(before, FIXTURE)
    assert [(c.record.id, c.what, c.before, c.after) for c in changes] == [
        (6, "state", "in_progress", "closed"), (9, "new", None, "in_progress")]
    assert changes[0].describe() == "整改中 → 已销号"


def test_extension_and_reassignment_are_changes() -> None:
    moved = FIXTURE[1]._replace(deadline=date(2026, 10, 30), owner_id=99)
    changes = changes_between([FIXTURE[1]], [moved])
    assert [(c.what, c.before, c.after) for c in changes] == [
        ("extended", "2026-10-09", "2026-10-30"), ("reassigned", "12", "99")]


def test_official_wording_of_the_fixture(days: WorkdayIndex) -> None:
    stats = compute(FIXTURE, TODAY, days)
    assert official_summary(stats.counts, stats.areas, stats.problems, "第五轮巡察") == (
        "针对巡察反馈的2个方面、4个问题、9项整改措施，目前已整改完成2项，占比22.2%；"
        "长期坚持2项，占比22.2%；正在整改5项，占比55.6%。其中逾期未完成1项。")


@pytest.mark.parametrize(("finished", "long_term", "areas", "problems", "expected"), [
    # the seeds: 13 方面、29 项, 26 完成 (89.7%), 3 长期建设 (10.3%)
    (26, 3, 13, 29, "针对巡察反馈的13个方面、29个问题、29项整改措施，目前已整改完成26项，占比89.7%；"
                    "长期坚持3项，占比10.3%。"),
    (5, 2, 3, 5, "针对巡察反馈的3个方面、5个问题、7项整改措施，目前已整改完成5项，占比71.4%；"
                 "长期坚持2项，占比28.6%。"),
    (3, 0, 1, 1, "针对巡察反馈的1个方面、1个问题、3项整改措施，目前已整改完成3项，占比100.0%。"),
])
def test_official_wording_matches_the_reports(finished: int, long_term: int, areas: int,
                                               problems: int, expected: str) -> None:
    counts = Counts(total=finished + long_term, finished=finished, long_term=long_term,
                    completed=finished)
    assert official_summary(counts, areas, problems) == expected


def test_percent_rounds_half_up() -> None:
    assert percent(1, 8) == "12.5%"
    assert percent(1, 16) == "6.3%"  # 6.25 → 6.3, not banker's 6.2
    assert percent(0, 0) == "0%"


def test_empty_snapshot(days: WorkdayIndex) -> None:
    stats = compute([], TODAY, days)
    assert stats.counts.total == 0 and stats.counts.completion_rate == 0.0
    assert stats.counts.on_time_rate is None
    assert official_summary(stats.counts, 0, 0) == (
        "针对巡察反馈的0个方面、0个问题、0项整改措施，目前尚无整改措施。")
