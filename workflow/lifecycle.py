"""The measure lifecycle as one table of data, the vocabulary around it, and the pure checks.

The table below is the single declaration of what may happen to a measure: who may, what it
needs, which notification it causes and what rewinding history must undo. The CLI help, web
buttons, API, error messages, event notifications and digest replay are all read from it.
The other names the ledger stores (system history kinds, roles, outbox statuses, channels,
reminder rules) are enums here too, each with the Chinese label people see. Their values are
the strings in the database, JSON and CLI. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from workflow.errors import ExtensionPending, InputError, NotPermitted, TransitionNotAllowed


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
    REQUEST_EXTENSION = "request_extension"
    APPROVE_EXTENSION = "approve_extension"
    DECLINE_EXTENSION = "decline_extension"
    URGE = "urge"
    RECHECK = "recheck"

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
    #: a member of one of the measure's assisting units (协办单位)
    ASSISTING_MEMBER = "assisting_member"
    #: one of the campaign's acceptors (三方验收), by name or by the relation named
    ACCEPTOR = "acceptor"
    #: the 巡察办 above the inspected units: may urge (催办) anywhere, acts on no measure
    SUPERVISOR = "supervisor"

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
    Relation.ASSISTING_MEMBER: "协办单位成员",
    Relation.ACCEPTOR: "验收人",
    Relation.SUPERVISOR: "巡察办",
}


class Need(StrEnum):
    """Inputs an action requires besides the person and the measure."""

    COMMENT = "comment"
    DEADLINE = "deadline"
    OWNER = "owner"
    RESULT = "result"

    @property
    def label(self) -> str:
        return {Need.COMMENT: "说明/理由", Need.DEADLINE: "新的完成时限",
                Need.OWNER: "新的责任人", Need.RESULT: "回头看结论（ok 或 relapse）"}[self]


class Rule(StrEnum):
    """Why a message is sent: a reminder rule family, an event, or the weekly digest.

    Deadline reminders carry their step in the stored name (``before:3``, ``overdue:1``); the
    family is the part before the colon (see ``rule_family``).
    """

    BEFORE = "before"            # N working days before the deadline
    OVERDUE = "overdue"          # N working days overdue: escalation (黄牌/红牌)
    NUDGE = "nudge"              # an immediate measure (立行立改) nudged every working day
    REVIEW_SLA = "review_sla"    # submitted and not yet verified
    CLOSURE_SLA = "closure_sla"  # verified and not yet closed
    STAGNATION = "stagnation"    # no progress reported for too long
    CHECKIN = "checkin"          # a long-term measure's monthly report
    ASSIGNED = "assigned"        # events: a measure given to its owner
    RETURNED = "returned"
    REOPENED = "reopened"
    TO_CLOSE = "to_close"
    SUBMITTED = "submitted"      # a submission waiting for the reviewers (整改办)
    EXTENDED = "extended"        # the deadline moved (延期): old and new date, and why
    CLOSED = "closed"            # signed off (销号): the owner hears it is done
    REASSIGNED = "reassigned"    # the former owner hears the measure has left them
    DIGEST = "digest"            # the weekly digest (每周整改进展通报)
    EXTENSION_REQUEST = "extension_request"    # the owner asks the leader for a later deadline
    EXTENSION_APPROVED = "extension_approved"  # the owner hears the request was approved
    EXTENSION_DECLINED = "extension_declined"  # the owner hears it was declined, and why
    URGE = "urge"                # 催办: a person sends the owner a message now, with a text
    FOLLOWUP = "followup"        # 回头看: a closed measure is due for a re-check by the 整改办
    RELAPSE = "relapse"          # 回头看 found a relapse (反弹): the measure is open again

    @property
    def label(self) -> str:
        return RULE_LABELS[self]

    @property
    def follows_deadline(self) -> bool:
        """True if a changed deadline (延期) starts this rule's reminders afresh."""
        return self in DEADLINE_RULES

    def at(self, step: int) -> str:
        """The stored name of one step of a stepped rule: ``Rule.BEFORE.at(3)`` is ``before:3``."""
        if self not in STEPPED_RULES:
            raise ValueError(f"{self.value} has no steps")
        return f"{self.value}:{step}"


