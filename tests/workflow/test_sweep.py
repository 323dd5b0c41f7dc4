"""The sweep on a real database: idempotency, aggregation, channels, delegation, the send window,
re-planning after 延期, and two sweeps at once."""

from __future__ import annotations

import os
import threading
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from notifications.events import make_outbox_writer
from workflow import db
from workflow.events import EventPublisher
from workflow.lifecycle import Action
from workflow.models import Measure, OutboxItem, OutboxMessage
from workflow.policy import load_policy_file
from workflow.services.measures import ActionRequest, perform
from workflow.services.people import set_delegate
from workflow.services.sweep import reminder_context, sweep
from workflow.timeutil import SHANGHAI

BACKEND = os.environ.get("RECTIFLOW_TEST_DB", "sqlite")
POLICIES = load_policy_file(None)
FILE_ONLY: frozenset[str] = frozenset()


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


def run_sweep(sessions, now: datetime, configured: frozenset[str] = FILE_ONLY):
    with db.transaction(sessions, write_lock=True) as session:
        ctx = reminder_context(session, POLICIES, configured)
        result = sweep(session, ctx, now=now)
        return result.as_json(), [(m.recipient, m.channel, m.subject,
                                   [(i["measure_id"], i["rule"], i["reason"])
                                    for i in m.payload["items"]], m.not_before)
                                  for m in result.messages]


def count(sessions, model) -> int:
    with db.transaction(sessions) as session:
        return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def overdue_ledger(ledger):
    """An owner with three measures due Friday 2026-10-09, one leader, a first responsible;
    imported in September."""
    ledger.now = at("2026-09-01 10:00")
    secretary = ledger.person("Secretary", "leader")
    leader = ledger.person("Leader", "leader", wecom_id="leader")
    owner = ledger.person("Owner", "owner", unit="饮食服务中心", wecom_id="owner")
    reviewer = ledger.person("Reviewer", "reviewer")
    campaign = ledger.campaign(first_responsible=secretary)
    measures = ledger.measures(campaign, [
        {"leader": leader, "owner": owner, "deadline": date(2026, 10, 9), "title": f"措施{i}"}
        for i in range(3)])
    return secretary, leader, owner, reviewer, measures


def test_sweep_twice_writes_once(sessions, overdue_ledger):
    # Given three measures three working days overdue
    now = at("2026-10-13 09:00")
    # When the sweep runs
    first, messages = run_sweep(sessions, now)
    # Then the owner, the leader and the first responsible get one message each, listing all three
    assert first == {"messages": 3, "measures": 3}
    by_recipient = {m[0]: m for m in messages}
    assert set(by_recipient) == {"owner@example.edu.cn", "leader@example.edu.cn",
                                 "secretary@example.edu.cn"}
    owner_items = by_recipient["owner@example.edu.cn"][3]
    # (most urgent first; no progress since September also counts as stagnation)
    assert [rule for _, rule, _ in owner_items] == ["overdue:3"] * 3 + ["stagnation"] * 3
    assert "红牌" in by_recipient["owner@example.edu.cn"][2]
    # And the same sweep run again writes nothing
    again, _ = run_sweep(sessions, now)
    assert again == {"messages": 0, "measures": 0}
    items = count(sessions, OutboxItem)
    # Even when every measure is forced due again (a crash before the move, say)
    with db.transaction(sessions) as session:
        for m in session.scalars(select(Measure)):
            m.next_reminder_at = now - timedelta(minutes=1)
    assert run_sweep(sessions, now)[0] == {"messages": 0, "measures": 3}
    assert count(sessions, OutboxItem) == items == 12


def test_channels_follow_configuration_and_preference(sessions, overdue_ledger):
    secretary, leader, owner, *_ = overdue_ledger
    with db.transaction(sessions) as session:
        session.merge(leader).channel_preference = "email"
    now = at("2026-10-13 09:00")
    _, messages = run_sweep(sessions, now, configured=frozenset({"email", "wecom"}))
    channels = sorted((m[0].split("@")[0], m[1]) for m in messages)
    # owner has a WeCom id and no preference: both; leader prefers email; secretary has no WeCom id
    assert channels == [("leader", "email"), ("owner", "email"), ("owner", "wecom"),
                        ("secretary", "email")]


