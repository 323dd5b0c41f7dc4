"""What a person must do now (我的事项) and the leader's closure queue (待我销号).

Candidates are found by the person's relations (and those of people who named them delegate);
the actions offered on each are read from the lifecycle table, never decided here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from workflow.lifecycle import OPEN_STATES, Action, Relation, Role, State, available_actions
from workflow.models import Campaign, Measure, Person, Problem, ProgressReport, Unit
from workflow.policy import PolicySet
from workflow.reminders import followup_day
from workflow.services.measures import assisting_units_of, current_acceptances, relations_of
from workflow.services.people import principals_for
from workflow.services.visibility import scope_of, unit_subtrees
from workflow.timeutil import local_date

LIMIT = 200


@dataclass(frozen=True)
class WorkItem:
    measure: Measure
    actions: list[Action]


@dataclass(frozen=True)
class WorkSection:
    key: str
    title: str
    hint: str
    items: list[WorkItem]


def _load(session: Session, condition: ColumnElement[bool]) -> Sequence[Measure]:
    return session.scalars(
        select(Measure).options(joinedload(Measure.problem).joinedload(Problem.area),
                                joinedload(Measure.owner), joinedload(Measure.leader),
                                joinedload(Measure.unit), joinedload(Measure.campaign))
        .where(condition).order_by(Measure.deadline.is_(None), Measure.deadline, Measure.id)
        .limit(LIMIT)).unique().all()


def _items(session: Session, acting_as: Sequence[Person], measures: Sequence[Measure],
           wanted: frozenset[Action]) -> list[WorkItem]:
    """The ``measures`` on which the person, acting as any of ``acting_as`` (themselves and
    those who named them delegate, ``principals_for``), may take one of the ``wanted`` actions."""
    if not measures:
        return []
    principals = {p.id for p in acting_as}
    assisting = assisting_units_of(session, [m.id for m in measures])
    # every unit held in the session while the relations are worked out: unit_ancestors then
    # walks up the tree without a query per measure (the session keeps only what is referenced)
    _held_units = session.scalars(select(Unit)).all() if measures else []
    items = []
    for measure in measures:
        rels: set[Relation] = set()  # relations_with_delegation, with what is read above
        for principal in acting_as:
            rels |= relations_of(session, principal, measure, measure.campaign,
                                 assisting=assisting[measure.id])
        accepting = bool(measure.campaign.acceptors)
        actions = available_actions(State(measure.state), rels,
                                    pending_extension=measure.extension_deadline is not None,
                                    with_acceptors=accepting)
        if accepting and Action.VERIFY in actions and any(
                a.by_id in principals for a in current_acceptances(session, measure.id)):
            actions.remove(Action.VERIFY)  # 三方验收: accepted already, nothing more to do
        if set(actions) & wanted:
            items.append(WorkItem(measure, actions))
    return items


def _followups_due(session: Session, measures: Sequence[Measure], today: date,
                   policies: PolicySet) -> list[Measure]:
    """The closed measures whose 回头看 has fallen due under their policy and not been done."""
    due = []
    for measure in measures:
        policy = policies.effective(measure.kind, measure.campaign.policy)
        if policy.followup_months <= 0:
            continue
        if followup_day(local_date(measure.state_changed_at), policy.followup_months) <= today:
            due.append(measure)
    return due


def _in_scope(scope: ColumnElement[bool] | None,
              wanted: ColumnElement[bool]) -> ColumnElement[bool]:
    """``wanted`` within what the person sees (``scope``: their ``Scope.condition()``): a
    reviewer (整改办) reaches the campaigns of their inspected unit and those without one
    (every one while no campaign names one)."""
    return wanted if scope is None else and_(wanted, scope)


def my_work(session: Session, person_id: int, today: date,
            policies: PolicySet | None = None) -> list[WorkSection]:
    """The sections of 我的事项 that apply to this person, each with its measures (with
    ``policies``, the 整改办's 回头看 that have fallen due)."""
    person = session.get(Person, person_id)
    assert person is not None
    principals = principals_for(session, person, today)
    pids = [p.id for p in principals]
    open_values = [s.value for s in OPEN_STATES]
    campaigns = list(session.scalars(select(Campaign.id).where(
        Campaign.first_responsible_id.in_(pids))))
    units = unit_subtrees(session, {p.unit_id for p in principals if p.unit_id is not None})
    reviewer = any(p.has_role(Role.REVIEWER) for p in principals)
    scope = scope_of(session, person, today).condition() if reviewer else None
    submitted = Measure.state == State.SUBMITTED.value
    # 三方验收: an acceptor named in a campaign verifies its submissions too
    accepting = [cid for cid, acceptors in session.execute(
        select(Campaign.id, Campaign.acceptors)) if acceptors]

    plan: list[tuple[str, str, str, ColumnElement[bool], frozenset[Action]]] = [
        ("owner", "需要我整改", "我是责任人：开始整改、报送进展、按时提交",
         and_(Measure.owner_id.in_(pids), Measure.state.in_(open_values)),
         frozenset({Action.START, Action.SUBMIT})),
        ("review", "需要我核验", "已提交的整改材料：核验通过或退回",
         _in_scope(scope, submitted) if reviewer
         else and_(submitted, or_(Measure.leader_id.in_(pids),
                                  Measure.campaign_id.in_(accepting))),
         # (whoever may return a submission may verify it, unless they accepted it already)
         frozenset({Action.VERIFY})),
        ("close", "需要我销号", "已核验通过，等待责任领导或第一责任人销号",
         and_(Measure.state == State.VERIFIED.value,
              or_(Measure.leader_id.in_(pids), Measure.campaign_id.in_(campaigns))),
         frozenset({Action.CLOSE})),
        ("extension", "待我审批延期", "责任人在完成时限前申请延期：批准或不同意（须写明理由）",
         and_(Measure.extension_deadline.is_not(None), Measure.state.in_(open_values),
              Measure.leader_id.in_(pids)),
         frozenset({Action.APPROVE_EXTENSION, Action.DECLINE_EXTENSION})),
        ("unit", "本部门待开始", "本部门（含下属部门）已交办、尚未开始的措施",
         and_(Measure.state == State.ASSIGNED.value, Measure.unit_id.in_(units),
              Measure.owner_id.not_in(pids)),
         frozenset({Action.START})),
    ]
    sections = []
    for key, title, hint, condition, wanted in plan:
        items = _items(session, principals, _load(session, condition), wanted)
        if items:
            sections.append(WorkSection(key, title, hint, items))
    if reviewer and policies is not None:
        # the longest closed first: those are due first
        closed = session.scalars(
            select(Measure).options(joinedload(Measure.problem).joinedload(Problem.area),
                                    joinedload(Measure.owner), joinedload(Measure.unit),
                                    joinedload(Measure.campaign))
            .where(_in_scope(scope, and_(
                Measure.state == State.CLOSED.value,
                or_(Measure.rechecked_at.is_(None),
                    Measure.rechecked_at < Measure.state_changed_at))))
            .order_by(Measure.state_changed_at, Measure.id).limit(LIMIT)).unique().all()
        items = _items(session, principals, _followups_due(session, closed, today, policies),
                       frozenset({Action.RECHECK}))
        if items:
            sections.append(WorkSection(
                "followup", "待回头看",
                "已销号满规定时间的措施：检查整改成效是否巩固，巩固良好或发现反弹（须写明情况）", items))
    return sections


def closure_queue(session: Session, person_id: int, today: date) -> list[WorkItem]:
    """Verified measures this person may close now, with their progress and evidence loaded."""
    person = session.get(Person, person_id)
    assert person is not None
    principals = principals_for(session, person, today)
    pids = [p.id for p in principals]
    condition: ColumnElement[bool] = Measure.state == State.VERIFIED.value
    if not any(p.has_role(Role.ADMIN) for p in principals):
        campaigns = select(Campaign.id).where(Campaign.first_responsible_id.in_(pids))
        condition = and_(condition, or_(Measure.leader_id.in_(pids),
                                        Measure.campaign_id.in_(campaigns)))
    measures = session.scalars(
        select(Measure).options(joinedload(Measure.problem).joinedload(Problem.area),
                                joinedload(Measure.owner), joinedload(Measure.unit),
                                joinedload(Measure.campaign),
                                selectinload(Measure.progress).selectinload(ProgressReport.evidence))
        .where(condition).order_by(Measure.state_changed_at, Measure.id).limit(LIMIT)
    ).unique().all()
    return _items(session, principals, measures, frozenset({Action.CLOSE}))