#: Labels by stored name (keys are the enum members, equal to their strings).
RULE_LABELS: Mapping[str, str] = {
    Rule.BEFORE: "到期提醒",
    Rule.OVERDUE: "逾期督办",
    Rule.NUDGE: "立行立改催办",
    Rule.REVIEW_SLA: "待核验超时",
    Rule.CLOSURE_SLA: "待销号超时",
    Rule.STAGNATION: "进展停滞",
    Rule.CHECKIN: "定期报送",
    Rule.ASSIGNED: "新交办",
    Rule.RETURNED: "被退回",
    Rule.REOPENED: "重新打开",
    Rule.TO_CLOSE: "待您销号",
    Rule.SUBMITTED: "待您核验",
    Rule.EXTENDED: "已延期",
    Rule.CLOSED: "已销号",
    Rule.REASSIGNED: "已改派他人",
    Rule.DIGEST: "每周通报",
    Rule.EXTENSION_REQUEST: "延期申请待审批",
    Rule.EXTENSION_APPROVED: "延期已批准",
    Rule.EXTENSION_DECLINED: "延期未获批准",
    Rule.URGE: "催办",
    Rule.FOLLOWUP: "回头看",
    Rule.RELAPSE: "回头看发现反弹",
}
#: Rules whose stored name carries a step (``before:N``, ``overdue:N``).
STEPPED_RULES: frozenset[Rule] = frozenset({Rule.BEFORE, Rule.OVERDUE})
#: Rules whose stage depends on the deadline; a changed deadline (延期) gives them new keys.
DEADLINE_RULES: frozenset[Rule] = frozenset({Rule.BEFORE, Rule.OVERDUE, Rule.NUDGE})


def rule_family(name: str) -> Rule | None:
    """The rule a stored rule name belongs to (``overdue:2`` → ``Rule.OVERDUE``); None if none."""
    try:
        return Rule(name.split(":", 1)[0])
    except ValueError:
        return None


class Detail(StrEnum):
    """What a notification's sentence adds from the history row that caused it."""

    NONE = "none"
    COMMENT = "comment"          # the actor's reason (退回/重新打开)
    DEADLINE = "deadline"        # old and new deadline, and the reason (延期)
    NEW_OWNER = "new_owner"      # whom the measure went to (改派, told to the former owner)


class Former(StrEnum):
    """A person a history row names who no longer stands in a relation to the measure."""

    OWNER = "former_owner"       # the owner before a 改派 (``owner_from``)


@dataclass(frozen=True)
class Notify:
    """One notification a history row causes: which rule, to whom, how urgent, and why;
    ``detail`` is what the sentence adds from the row; ``link`` is the action the message's
    approval link performs, if it carries one. A row may cause several (``Transition.notify``
    is a tuple)."""

    rule: Rule
    recipient: Relation | Former
    urgency: int
    reason: str
    link: Action | None = None
    detail: Detail = Detail.NONE
    #: sent only from this occurrence of the action on (the history row's ``data["nth"]``):
    #: the leader hears of an urge from the second one on
    from_nth: int = 1
    #: not sent when the recipient is the one who acted (a leader urging needs no copy)
    not_to_actor: bool = False
    #: sent only when the action left the measure in this state (a 三方验收 verify that still
    #: waits for other acceptors asks nobody to close; a 回头看 found ``ok`` reopens nothing)
    only_to: State | None = None


class Pending(StrEnum):
    """Whether an action needs an extension request (延期申请) to be waiting for a decision."""

    ANY = "any"          # it does not matter
    REQUIRED = "required"  # only while a request waits (approve, decline)
    NONE = "none"        # only while none waits (a second request is refused)


class Replay(StrEnum):
    """What rewinding a measure past one of its history rows must undo (digest snapshots)."""

    NONE = "none"
    #: the deadline goes back to ``deadline_from`` (a 延期)
    DEADLINE = "deadline"
    #: the deadline goes back to ``deadline_from``, and the original deadline with it when the
    #: recount had moved both (a deadline counted again from the calendar)
    RECOUNT = "recount"
    #: the owner goes back to ``owner_from`` (a 改派)
    OWNER = "owner"


@dataclass(frozen=True)
class Transition:
    """One row of the lifecycle: who may do what, from where, to where, with which inputs,
    whom it notifies and what replaying history past it undoes."""

    action: Action
    label: str
    sources: frozenset[State]
    dest: State | None  # None: the state does not change
    who: frozenset[Relation]
    needs: frozenset[Need] = frozenset()
    help: str = ""
    notify: tuple[Notify, ...] = ()
    replay: Replay = Replay.NONE
    #: a row that counts as a change of the measure even when its state stays the same
    always_a_change: bool = False
    #: whether an extension request must be waiting (or must not be) for this action
    pending: Pending = Pending.ANY
    #: an action whose outcome a person states (回头看: ok or relapse): each result and the
    #: state it leads to (None: the state stays); results in ``comment_for`` need a comment
    results: Mapping[str, State | None] = field(default_factory=dict)
    comment_for: frozenset[str] = frozenset()
    #: who may instead, in a campaign with acceptors (三方验收): only they verify
    who_with_acceptors: frozenset[Relation] | None = None

    def allowed(self, with_acceptors: bool = False) -> frozenset[Relation]:
        """The relations that may take this action (in a campaign with acceptors or not)."""
        if with_acceptors and self.who_with_acceptors is not None:
            return self.who_with_acceptors
        return self.who

    def allowed_with(self, pending_extension: bool) -> bool:
        """True if the action may be taken while an extension request is (not) waiting."""
        if self.pending is Pending.REQUIRED:
            return pending_extension
        if self.pending is Pending.NONE:
            return not pending_extension
        return True

    def target(self, current: State, result: str | None = None) -> State:
        if result is not None and result in self.results:
            dest = self.results[result]
            return current if dest is None else dest
        return current if self.dest is None else self.dest


