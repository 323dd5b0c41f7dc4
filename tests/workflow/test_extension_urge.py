"""延期申请 and 催办 through the command line (issue 15): the rules the lifecycle table cannot
say alone (a request only before the deadline and for a later date, one at a time; an urge not
twice inside the cool-down), with the CLI's exit codes, and that a refusal writes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from workflow import db
from workflow.lifecycle import Action
from workflow.models import HistoryEntry, Measure, OutboxMessage
from workflow.services.measures import ActionRequest, perform

NOW = "2026-12-07T09:30:00+08:00"  # Monday; the cast's measure is due Thursday 2026-12-31


def _show(rectiflow: Any, measure_id: int) -> dict[str, Any]:
    result = rectiflow("--now", NOW, "measure", "show", str(measure_id), "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def _written(sessions: Any, measure_id: int) -> tuple[int, int, int]:
    """(version, history rows, outbox rows): what a refusal must leave as it was."""
    with db.transaction(sessions) as session:
        version = session.get_one(Measure, measure_id).version
        history = session.scalar(select(func.count()).select_from(HistoryEntry)
                                 .where(HistoryEntry.measure_id == measure_id))
        outbox = session.scalar(select(func.count()).select_from(OutboxMessage))
    return version, history or 0, outbox or 0


def _do(rectiflow: Any, measure_id: int, action: str, who: str, *args: str,
        now: str = NOW) -> Any:
    return rectiflow("--now", now, "measure", "do", str(measure_id), action,
                     "--as", f"{who}@example.edu.cn", *args)


def test_a_request_waits_on_the_measure_until_the_leader_approves_it(rectiflow, cast) -> None:
    measure_id = cast.measure.id
    assert _show(rectiflow, measure_id)["extension_request"] is None
    # When the owner asks for 2027-01-29 with a reason
    asked = _do(rectiflow, measure_id, "request_extension", "owner", "--deadline", "2027-01-29",
                "--comment", "招标延后，需跨年度完成")
    assert asked.code == 0, asked.err
    # Then the request shows on the measure, the deadline not yet moved
    shown = _show(rectiflow, measure_id)
    assert shown["extension_request"] == {
        "deadline": "2027-01-29", "reason": "招标延后，需跨年度完成",
        "by": "owner@example.edu.cn", "at": "2026-12-07T01:30:00+00:00"}
    assert shown["deadline"] == "2026-12-31"
    text = rectiflow("--now", NOW, "measure", "show", str(measure_id)).out
    assert ("延期申请（待审批）：owner@example.edu.cn 申请延至 2027-01-29，"
            "理由：招标延后，需跨年度完成") in text
    # When the leader approves it
    approved = _do(rectiflow, measure_id, "approve_extension", "leader")
    assert approved.code == 0, approved.err
    # Then the deadline is the one asked for, the original stays on record, no request waits
    shown = _show(rectiflow, measure_id)
    assert (shown["deadline"], shown["original_deadline"], shown["extension_request"]) == (
        "2027-01-29", "2026-12-31", None)
    last = shown["history"][-1]
    assert (last["action"], last["actor"]) == ("approve_extension", "leader@example.edu.cn")
    assert last["data"]["deadline_from"] == "2026-12-31"
    assert last["data"]["deadline_to"] == "2027-01-29"
    assert last["data"]["reason"] == "招标延后，需跨年度完成"


def test_a_declined_request_leaves_the_deadline_and_needs_a_reason(rectiflow, cast,
                                                                   sessions) -> None:
    measure_id = cast.measure.id
    assert _do(rectiflow, measure_id, "request_extension", "owner", "--deadline", "2027-01-29",
               "--comment", "招标延后").code == 0
    before = _written(sessions, measure_id)
    # A decline without a reason is refused (exit 2) and writes nothing
    bare = _do(rectiflow, measure_id, "decline_extension", "leader")
    assert bare.code == 2 and "「不同意延期」需要提供：说明/理由" in bare.err
    assert _written(sessions, measure_id) == before
    # With a reason it is recorded, the request is gone and the deadline stays
    assert _do(rectiflow, measure_id, "decline_extension", "leader",
               "--comment", "采购可先行启动，不同意延期").code == 0
    shown = _show(rectiflow, measure_id)
    assert (shown["deadline"], shown["extension_request"]) == ("2026-12-31", None)
    assert shown["history"][-1]["comment"] == "采购可先行启动，不同意延期"


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--deadline", "2026-12-01", "--comment", "x"], 2, "申请的完成时限 2026-12-01 早于今天 2026-12-07"),
    (["--deadline", "2026-12-31", "--comment", "x"], 2, "应晚于当前时限 2026-12-31"),
    (["--deadline", "2026-12-20", "--comment", "x"], 2, "应晚于当前时限 2026-12-31"),
    (["--deadline", "2027-01-29"], 2, "「申请延期」需要提供：说明/理由"),
    (["--comment", "招标延后"], 2, "「申请延期」需要提供：新的完成时限"),
])
def test_bad_requests_are_refused_and_write_nothing(rectiflow, cast, sessions, args: list[str],
                                                    code: int, message: str) -> None:
    before = _written(sessions, cast.measure.id)
    result = _do(rectiflow, cast.measure.id, "request_extension", "owner", *args)
    assert result.code == code and message in result.err, result.err
    assert _written(sessions, cast.measure.id) == before


@pytest.mark.parametrize(("who", "action", "args"), [
    ("leader", "request_extension", ["--deadline", "2027-01-29", "--comment", "x"]),
    ("reviewer", "request_extension", ["--deadline", "2027-01-29", "--comment", "x"]),
    ("owner", "approve_extension", []),
    ("reviewer", "decline_extension", ["--comment", "x"]),
    ("outsider", "approve_extension", []),
])
def test_the_wrong_person_is_refused_with_exit_3(rectiflow, cast, sessions, who: str,
                                                 action: str, args: list[str]) -> None:
    if action != "request_extension":
        assert _do(rectiflow, cast.measure.id, "request_extension", "owner", "--deadline",
                   "2027-01-29", "--comment", "招标延后").code == 0
    before = _written(sessions, cast.measure.id)
    result = _do(rectiflow, cast.measure.id, action, who, *args)
    assert result.code == 3 and "无权" in result.err, result.err
    assert _written(sessions, cast.measure.id) == before


def test_after_the_deadline_a_request_is_refused(rectiflow, cast, sessions) -> None:
    before = _written(sessions, cast.measure.id)
    # On the deadline day itself a request is still possible; the day after it is not
    late = _do(rectiflow, cast.measure.id, "request_extension", "owner", "--deadline",
               "2027-01-29", "--comment", "来不及", now="2027-01-04T09:00:00+08:00")
    assert late.code == 2 and "完成时限 2026-12-31 已过，不能再申请延期" in late.err
    assert _written(sessions, cast.measure.id) == before
    on_the_day = _do(rectiflow, cast.measure.id, "request_extension", "owner", "--deadline",
                     "2027-01-29", "--comment", "来不及", now="2026-12-31T17:00:00+08:00")
    assert on_the_day.code == 0, on_the_day.err


def test_a_second_request_and_a_decision_without_one_are_refused(rectiflow, cast,
                                                                  sessions) -> None:
    measure_id = cast.measure.id
    # No request waits: the leader has nothing to approve
    nothing = _do(rectiflow, measure_id, "approve_extension", "leader")
    assert nothing.code == 2 and "没有待审批的延期申请" in nothing.err
    assert _do(rectiflow, measure_id, "request_extension", "owner", "--deadline", "2027-01-29",
               "--comment", "招标延后").code == 0
    before = _written(sessions, measure_id)
    again = _do(rectiflow, measure_id, "request_extension", "owner", "--deadline", "2027-02-26",
                "--comment", "再延一个月")
    assert again.code == 2 and "已有一项延期申请待责任领导审批" in again.err
    assert _written(sessions, measure_id) == before
    assert _show(rectiflow, measure_id)["extension_request"]["deadline"] == "2027-01-29"


def test_the_leaders_own_extension_settles_a_waiting_request(rectiflow, cast) -> None:
    assert _do(rectiflow, cast.measure.id, "request_extension", "owner", "--deadline",
               "2027-01-29", "--comment", "招标延后").code == 0
    assert _do(rectiflow, cast.measure.id, "extend", "leader", "--deadline", "2027-01-15",
               "--comment", "给两周").code == 0
    shown = _show(rectiflow, cast.measure.id)
    assert (shown["deadline"], shown["extension_request"]) == ("2027-01-15", None)


# ------------------------------------------------------------------ 催办


def _urge(rectiflow: Any, measure_id: int, who: str, comment: str = "请本周内报送进展",
          now: str = NOW) -> Any:
    return rectiflow("--now", now, "measure", "urge", str(measure_id),
                     "--as", f"{who}@example.edu.cn", "--comment", comment)


@pytest.mark.parametrize(("who", "code"), [
    ("reviewer", 0), ("leader", 0), ("secretary", 0), ("admin", 0),
    ("owner", 3), ("colleague", 3), ("outsider", 3), ("viewer", 3)])
def test_who_may_urge(rectiflow, cast, sessions, who: str, code: int) -> None:
    before = _written(sessions, cast.measure.id)
    result = _urge(rectiflow, cast.measure.id, who)
    assert result.code == code, result.err
    if code:
        assert "无权对措施" in result.err and "执行「催办」" in result.err
        assert _written(sessions, cast.measure.id) == before
    else:
        shown = _show(rectiflow, cast.measure.id)
        assert shown["urges"] == 1
        assert shown["history"][-1]["action"] == "urge"
        assert shown["history"][-1]["comment"] == "请本周内报送进展"


def test_a_second_urge_inside_the_cool_down_is_refused_and_says_when(rectiflow, cast,
                                                                     sessions) -> None:
    assert _urge(rectiflow, cast.measure.id, "reviewer").code == 0
    before = _written(sessions, cast.measure.id)
    # 3 h 59 min later, by someone else: still inside the 4-hour cool-down
    again = _urge(rectiflow, cast.measure.id, "leader", now="2026-12-07T13:29:00+08:00")
    assert again.code == 2
    assert "2026-12-07 13:30 之后才能再次催办" in again.err
    assert _written(sessions, cast.measure.id) == before
    # 4 hours after the first it is allowed, and counted
    later = _urge(rectiflow, cast.measure.id, "leader", now="2026-12-07T13:30:00+08:00")
    assert later.code == 0, later.err
    assert _show(rectiflow, cast.measure.id)["urges"] == 2


def test_the_cool_down_comes_from_the_policy(rectiflow, cast, tmp_path, monkeypatch) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[urge]\ncooldown_hours = 1\n", encoding="utf-8")
    monkeypatch.setenv("RECTIFLOW_CONFIG", str(policy))
    assert _urge(rectiflow, cast.measure.id, "reviewer").code == 0
    assert _urge(rectiflow, cast.measure.id, "reviewer", now="2026-12-07T10:29:00+08:00").code == 2
    assert _urge(rectiflow, cast.measure.id, "reviewer", now="2026-12-07T10:30:00+08:00").code == 0


def test_an_urge_needs_a_text_and_an_open_measure(rectiflow, cast, sessions, now) -> None:
    blank = _urge(rectiflow, cast.measure.id, "reviewer", comment="  ")
    assert blank.code == 2 and "「催办」需要提供：说明/理由" in blank.err
    # a submitted measure waits for the reviewers, not for the owner
    with db.transaction(sessions) as session:
        for action in (Action.START, Action.SUBMIT):
            perform(session, ActionRequest(cast.measure.id, action, cast.owner.email,
                                           comment="已完成"), now=now)
    submitted = _urge(rectiflow, cast.measure.id, "reviewer")
    assert submitted.code == 2 and "当前状态为「待核验」，不能执行「催办」" in submitted.err


def test_urge_json_and_unknown_measure(rectiflow, cast) -> None:
    result = rectiflow("--now", NOW, "measure", "urge", str(cast.measure.id), "--as",
                       "reviewer@example.edu.cn", "--comment", "请抓紧", "--json")
    assert result.code == 0 and json.loads(result.out)["urges"] == 1
    missing = _urge(rectiflow, 99999, "reviewer")
    assert missing.code == 2 and "找不到措施：99999" in missing.err


def test_the_digest_counts_the_weeks_urges(rectiflow, cast, tmp_path) -> None:
    # Given two urges this week (four hours apart) and none the week before
    assert _urge(rectiflow, cast.measure.id, "reviewer").code == 0
    assert _urge(rectiflow, cast.measure.id, "leader", now="2026-12-07T14:00:00+08:00").code == 0
    # When the digest is made on Friday
    out = tmp_path / "digest.html"
    result = rectiflow("digest", "--campaign", str(cast.campaign.id), "--now",
                       "2026-12-11T17:00:00+08:00", "--json", "--out", str(out))
    assert result.code == 0, result.err
    digest = json.loads(result.out)
    # Then it counts them, by measure, and the page says so
    assert digest["urges"] == 2
    assert digest["urged_items"] == [{"measure_id": cast.measure.id, "urges": 2}]
    assert "本周催办</td><td>2 次（涉及 1 项措施）" in out.read_text(encoding="utf-8")
    # And a week later they are no longer this week's
    later = rectiflow("digest", "--campaign", str(cast.campaign.id), "--now",
                      "2026-12-18T17:00:00+08:00", "--json")
    assert json.loads(later.out)["urges"] == 0
