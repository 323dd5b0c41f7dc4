"""The measure lifecycle as one table of data, and the pure checks built on it.

The table below is the single declaration of what may happen to a measure. The CLI help, web
buttons, API and error messages are all read from it. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from workflow.errors import InputError, NotPermitted, TransitionNotAllowed


class State(StrEnum):
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    VERIFIED = "verified"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return STATE_LABELS[self]


STATE_LABELS: Mapping[State, str] = {
    State.ASSIGNED: "已交办",
    State.IN_PROGRESS: "整改中",
    State.SUBMITTED: "待核验",
    State.VERIFIED: "待销号",
    State.CLOSED: "已销号",
}

#: States in which the owner still has work to do (deadline reminders apply).
OPEN_STATES: frozenset[State] = frozenset({State.ASSIGNED, State.IN_PROGRESS})


class Kind(StrEnum):
    IMMEDIATE = "immediate"
    DEADLINE = "deadline"
    LONG_TERM = "long_term"

    @property
    def label(self) -> str:
        return KIND_LABELS[self]


KIND_LABELS: Mapping[Kind, str] = {
    Kind.IMMEDIATE: "立行立改",
    Kind.DEADLINE: "限期整改",
    Kind.LONG_TERM: "长期坚持",
}


class Action(StrEnum):
    START = "start"
    SUBMIT = "submit"
    REJECT = "reject"
    VERIFY = "verify"
    CLOSE = "close"
    REOPEN = "reopen"
    EXTEND = "extend"
    REASSIGN = "reassign"

    @property
    def label(self) -> str:
        return TRANSITIONS[self].label


class Relation(StrEnum):
    """How a person stands to one measure; permissions are granted to relations."""

    OWNER = "owner"
    UNIT_MEMBER = "unit_member"
    REVIEWER = "reviewer"
    LEADER = "leader"
    FIRST_RESPONSIBLE = "first_responsible"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return RELATION_LABELS[self]


RELATION_LABELS: Mapping[Relation, str] = {
    Relation.OWNER: "责任人",
    Relation.UNIT_MEMBER: "责任部门成员",
    Relation.REVIEWER: "整改办",
    Relation.LEADER: "责任领导",
    Relation.FIRST_RESPONSIBLE: "第一责任人",
    Relation.ADMIN: "管理员",
}


class Need(StrEnum):
    """Inputs an action requires besides the person and the measure."""

    COMMENT = "comment"
    DEADLINE = "deadline"
    OWNER = "owner"

    @property
    def label(self) -> str:
        return {Need.COMMENT: "说明/理由", Need.DEADLINE: "新的完成时限",
                Need.OWNER: "新的责任人"}[self]


@dataclass(frozen=True)
class Transition:
    """One row of the lifecycle: who may do what, from where, to where, with which inputs."""

    action: Action
    label: str
    sources: frozenset[State]
    dest: State | None  # None: the state does not change
    who: frozenset[Relation]
    needs: frozenset[Need] = frozenset()
    help: str = ""

    def target(self, current: State) -> State:
        return current if self.dest is None else self.dest


def _t(action: Action, label: str, sources: Iterable[State], dest: State | None,
       who: Iterable[Relation], needs: Iterable[Need] = (), help: str = "") -> Transition:
    return Transition(action, label, frozenset(sources), dest, frozenset(who) | {Relation.ADMIN},
                      frozenset(needs), help)


S, R, N = State, Relation, Need

#: The lifecycle. Admins may do everything (added by ``_t``).
TRANSITIONS: Mapping[Action, Transition] = {t.action: t for t in (
    _t(Action.START, "开始整改", [S.ASSIGNED], S.IN_PROGRESS, [R.OWNER, R.UNIT_MEMBER],
       help="责任人或责任部门成员开始整改"),
    _t(Action.SUBMIT, "提交", [S.IN_PROGRESS], S.SUBMITTED, [R.OWNER], [N.COMMENT],
       help="责任人提交整改情况（须写明进展，可附佐证材料）"),
    _t(Action.REJECT, "退回", [S.SUBMITTED], S.IN_PROGRESS, [R.REVIEWER, R.LEADER], [N.COMMENT],
       help="整改办或责任领导退回，须写明理由"),
    _t(Action.VERIFY, "核验通过", [S.SUBMITTED], S.VERIFIED, [R.REVIEWER, R.LEADER],
       help="整改办或责任领导对账核验通过"),
    _t(Action.CLOSE, "销号", [S.VERIFIED], S.CLOSED, [R.LEADER, R.FIRST_RESPONSIBLE],
       help="责任领导或第一责任人签字销号"),
    _t(Action.REOPEN, "重新打开", [S.VERIFIED, S.CLOSED], S.IN_PROGRESS, [R.LEADER], [N.COMMENT],
       help="责任领导或管理员重新打开，须写明理由"),
    _t(Action.EXTEND, "延期", [S.ASSIGNED, S.IN_PROGRESS], None, [R.LEADER],
       [N.DEADLINE, N.COMMENT], help="责任领导批准延期，须给出新时限和理由"),
    _t(Action.REASSIGN, "改派", [S.ASSIGNED, S.IN_PROGRESS], None, [R.LEADER], [N.OWNER],
       help="责任领导或管理员改派责任人"),
)}


#: History rows no person asks for: the import creating a measure, and a deadline given as
#: "N working days after feedback" counted again once the year's holidays are entered (not an
#: extension: no leader decided it, so it is not counted as 延期).
RECOMPUTE_DEADLINE = "recompute_deadline"
SYSTEM_ACTION_LABELS: Mapping[str, str] = {"create": "交办", RECOMPUTE_DEADLINE: "重算时限"}


def history_label(action: str) -> str:
    """The label of a history row's action, lifecycle or system; the raw name if unknown."""
    for known, transition in TRANSITIONS.items():
        if action == known.value:
            return transition.label
    return SYSTEM_ACTION_LABELS.get(action, action)


def parse_action(name: str) -> Action:
    """Return the Action named ``name`` (code name or Chinese label)."""
    for action, transition in TRANSITIONS.items():
        if name in (action.value, transition.label):
            return action
    names = "、".join(f"{a.value}（{t.label}）" for a, t in TRANSITIONS.items())
    raise InputError(f"未知操作「{name}」；可用操作：{names}", field="action")


def available_actions(state: State, relations: Iterable[Relation]) -> list[Action]:
    """Actions a person with ``relations`` may perform now on a measure in ``state``."""
    rels = set(relations)
    return [a for a, t in TRANSITIONS.items() if state in t.sources and t.who & rels]


def check(action: Action, *, measure_id: int, state: State, person: str,
          relations: Iterable[Relation], provided: Iterable[Need]) -> Transition:
    """Validate an action without side effects; return its Transition or raise why not.

    Order of checks: permission (exit 3), state (exit 2 / HTTP 409), inputs (exit 2 / HTTP 422).
    """
    transition = TRANSITIONS[action]
    if not transition.who & set(relations):
        allowed = [r.label for r in Relation if r in transition.who]
        raise NotPermitted(person, transition.label, measure_id, allowed)
    if state not in transition.sources:
        allowed_from = [s.label for s in State if s in transition.sources]
        raise TransitionNotAllowed(measure_id, action.value, transition.label, state.label,
                                   allowed_from)
    missing = [n for n in Need if n in transition.needs and n not in set(provided)]
    if missing:
        raise InputError(
            f"「{transition.label}」需要提供：{'、'.join(n.label for n in missing)}",
            field=missing[0].value,
        )
    return transition