def _t(action: Action, label: str, sources: Iterable[State], dest: State | None,
       who: Iterable[Relation], needs: Iterable[Need] = (), help: str = "",
       notify: Iterable[Notify] = (), replay: Replay = Replay.NONE,
       pending: Pending = Pending.ANY, results: Mapping[str, State | None] | None = None,
       comment_for: Iterable[str] = (),
       who_with_acceptors: Iterable[Relation] | None = None) -> Transition:
    return Transition(action, label, frozenset(sources), dest, frozenset(who) | {Relation.ADMIN},
                      frozenset(needs), help, tuple(notify), replay, pending=pending,
                      results=dict(results or {}), comment_for=frozenset(comment_for),
                      who_with_acceptors=(None if who_with_acceptors is None
                                          else frozenset(who_with_acceptors)))


S, R, N, U = State, Relation, Need, Rule

#: The lifecycle. Admins may do everything (added by ``_t``).
TRANSITIONS: Mapping[Action, Transition] = {t.action: t for t in (
    _t(Action.START, "开始整改", [S.ASSIGNED], S.IN_PROGRESS, [R.OWNER, R.UNIT_MEMBER],
       help="责任人或责任部门成员开始整改"),
    _t(Action.SUBMIT, "提交", [S.IN_PROGRESS], S.SUBMITTED, [R.OWNER], [N.COMMENT],
       help="责任人提交整改情况（须写明进展，可附佐证材料）",
       notify=[Notify(U.SUBMITTED, R.REVIEWER, 4, "责任人已提交整改情况，请对账核验"),
               # 三方验收: each acceptor is asked too (none in a campaign without acceptors)
               Notify(U.SUBMITTED, R.ACCEPTOR, 4, "责任人已提交整改情况，请作为验收人核验")]),
    _t(Action.REJECT, "退回", [S.SUBMITTED], S.IN_PROGRESS, [R.REVIEWER, R.LEADER, R.ACCEPTOR],
       [N.COMMENT], help="整改办或责任领导退回，须写明理由；设有验收人的专项，任一验收人均可退回",
       notify=[Notify(U.RETURNED, R.OWNER, 2, "整改材料被退回，请按意见修改后重新提交",
                      detail=Detail.COMMENT)]),
    _t(Action.VERIFY, "核验通过", [S.SUBMITTED], S.VERIFIED, [R.REVIEWER, R.LEADER, R.ACCEPTOR],
       help="整改办或责任领导对账核验通过；设有验收人的专项（三方验收）须每位验收人都核验通过",
       notify=[Notify(U.TO_CLOSE, R.LEADER, 2, "已核验通过，待您审阅并销号", link=Action.CLOSE,
                      only_to=S.VERIFIED)],
       # acceptance is personal: an admin who is not an acceptor accepts for nobody
       who_with_acceptors=[R.ACCEPTOR]),
    _t(Action.CLOSE, "销号", [S.VERIFIED], S.CLOSED, [R.LEADER, R.FIRST_RESPONSIBLE],
       help="责任领导或第一责任人签字销号",
       notify=[Notify(U.CLOSED, R.OWNER, 5, "整改措施已销号，感谢您的工作"),
               Notify(U.CLOSED, R.UNIT_MEMBER, 5, "本部门的整改措施已销号")]),
    _t(Action.REOPEN, "重新打开", [S.VERIFIED, S.CLOSED], S.IN_PROGRESS, [R.LEADER], [N.COMMENT],
       help="责任领导或管理员重新打开，须写明理由",
       notify=[Notify(U.REOPENED, R.OWNER, 2, "已销号/核验的措施被重新打开，请继续整改",
                      detail=Detail.COMMENT)]),
    _t(Action.EXTEND, "延期", [S.ASSIGNED, S.IN_PROGRESS], None, [R.LEADER],
       [N.DEADLINE, N.COMMENT], help="责任领导批准延期，须给出新时限和理由",
       notify=[Notify(U.EXTENDED, R.OWNER, 3, "完成时限已延期，请按新时限推进",
                      detail=Detail.DEADLINE)],
       replay=Replay.DEADLINE),
    _t(Action.REASSIGN, "改派", [S.ASSIGNED, S.IN_PROGRESS], None, [R.LEADER], [N.OWNER],
       help="责任领导或管理员改派责任人",
       notify=[Notify(U.ASSIGNED, R.OWNER, 3, "改派给您的整改措施，请按时限推进"),
               Notify(U.REASSIGNED, Former.OWNER, 5, "该措施已改派他人，您无需再办理",
                      detail=Detail.NEW_OWNER)],
       replay=Replay.OWNER),
    _t(Action.REQUEST_EXTENSION, "申请延期", [S.ASSIGNED, S.IN_PROGRESS], None, [R.OWNER],
       [N.DEADLINE, N.COMMENT], help="责任人在完成时限前申请延期，须给出新时限和理由，由责任领导审批",
       notify=[Notify(U.EXTENSION_REQUEST, R.LEADER, 2, "责任人申请延期，请审批",
                      link=Action.APPROVE_EXTENSION, detail=Detail.DEADLINE)],
       pending=Pending.NONE),
    _t(Action.APPROVE_EXTENSION, "批准延期", [S.ASSIGNED, S.IN_PROGRESS], None, [R.LEADER],
       help="责任领导批准延期申请，完成时限改为申请的日期",
       notify=[Notify(U.EXTENSION_APPROVED, R.OWNER, 3, "您的延期申请已批准，请按新时限推进",
                      detail=Detail.DEADLINE)],
       replay=Replay.DEADLINE, pending=Pending.REQUIRED),
    _t(Action.DECLINE_EXTENSION, "不同意延期", [S.ASSIGNED, S.IN_PROGRESS], None, [R.LEADER],
       [N.COMMENT], help="责任领导不同意延期申请，须写明理由；完成时限不变",
       notify=[Notify(U.EXTENSION_DECLINED, R.OWNER, 2, "您的延期申请未获批准，请按原时限推进",
                      detail=Detail.COMMENT)],
       pending=Pending.REQUIRED),
    _t(Action.URGE, "催办", [S.ASSIGNED, S.IN_PROGRESS], None,
       [R.REVIEWER, R.LEADER, R.FIRST_RESPONSIBLE, R.SUPERVISOR], [N.COMMENT],
       help="整改办、责任领导、第一责任人或巡察办催办责任人，须写明催办内容；同一措施两次催办须间隔冷却时间",
       notify=[Notify(U.URGE, R.OWNER, 1, "催办：请抓紧推进整改", detail=Detail.COMMENT),
               Notify(U.URGE, R.LEADER, 2, "再次催办：该措施已被多次催办，请督促责任人",
                      detail=Detail.COMMENT, from_nth=2, not_to_actor=True)]),
    _t(Action.RECHECK, "回头看", [S.CLOSED], None, [R.REVIEWER], [N.RESULT],
       help="整改办对已销号措施开展回头看：巩固良好（ok），或出现反弹（relapse，须写明情况，"
            "措施重新打开为整改中）",
       notify=[Notify(U.RELAPSE, R.OWNER, 1, "回头看发现问题反弹，措施已重新打开，请继续整改",
                      detail=Detail.COMMENT, only_to=S.IN_PROGRESS),
               Notify(U.RELAPSE, R.LEADER, 2, "回头看发现问题反弹，措施已重新打开，请督促整改",
                      detail=Detail.COMMENT, only_to=S.IN_PROGRESS)],
       results={"ok": None, "relapse": S.IN_PROGRESS}, comment_for=["relapse"]),
)}

