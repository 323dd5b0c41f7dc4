"""回头看, 三方验收 and 协办单位 through the command line (issue 15): what the lifecycle table
cannot say alone, with the CLI's exit codes, and that a refusal writes nothing.

- 回头看: only a closed measure, only the 整改办 (or an admin); ``relapse`` needs a reason,
  reopens the measure and tells owner and leader why; ``ok`` is recorded and settles it.
- 三方验收: with acceptors a submission is verified only when each has verified it; any
  acceptor's reject returns it; the same acceptor twice is refused; ``acceptances`` lists them.
- 协办单位: members of an assisting unit see the measure and may report progress on it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from workflow import db
from workflow.lifecycle import Action
from workflow.models import HistoryEntry, Measure, OutboxItem, OutboxMessage
from workflow.services.measures import ActionRequest, perform

NOW = "2026-12-07T09:30:00+08:00"  # Monday


def _show(rectiflow: Any, measure_id: int) -> dict[str, Any]:
    result = rectiflow("--now", NOW, "measure", "show", str(measure_id), "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def _written(sessions: Any, measure_id: int) -> tuple[int, int, int, str]:
    """(version, history rows, outbox rows, state): what a refusal must leave as it was."""
    with db.transaction(sessions) as session:
        measure = session.get_one(Measure, measure_id)
        history = session.scalar(select(func.count()).select_from(HistoryEntry)
                                 .where(HistoryEntry.measure_id == measure_id))
        outbox = session.scalar(select(func.count()).select_from(OutboxMessage))
        return measure.version, history or 0, outbox or 0, str(measure.state)


def _do(rectiflow: Any, measure_id: int, action: str, who: str, *args: str) -> Any:
    return rectiflow("--now", NOW, "measure", "do", str(measure_id), action,
                     "--as", f"{who}@example.edu.cn", *args)


def _walk(sessions: Any, measure_id: int, steps: list[str], who: str, now: Any) -> None:
    for step in steps:
        with db.transaction(sessions) as session:
            perform(session, ActionRequest(measure_id, Action(step), who, comment="推进"),
                    now=now)


def _items(sessions: Any, rule: str) -> list[tuple[str, int, str]]:
    """(recipient email, measure, reason) of the outbox items of ``rule``."""
    from workflow.models import Person

    with db.transaction(sessions) as session:
        rows = session.execute(
            select(OutboxMessage.recipient_id, OutboxMessage.payload)
            .join(OutboxItem, OutboxItem.message_id == OutboxMessage.id)
            .where(OutboxItem.rule == rule)).all()
        found = []
        for recipient_id, payload in rows:
            email = session.get_one(Person, recipient_id).email
            for item in payload["items"]:
                if item["rule"] == rule:
                    found.append((email, item["measure_id"], item["reason"]))
        return sorted(set(found))


# ------------------------------------------------------------------------------ 回头看


@pytest.fixture
def closed(cast, sessions, now) -> int:  # type: ignore[no-untyped-def]
    _walk(sessions, cast.measure.id, ["start", "submit", "verify", "close"],
          cast.admin.email, now)
    return cast.measure.id


def test_a_relapse_reopens_the_measure_and_tells_owner_and_leader_why(rectiflow, cast, closed,
                                                                    sessions) -> None:
    # When the 整改办 finds the problem back
    result = _do(rectiflow, closed, "recheck", "reviewer", "--result", "relapse",
                 "--comment", "食堂采购台账又出现未登记情况")
    assert result.code == 0, result.err
    # Then the measure is in progress again, with the recheck in its history and on it
    shown = _show(rectiflow, closed)
    assert shown["state"] == "in_progress"
    last = shown["history"][-1]
    assert (last["action"], last["from"], last["to"], last["actor"], last["data"]["result"]) == (
        "recheck", "closed", "in_progress", "reviewer@example.edu.cn", "relapse")
    assert shown["rechecks"][0]["result"] == "relapse"
    # And owner and leader are told, with the reason
    told = _items(sessions, "relapse")
    assert [email for email, _, _ in told] == ["leader@example.edu.cn", "owner@example.edu.cn"]
    assert all("食堂采购台账又出现未登记情况" in reason for _, _, reason in told)
    text = rectiflow("--now", NOW, "measure", "show", str(closed)).out
    assert "回头看" in text and "出现反弹" in text


def test_an_ok_recheck_is_recorded_and_changes_no_state(rectiflow, closed, sessions) -> None:
    before = _written(sessions, closed)
    result = _do(rectiflow, closed, "recheck", "reviewer", "--result", "ok")
    assert result.code == 0, result.err
    shown = _show(rectiflow, closed)
    assert shown["state"] == "closed" and shown["version"] == before[0] + 1
    assert shown["rechecks"] == [{"result": "ok", "at": "2026-12-07T01:30:00+00:00",
                                  "by": "reviewer@example.edu.cn", "comment": None}]
    assert _items(sessions, "relapse") == []


@pytest.mark.parametrize(("who", "args", "code", "message"), [
    ("reviewer", ["--result", "relapse"], 2, "「回头看」需要提供：说明/理由"),
    ("reviewer", ["--result", "relapse", "--comment", "  "], 2, "需要提供：说明/理由"),
    ("reviewer", [], 2, "「回头看」需要提供：回头看结论"),
    ("reviewer", ["--result", "maybe"], 2, "结论「maybe」无效；可选：ok（巩固良好）、relapse（出现反弹）"),
    ("owner", ["--result", "ok"], 3, "无权对措施"),
    ("leader", ["--result", "relapse", "--comment", "x"], 3, "只有整改办、管理员可以执行"),
    ("outsider", ["--result", "ok"], 3, "无权"),
])
def test_bad_rechecks_are_refused_and_write_nothing(rectiflow, closed, sessions, who: str,
                                                    args: list[str], code: int,
                                                    message: str) -> None:
    before = _written(sessions, closed)
    result = _do(rectiflow, closed, "recheck", who, *args)
    assert result.code == code and message in result.err, result.err
    assert _written(sessions, closed) == before


@pytest.mark.parametrize("steps", [[], ["start"], ["start", "submit"],
                                   ["start", "submit", "verify"]])
def test_a_recheck_of_a_measure_not_closed_is_refused(rectiflow, cast, sessions, now,
                                                      steps: list[str]) -> None:
    _walk(sessions, cast.measure.id, steps, cast.admin.email, now)
    before = _written(sessions, cast.measure.id)
    result = _do(rectiflow, cast.measure.id, "recheck", "reviewer", "--result", "ok")
    assert result.code == 2 and "只能在「已销号」状态下进行" in result.err, result.err
    assert _written(sessions, cast.measure.id) == before


def test_a_result_for_another_action_is_refused(rectiflow, cast, sessions) -> None:
    before = _written(sessions, cast.measure.id)
    result = _do(rectiflow, cast.measure.id, "start", "owner", "--result", "ok")
    assert result.code == 2 and "「开始整改」不需要结论" in result.err
    assert _written(sessions, cast.measure.id) == before


# ------------------------------------------------------------------------------ 三方验收


@pytest.fixture
def accepting(rectiflow, cast, sessions, now) -> int:  # type: ignore[no-untyped-def]
    """The campaign's acceptors: the 整改办 (any reviewer), the Secretary by name, and the
    measure's leader; the measure submitted."""
    result = rectiflow("campaign", "set", str(cast.campaign.id),
                       "--acceptors", "整改办,secretary@example.edu.cn、leader")
    assert result.code == 0, result.err
    assert "三方验收：整改办、Secretary、责任领导" in result.out
    assert _do(rectiflow, cast.measure.id, "start", "owner").code == 0
    submitted = _do(rectiflow, cast.measure.id, "submit", "owner", "--comment", "已修订并印发")
    assert submitted.code == 0, submitted.err
    return cast.measure.id