def test_an_absent_leader_escalations_go_to_the_delegate(sessions, ledger, overdue_ledger):
    secretary, leader, owner, reviewer, measures = overdue_ledger
    deputy = ledger.person("Deputy", "leader")
    with db.transaction(sessions) as session:
        set_delegate(session, session.merge(leader), session.merge(deputy), date(2026, 10, 31))
    _, messages = run_sweep(sessions, at("2026-10-12 09:00"))
    recipients = {m[0]: m for m in messages}
    assert "leader@example.edu.cn" not in recipients
    reasons = [r for _, _, r in recipients["deputy@example.edu.cn"][3]]
    assert all("代Leader接收" in r for r in reasons)


def test_sweep_outside_the_window_waits_for_the_morning(sessions, overdue_ledger):
    _, messages = run_sweep(sessions, at("2026-10-13 20:00"))
    assert {m[4] for m in messages} == {at("2026-10-14 08:30")}


def test_extension_replans_and_verification_stops_deadline_reminders(sessions, overdue_ledger):
    secretary, leader, owner, reviewer, measures = overdue_ledger
    now = at("2026-10-13 09:00")
    run_sweep(sessions, now)
    # When the leader extends measure 0 and measure 1 is submitted and verified
    later = now + timedelta(hours=1)
    with db.transaction(sessions) as session:
        perform(session, ActionRequest(measures[0].id, Action.EXTEND, leader.email,
                                       comment="供应商招标延后", deadline=date(2026, 11, 30)),
                now=later)
        for action, who, extra in ((Action.START, owner, {}),
                                   (Action.SUBMIT, owner, {"comment": "已完成"}),
                                   (Action.VERIFY, reviewer, {})):
            perform(session, ActionRequest(measures[1].id, action, who.email, **extra), now=later)
    # Then the next sweep plans them anew: nothing for the extended one, nothing overdue for the
    # verified one; measure 2 has nothing new either
    result, messages = run_sweep(sessions, later + timedelta(minutes=5))
    assert result["measures"] == 2
    assert messages == []
    with db.transaction(sessions) as session:
        extended = session.get(Measure, measures[0].id)
        assert later < extended.next_reminder_at <= at("2026-11-20 08:30")  # before:7 of 11-30
    # And three working days after verification the leader is asked to sign off
    result, messages = run_sweep(sessions, at("2026-10-16 09:00"))
    rules = {(m[0], i[0], i[1]) for m in messages for i in m[3]}
    assert ("leader@example.edu.cn", measures[1].id, "closure_sla") in rules
    assert not [r for r in rules if r[1] in (measures[0].id, measures[1].id)
                and r[2].startswith("overdue")]
    # And the extended one is reminded seven working days before its new deadline
    _, messages = run_sweep(sessions, at("2026-11-20 09:00"))
    assert (measures[0].id, "before:7") in {(i[0], i[1]) for m in messages for i in m[3]}


def test_event_notices_are_written_with_the_action(database, sessions, cast, now):
    # Given sessions whose events reach the outbox writer, as the runtime makes them
    publishing = db.session_factory(
        database.engine, EventPublisher([make_outbox_writer(POLICIES, FILE_ONLY)]))
    with db.transaction(publishing) as session:
        for action, who, extra in ((Action.START, cast.owner, {}),
                                   (Action.SUBMIT, cast.owner, {"comment": "已修订"}),
                                   (Action.VERIFY, cast.reviewer, {})):
            perform(session, ActionRequest(cast.measure.id, action, who.email, **extra),
                    now=now)
    with db.transaction(sessions) as session:
        # the submission told the reviewers; the verification asks the leader to sign off
        to_review, message = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        assert to_review.recipient == cast.reviewer.email
        assert to_review.payload["items"][0]["rule"] == "submitted"
        assert message.recipient == cast.leader.email
        assert message.payload["items"][0]["rule"] == "to_close"
        assert message.kind == "event"


@pytest.mark.skipif(BACKEND != "postgresql", reason="sweeps taking turns: an advisory lock on PostgreSQL")
def test_two_sweeps_at_once_write_each_key_once(sessions, ledger):
    # Given 300 overdue measures across 30 owners
    ledger.now = at("2026-09-01 10:00")
    leader = ledger.person("Leader", "leader")
    owners = [ledger.person(f"Owner{i}", "owner") for i in range(30)]
    campaign = ledger.campaign()
    ledger.measures(campaign, [{"leader": leader, "owner": owners[i % 30],
                                "deadline": date(2026, 10, 9), "title": f"措施{i}"}
                               for i in range(300)])
    now = at("2026-10-13 09:00")
    barrier = threading.Barrier(4)
    results, errors = [], []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(run_sweep(sessions, now)[0])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    # When four sweeps run at the same moment
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then together they handled each measure once and wrote each key once
    assert errors == []
    assert sum(r["measures"] for r in results) == 300
    with db.transaction(sessions) as session:
        keys = session.scalars(select(OutboxItem.key)).all()
        # overdue:3 to owner and leader (this campaign has no first responsible), and
        # stagnation to the owner: three keys per measure
        assert len(keys) == len(set(keys)) == 300 * 3


