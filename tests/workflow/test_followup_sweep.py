"""回头看 and 协办单位 in the sweep (issue 15): a closed measure comes up for a re-check by the
整改办 the policy's months after its closing (per kind; 0: never), once; a re-check found ok
settles it; a relapse closed again comes up again from the new closing. Members of an assisting
unit get copies of what the owner is reminded of."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from workflow import db
from workflow.lifecycle import Action
from workflow.policy import PolicySet, load_policy_file, parse_policy
from workflow.services.measures import ActionRequest, perform
from workflow.services.sweep import reminder_context, sweep
from workflow.timeutil import SHANGHAI

POLICIES = load_policy_file(None)


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


def run_sweep(sessions, now: datetime, policies: PolicySet = POLICIES):
    with db.transaction(sessions, write_lock=True) as session:
        result = sweep(session, reminder_context(session, policies, frozenset()), now=now)
        return [(m.recipient, i["measure_id"], i["rule"], i["reason"])
                for m in result.messages for i in m.payload["items"]]


def act(sessions, measure_id: int, action: Action, who: str, now: datetime, **extra) -> None:
    with db.transaction(sessions) as session:
        perform(session, ActionRequest(measure_id, action, who, comment=extra.pop("comment", "推进"),
                                       **extra), now=now)


@pytest.fixture
def closed_in_june(ledger):
    """Two measures (限期整改 and 长期坚持) closed on Wednesday 2026-06-10."""
    ledger.now = at("2026-05-04 10:00")
    leader = ledger.person("Leader", "leader")
    owner = ledger.person("Owner", "owner", unit="饮食服务中心")
    ledger.person("Reviewer", "reviewer")
    ledger.person("Admin", "admin")
    campaign = ledger.campaign()
    measures = ledger.measures(campaign, [
        {"leader": leader, "owner": owner, "deadline": date(2026, 6, 30), "title": "限期措施"},
        {"leader": leader, "owner": owner, "deadline": date(2026, 6, 30), "title": "长期措施",
         "kind": "long_term"}])
    for measure in measures:
        for step in (Action.START, Action.SUBMIT, Action.VERIFY, Action.CLOSE):
            act(ledger.sessions, measure.id, step, "admin@example.edu.cn", at("2026-06-10 10:00"))
    return [m.id for m in measures]


def followups(messages):
    return [(r, mid, reason) for r, mid, rule, reason in messages if rule == "followup"]


def test_a_closed_measure_comes_up_for_a_recheck_six_months_later_once(sessions,
                                                                       closed_in_june) -> None:
    deadline_measure, long_term = closed_in_june
    # The day before six months have passed, nothing comes up
    assert followups(run_sweep(sessions, at("2026-12-09 09:00"))) == []
    # On Thursday 2026-12-10 the reviewers are asked to re-check both, with the closing day
    found = followups(run_sweep(sessions, at("2026-12-10 09:00")))
    assert [(r, mid) for r, mid, _ in found] == [("reviewer@example.edu.cn", deadline_measure),
                                                 ("reviewer@example.edu.cn", long_term)]
    assert all("已于 2026-06-10 周三 销号，请开展回头看" in reason for _, _, reason in found)
    # And not again
    assert followups(run_sweep(sessions, at("2026-12-11 09:00"))) == []


def test_the_policy_sets_the_months_per_kind_and_zero_switches_it_off(sessions,
                                                                      closed_in_june) -> None:
    deadline_measure, long_term = closed_in_june
    policies = parse_policy(
        {"followup": {"months": 3}, "kind": {"long_term": {"followup": {"months": 0}}}})
    found = followups(run_sweep(sessions, at("2026-09-10 09:00"), policies))
    assert [mid for _, mid, _ in found] == [deadline_measure]


def test_an_ok_recheck_settles_it_and_a_relapse_counts_again_from_the_new_closing(
        sessions, closed_in_june) -> None:
    deadline_measure, long_term = closed_in_june
    run_sweep(sessions, at("2026-06-11 09:00"))  # plans the re-checks
    # The 整改办 re-checks the first early (ok) and finds the second relapsed
    act(sessions, deadline_measure, Action.RECHECK, "reviewer@example.edu.cn",
        at("2026-09-01 10:00"), result="ok", comment="")
    act(sessions, long_term, Action.RECHECK, "reviewer@example.edu.cn", at("2026-09-01 10:00"),
        result="relapse", comment="制度执行出现反复")
    # The relapsed one is fixed and closed again on 2026-09-15
    for step in (Action.SUBMIT, Action.VERIFY, Action.CLOSE):
        act(sessions, long_term, step, "admin@example.edu.cn", at("2026-09-15 10:00"))
    # Six months after the first closing, neither comes up
    assert followups(run_sweep(sessions, at("2026-12-10 09:00"))) == []
    # Six months after the new closing, the relapsed one does
    found = followups(run_sweep(sessions, at("2027-03-15 09:00")))
    assert [mid for _, mid, _ in found] == [long_term]


def test_a_followup_rechecked_before_it_is_sent_is_dropped(sessions, closed_in_june) -> None:
    from sqlalchemy import select

    from workflow.models import OutboxMessage
    from workflow.services.truth import SendTimeCheck

    deadline_measure, _ = closed_in_june
    planned = at("2026-12-10 09:00")
    run_sweep(sessions, planned)
    act(sessions, deadline_measure, Action.RECHECK, "reviewer@example.edu.cn",
        at("2026-12-10 10:00"), result="ok", comment="")
    with db.transaction(sessions) as session:
        from workflow.models import Measure

        [message] = [m for m in session.scalars(select(OutboxMessage))
                     if any(i["rule"] == "followup" for i in m.payload["items"])]
        measures = {m.id: m for m in session.scalars(select(Measure))}
        ctx = reminder_context(session, POLICIES, frozenset())
        revision = SendTimeCheck(ctx).revise(message.payload["items"], measures,
                                             planned_at=planned, now=at("2026-12-10 11:00"))
    assert [i["measure_id"] for i in revision.dropped] == [deadline_measure]
    assert len(revision.kept) == 1


def test_assisting_members_get_copies_of_the_owners_reminders(sessions, ledger) -> None:
    ledger.now = at("2026-09-01 10:00")
    leader = ledger.person("Leader", "leader")
    owner = ledger.person("Owner", "owner", unit="饮食服务中心")
    ledger.person("Helper", "owner", unit="采购管理办公室")
    ledger.person("Other", "owner", unit="财务处")
    campaign = ledger.campaign()
    [measure] = ledger.measures(campaign, [
        {"leader": leader, "owner": owner, "deadline": date(2026, 10, 9),
         "assisting": ["采购管理办公室", "财务处"]}])
    messages = run_sweep(sessions, at("2026-10-13 09:00"))  # three working days overdue
    owner_rules = sorted(rule for r, _, rule, _ in messages if r == "owner@example.edu.cn")
    for copy in ("helper@example.edu.cn", "other@example.edu.cn"):
        mine = [(rule, reason) for r, _, rule, reason in messages if r == copy]
        assert sorted(rule for rule, _ in mine) == owner_rules
        assert all("（协办抄送）" in reason for _, reason in mine)
    # the leader's escalation is not copied
    assert "overdue:3" in owner_rules and measure.id