def test_a_submission_is_verified_only_when_every_acceptor_has(rectiflow, accepting,
                                                              sessions) -> None:
    shown = _show(rectiflow, accepting)
    assert [(a["acceptor"], a["accepted"]) for a in shown["acceptors"]] == [
        ("整改办", False), ("Secretary", False), ("责任领导", False)]
    assert shown["acceptances"] == []
    # When two of three have verified, it is still waiting
    for who in ("secretary", "reviewer"):
        result = _do(rectiflow, accepting, "verify", who)
        assert result.code == 0, result.err
    shown = _show(rectiflow, accepting)
    assert shown["state"] == "submitted"
    assert [(a["acceptor"], a["by"]) for a in shown["acceptances"]] == [
        ("Secretary", "secretary@example.edu.cn"), ("整改办", "reviewer@example.edu.cn")]
    assert shown["history"][-1]["data"]["remaining"] == ["relation:leader"]
    assert _items(sessions, "to_close") == []  # nobody is asked to sign off yet
    # When the last one verifies, it is verified and the leader is asked to close it
    assert _do(rectiflow, accepting, "verify", "leader").code == 0
    shown = _show(rectiflow, accepting)
    assert shown["state"] == "verified"
    assert [a["by"] for a in shown["acceptances"]] == [
        "secretary@example.edu.cn", "reviewer@example.edu.cn", "leader@example.edu.cn"]
    assert [e for e, _, _ in _items(sessions, "to_close")] == ["leader@example.edu.cn"]