def test_sweep_cli_dry_run_writes_nothing(rectiflow, sessions, overdue_ledger):
    before = count(sessions, OutboxMessage)
    result = rectiflow("sweep", "--dry-run", "--json", "--now", "2026-10-13T09:00:00+08:00")
    assert result.code == 0, result.err
    preview = result.json()
    assert preview["dry_run"] is True and preview["messages"] == 3
    assert {p["recipient"] for p in preview["preview"]} >= {"owner@example.edu.cn"}
    assert count(sessions, OutboxMessage) == before
    with db.transaction(sessions) as session:
        assert all(m.next_reminder_at is not None and m.next_reminder_at < at("2026-10-13 09:00")
                   for m in session.scalars(select(Measure)))
    human = rectiflow("sweep", "--dry-run", "--now", "2026-10-13T09:00:00+08:00")
    assert "预览（未写入）" in human.out and "为什么" not in human.err
    assert "已逾期 3 个工作日" in human.out


def test_sweep_and_outbox_list_json_contract(rectiflow, overdue_ledger):
    result = rectiflow("sweep", "--json", "--now", "2026-10-13T09:00:00+08:00")
    assert result.code == 0, result.err
    assert {k: result.json()[k] for k in ("messages", "measures")} == {"messages": 3,
                                                                       "measures": 3}
    listed = rectiflow("outbox", "list", "--json", "--status", "pending").json()
    assert len(listed) == 3
    for message in listed:
        assert set(message) >= {"id", "channel", "recipient", "subject", "status", "key",
                                "attempts", "not_before", "measure_ids", "reasons"}
        assert message["channel"] == "file" and message["status"] == "pending"
        assert all(set(r) >= {"measure_id", "rule"} for r in message["reasons"])
    assert rectiflow("outbox", "list", "--json", "--status", "sent").json() == []
    assert rectiflow("outbox", "list", "--status", "bogus").code == 2


def test_bad_policy_file_is_refused_at_start(rectiflow, tmp_path, monkeypatch):
    bad = tmp_path / "policy.toml"
    bad.write_text("[reminders]\nbefore = [7, 3, -1]\n", encoding="utf-8")
    monkeypatch.setenv("RECTIFLOW_CONFIG", str(bad))
    result = rectiflow("sweep", "--json")
    assert result.code == 2
    assert "reminders.before[2]" in result.err


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite's write lock keeps actions out of a sweep")
def test_a_measure_changed_while_it_is_planned_keeps_its_new_reminder_time(
        sessions, overdue_ledger, monkeypatch):
    # Given a sweep that has read three overdue measures and is planning them
    _, _, owner, _, measures = overdue_ledger
    changed = measures[0].id
    acted_at = at("2026-10-13 09:00")
    import workflow.services.sweep as sweep_module

    real_plan_items = sweep_module.plan_items

    def plan_while_the_owner_acts(*args, **kwargs):
        # When the owner starts one of them in another transaction meanwhile
        with db.transaction(sessions) as other:
            perform(other, ActionRequest(changed, Action.START, owner.email), now=acted_at)
        return real_plan_items(*args, **kwargs)

    monkeypatch.setattr(sweep_module, "plan_items", plan_while_the_owner_acts)
    run_sweep(sessions, at("2026-10-13 10:00"))
    # Then the changed measure stays due from the action, for the next sweep to plan afresh,
    # and the other two move on
    with db.transaction(sessions) as session:
        due = dict(session.execute(select(Measure.id, Measure.next_reminder_at)).all())
    assert due[changed] == acted_at
    assert all(due[m.id] > at("2026-10-13 10:00") for m in measures[1:])


def _sweep_in_batches(sessions, now: datetime, batch: int):
    with db.transaction(sessions, write_lock=True) as session:
        ctx = reminder_context(session, POLICIES, FILE_ONLY)
        result = sweep(session, ctx, now=now, batch=batch)
        return result.measures, {m.recipient: sorted(i["measure_id"] for i in m.payload["items"])
                                 for m in result.messages}