#: What a 回头看 result means, in Chinese (``recheck --result``).
RECHECK_RESULTS: Mapping[str, str] = {"ok": "巩固良好", "relapse": "出现反弹"}


class SystemAction(StrEnum):
    """History rows no person asks for (the ``action`` column beside the lifecycle's)."""

    CREATE = "create"                          # a ledger import creating a measure
    IMPORT = "import"                          # a report import creating a measure
    RECOMPUTE_DEADLINE = "recompute_deadline"  # a deadline counted again from the calendar

    @property
    def label(self) -> str:
        return SYSTEM_ROWS[self].label


@dataclass(frozen=True)
class SystemRow:
    """One kind of history row the system writes: its label, who the history shows for it,
    whom it notifies and what replaying history past it undoes."""

    action: SystemAction
    label: str
    actor: str  # shown where a person's name would be
    help: str = ""
    notify: tuple[Notify, ...] = ()
    replay: Replay = Replay.NONE
    always_a_change: bool = False


#: A deadline given as "N working days after feedback" is counted again once the year's
#: holidays are entered: not an extension (no leader decided it, so it is not counted as 延期).
SYSTEM_ROWS: Mapping[SystemAction, SystemRow] = {row.action: row for row in (
    SystemRow(SystemAction.CREATE, "交办", "系统导入", help="从整改台账导入，交办给责任人",
              notify=(Notify(U.ASSIGNED, R.OWNER, 3, "新交办的整改措施，请按时限推进"),),
              always_a_change=True),
    SystemRow(SystemAction.IMPORT, "导入", "系统导入", help="从整改报告导入，按报告所述状态建立",
              always_a_change=True),
    SystemRow(SystemAction.RECOMPUTE_DEADLINE, "重算时限", "系统",
              help="录入节假日后按工作日重新计算完成时限", replay=Replay.RECOUNT),
)}