def test_every_acceptor_is_asked_when_the_owner_submits(accepting, sessions) -> None:
    asked = {email for email, _, _ in _items(sessions, "submitted")}
    assert asked == {"reviewer@example.edu.cn", "secretary@example.edu.cn",
                     "leader@example.edu.cn"}


def test_the_same_acceptor_twice_is_refused(rectiflow, accepting, sessions) -> None:
    assert _do(rectiflow, accepting, "verify", "secretary").code == 0
    before = _written(sessions, accepting)
    again = _do(rectiflow, accepting, "verify", "secretary")
    assert again.code == 2 and "同一验收方不能重复验收" in again.err, again.err
    assert _written(sessions, accepting) == before


def test_any_acceptors_reject_returns_it_and_the_count_starts_again(rectiflow, accepting,
                                                                    sessions, cast,
                                                                    now) -> None:
    assert _do(rectiflow, accepting, "verify", "reviewer").code == 0
    refused = _do(rectiflow, accepting, "reject", "secretary")
    assert refused.code == 2 and "需要提供：说明/理由" in refused.err
    assert _do(rectiflow, accepting, "reject", "secretary", "--comment", "佐证不全").code == 0
    shown = _show(rectiflow, accepting)
    assert shown["state"] == "in_progress"
    _walk(sessions, accepting, ["submit"], cast.owner.email, now)
    assert _show(rectiflow, accepting)["acceptances"] == []  # a new submission, a new count


@pytest.mark.parametrize("who", ["admin", "outsider", "owner"])
def test_who_is_no_acceptor_may_not_verify(rectiflow, accepting, sessions, who: str) -> None:
    before = _written(sessions, accepting)
    result = _do(rectiflow, accepting, "verify", who)
    assert result.code == 3 and "只有验收人可以执行" in result.err, result.err
    assert _written(sessions, accepting) == before


def test_without_acceptors_a_single_verify_stays(rectiflow, cast, sessions, now) -> None:
    _walk(sessions, cast.measure.id, ["start", "submit"], cast.owner.email, now)
    assert _do(rectiflow, cast.measure.id, "verify", "reviewer").code == 0
    shown = _show(rectiflow, cast.measure.id)
    assert shown["state"] == "verified"
    assert "acceptances" not in shown


def test_acceptors_can_be_cleared_and_unknown_ones_are_refused(rectiflow, cast,
                                                               sessions) -> None:
    bad = rectiflow("campaign", "set", str(cast.campaign.id), "--acceptors", "无此人,整改办")
    assert bad.code == 2 and "无此人" in bad.err
    with db.transaction(sessions) as session:
        from workflow.models import Campaign

        assert session.get_one(Campaign, cast.campaign.id).acceptors is None
    assert rectiflow("campaign", "set", str(cast.campaign.id), "--acceptors",
                     "整改办；leader@example.edu.cn").code == 0
    [listed] = json.loads(rectiflow("campaign", "list", "--json").out)
    assert listed["acceptors"] == ["reviewer", "leader@example.edu.cn"]
    cleared = rectiflow("campaign", "set", str(cast.campaign.id), "--acceptors", "")
    assert cleared.code == 0 and "已取消" in cleared.out


# ------------------------------------------------------------------------------ 协办单位


@pytest.fixture
def assisted(ledger, cast) -> Measure:  # type: ignore[no-untyped-def]
    ledger.person("Helper", "owner", unit="采购管理办公室")
    [_, measure] = ledger.measures(cast.campaign, [{
        "leader": cast.leader, "owner": cast.owner, "unit": "饮食服务中心", "seq": "2",
        "assisting": ["采购管理办公室", "财务处"]}])
    return measure


def test_an_assisting_unit_shows_and_its_members_may_report_progress(rectiflow, assisted,
                                                                     sessions) -> None:
    shown = _show(rectiflow, assisted.id)
    assert shown["assisting_units"] == ["采购管理办公室", "财务处"]
    assert "协办部门：采购管理办公室、财务处" in rectiflow(
        "--now", NOW, "measure", "show", str(assisted.id)).out
    # A member of an assisting unit may report progress, an outsider may not
    done = rectiflow("--now", NOW, "measure", "progress", str(assisted.id), "--as",
                     "helper@example.edu.cn", "--text", "已配合完成供应商比选")
    assert done.code == 0, done.err
    refused = rectiflow("--now", NOW, "measure", "progress", str(assisted.id), "--as",
                        "outsider@example.edu.cn", "--text", "x")
    assert refused.code == 3 and "协办单位成员" in refused.err
    assert [p["author"] for p in _show(rectiflow, assisted.id)["progress"]] == [
        "helper@example.edu.cn"]
    # But they may not act as the owner (协办 is not 责任)
    start = _do(rectiflow, assisted.id, "start", "helper")
    assert start.code == 3


