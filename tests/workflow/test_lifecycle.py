"""The lifecycle table, checked against an expectation written out here by hand.

The expectation below is the design document's table, transcribed independently of
``workflow.lifecycle``: if someone edits the lifecycle table, these tests say so. The pure tests
exercise ``check``, ``available_actions`` and ``parse_action``; the database tests drive every
action from every state for every kind of person through ``perform``.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from workflow import db
from workflow.errors import InputError, NotPermitted, TransitionNotAllowed
from workflow.importers.ledger import LedgerRow, write_rows
from workflow.lifecycle import (
    ALWAYS_A_CHANGE,
    EVENT_RECIPIENTS,
    HISTORY_KINDS,
    LINK_ACTIONS,
    REPLAY,
    RULE_TRUTH,
    Action,
    ChannelName,
    Former,
    Kind,
    MessageKind,
    Need,
    OutboxStatus,
    Preference,
    Relation,
    Role,
    Rule,
    State,
    SystemAction,
    available_actions,
    check,
    history_actor,
    history_label,
    notifications_for,
    parse_action,
    parse_role,
    rule_family,
)
from workflow.models import Campaign, HistoryEntry, Measure, Person
from workflow.services.audit import verify_history
from workflow.services.measures import ActionRequest, perform
from workflow.services.people import add_person
from workflow.timeutil import SHANGHAI


@dataclass(frozen=True)
class Expect:
    """One row of the design table: from where, to where (None: unchanged), who, what inputs."""

    label: str
    sources: frozenset[str]
    dest: str | None
    who: frozenset[str]  # besides admin, who may do everything
    needs: tuple[str, ...] = ()


def _row(label: str, sources: set[str], dest: str | None, who: set[str],
         needs: tuple[str, ...] = ()) -> Expect:
    return Expect(label, frozenset(sources), dest, frozenset(who | {"admin"}), needs)


#: design.md, "The state machine", copied by hand.
EXPECTED: dict[str, Expect] = {
    "start": _row("开始整改", {"assigned"}, "in_progress", {"owner", "unit_member"}),
    "submit": _row("提交", {"in_progress"}, "submitted", {"owner"}, ("comment",)),
    "reject": _row("退回", {"submitted"}, "in_progress", {"reviewer", "leader", "acceptor"},
                   ("comment",)),
    "verify": _row("核验通过", {"submitted"}, "verified", {"reviewer", "leader", "acceptor"}),
    "close": _row("销号", {"verified"}, "closed", {"leader", "first_responsible"}),
    "reopen": _row("重新打开", {"verified", "closed"}, "in_progress", {"leader"}, ("comment",)),
    "extend": _row("延期", {"assigned", "in_progress"}, None, {"leader"}, ("deadline", "comment")),
    "reassign": _row("改派", {"assigned", "in_progress"}, None, {"leader"}, ("owner",)),
    # issue 15: 延期申请 and 催办
    "request_extension": _row("申请延期", {"assigned", "in_progress"}, None, {"owner"},
                              ("deadline", "comment")),
    "approve_extension": _row("批准延期", {"assigned", "in_progress"}, None, {"leader"}),
    "decline_extension": _row("不同意延期", {"assigned", "in_progress"}, None, {"leader"},
                              ("comment",)),
    "urge": _row("催办", {"assigned", "in_progress"}, None,
                 # the 巡察办 (issue 22) may urge and nothing else
                 {"reviewer", "leader", "first_responsible", "supervisor"}, ("comment",)),
    # 回头看: the state follows the result (RECHECK_DEST); a relapse needs a comment too
    "recheck": _row("回头看", {"closed"}, None, {"reviewer"}, ("result",)),
}
#: 回头看: each result and where it leaves a closed measure.
RECHECK_DEST = {"ok": "closed", "relapse": "in_progress"}
#: 三方验收: in a campaign with acceptors only they verify (an admin who is not one may not).
WHO_WITH_ACCEPTORS = {"verify": frozenset({"acceptor"})}
#: Actions that need an extension request waiting (the others but ``request_extension``, which
#: needs none waiting, do not care).
NEEDS_REQUEST = {"approve_extension", "decline_extension"}
STATES = ["assigned", "in_progress", "submitted", "verified", "closed"]
STATE_LABEL = {"assigned": "已交办", "in_progress": "整改中", "submitted": "待核验",
               "verified": "待销号", "closed": "已销号"}
NEED_LABEL = {"comment": "说明/理由", "deadline": "新的完成时限", "owner": "新的责任人",
              "result": "回头看结论（ok 或 relapse）"}
NEED_ORDER = ["comment", "deadline", "owner", "result"]

#: How each member of the ``cast`` fixture stands to ``cast.measure``.
CAST_RELATIONS: dict[str, frozenset[str]] = {
    "owner": frozenset({"owner", "unit_member"}),  # the owner works in the owning unit
    "colleague": frozenset({"unit_member"}),
    "reviewer": frozenset({"reviewer"}),
    "leader": frozenset({"leader"}),
    "secretary": frozenset({"first_responsible"}),
    "admin": frozenset({"admin"}),
    "outsider": frozenset(),
    "viewer": frozenset(),
    "helper": frozenset({"assisting_member"}),  # in an assisting unit (协办单位)
}

#: The admin's route from a fresh measure to each state.
ROUTE: dict[str, list[str]] = {
    "assigned": [],
    "in_progress": ["start"],
    "submitted": ["start", "submit"],
    "verified": ["start", "submit", "verify"],
    "closed": ["start", "submit", "verify", "close"],
}

NEW_DEADLINE = date(2027, 1, 15)


def allowed_with_request(action: str, pending: bool) -> bool:
    """Approve/decline only while a request waits; a request only while none does."""
    if action in NEEDS_REQUEST:
        return pending
    return not pending if action == "request_extension" else True


def expected_outcome(action: str, state: str, relations: frozenset[str],
                     with_acceptors: bool = False) -> str:
    """``ok``, ``not_permitted`` or ``wrong_state``; permission is checked before the state."""
    row = EXPECTED[action]
    who = WHO_WITH_ACCEPTORS.get(action, row.who) if with_acceptors else row.who
    if not who & relations:
        return "not_permitted"
    if state not in row.sources:
        return "wrong_state"
    return "ok"


# ------------------------------------------------------------------------- pure: the table


def test_the_expectation_covers_every_action_and_state() -> None:
    assert set(EXPECTED) == {a.value for a in Action}
    assert STATES == [s.value for s in State]
    assert set().union(*(r.who for r in EXPECTED.values())) <= {r.value for r in Relation}


@pytest.mark.parametrize("action", list(EXPECTED))
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("relation", [None, *(r.value for r in Relation)])
def test_check_follows_the_table(action: str, state: str, relation: str | None) -> None:
    # Given a person with at most one relation to measure 42, and every input supplied
    relations = frozenset({relation}) if relation else frozenset()
    expected = expected_outcome(action, state, relations)
    row = EXPECTED[action]

    def attempt():  # type: ignore[no-untyped-def]
        return check(Action(action), measure_id=42, state=State(state), person="张三",
                     relations={Relation(r) for r in relations}, provided=set(Need),
                     pending_extension=action in NEEDS_REQUEST,
                     result="relapse" if action == "recheck" else None)

    # When the pure check runs / Then it agrees with the design table
    if expected == "not_permitted":
        with pytest.raises(NotPermitted, match=f"^张三 无权对措施 42 执行「{row.label}」"):
            attempt()
    elif expected == "wrong_state":
        with pytest.raises(TransitionNotAllowed,
                           match=f"^措施 42 当前状态为「{STATE_LABEL[state]}」，"
                                 f"不能执行「{row.label}」"):
            attempt()
    else:
        transition = attempt()
        assert transition.action == action
        assert transition.target(State(state)) == (row.dest or state)
        for result, dest in (RECHECK_DEST.items() if action == "recheck" else ()):
            assert transition.target(State(state), result) == dest


@pytest.mark.parametrize("action", list(EXPECTED))
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("relation", [None, *(r.value for r in Relation)])
def test_check_follows_the_table_with_acceptors(action: str, state: str,
                                                relation: str | None) -> None:
    # Given a campaign with acceptors (三方验收): only they may verify
    relations = frozenset({relation}) if relation else frozenset()
    expected = expected_outcome(action, state, relations, with_acceptors=True)
    call = dict(measure_id=42, state=State(state), person="张三",
                relations={Relation(r) for r in relations}, provided=set(Need),
                pending_extension=action in NEEDS_REQUEST,
                result="ok" if action == "recheck" else None, with_acceptors=True)
    if expected == "not_permitted":
        with pytest.raises(NotPermitted):
            check(Action(action), **call)  # type: ignore[arg-type]
    elif expected == "wrong_state":
        with pytest.raises(TransitionNotAllowed):
            check(Action(action), **call)  # type: ignore[arg-type]
    else:
        assert check(Action(action), **call).action == action  # type: ignore[arg-type]


def test_a_relapse_needs_a_reason_and_a_result_must_be_known() -> None:
    base = dict(measure_id=9, state=State.CLOSED, person="x", relations={Relation.REVIEWER})
    with pytest.raises(InputError, match="「回头看」需要提供：说明/理由") as err:
        check(Action.RECHECK, provided={Need.RESULT}, result="relapse", **base)  # type: ignore[arg-type]
    assert err.value.field == "comment"
    check(Action.RECHECK, provided={Need.RESULT}, result="ok", **base)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="结论「bad」无效") as err:
        check(Action.RECHECK, provided={Need.RESULT, Need.COMMENT}, result="bad", **base)  # type: ignore[arg-type]
    assert err.value.field == "result"


def test_a_refusal_names_the_states_that_would_allow_it() -> None:
    # Given a measure still in progress, When its leader tries to close it
    with pytest.raises(TransitionNotAllowed) as refused:
        check(Action.CLOSE, measure_id=42, state=State.IN_PROGRESS, person="李四",
              relations={Relation.LEADER}, provided=set())
    # Then the message says where it stands and where it must be first
    assert str(refused.value) == ("措施 42 当前状态为「整改中」，不能执行「销号」；"
                                  "该操作只能在「待销号」状态下进行。")
    assert refused.value.measure_id == 42
    assert refused.value.action == "close"


def test_a_refusal_names_who_may_act() -> None:
    with pytest.raises(NotPermitted) as refused:
        check(Action.REOPEN, measure_id=7, state=State.CLOSED, person="王五",
              relations={Relation.OWNER, Relation.UNIT_MEMBER}, provided={Need.COMMENT})
    assert str(refused.value) == "王五 无权对措施 7 执行「重新打开」；只有责任领导、管理员可以执行。"


def test_permission_is_checked_before_state_and_state_before_inputs() -> None:
    # An outsider closing an assigned measure is told about permission, not state
    with pytest.raises(NotPermitted):
        check(Action.CLOSE, measure_id=1, state=State.ASSIGNED, person="x", relations=set(),
              provided=set())
    # The leader extending a submitted measure without inputs is told about the state
    with pytest.raises(TransitionNotAllowed):
        check(Action.EXTEND, measure_id=1, state=State.SUBMITTED, person="x",
              relations={Relation.LEADER}, provided=set())


@pytest.mark.parametrize("action", [a for a, row in EXPECTED.items() if row.needs])
def test_each_missing_input_is_named(action: str) -> None:
    row = EXPECTED[action]
    state = sorted(row.sources)[0]
    for missing in row.needs:
        # Given everything but one input
        provided = {Need(n) for n in row.needs if n != missing}
        # Then the check names the missing input and the field it belongs to
        with pytest.raises(InputError, match=f"「{row.label}」需要提供：{NEED_LABEL[missing]}") as err:
            check(Action(action), measure_id=1, state=State(state), person="x",
                  relations={Relation.ADMIN}, provided=provided,
                  pending_extension=action in NEEDS_REQUEST)
        assert err.value.field == missing
    # And with nothing, every missing input is listed
    with pytest.raises(InputError, match="、".join(NEED_LABEL[n] for n in NEED_ORDER
                                                  if n in row.needs)):
        check(Action(action), measure_id=1, state=State(state), person="x",
              relations={Relation.ADMIN}, provided=set(),
              pending_extension=action in NEEDS_REQUEST)



@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("person", list(CAST_RELATIONS))
@pytest.mark.parametrize("pending", [False, True])
def test_available_actions_follow_the_table(state: str, person: str, pending: bool) -> None:
    relations = CAST_RELATIONS[person]
    expected = [a for a in EXPECTED if expected_outcome(a, state, relations) == "ok"
                and allowed_with_request(a, pending)]
    offered = available_actions(State(state), {Relation(r) for r in relations},
                                pending_extension=pending)
    assert [a.value for a in offered] == expected
    with_acceptors = [a for a in EXPECTED
                      if expected_outcome(a, state, relations, with_acceptors=True) == "ok"
                      and allowed_with_request(a, pending)]
    assert [a.value for a in available_actions(State(state), {Relation(r) for r in relations},
                                               pending_extension=pending,
                                               with_acceptors=True)] == with_acceptors


def test_nobody_without_a_relation_is_offered_anything() -> None:
    assert all(available_actions(s, set()) == [] for s in State)


@pytest.mark.parametrize("action", list(EXPECTED))
def test_parse_action_accepts_code_names_and_chinese_labels(action: str) -> None:
    assert parse_action(action) is Action(action)
    assert parse_action(EXPECTED[action].label) is Action(action)


@pytest.mark.parametrize("name", ["关闭", "Close", "", "done"])
def test_parse_action_refuses_unknown_names_and_lists_the_known_ones(name: str) -> None:
    with pytest.raises(InputError, match=f"^未知操作「{name}」；可用操作：start（开始整改）") as err:
        parse_action(name)
    assert "reassign（改派）" in str(err.value)
    assert err.value.field == "action"


# --------------------------------------------------------- pure: the vocabulary around the table

#: System history kinds: label, and who the history shows for them.
EXPECTED_SYSTEM = {"create": ("交办", "系统导入"), "import": ("导入", "系统导入"),
                   "recompute_deadline": ("重算时限", "系统")}
#: history action → (rule, recipient, urgency) of the notification it causes; others cause none.
#: Every action that changes what someone must do tells them (issue 14).
EXPECTED_NOTIFY = {
    "create": [("assigned", "owner", 3)],
    "reassign": [("assigned", "owner", 3), ("reassigned", "former_owner", 5)],
    "submit": [("submitted", "reviewer", 4), ("submitted", "acceptor", 4)],
    "reject": [("returned", "owner", 2)],
    "reopen": [("reopened", "owner", 2)],
    "verify": [("to_close", "leader", 2)],
    "extend": [("extended", "owner", 3)],
    "close": [("closed", "owner", 5), ("closed", "unit_member", 5)],
    "request_extension": [("extension_request", "leader", 2)],
    "approve_extension": [("extension_approved", "owner", 3)],
    "decline_extension": [("extension_declined", "owner", 2)],
    "urge": [("urge", "owner", 1), ("urge", "leader", 2)],
    "recheck": [("relapse", "owner", 1), ("relapse", "leader", 2)],
}
#: history action → what replay undoes; others undo nothing.
EXPECTED_REPLAY = {"extend": "deadline", "recompute_deadline": "recount", "reassign": "owner",
                   "approve_extension": "deadline"}
HISTORY_ACTIONS = [*EXPECTED, *EXPECTED_SYSTEM]

#: The stored strings of each vocabulary: the database, JSON and CLI contracts.
EXPECTED_VALUES: list[tuple[type[StrEnum], list[str]]] = [
    (SystemAction, ["create", "import", "recompute_deadline"]),
    (Role, ["owner", "reviewer", "leader", "admin", "viewer", "supervisor"]),
    (OutboxStatus, ["pending", "sending", "sent", "dead", "cancelled"]),
    (ChannelName, ["email", "wecom", "wecom_robot", "file"]),
    (Preference, ["auto", "email", "wecom", "both"]),
    (MessageKind, ["reminder", "event", "digest"]),
    (Rule, ["before", "overdue", "nudge", "review_sla", "closure_sla", "stagnation", "checkin",
            "assigned", "returned", "reopened", "to_close", "submitted", "extended", "closed",
            "reassigned", "digest", "extension_request", "extension_approved",
            "extension_declined", "urge", "followup", "relapse"]),
]
LABELLED: list[type[StrEnum]] = [State, Kind, Action, SystemAction, Relation, Need, Role,
                                 OutboxStatus, ChannelName, Preference, Rule]


@pytest.mark.parametrize(("vocabulary", "values"), EXPECTED_VALUES,
                         ids=[v.__name__ for v, _ in EXPECTED_VALUES])
def test_each_vocabulary_keeps_the_stored_strings(vocabulary: type[StrEnum],
                                                  values: list[str]) -> None:
    assert [member.value for member in vocabulary] == values


@pytest.mark.parametrize("vocabulary", LABELLED, ids=[v.__name__ for v in LABELLED])
def test_every_member_has_its_own_label(vocabulary: type[StrEnum]) -> None:
    labels = [member.label for member in vocabulary]  # type: ignore[attr-defined]
    assert all(labels)
    assert len(set(labels)) == len(labels)


def test_history_labels_cover_every_kind_once() -> None:
    # Every history action, lifecycle or system, has a label of its own
    labels = [history_label(name) for name in HISTORY_ACTIONS]
    assert len(set(labels)) == len(labels)
    assert set(HISTORY_KINDS) == set(HISTORY_ACTIONS)
    for name in EXPECTED:
        assert history_label(name) == EXPECTED[name].label
    for name, (label, actor) in EXPECTED_SYSTEM.items():
        assert history_label(name) == label
        assert history_actor(name) == actor
    # A lifecycle row without a person shows the system; an unknown name shows as itself
    assert history_actor("start") == "系统"
    assert history_label("forgotten") == "forgotten"


@pytest.mark.parametrize("action", HISTORY_ACTIONS)
def test_each_history_action_notifies_as_the_table_says(action: str) -> None:
    notices = notifications_for(action)
    assert [(n.rule, n.recipient, n.urgency) for n in notices] == EXPECTED_NOTIFY.get(action, [])
    assert all(n.reason for n in notices)


def test_every_notification_goes_to_a_person_the_measure_names() -> None:
    # The event handler resolves a recipient from the measure's owner and leader columns, the
    # reviewers' role, or the former owner its history row names
    assert EVENT_RECIPIENTS == {Relation.OWNER, Relation.LEADER, Relation.REVIEWER,
                                Relation.UNIT_MEMBER, Relation.ACCEPTOR}
    for kind in HISTORY_KINDS.values():
        for notify in kind.notify:
            assert notify.recipient in EVENT_RECIPIENTS | set(Former), kind.action
            assert notify.rule.label  # a label for the message's group
            assert notify.rule in RULE_TRUTH  # and a truth checked at send time


def test_only_sign_off_and_extension_requests_carry_an_approval_link() -> None:
    # (and the reminder of a sign-off still waiting); a link may only do what needs no input
    assert LINK_ACTIONS == {"to_close": Action.CLOSE, "closure_sla": Action.CLOSE,
                            "extension_request": Action.APPROVE_EXTENSION}
    assert not any(EXPECTED[action.value].needs for action in LINK_ACTIONS.values())


def test_only_a_relapse_and_a_last_acceptance_notify() -> None:
    # a 回头看 found ok tells nobody; a relapse (the measure back in progress) tells owner and
    # leader; a verification still waiting for other acceptors asks nobody to sign off
    assert {n.only_to for n in notifications_for("recheck")} == {State.IN_PROGRESS}
    assert [n.only_to for n in notifications_for("verify")] == [State.VERIFIED]
    assert all(n.only_to is None for a in HISTORY_ACTIONS if a not in ("recheck", "verify")
               for n in notifications_for(a))


def test_the_leader_hears_of_an_urge_from_the_second_on_and_not_of_their_own() -> None:
    [to_owner, to_leader] = notifications_for("urge")
    assert (to_owner.from_nth, to_owner.not_to_actor) == (1, False)
    assert (to_leader.from_nth, to_leader.not_to_actor) == (2, True)


@pytest.mark.parametrize("action", HISTORY_ACTIONS)
def test_each_history_action_replays_as_the_table_says(action: str) -> None:
    assert HISTORY_KINDS[action].replay == EXPECTED_REPLAY.get(action, "none")
    assert REPLAY[action] == EXPECTED_REPLAY.get(action, "none")
    # a measure's creation counts as its last change even though no state was left
    assert (action in ALWAYS_A_CHANGE) == (action in {"create", "import"})


def test_rule_names_with_steps() -> None:
    assert Rule.BEFORE.at(3) == "before:3"
    assert Rule.OVERDUE.at(1) == "overdue:1"
    with pytest.raises(ValueError, match="stagnation has no steps"):
        Rule.STAGNATION.at(2)
    assert rule_family("overdue:12") is Rule.OVERDUE
    assert rule_family("before:0") is Rule.BEFORE
    assert rule_family("to_close") is Rule.TO_CLOSE
    assert rule_family("unheard_of:3") is None
    assert {r for r in Rule if r.follows_deadline} == {Rule.BEFORE, Rule.OVERDUE, Rule.NUDGE}


@pytest.mark.parametrize(("name", "role"), [
    ("owner", Role.OWNER), ("整改办", Role.REVIEWER), ("只读", Role.VIEWER), ("boss", None)])
def test_parse_role_accepts_code_names_and_chinese_labels(name: str, role: Role | None) -> None:
    assert parse_role(name) is role


# --------------------------------------------------------------- through the service, in a DB
#
# Some 330 cases each need a measure in a given state. Building a database and a cast of eight
# people per case would dominate the runtime, so the cases share one database (a module of its
# own: a SQLite file, or a PostgreSQL schema dropped at the end) and each case imports a fresh
# measure and walks it to its state.

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=SHANGHAI)  # a Monday morning in Beijing


@dataclass
class World:
    """One campaign with the usual cast; every case gets its own measure in it."""

    sessions: sessionmaker[Session]
    people: dict[str, Person]
    campaign: Campaign
    #: the same cast in a campaign with acceptors (三方验收): the 整改办 and Leader by name
    accepting: Campaign
    serial: Iterator[int] = field(default_factory=itertools.count)

    def request_extension(self, measure_id: int) -> None:
        """The owner asks for NEW_DEADLINE, so that a request waits for the leader."""
        with db.transaction(self.sessions) as session:
            perform(session, ActionRequest(measure_id, Action.REQUEST_EXTENSION,
                                           self.people["owner"].email, comment="采购周期长",
                                           deadline=NEW_DEADLINE), now=NOW)

    def fresh_measure(self, state: str, accepting: bool = False) -> int:
        """Import a measure like the cast's (owner, leader, unit 饮食服务中心) and walk it there."""
        number = next(self.serial)
        row = LedgerRow(row=number + 2, seq=f"L{number}", area="学习传达有差距",
                        problem="组织学习还不到位", title=f"修订食堂采购管理办法（{number}）",
                        leader_id=self.people["leader"].id, unit="饮食服务中心",
                        owner_id=self.people["owner"].id, deadline=date(2026, 12, 31),
                        kind=Kind.DEADLINE, assisting=("保卫处",))
        with db.transaction(self.sessions) as session:
            write_rows(session, session.merge(self.accepting if accepting else self.campaign),
                       [row], NOW)
            measure_id = session.scalars(select(Measure.id).where(Measure.seq == f"L{number}")).one()
        if accepting:  # only the acceptors verify: the admin walks the rest
            steps = ROUTE[state]
            for step in steps:
                who = ["reviewer", "leader"] if step == "verify" else ["admin"]
                for person in who:
                    with db.transaction(self.sessions) as session:
                        perform(session, ActionRequest(measure_id, Action(step),
                                                       self.people[person].email,
                                                       comment="推进"), now=NOW)
            return measure_id
        walk_to(self.sessions, measure_id, state, self.people["admin"], NOW)
        return measure_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    backend = os.environ.get("RECTIFLOW_TEST_DB", "sqlite")
    schema = f"rf_lifecycle_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    pg_url = os.environ.get("RECTIFLOW_TEST_PG_URL",
                            "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    if backend == "postgresql":
        admin_engine = db.make_engine(pg_url)
        with admin_engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{pg_url}?options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('lifecycle') / 'rectiflow.db'}"
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        sessions = db.session_factory(engine)
        with db.transaction(sessions) as session:
            people = {
                key: add_person(session, name=name, email=f"{name.lower()}@example.edu.cn",
                                roles=[role], unit=unit)
                for key, name, role, unit in [
                    ("secretary", "Secretary", "leader", "后勤党总支"),
                    ("leader", "Leader", "leader", "后勤处"),
                    ("reviewer", "Reviewer", "reviewer", "整改办"),
                    ("owner", "Owner", "owner", "饮食服务中心"),
                    ("colleague", "Colleague", "owner", "饮食服务中心"),
                    ("outsider", "Outsider", "owner", "物业管理科"),
                    ("admin", "Admin", "admin", "整改办"),
                    ("viewer", "Viewer", "viewer", None),
                    ("helper", "Helper", "owner", "保卫处"),
                ]
            }
            campaign = Campaign(title="第五轮巡察反馈问题整改", created_at=NOW,
                                first_responsible_id=people["secretary"].id)
            session.add(campaign)
            accepting = Campaign(title="第五轮巡察（三方验收）", created_at=NOW,
                                 first_responsible_id=people["secretary"].id,
                                 acceptors=["reviewer", people["leader"].id])
            session.add(accepting)
        yield World(sessions, people, campaign, accepting)
    finally:
        engine.dispose()
        if backend == "postgresql":
            with admin_engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin_engine.dispose()