_KINDS: list[Transition | SystemRow] = [*TRANSITIONS.values(), *SYSTEM_ROWS.values()]
#: Every kind of history row, lifecycle or system, by its stored name.
HISTORY_KINDS: Mapping[str, Transition | SystemRow] = {kind.action: kind for kind in _KINDS}
#: What a history row shows as its actor when no person is recorded on it.
SYSTEM_ACTOR = "系统"


def history_label(action: str) -> str:
    """The label of a history row's action, lifecycle or system; the raw name if unknown."""
    kind = HISTORY_KINDS.get(action)
    return action if kind is None else kind.label


def history_actor(action: str) -> str:
    """Who a history row shows as its actor when no person is recorded on it."""
    kind = HISTORY_KINDS.get(action)
    return kind.actor if isinstance(kind, SystemRow) else SYSTEM_ACTOR


def notifications_for(action: str) -> tuple[Notify, ...]:
    """The notifications a history action causes (none for an unknown action)."""
    kind = HISTORY_KINDS.get(action)
    return () if kind is None else kind.notify


def actions_replaying(*effects: Replay) -> tuple[str, ...]:
    """The stored names of the history actions whose replay effect is one of ``effects``."""
    return tuple(name for name, kind in HISTORY_KINDS.items() if kind.replay in effects)


#: Notification rules whose items carry an approval link, and the action the link performs.
LINK_ACTIONS: Mapping[str, Action] = {
    **{notify.rule: notify.link for kind in _KINDS for notify in kind.notify
       if notify.link is not None},
    # the reminder of a sign-off still waiting is as useful with the link as the first request
    Rule.CLOSURE_SLA: Action.CLOSE}

@dataclass(frozen=True)
class LinkChoice:
    """What the page of a one-time link offers: the link's own action, and the action that
    refuses it where the lifecycle has one, each named on its button."""

    accept_button: str
    refusal: Action | None
    refuse_button: str
    #: the button in the message that opens the page
    message_button: str


#: A link made to close can also send the measure back: a verified measure returns to the
#: owner only through 重新打开 (the table's way back from verified; the leader's alone, so a
#: first responsible's close link offers no 退回). An extension link can decline.
LINK_CHOICES: Mapping[Action, LinkChoice] = {
    Action.CLOSE: LinkChoice("确认销号", Action.REOPEN, "退回整改", "销号或退回"),
    Action.APPROVE_EXTENSION: LinkChoice("确认批准延期", Action.DECLINE_EXTENSION, "不同意延期",
                                         "审批延期"),
}


def link_choice(action: Action) -> LinkChoice:
    """The choice a link for ``action`` offers (an action without an entry: itself alone)."""
    label = TRANSITIONS[action].label
    return LINK_CHOICES.get(action, LinkChoice(f"确认{label}", None, "", label))


#: Replay effect and "always a change" of every history action, for the digest's hot loop.
REPLAY: Mapping[str, Replay] = {name: kind.replay for name, kind in HISTORY_KINDS.items()}
ALWAYS_A_CHANGE: frozenset[str] = frozenset(
    name for name, kind in HISTORY_KINDS.items() if kind.always_a_change)


# ------------------------------------------------------------------ people, messages, channels


