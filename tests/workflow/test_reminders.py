"""The reminder planner as a pure function: pinned times, the real Chinese calendar, no database."""

from __future__ import annotations

import gc
from dataclasses import replace
from datetime import date, datetime

import pytest

from workflow.lifecycle import Kind, Relation, State
from workflow.policy import Policy, PolicyError, build_policy, load_policy_file, parse_policy
from workflow.reminders import MeasureSnapshot, Planner, WorkdayIndex, describe
from workflow.timeutil import SHANGHAI, local_date
from workflow.workcalendar import WorkCalendar

POLICY = Policy()


def at(text: str) -> datetime:
    """A Beijing time from 'YYYY-MM-DD HH:MM'."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def planner() -> Planner:
    return Planner(WorkdayIndex(WorkCalendar().is_workday))


def snapshot(state: State = State.IN_PROGRESS, kind: Kind = Kind.DEADLINE,
             deadline: date | None = date(2026, 12, 31), changed: str = "2026-11-02 10:00",
             progress: str | None = None) -> MeasureSnapshot:
    return MeasureSnapshot(1, state, kind, deadline, day(at("2026-11-02 10:00")), day(at(changed)),
                           day(at(progress)) if progress else None)


def day(moment: datetime) -> date:
    return local_date(moment)


# ------------------------------------------------------------------ working-day arithmetic


def test_design_example_before_7_and_3(planner: Planner) -> None:
    # Given the deadline Thursday 2026-12-31 of design.md
    days = planner.days
    # Then before:7 is Tuesday 12-22 and before:3 Monday 12-28
    assert days.nth_before(date(2026, 12, 31), 7) == date(2026, 12, 22)
    assert days.nth_before(date(2026, 12, 31), 3) == date(2026, 12, 28)


@pytest.mark.parametrize(("day", "n", "expected"), [
    (date(2026, 10, 9), 1, date(2026, 10, 8)),    # over nothing
    (date(2026, 10, 9), 3, date(2026, 9, 29)),    # over the National Day week
    (date(2026, 10, 9), 7, date(2026, 9, 22)),    # over Mid-Autumn (09-25) too
])
def test_nth_before_skips_holidays(planner: Planner, day: date, n: int, expected: date) -> None:
    assert planner.days.nth_before(day, n) == expected


@pytest.mark.parametrize(("day", "n", "expected"), [
    (date(2026, 10, 9), 1, date(2026, 10, 10)),   # a working Saturday (调休)
    (date(2026, 10, 9), 3, date(2026, 10, 13)),
    (date(2026, 9, 30), 1, date(2026, 10, 8)),    # over the holiday week
    (date(2026, 12, 30), 3, date(2027, 1, 4)),    # into a fallback year (Mon–Fri)
])
def test_nth_after(planner: Planner, day: date, n: int, expected: date) -> None:
    assert planner.days.nth_after(day, n) == expected


def test_count_between_is_exclusive_of_start(planner: Planner) -> None:
    assert planner.days.count_between(date(2026, 9, 30), date(2026, 10, 8)) == 1
    assert planner.days.count_between(date(2026, 10, 8), date(2026, 10, 8)) == 0
    assert planner.days.count_between(date(2026, 12, 25), date(2027, 1, 5)) == 7


# ------------------------------------------------------------------ deadline reminders


@pytest.mark.parametrize(("now", "rule", "next_at"), [
    ("2026-12-21 09:00", None, "2026-12-22 08:30"),           # nothing due yet
    ("2026-12-22 08:00", None, "2026-12-22 08:30"),           # before the send window
    ("2026-12-22 08:30", "before:7", "2026-12-28 08:30"),
    ("2026-12-29 17:00", "before:3", "2026-12-30 08:30"),     # latest due stage only
    ("2026-12-30 09:00", "before:1", "2026-12-31 08:30"),
    ("2026-12-31 09:00", "before:0", "2027-01-01 08:30"),     # next: overdue:1 (fallback year)
])
def test_before_deadline_stages(planner: Planner, now: str, rule: str | None,
                                next_at: str) -> None:
    plan = planner.plan(snapshot(progress=now), POLICY, at(now))
    rules = [n.rule for n in plan.notices]
    assert rules == ([rule] if rule else [])
    assert plan.next_at == at(next_at)
    for notice in plan.notices:
        assert notice.to == ("owner",)
        assert notice.stage == f"{rule}@2026-12-31"


@pytest.mark.parametrize(("now", "rule", "to", "colour"), [
    ("2026-10-10 09:00", "overdue:1", ("owner", "leader"), "yellow"),   # working Saturday
    ("2026-10-12 09:00", "overdue:1", ("owner", "leader"), "yellow"),
    ("2026-10-13 09:00", "overdue:3", ("owner", "leader", "first_responsible"), "red"),
    ("2026-10-19 09:00", "overdue:3", ("owner", "leader", "first_responsible"), "red"),
    ("2026-10-20 09:00", "overdue:8", ("owner", "leader", "first_responsible"), "red"),
    ("2026-10-27 09:00", "overdue:13", ("owner", "leader", "first_responsible"), "red"),
])
def test_escalation_ladder(planner: Planner, now: str, rule: str, to: tuple[str, ...],
                           colour: str) -> None:
    # Given a measure due Friday 2026-10-09 with progress reported that morning
    plan = planner.plan(snapshot(deadline=date(2026, 10, 9), progress=now), POLICY, at(now))
    [notice] = [n for n in plan.notices if n.rule.startswith("overdue")]
    assert (notice.rule, notice.to, notice.colour) == (rule, to, colour)
    assert notice.stage == f"{rule}@2026-10-09"


def test_a_changed_deadline_gives_new_stage_keys(planner: Planner) -> None:
    # Given an overdue measure
    now = at("2026-10-13 09:00")
    before = planner.plan(snapshot(deadline=date(2026, 10, 9), progress="2026-10-13 08:00"),
                          POLICY, now)
    # When the leader extends it (延期) to the end of the month
    after = planner.plan(snapshot(deadline=date(2026, 10, 30), progress="2026-10-13 08:00"),
                         POLICY, now)
    # Then the overdue escalation is gone and the next stage is before:7 of the new deadline
    assert [n.rule for n in before.notices] == ["overdue:3"]
    assert after.notices == ()
    assert after.next_at == at("2026-10-21 08:30")


@pytest.mark.parametrize("state", [State.SUBMITTED, State.VERIFIED, State.CLOSED])
def test_no_deadline_reminders_once_submitted(planner: Planner, state: State) -> None:
    plan = planner.plan(snapshot(state=state, deadline=date(2026, 10, 9),
                                 changed="2026-10-12 10:00"), POLICY, at("2026-10-12 11:00"))
    assert not [n for n in plan.notices if n.rule.startswith(("before", "overdue"))]


def test_closed_measure_has_nothing_more_to_plan_but_its_recheck(planner: Planner) -> None:
    # Closed on 2026-11-30: nothing due now, the 回头看 six months later (Monday 2027-05-31)
    closed = snapshot(state=State.CLOSED, changed="2026-11-30 15:00")
    plan = planner.plan(closed, POLICY, at("2026-12-01 09:00"))
    assert plan.notices == ()
    assert plan.next_at == at("2027-05-31 08:30")
    # Without re-checks (months 0), or once re-checked since closing, nothing more at all
    off = replace(POLICY, followup_months=0)
    assert planner.plan(closed, off, at("2026-12-01 09:00")) == type(plan)((), None)
    rechecked = replace(closed, rechecked_on=date(2026, 12, 1))
    assert planner.plan(rechecked, POLICY, at("2026-12-01 09:00")) == type(plan)((), None)
    # Closed on 31 August: due on the last day of February, or the next working day
    [notice] = planner.plan(snapshot(state=State.CLOSED, changed="2026-08-31 10:00"), POLICY,
                            at("2027-03-01 09:00")).notices
    assert (notice.rule, notice.stage, notice.to) == (
        "followup", "followup@2026-08-31", (Relation.REVIEWER,))
    assert notice.due_at == at("2027-03-01 08:30")  # 2027-02-28 is a Sunday


# ------------------------------------------------------------------ waiting states and kinds


def test_review_sla_reminds_reviewers_after_two_working_days(planner: Planner) -> None:
    m = snapshot(state=State.SUBMITTED, changed="2026-09-30 15:00")
    # Friday 10-09 is only the 2nd working day after 09-30 (10-08, 10-09)
    assert planner.plan(m, POLICY, at("2026-10-08 09:00")).notices == ()
    [notice] = planner.plan(m, POLICY, at("2026-10-09 09:00")).notices
    assert (notice.rule, notice.to, notice.stage) == ("review_sla", ("reviewer",),
                                                      "review_sla:1@2026-09-30")


def test_closure_sla_reminds_the_leader(planner: Planner) -> None:
    m = snapshot(state=State.VERIFIED, changed="2026-12-01 10:00")
    [notice] = planner.plan(m, POLICY, at("2026-12-04 09:00")).notices
    assert (notice.rule, notice.to) == ("closure_sla", ("leader",))
    # and again three working days later
    [again] = planner.plan(m, POLICY, at("2026-12-09 09:00")).notices
    assert again.stage == "closure_sla:2@2026-12-01"


def test_long_term_checkin_after_closure(planner: Planner) -> None:
    # Given a long-term measure signed off in November
    m = snapshot(state=State.CLOSED, kind=Kind.LONG_TERM, deadline=None,
                 changed="2026-11-10 10:00")
    # Then on the first working day of December the owner is asked for progress
    plan = planner.plan(m, POLICY, at("2026-12-01 09:00"))
    assert [(n.rule, n.stage, n.to) for n in plan.notices] == [
        ("checkin", "checkin@2026-12", ("owner",))]
    assert plan.next_at == at("2027-01-01 08:30")  # fallback year: Mon–Fri


def test_long_term_is_never_overdue_after_verification(planner: Planner) -> None:
    m = snapshot(state=State.VERIFIED, kind=Kind.LONG_TERM, deadline=date(2026, 10, 9),
                 changed="2026-10-08 10:00")
    rules = [n.rule for n in planner.plan(m, POLICY, at("2026-11-02 09:00")).notices]
    assert "overdue" not in " ".join(rules)
    assert set(rules) == {"closure_sla", "checkin"}


def test_immediate_measure_gets_a_daily_nudge_and_a_default_deadline(planner: Planner) -> None:
    # Given a 立行立改 measure with no deadline, assigned Monday 2026-11-02
    m = snapshot(kind=Kind.IMMEDIATE, deadline=None, progress="2026-11-03 08:00")
    assert planner.effective_deadline(m, POLICY) == date(2026, 11, 9)
    plan = planner.plan(m, POLICY, at("2026-11-03 09:00"))
    assert [n.rule for n in plan.notices] == ["nudge"]
    assert plan.notices[0].stage == "nudge@2026-11-03"
    assert plan.next_at == at("2026-11-04 08:30")


@pytest.mark.parametrize(("measure", "moment"), [
    (snapshot(state=State.SUBMITTED, changed="2026-09-30 15:00"), "2026-10-09 09:00"),
    (snapshot(state=State.VERIFIED, changed="2026-12-01 10:00"), "2026-12-04 09:00"),
    (snapshot(deadline=date(2027, 6, 30), progress="2026-11-02 10:00"), "2026-11-16 09:00"),
    (snapshot(state=State.CLOSED, kind=Kind.LONG_TERM, deadline=None,
              changed="2026-11-10 10:00"), "2026-12-01 09:00"),
    (snapshot(state=State.CLOSED, changed="2026-08-31 10:00"), "2027-03-01 09:00"),
    (snapshot(kind=Kind.IMMEDIATE, deadline=None, progress="2026-11-03 08:00"),
     "2026-11-03 09:00"),
])
def test_notices_name_their_rule_as_a_plain_string(planner: Planner, measure: MeasureSnapshot,
                                                   moment: str) -> None:
    """Not a ``Rule`` member: the outbox payload of every item would hold it, and a dict
    holding an object the cyclic collector tracks is tracked too (a burst's 127,000 of them
    made each collection after the sweep walk them)."""
    [notice] = planner.plan(measure, POLICY, at(moment)).notices
    assert type(notice.rule) is str
    assert not gc.is_tracked({"rule": notice.rule, "measure_id": 1})


def test_stagnation_after_ten_working_days_without_progress(planner: Planner) -> None:
    m = snapshot(deadline=date(2027, 6, 30), progress="2026-11-02 10:00",
                 changed="2026-10-01 10:00")
    assert planner.plan(m, POLICY, at("2026-11-13 09:00")).notices == ()
    [notice] = planner.plan(m, POLICY, at("2026-11-16 09:00")).notices
    assert (notice.rule, notice.stage) == ("stagnation", "stagnation:1@2026-11-02")


# ------------------------------------------------------------------ send window and texts


@pytest.mark.parametrize(("now", "expected"), [
    ("2026-12-01 10:00", "2026-12-01 10:00"),   # inside the window
    ("2026-12-01 07:00", "2026-12-01 08:30"),   # before it
    ("2026-12-01 18:00", "2026-12-02 08:30"),   # after it
    ("2026-12-05 10:00", "2026-12-07 08:30"),   # Saturday
    ("2026-09-30 19:00", "2026-10-08 08:30"),   # before the National Day week
    ("2026-10-10 10:00", "2026-10-10 10:00"),   # a working Saturday (调休)
])
def test_send_window(planner: Planner, now: str, expected: str) -> None:
    assert planner.next_send_time(at(now), POLICY) == at(expected)


def test_reasons_say_why(planner: Planner) -> None:
    now = at("2026-10-13 09:00")
    m = snapshot(deadline=date(2026, 10, 9), progress="2026-10-13 08:00")
    [notice] = planner.plan(m, POLICY, now).notices
    assert describe(notice, now, planner.days) == \
        "已逾期 3 个工作日（红牌督办），完成时限 2026-10-09（周五）"
    m = snapshot(deadline=date(2026, 12, 31), progress="2026-12-28 08:00")
    [notice] = planner.plan(m, POLICY, at("2026-12-28 09:00")).notices
    assert describe(notice, at("2026-12-28 09:00"), planner.days) == \
        "距完成时限（2026-12-31 周四）还有 3 个工作日"


# ------------------------------------------------------------------ policy


def test_default_policy_file_matches_the_documented_defaults() -> None:
    policies = load_policy_file(None)
    assert policies.effective(Kind.DEADLINE) == Policy()


def test_kind_and_campaign_overrides() -> None:
    policies = parse_policy({"kind": {"immediate": {"reminders": {"before": [1, 0]}}}})
    assert policies.effective(Kind.IMMEDIATE).before == (1, 0)
    assert policies.effective(Kind.DEADLINE).before == (7, 3, 1, 0)
    campaign = {"sla": {"review": 5}, "kind": {"deadline": {"reminders": {"before": [10]}}}}
    assert policies.effective(Kind.DEADLINE, campaign).before == (10,)
    assert policies.effective(Kind.DEADLINE, campaign).review_sla == 5
    assert policies.effective(Kind.IMMEDIATE, campaign).before == (1, 0)


@pytest.mark.parametrize(("doc", "message"), [
    ({"reminders": {"before": [7, -1]}}, r"reminders\.before\[1\]"),
    ({"reminders": {"before": "7,3"}}, r"reminders\.before"),
    ({"send_window": {"start": "18:00", "end": "08:30"}}, r"send_window"),
    ({"send_window": {"start": "8点"}}, r"send_window\.start"),
    ({"escalation": [{"overdue": 3, "to": ["owner"]}, {"overdue": 1, "to": ["owner"]}]},
     r"严格递增"),
    ({"escalation": [{"overdue": 1, "to": ["boss"]}]}, r"escalation\[0\]\.to.*boss"),
    ({"escalation": [{"overdue": 1, "to": ["owner"], "colour": "blue"}]}, r"colour"),
    ({"sla": {"review": 0}}, r"sla\.review"),
    ({"immediate": {"daily_nudge": "yes"}}, r"immediate\.daily_nudge"),
    ({"remindres": {}}, r"remindres"),
    ({"kind": {"urgent": {}}}, r"kind\.urgent"),
    ({"kind": {"immediate": {"sla": {"closure": 99}}}}, r"kind\.immediate.*sla\.closure"),
])
def test_bad_policy_is_refused_with_its_place(doc: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(doc)


def test_policy_file_errors_name_the_file(tmp_path) -> None:
    bad = tmp_path / "policy.toml"
    bad.write_text("[sla]\nreview = 0\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"policy\.toml.*sla\.review"):
        load_policy_file(bad)
    bad.write_text("[sla\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="TOML"):
        load_policy_file(bad)
    with pytest.raises(PolicyError, match="不存在"):
        load_policy_file(tmp_path / "missing.toml")


def test_build_policy_of_empty_document_is_the_default() -> None:
    assert build_policy({}) == Policy()


# ------------------------------------------------------------------ issue 14: truthful texts


def test_a_deadline_on_a_sunday_has_its_before_0_on_friday_and_before_1_on_thursday(
        planner: Planner) -> None:
    # Given Sunday 2026-12-13 as the deadline
    sunday = date(2026, 12, 13)
    # Then before:0 is the last working day before it and before:1 the one before that
    assert planner.days.before_deadline(sunday, 0) == date(2026, 12, 11)
    assert planner.days.before_deadline(sunday, 1) == date(2026, 12, 10)
    # And each fires on its day, saying what is left
    m = snapshot(deadline=sunday, progress="2026-12-09 08:00")
    for today, rule, says in (
            ("2026-12-10 09:00", "before:1", "距完成时限（2026-12-13 周日）还有 1 个工作日"),
            ("2026-12-11 09:00", "before:0",
             "今天是完成时限（2026-12-13 周日，非工作日）前的最后一个工作日")):
        [notice] = planner.plan(m, POLICY, at(today)).notices
        assert notice.rule == rule
        assert describe(notice, at(today), planner.days) == says


@pytest.mark.parametrize(("rule", "deadline", "today", "group"), [
    ("nudge", date(2026, 12, 31), date(2026, 12, 9), "立行立改"),
    ("nudge", date(2026, 12, 10), date(2026, 12, 9), "今明两天到期"),
    ("before:7", date(2026, 12, 31), date(2026, 12, 22), "即将到期"),
    ("before:1", date(2026, 12, 31), date(2026, 12, 30), "今明两天到期"),
    ("before:3", date(2026, 12, 31), date(2026, 12, 30), "今明两天到期"),  # sent late
    ("before:1", date(2026, 12, 13), date(2026, 12, 10), "今明两天到期"),  # a Sunday deadline
    ("overdue:3", date(2026, 12, 4), date(2026, 12, 9), "严重逾期（红牌）"),
    ("review_sla", None, date(2026, 12, 9), "等待审核/销号"),
])
def test_an_items_group_matches_its_name(planner: Planner, rule: str, deadline: date | None,
                                         today: date, group: str) -> None:
    from workflow.reminders import URGENCY_LABELS
    colour = "red" if rule == "overdue:3" else None
    assert URGENCY_LABELS[planner.urgency(rule, colour, deadline, today)] == group


def test_an_immediate_measure_two_weeks_out_is_nudged_under_its_own_group(
        planner: Planner) -> None:
    m = snapshot(kind=Kind.IMMEDIATE, deadline=date(2026, 12, 31), progress="2026-12-08 08:00")
    [notice] = planner.plan(m, POLICY, at("2026-12-09 09:00")).notices
    assert notice.rule == "nudge" and notice.urgency == 4


def test_warning_tiers_widen_the_audience_and_colour_the_reminder(planner: Planner) -> None:
    from workflow.lifecycle import Relation
    policy = build_policy({"warning": [{"within": 10, "to": ["leader"], "colour": "yellow"},
                                       {"within": 3, "to": ["first_responsible"],
                                        "colour": "red"}]})
    m = snapshot(deadline=date(2026, 12, 31), progress="2026-12-16 08:00")
    expected = {
        "2026-12-17 09:00": ("before:10", (Relation.OWNER, Relation.LEADER), "yellow"),
        "2026-12-22 09:00": ("before:7", (Relation.OWNER, Relation.LEADER), "yellow"),
        "2026-12-28 09:00": ("before:3", (Relation.OWNER, Relation.LEADER,
                                          Relation.FIRST_RESPONSIBLE), "red"),
    }
    for when, (rule, to, colour) in expected.items():
        [notice] = planner.plan(m, policy, at(when)).notices
        assert (notice.rule, notice.to, notice.colour) == (rule, to, colour)
    assert "（红色预警）" in describe(notice, at("2026-12-28 09:00"), planner.days)
    # And the default policy has no tiers: the owner alone, no colour
    [plain] = planner.plan(m, POLICY, at("2026-12-22 09:00")).notices
    assert (plain.to, plain.colour) == ((Relation.OWNER,), None)


@pytest.mark.parametrize(("doc", "message"), [
    ({"warning": [{"within": 10, "to": ["leader"], "colour": "blue"}]}, r"warning\[0\]\.colour"),
    ({"warning": [{"within": 99, "to": ["leader"]}]}, r"warning\[0\]\.within"),
    ({"warning": [{"within": 5, "to": ["boss"]}]}, r"warning\[0\]\.to"),
    ({"warning": [{"within": 5, "to": ["leader"]}, {"within": 5, "to": ["owner"]}]},
     "不能重复"),
    ({"warning": {"within": 5}}, r"\[\[warning\]\]"),
    ({"approval_link": {"valid_workdays": 0}}, r"approval_link\.valid_workdays"),
])
def test_bad_warning_and_link_policy_is_refused_with_its_place(doc: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(doc)


def test_an_approval_link_lives_n_working_days_over_weekends_and_holidays(
        planner: Planner) -> None:
    from workflow.services.approvals import expiry_after_workdays
    expires = expiry_after_workdays(3, planner.days.nth_after)
    assert expires(at("2026-12-10 15:00")) == at("2026-12-15 15:00")  # Thu → Tue
    assert expires(at("2026-09-29 10:00")) == at("2026-10-09 10:00")  # over National Day


def test_deadline_text_is_the_one_way_to_say_a_delay(planner: Planner) -> None:
    from workflow.reminders import deadline_text
    assert deadline_text(date(2026, 12, 1), date(2026, 12, 7), planner.days) == \
        "逾期 4 个工作日（时限 2026-12-01 周二）"
    assert deadline_text(date(2026, 12, 13), date(2026, 12, 11), planner.days) == \
        "今天到期（时限 2026-12-13 周日）"