def _count_history(session: Session, measure_id: int) -> int:
    return session.scalar(select(func.count()).select_from(HistoryEntry)
                          .where(HistoryEntry.measure_id == measure_id)) or 0


@dataclass(frozen=True)
class Snapshot:
    state: str
    version: int
    history: int
    deadline: date | None
    owner_id: int | None


def snapshot(sessions: sessionmaker[Session], measure_id: int) -> Snapshot:
    with db.transaction(sessions) as session:
        measure = session.get_one(Measure, measure_id)
        return Snapshot(str(measure.state), measure.version, _count_history(session, measure_id),
                        measure.deadline, measure.owner_id)


def walk_to(sessions: sessionmaker[Session], measure_id: int, state: str, admin: Person,
            now: datetime) -> None:
    """Move a fresh measure to ``state`` the legal way: the admin performs the route."""
    for step in ROUTE[state]:
        with db.transaction(sessions) as session:
            perform(session, ActionRequest(measure_id, Action(step), admin.email,
                                           comment="管理员推进"), now=now)
    reached = snapshot(sessions, measure_id)
    assert (reached.state, reached.version) == (state, 1 + len(ROUTE[state]))


def full_request(action: str, measure_id: int, actor: Person, new_owner: Person) -> ActionRequest:
    """A request carrying every input the action could want."""
    return ActionRequest(measure_id, Action(action), actor.email, comment="依据整改方案办理",
                         deadline=NEW_DEADLINE, owner=new_owner.email,
                         result="relapse" if action == "recheck" else None)