class Role(StrEnum):
    """A person's standing role (``Person.roles``); relations to one measure derive from them."""

    OWNER = "owner"
    REVIEWER = "reviewer"
    LEADER = "leader"
    ADMIN = "admin"
    VIEWER = "viewer"
    #: 巡察办: sees every inspected unit, compares them, urges and issues 督办 documents
    SUPERVISOR = "supervisor"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS: Mapping[str, str] = {
    Role.OWNER: "责任人",
    Role.REVIEWER: "整改办",
    Role.LEADER: "责任领导",
    Role.ADMIN: "管理员",
    Role.VIEWER: "只读",
    Role.SUPERVISOR: "巡察办",
}
#: Roles that see every measure of every campaign of the whole installation.
SEE_EVERYTHING_ROLES: frozenset[Role] = frozenset({Role.ADMIN, Role.SUPERVISOR})
#: Roles that see every measure of the campaigns of their own inspected unit (their unit or an
#: ancestor of it is the campaign's ``inspected_unit``) and of campaigns without one.
SEE_ALL_ROLES: frozenset[Role] = frozenset({Role.ADMIN, Role.REVIEWER, Role.VIEWER,
                                            Role.SUPERVISOR})
#: Relations a reminder may be addressed to (the policy's escalation ``to``): the people a
#: measure names, its campaign's first responsible, and the reviewers (整改办).
REMINDER_RECIPIENTS: tuple[Relation, ...] = (
    Relation.OWNER, Relation.LEADER, Relation.FIRST_RESPONSIBLE, Relation.REVIEWER)
#: Relations a transition's notification may be addressed to: the people the measure names,
#: the reviewers (整改办) for a submission, and the owning unit's members (each person once:
#: the owner hears as the owner).
EVENT_RECIPIENTS: frozenset[Relation] = frozenset({Relation.OWNER, Relation.LEADER,
                                                   Relation.REVIEWER, Relation.UNIT_MEMBER,
                                                   Relation.ACCEPTOR})
#: Relations a campaign's acceptors (三方验收) may name besides people: the 整改办 (anyone
#: with the reviewer role), the measure's leader, the campaign's first responsible.
ACCEPTOR_RELATIONS: tuple[Relation, ...] = (
    Relation.REVIEWER, Relation.LEADER, Relation.FIRST_RESPONSIBLE)


def parse_role(name: str) -> Role | None:
    """The role named ``name`` (code name or Chinese label); None if there is none."""
    for role in Role:
        if name in (role.value, role.label):
            return role
    return None