def test_a_burst_read_in_batches_still_gives_each_person_one_message(sessions, ledger):
    # Given 23 overdue measures across 3 owners, all due at the same moment
    ledger.now = at("2026-09-01 10:00")
    leader = ledger.person("Leader", "leader")
    owners = [ledger.person(f"Owner{i}", "owner") for i in range(3)]
    campaign = ledger.campaign()
    measures = ledger.measures(campaign, [{"leader": leader, "owner": owners[i % 3],
                                           "deadline": date(2026, 10, 9), "title": f"措施{i}"}
                                          for i in range(23)])
    now = at("2026-10-13 09:00")
    # When the sweep reads them 5 at a time (batches by position: time, then id)
    planned, messages = _sweep_in_batches(sessions, now, batch=5)
    # Then every measure was planned once, and each person got one message listing all of theirs
    assert planned == 23
    ids = [m.id for m in measures]
    assert messages == {
        "leader@example.edu.cn": ids,
        **{f"owner{i}@example.edu.cn": sorted(ids[i::3] * 2) for i in range(3)},  # + stagnation
    }
    with db.transaction(sessions) as session:
        moved = session.scalars(select(Measure.next_reminder_at).select_from(Measure)).all()
        keys = session.scalars(select(OutboxItem.key)).all()
        stored = {m.recipient: sorted(i["measure_id"] for i in m.payload["items"])
                  for m in session.scalars(select(OutboxMessage))}
        urgencies = [[i["urgency"] for i in m.payload["items"]]
                     for m in session.scalars(select(OutboxMessage))]
    assert stored == messages  # as written, read back
    assert all(u == sorted(u) for u in urgencies)  # most urgent first
    assert all(t > now for t in moved)
    assert len(keys) == len(set(keys)) == 23 * 3
    # And a second sweep in batches finds nothing more
    assert _sweep_in_batches(sessions, now, batch=5) == (0, {})


def test_times_are_counted_in_beijing_days(sessions, cast, ledger):
    # Given a measure submitted at 01:00 Beijing time on Friday 2026-10-09, which is still
    # Thursday in UTC
    submitted = at("2026-10-09 01:00")
    *_, measure = ledger.measures(cast.campaign, [{"leader": cast.leader, "owner": cast.owner,
                                                   "seq": "9", "title": "夜间提交的措施"}])
    for action in (Action.START, Action.SUBMIT):
        with db.transaction(sessions) as session:
            perform(session, ActionRequest(measure.id, action, cast.admin.email,
                                           comment="已整改"), now=submitted)
    # When the sweep runs on Tuesday 10-13 (10-10 is a working Saturday, 调休)
    _, messages = run_sweep(sessions, at("2026-10-13 09:00"))
    # Then the reviewer is told it has waited 3 working days since Friday, not 4 since Thursday,
    # on PostgreSQL (the server makes the date) as on SQLite (Python does)
    [review] = [m for m in messages if m[0] == cast.reviewer.email]
    assert [(mid, rule) for mid, rule, _ in review[3]] == [(measure.id, "review_sla")]
    assert review[3][0][2] == "已提交 3 个工作日（自 2026-10-09 周五 起），仍待整改办核验"
    with db.transaction(sessions) as session:
        [key] = session.scalars(select(OutboxItem.key)
                                .where(OutboxItem.measure_id == measure.id)).all()
    assert "@2026-10-09|" in key


@pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL's own statements (workflow.pg)")
def test_a_failing_write_undoes_the_whole_sweep(sessions, overdue_ledger, monkeypatch):
    import workflow.pg.sweep as pg_sweep

    # Given a sweep whose item insert fails on the server (a column that does not exist)
    broken = pg_sweep.INSERT_ITEMS.replace("rule, key)", "rule, no_such_column)", 1)
    monkeypatch.setattr(pg_sweep, "INSERT_ITEMS", broken)
    with db.transaction(sessions) as session:
        before = dict(session.execute(select(Measure.id, Measure.next_reminder_at)).all())
    # When it runs, the error reaches the caller
    with pytest.raises(Exception, match="no_such_column"):
        run_sweep(sessions, at("2026-10-13 09:00"))
    # Then nothing was written: no message, no item, every reminder time as it was
    assert count(sessions, OutboxMessage) == count(sessions, OutboxItem) == 0
    with db.transaction(sessions) as session:
        after = dict(session.execute(select(Measure.id, Measure.next_reminder_at)).all())
    assert after == before
    # And the next sweep, the insert mended, writes everything
    monkeypatch.undo()
    assert run_sweep(sessions, at("2026-10-13 09:00"))[0] == {"messages": 3, "measures": 3}