def attempt(sessions: sessionmaker[Session], request: ActionRequest) -> int:
    """Perform ``request`` in its own transaction; return the new history row's id."""
    with db.transaction(sessions) as session:
        return perform(session, request, now=NOW + timedelta(hours=1)).entry.id


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", list(EXPECTED))
@pytest.mark.parametrize("person", list(CAST_RELATIONS))
def test_every_action_from_every_state_by_everyone(world: World, action: str, state: str,
                                                    person: str) -> None:
    # Given a measure walked to ``state`` by the admin (with an extension request waiting
    # where the action decides one and the state allows one)
    measure_id = world.fresh_measure(state)
    if action in NEEDS_REQUEST and state in EXPECTED["request_extension"].sources:
        world.request_extension(measure_id)
    before = snapshot(world.sessions, measure_id)
    actor = world.people[person]
    new_owner = world.people["colleague"]
    request = full_request(action, measure_id, actor, new_owner)
    row = EXPECTED[action]
    expected = expected_outcome(action, state, CAST_RELATIONS[person])

    # When ``person`` tries ``action``
    if expected == "not_permitted":
        with pytest.raises(NotPermitted,
                           match=f"^{actor.name} 无权对措施 {measure_id} 执行「{row.label}」"):
            attempt(world.sessions, request)
    elif expected == "wrong_state":
        with pytest.raises(TransitionNotAllowed,
                           match=f"^措施 {measure_id} 当前状态为「{STATE_LABEL[state]}」，"
                                 f"不能执行「{row.label}」"):
            attempt(world.sessions, request)
    else:
        entry_id = attempt(world.sessions, request)

    after = snapshot(world.sessions, measure_id)
    if expected != "ok":
        # Then a refusal changes nothing
        assert after == before
        return

    # Then the measure moves as the table says, one version on, with one history row
    assert after.state == (RECHECK_DEST["relapse"] if action == "recheck" else row.dest or state)
    assert after.version == before.version + 1
    assert after.history == before.history + 1
    with db.transaction(world.sessions) as session:
        entry = session.get_one(HistoryEntry, entry_id)
        assert (entry.action, entry.from_state, entry.to_state, entry.seq) == (
            action, state, after.state, after.version)
        assert entry.actor_id == actor.id
        assert entry.on_behalf_of_id is None
    if action in ("extend", "approve_extension"):
        assert after.deadline == NEW_DEADLINE
    elif action == "reassign":
        assert after.owner_id == new_owner.id
    else:
        assert (after.deadline, after.owner_id) == (before.deadline, before.owner_id)