class OutboxStatus(StrEnum):
    """Where an outbox message stands: pending → sending → sent, or → dead."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"
    #: not sent: nothing in it was still true at send time (``info["dropped"]`` says why)
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return OUTBOX_STATUS_LABELS[self]


OUTBOX_STATUS_LABELS: Mapping[str, str] = {
    OutboxStatus.PENDING: "待发送",
    OutboxStatus.SENDING: "发送中",
    OutboxStatus.SENT: "已发送",
    OutboxStatus.DEAD: "失败",
    OutboxStatus.CANCELLED: "已作废（内容已不成立）",
}


class MessageKind(StrEnum):
    """What wrote an outbox message: the sweep's reminders, a transition's event, the digest."""

    REMINDER = "reminder"
    EVENT = "event"
    DIGEST = "digest"


class ChannelName(StrEnum):
    """A way a message leaves rectiflow (``OutboxMessage.channel``)."""

    EMAIL = "email"
    WECOM = "wecom"              # a WeCom application message to one person
    WECOM_ROBOT = "wecom_robot"  # the campaign group's robot
    FILE = "file"                # written to disk when no real channel is configured

    @property
    def label(self) -> str:
        return CHANNEL_LABELS[self]


CHANNEL_LABELS: Mapping[str, str] = {
    ChannelName.EMAIL: "邮件",
    ChannelName.WECOM: "企业微信",
    ChannelName.WECOM_ROBOT: "企业微信群",
    ChannelName.FILE: "本地文件",
}


class Preference(StrEnum):
    """How a person wants to be reached (``Person.channel_preference``)."""

    AUTO = "auto"
    EMAIL = "email"
    WECOM = "wecom"
    BOTH = "both"

    @property
    def label(self) -> str:
        return PREFERENCE_LABELS[self]


PREFERENCE_LABELS: Mapping[str, str] = {
    Preference.AUTO: "按配置（邮件和企业微信都发）",
    Preference.EMAIL: "只发邮件",
    Preference.WECOM: "只发企业微信",
    Preference.BOTH: "邮件和企业微信都发",
}


def parse_action(name: str) -> Action:
    """Return the Action named ``name`` (code name or Chinese label)."""
    for action, transition in TRANSITIONS.items():
        if name in (action.value, transition.label):
            return action
    names = "、".join(f"{a.value}（{t.label}）" for a, t in TRANSITIONS.items())
    raise InputError(f"未知操作「{name}」；可用操作：{names}", field="action")


def available_actions(state: State, relations: Iterable[Relation], *,
                      pending_extension: bool = False, with_acceptors: bool = False
                      ) -> list[Action]:
    """Actions a person with ``relations`` may perform now on a measure in ``state`` (with an
    extension request waiting for a decision or not, in a campaign with acceptors or not)."""
    rels = set(relations)
    return [a for a, t in TRANSITIONS.items() if state in t.sources
            and t.allowed(with_acceptors) & rels and t.allowed_with(pending_extension)]


def check(action: Action, *, measure_id: int, state: State, person: str,
          relations: Iterable[Relation], provided: Iterable[Need],
          pending_extension: bool = False, result: str | None = None,
          with_acceptors: bool = False) -> Transition:
    """Validate an action without side effects; return its Transition or raise why not.

    Order of checks: permission (exit 3), state and a waiting extension request (exit 2 /
    HTTP 409), inputs (exit 2 / HTTP 422).
    """
    transition = TRANSITIONS[action]
    who = transition.allowed(with_acceptors)
    if not who & set(relations):
        allowed = [r.label for r in Relation if r in who]
        raise NotPermitted(person, transition.label, measure_id, allowed)
    if state not in transition.sources:
        allowed_from = [s.label for s in State if s in transition.sources]
        raise TransitionNotAllowed(measure_id, action.value, transition.label, state.label,
                                   allowed_from)
    if not transition.allowed_with(pending_extension):
        raise ExtensionPending(measure_id, transition.label, pending_extension)
    needed = set(transition.needs)
    if result is not None and transition.results and result not in transition.results:
        choices = "、".join(f"{k}（{RECHECK_RESULTS.get(k, k)}）" for k in transition.results)
        raise InputError(f"「{transition.label}」的结论「{result}」无效；可选：{choices}",
                         field="result")
    if result in transition.comment_for:
        needed.add(Need.COMMENT)
    missing = [n for n in Need if n in needed and n not in set(provided)]
    if missing:
        raise InputError(
            f"「{transition.label}」需要提供：{'、'.join(n.label for n in missing)}",
            field=missing[0].value,
        )
    return transition


# ------------------------------------------------------------------ 督办 documents


class DocumentKind(StrEnum):
    """A formal 督办 document an escalation stage may issue (五书制: 通知书 → 提醒书 → 告诫书 →
    问责建议书); numbered per kind and year (``〔2026〕7号``)."""

    NOTICE = "notice"                  # 督办通知书
    REMINDER = "reminder"              # 督办提醒书
    WARNING = "warning"                # 督办告诫书
    ACCOUNTABILITY = "accountability"  # 问责建议书

    @property
    def label(self) -> str:
        return DOCUMENT_KINDS[self].label


@dataclass(frozen=True)
class DocumentForm:
    """What one kind of 督办 document says besides the facts of the measure: its title and
    what it requires of the unit (``{reply_due}`` and ``{issuer}`` are filled in)."""

    kind: DocumentKind
    label: str
    requirement: str


DOCUMENT_KINDS: Mapping[DocumentKind, DocumentForm] = {form.kind: form for form in (
    DocumentForm(DocumentKind.NOTICE, "督办通知书",
                 "请你单位高度重视，立即组织力量推进整改，并于{reply_due}前将整改进展情况和逾期原因"
                 "书面报送{issuer}（回执）。"),
    DocumentForm(DocumentKind.REMINDER, "督办提醒书",
                 "该事项经督办仍未完成整改。请你单位主要负责人亲自过问，于{reply_due}前完成整改，"
                 "或书面说明逾期原因、整改措施和完成时间安排，报送{issuer}（回执）。"),
    DocumentForm(DocumentKind.WARNING, "督办告诫书",
                 "该事项经督办、提醒仍未完成整改，现予以告诫。请你单位于{reply_due}前完成整改并书面"
                 "报送{issuer}（回执）；逾期仍未完成的，将按规定提出问责建议。"),
    DocumentForm(DocumentKind.ACCOUNTABILITY, "问责建议书",
                 "该事项经督办、提醒、告诫仍未完成整改，建议按照有关规定对相关责任人予以问责。"
                 "请于{reply_due}前将处理意见书面反馈{issuer}（回执）。"),
)}


def parse_document_kind(name: str) -> DocumentKind | None:
    """The document kind named ``name`` (code name or Chinese label); None if there is none."""
    for kind, form in DOCUMENT_KINDS.items():
        if name in (kind.value, form.label):
            return kind
    return None


#: Who sees a measure's 督办 documents (the measure page, the download) and who may record the
#: reply (回执) to one: the supervised unit answers, the 整改办 may record an answer on paper.
NOTICE_READERS: frozenset[Relation] = frozenset({
    Relation.OWNER, Relation.UNIT_MEMBER, Relation.LEADER, Relation.FIRST_RESPONSIBLE,
    Relation.REVIEWER, Relation.ADMIN, Relation.SUPERVISOR})
#: Who may issue a 督办 document by hand (besides the sweep's escalation stages): the 巡察办,
#: the 整改办 of the campaign's inspected unit, admins.
NOTICE_ISSUERS: frozenset[Relation] = frozenset({
    Relation.SUPERVISOR, Relation.REVIEWER, Relation.ADMIN})
NOTICE_REPLIERS: frozenset[Relation] = frozenset({
    Relation.OWNER, Relation.UNIT_MEMBER, Relation.REVIEWER, Relation.ADMIN})


# ------------------------------------------------------------------ what keeps a message true


class Timing(StrEnum):
    """What the send time must still be for an item of a rule to hold."""

    ANY = "any"
    NOT_PAST_DUE = "not_past_due"    # on or before the deadline's last working day
    PAST_DUE = "past_due"            # after the deadline
    NO_PROGRESS_SINCE = "no_progress_since"  # nothing reported since the item was planned
    REQUEST_WAITING = "request_waiting"  # the extension request planned for still waits


@dataclass(frozen=True)
class Truth:
    """When an item planned for a rule is still true at send time: the measure's state is one
    of ``states``; with ``same_version`` nothing has happened to it since (a 退回 answered by a
    new submission is no longer news); with ``same_deadline`` its deadline is the one planned
    for; ``timing`` as above; with ``same_person`` the recipient still holds the relation the
    item was meant for (the owner of a measure since reassigned is not reminded)."""

    states: frozenset[State]
    same_version: bool = False
    same_deadline: bool = False
    timing: Timing = Timing.ANY
    same_person: bool = True


_OPEN = OPEN_STATES
#: Each rule's truth; the deliverer drops items whose truth no longer holds (rule families by
#: their stored name's part before the colon). Rules not listed always hold (the digest).
RULE_TRUTH: Mapping[Rule, Truth] = {
    Rule.BEFORE: Truth(_OPEN, same_deadline=True, timing=Timing.NOT_PAST_DUE),
    Rule.OVERDUE: Truth(_OPEN, same_deadline=True, timing=Timing.PAST_DUE),
    Rule.NUDGE: Truth(_OPEN, same_deadline=True, timing=Timing.NOT_PAST_DUE),
    Rule.STAGNATION: Truth(_OPEN, timing=Timing.NO_PROGRESS_SINCE),
    Rule.CHECKIN: Truth(frozenset({State.VERIFIED, State.CLOSED}),
                        timing=Timing.NO_PROGRESS_SINCE),
    Rule.REVIEW_SLA: Truth(frozenset({State.SUBMITTED})),
    Rule.CLOSURE_SLA: Truth(frozenset({State.VERIFIED})),
    Rule.ASSIGNED: Truth(_OPEN),
    Rule.RETURNED: Truth(frozenset({State.IN_PROGRESS}), same_version=True),
    Rule.REOPENED: Truth(frozenset({State.IN_PROGRESS}), same_version=True),
    Rule.SUBMITTED: Truth(frozenset({State.SUBMITTED}), same_version=True),
    Rule.TO_CLOSE: Truth(frozenset({State.VERIFIED}), same_version=True),
    Rule.EXTENDED: Truth(_OPEN, same_deadline=True),
    Rule.CLOSED: Truth(frozenset({State.CLOSED})),
    Rule.REASSIGNED: Truth(frozenset(State), same_person=False),
    # the request still waits for the leader, for the date asked (an urge meanwhile is no news)
    Rule.EXTENSION_REQUEST: Truth(_OPEN, timing=Timing.REQUEST_WAITING),
    Rule.EXTENSION_APPROVED: Truth(_OPEN, same_deadline=True),
    Rule.EXTENSION_DECLINED: Truth(_OPEN, same_deadline=True),
    # an urge holds while the owner still has the work (not once submitted or signed off)
    Rule.URGE: Truth(_OPEN),
    # 回头看: still closed and nothing has happened since (a recheck meanwhile settles it)
    Rule.FOLLOWUP: Truth(frozenset({State.CLOSED}), same_version=True),
    Rule.RELAPSE: Truth(frozenset({State.IN_PROGRESS}), same_version=True),
}
#: Rules whose sentence is worked out again from the measure at send time (the others are
#: facts of the history row that caused them: a reason, a new deadline).
RECOUNTED_RULES: frozenset[Rule] = frozenset({
    Rule.BEFORE, Rule.OVERDUE, Rule.NUDGE, Rule.STAGNATION, Rule.CHECKIN, Rule.REVIEW_SLA,
    Rule.CLOSURE_SLA})