# ------------------------------------------------------------------------------ counted


def test_rechecks_and_relapses_are_counted_in_the_digest_and_the_report(rectiflow, cast, closed,
                                                                        ledger, sessions, now,
                                                                        tmp_path) -> None:
    # Given a second closed measure re-checked ok, and the first found relapsed
    [_, second] = ledger.measures(cast.campaign, [
        {"leader": cast.leader, "owner": cast.owner, "seq": "2"}])
    _walk(sessions, second.id, ["start", "submit", "verify", "close"], cast.admin.email, now)
    assert _do(rectiflow, second.id, "recheck", "reviewer", "--result", "ok").code == 0
    assert _do(rectiflow, closed, "recheck", "reviewer", "--result", "relapse",
               "--comment", "又出现未登记").code == 0
    # Then the digest counts the week's rechecks and the relapse (反弹)
    result = rectiflow("digest", "--campaign", str(cast.campaign.id), "--now",
                       "2026-12-07T17:00:00+08:00", "--json")
    assert result.code == 0, result.err
    digest = json.loads(result.out)
    assert (digest["rechecks"], digest["relapses"], digest["relapses_total"]) == (2, 1, 1)
    assert digest["relapsed_items"] == [{"measure_id": closed, "relapses": 1}]
    page = tmp_path / "周报.html"
    assert rectiflow("digest", "--campaign", str(cast.campaign.id), "--now",
                     "2026-12-07T17:00:00+08:00", "--out", str(page)).code == 0
    assert "本周 2 项，发现反弹 1 项；累计反弹 <strong>1</strong> 项次" in page.read_text(
        encoding="utf-8")
    # A week later the week's counts are gone, the relapse still counts
    later = json.loads(rectiflow("digest", "--campaign", str(cast.campaign.id), "--now",
                                 "2026-12-15T17:00:00+08:00", "--json").out)
    assert (later["rechecks"], later["relapses"], later["relapses_total"]) == (0, 0, 1)
    # And the report says so
    out = tmp_path / "报告.md"
    made = rectiflow("--now", "2026-12-07T17:00:00+08:00", "report", str(cast.campaign.id),
                     "--format", "md", "--out", str(out))
    assert made.code == 0, made.err
    assert "已销号事项开展回头看2项次，发现反弹1项次（涉及1项措施），均已重新打开整改。" in out.read_text(
        encoding="utf-8")
    # And the 巡察办's comparison counts the relapse, not the recheck that found none
    from workflow.services import figures

    with sessions() as session:
        tallies = figures.history_tallies(session, None)
    assert tallies["relapses"] == {cast.campaign.id: 1}


# ------------------------------------------------------------------------------ delegation


def _away(sessions: Any, person: Any, delegate: Any) -> None:
    from datetime import date

    from workflow.models import Person
    from workflow.services.people import set_delegate

    with db.transaction(sessions) as session:
        set_delegate(session, session.get_one(Person, person.id),
                     session.get_one(Person, delegate.id), date(2026, 12, 31))


def test_a_delegate_rechecks_and_accepts_with_both_names(rectiflow, cast, closed, ledger,
                                                         sessions, now) -> None:
    # Given the 整改办's reviewer away, the colleague standing in
    _away(sessions, cast.reviewer, cast.colleague)
    result = _do(rectiflow, closed, "recheck", "colleague", "--result", "relapse",
                 "--comment", "抽查发现反弹")
    assert result.code == 0, result.err
    last = _show(rectiflow, closed)["history"][-1]
    assert (last["actor"], last["on_behalf_of"]) == ("colleague@example.edu.cn",
                                                     "reviewer@example.edu.cn")
    # And in a campaign with acceptors, the delegate's acceptance counts as the absent one's
    assert rectiflow("campaign", "set", str(cast.campaign.id), "--acceptors",
                     "secretary@example.edu.cn,leader@example.edu.cn").code == 0
    _away(sessions, cast.secretary, cast.outsider)
    assert _do(rectiflow, closed, "submit", "owner", "--comment", "已再次整改").code == 0
    assert _do(rectiflow, closed, "verify", "outsider").code == 0
    shown = _show(rectiflow, closed)
    assert shown["acceptances"][0]["by"] == "secretary@example.edu.cn"
    assert (shown["history"][-1]["actor"], shown["history"][-1]["on_behalf_of"]) == (
        "outsider@example.edu.cn", "secretary@example.edu.cn")
    text = rectiflow("--now", NOW, "measure", "show", str(closed)).out
    assert "outsider@example.edu.cn（代 secretary@example.edu.cn）" in text