#: How each member of the cast stands to a measure of the campaign with acceptors.
ACCEPTING_RELATIONS: dict[str, frozenset[str]] = {
    person: rels | ({"acceptor"} if person in ("reviewer", "leader") else set())
    for person, rels in CAST_RELATIONS.items()}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", ["verify", "reject", "recheck", "close", "reopen"])
@pytest.mark.parametrize("person", list(CAST_RELATIONS))
def test_actions_in_a_campaign_with_acceptors(world: World, action: str, state: str,
                                              person: str) -> None:
    # Given a measure of the campaign with acceptors (整改办 and Leader), walked to ``state``
    measure_id = world.fresh_measure(state, accepting=True)
    before = snapshot(world.sessions, measure_id)
    actor = world.people[person]
    request = full_request(action, measure_id, actor, world.people["colleague"])
    expected = expected_outcome(action, state, ACCEPTING_RELATIONS[person], with_acceptors=True)
    # When ``person`` tries ``action``
    if expected == "not_permitted":
        with pytest.raises(NotPermitted):
            attempt(world.sessions, request)
    elif expected == "wrong_state":
        with pytest.raises(TransitionNotAllowed):
            attempt(world.sessions, request)
    else:
        attempt(world.sessions, request)
    after = snapshot(world.sessions, measure_id)
    if expected != "ok":
        assert after == before  # a refusal changes nothing
        return
    # Then one verification of two leaves it submitted; the rest move as the table says
    row = EXPECTED[action]
    assert after.version == before.version + 1
    if action == "verify":
        assert after.state == "submitted"
    elif action == "recheck":
        assert after.state == "in_progress"
    else:
        assert after.state == (row.dest or state)


MISSING_INPUT_CASES = [
    (action, state, missing)
    for action, row in EXPECTED.items() for missing in row.needs for state in sorted(row.sources)
]


@pytest.mark.parametrize(("action", "state", "missing"), MISSING_INPUT_CASES)
def test_a_missing_input_is_refused_and_changes_nothing(world: World, action: str, state: str,
                                                         missing: str) -> None:
    # Given a measure where ``action`` is allowed, and someone who may do it
    measure_id = world.fresh_measure(state)
    if action in NEEDS_REQUEST:
        world.request_extension(measure_id)
    before = snapshot(world.sessions, measure_id)
    actor = world.people["owner" if action in ("submit", "request_extension")
                         else "reviewer" if action == "recheck" else "leader"]
    inputs: dict[str, object] = {"comment": "理由", "deadline": NEW_DEADLINE,
                                 "owner": world.people["colleague"].email, "result": "relapse"}
    inputs[missing] = "   " if missing == "comment" else None  # blank text counts as missing
    # When they leave one input out
    request = ActionRequest(measure_id, Action(action), actor.email, **inputs)  # type: ignore[arg-type]
    # Then they are told which, and nothing changes
    with pytest.raises(InputError,
                       match=f"「{EXPECTED[action].label}」需要提供：.*{NEED_LABEL[missing]}"):
        attempt(world.sessions, request)
    assert snapshot(world.sessions, measure_id) == before


@pytest.mark.parametrize(("action", "inputs", "message"), [
    ("extend", {"deadline": date(2026, 12, 1)}, "新的完成时限 2026-12-01 早于今天 2026-12-07"),
    ("extend", {"deadline": date(2026, 12, 31)}, "新的完成时限与当前时限相同"),
    ("reassign", {"owner": "owner@example.edu.cn"}, "Owner 已是该措施的责任人"),
    ("reassign", {"owner": "nobody@example.edu.cn"}, "找不到人员：nobody@example.edu.cn"),
])
def test_bad_inputs_are_refused_and_change_nothing(world: World, action: str,
                                                    inputs: dict[str, object], message: str) -> None:
    # Given an assigned measure due 2026-12-31, today being 2026-12-07
    measure_id = world.fresh_measure("assigned")
    before = snapshot(world.sessions, measure_id)
    # When the leader gives an input that is present but wrong
    request = ActionRequest(measure_id, Action(action), world.people["leader"].email,
                            comment="理由", **inputs)  # type: ignore[arg-type]
    # Then it is refused, and nothing changed
    with pytest.raises(InputError, match=message):
        attempt(world.sessions, request)
    assert snapshot(world.sessions, measure_id) == before


def test_the_shared_database_still_verifies(world: World) -> None:
    # After all the cases above, every chain in the shared database is intact
    with db.transaction(world.sessions) as session:
        report = verify_history(session)
    assert report.ok, report.problems
    assert report.measures >= 1


def test_members_of_a_unit_above_the_owning_unit_may_start(sessions, ledger, cast, now) -> None:
    # Given units 总务部 ⊃ 采购科, a measure owned by 采购科, and people in 总务部 and a sibling
    from workflow.services.people import get_or_create_unit

    with db.transaction(sessions) as session:
        department = get_or_create_unit(session, "总务部")
        get_or_create_unit(session, "采购科", parent=department)
        get_or_create_unit(session, "基建科", parent=department)
    head = ledger.person("Head", "owner", unit="总务部")
    sibling = ledger.person("Sibling", "owner", unit="基建科")
    [_, measure] = ledger.measures(cast.campaign, [{
        "leader": cast.leader, "owner": cast.owner, "unit": "采购科", "seq": "2"}])
    # When someone from the sibling unit tries to start it / Then they may not
    with pytest.raises(NotPermitted, match="只有责任人、责任部门成员、管理员可以执行"):
        attempt(sessions, ActionRequest(measure.id, Action.START, sibling.email))
    # When someone from the unit above starts it / Then they may, as a member of the owning unit
    attempt(sessions, ActionRequest(measure.id, Action.START, head.email))
    assert snapshot(sessions, measure.id).state == "in_progress"
