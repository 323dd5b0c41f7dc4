"""Measure actions: the only place a measure's state, deadline, owner or version changes.

``perform`` checks the lifecycle table, checks the version, writes the measure, appends a
hash-chained history row and publishes the events, all in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from workflow import events
from workflow.acceptance import Acceptance, next_party, parties, parties_of, party_label
from workflow.errors import (
    ConflictError,
    DeadlinePassed,
    InputError,
    NotFound,
    NotPermitted,
    TooSoon,
)
from workflow.evidence import EvidenceStore, StoredFile
from workflow.history import GENESIS, entry_digest
from workflow.lifecycle import (
    OPEN_STATES,
    TRANSITIONS,
    Action,
    Kind,
    Need,
    Relation,
    Role,
    State,
    SystemAction,
    Transition,
    check,
)
from workflow.models import (
    Campaign,
    Evidence,
    HistoryEntry,
    Measure,
    MeasureAssistingUnit,
    Person,
    ProgressReport,
)
from workflow.pg import actions as pg_actions
from workflow.policy import Policy, PolicySet
from workflow.schedule import note_next_reminder, set_next_reminder
from workflow.services.people import find_person, principals_for, unit_ancestors
from workflow.services.visibility import person_reaches
from workflow.timeutil import as_utc, local_date, local_text


@dataclass(frozen=True)
class ActionRequest:
    """What a person asks to do to a measure; inputs are validated by ``perform``."""

    measure_id: int
    action: Action
    actor: str | Person
    comment: str | None = None
    deadline: date | None = None
    owner: str | Person | None = None
    expected_version: int | None = None
    evidence: Sequence[StoredFile] = field(default_factory=tuple)
    #: the outcome of an action that has one (回头看: ``ok`` or ``relapse``)
    result: str | None = None


@dataclass(frozen=True)
class ActionOutcome:
    measure: Measure
    #: the history row's column values, its id included
    entry_values: dict[str, Any]
    event: events.MeasureChanged

    @cached_property
    def entry(self) -> HistoryEntry:
        """The history row written (built when asked for: few callers read it)."""
        return HistoryEntry(**self.entry_values)


def relations_of(session: Session, person: Person, measure: Measure, campaign: Campaign,
                 *, only: frozenset[Relation] | None = None,
                 assisting: set[int] | None = None) -> set[Relation]:
    """How ``person`` stands to ``measure`` (no delegation; see ``acting_principal``).

    With ``only``, relations outside it may be left out when finding them would cost a query
    (unit membership up the unit tree). ``assisting``: the measure's ``assisting_unit_ids``
    when already read (for a list of measures, by ``assisting_units_of``)."""
    rels: set[Relation] = set()
    if person.has_role(Role.ADMIN):
        rels.add(Relation.ADMIN)
    if person.has_role(Role.REVIEWER) and person_reaches(session, person, campaign):
        rels.add(Relation.REVIEWER)  # 整改办 of the campaign's inspected unit (or of all)
    if person.has_role(Role.SUPERVISOR):
        rels.add(Relation.SUPERVISOR)
    if measure.owner_id == person.id:
        rels.add(Relation.OWNER)
    if measure.leader_id == person.id:
        rels.add(Relation.LEADER)
    if campaign.first_responsible_id == person.id:
        rels.add(Relation.FIRST_RESPONSIBLE)
    if campaign.acceptors and parties_of(person.id, rels, parties(campaign.acceptors)):
        rels.add(Relation.ACCEPTOR)
    if only is not None and not only & {Relation.UNIT_MEMBER, Relation.ASSISTING_MEMBER}:
        return rels
    if person.unit_id is not None and measure.unit_id is not None and (
            person.unit_id == measure.unit_id  # the common case needs no query
            or person.unit_id in unit_ancestors(session, measure.unit_id)):
        rels.add(Relation.UNIT_MEMBER)
    if (only is None or Relation.ASSISTING_MEMBER in only) and person.unit_id is not None \
            and person.unit_id in (assisting if assisting is not None
                                   else assisting_unit_ids(session, measure.id)):
        rels.add(Relation.ASSISTING_MEMBER)  # no lifecycle action needs it: asked for by name
    return rels


def assisting_unit_ids(session: Session, measure_id: int) -> set[int]:
    """The measure's assisting units (协办单位) and the units above them: a member of any
    of these assists."""
    ids = set(session.scalars(select(MeasureAssistingUnit.unit_id)
                              .where(MeasureAssistingUnit.measure_id == measure_id)))
    for unit_id in list(ids):
        ids.update(unit_ancestors(session, unit_id))
    return ids


def assisting_units_of(session: Session, measure_ids: Collection[int]) -> dict[int, set[int]]:
    """``assisting_unit_ids`` of many measures in one query (empty sets included)."""
    found: dict[int, set[int]] = {mid: set() for mid in measure_ids}
    for start in range(0, len(found), 1000):
        chunk = list(found)[start:start + 1000]
        for measure_id, unit_id in session.execute(
                select(MeasureAssistingUnit.measure_id, MeasureAssistingUnit.unit_id)
                .where(MeasureAssistingUnit.measure_id.in_(chunk))):
            found[measure_id] |= unit_ancestors(session, unit_id)
    return found


def acting_principal(session: Session, actor: Person, measure: Measure, action: Action,
                     on: date) -> tuple[Person, set[Relation]]:
    """Whom ``actor`` acts as for ``action``: themselves if allowed, else someone away who named
    them delegate. Falls back to the actor's own relations so the check can explain a refusal."""
    who = TRANSITIONS[action].allowed(bool(measure.campaign.acceptors))
    own = relations_of(session, actor, measure, measure.campaign, only=who)
    if who & own:
        return actor, own  # acting for themselves: no need to look for delegators
    for principal in principals_for(session, actor, on)[1:]:
        rels = relations_of(session, principal, measure, measure.campaign, only=who)
        if who & rels:
            return principal, rels
    return actor, own


def relations_with_delegation(session: Session, actor: Person, measure: Measure,
                              on: date) -> set[Relation]:
    """Every relation ``actor`` holds on ``measure``, their own and those delegated to them."""
    rels: set[Relation] = set()
    for principal in principals_for(session, actor, on):
        rels |= relations_of(session, principal, measure, measure.campaign)
    return rels


_LOAD_MEASURE = (select(Measure).options(joinedload(Measure.campaign))
                 .where(Measure.id == bindparam("measure_id")))
#: The measure with the hash of its latest history row, read in the same statement: the row the
#: version check protects is the one the new history row chains to.
_LOAD_FOR_ACTION = (
    select(Measure)
    # an action needs only the campaign's first responsible; the rest loads if asked for
    .options(joinedload(Measure.campaign).load_only(Campaign.id, Campaign.first_responsible_id,
                                                    Campaign.acceptors,
                                                    Campaign.inspected_unit_id))
    .where(Measure.id == bindparam("measure_id"))
    .add_columns(select(HistoryEntry.hash).where(HistoryEntry.measure_id == Measure.id)
                 .order_by(HistoryEntry.seq.desc()).limit(1).correlate(Measure).scalar_subquery()))


#: The same and the acting person found by email, in one round trip instead of two.
_LOAD_FOR_ACTION_BY_EMAIL = _LOAD_FOR_ACTION.add_columns(Person).outerjoin(
    Person, func.lower(Person.email) == bindparam("email"))


def load_measure(session: Session, measure_id: int) -> Measure:
    measure = session.scalar(_LOAD_MEASURE, {"measure_id": measure_id})
    if measure is None:
        raise NotFound("措施", measure_id)
    return measure


def load_for_action(session: Session, measure_id: int) -> tuple[Measure, str]:
    """The measure and the hash its next history row chains to (GENESIS if it has none)."""
    found = session.execute(_LOAD_FOR_ACTION, {"measure_id": measure_id}).first()
    if found is None:
        raise NotFound("措施", measure_id)
    return found[0], found[1] or GENESIS


def load_for_action_by(session: Session, measure_id: int,
                      actor: str | Person) -> tuple[Measure, str, Person]:
    """``load_for_action`` and the actor, named by email or name (see ``find_person``)."""
    if isinstance(actor, Person):
        return (*load_for_action(session, measure_id), actor)
    key = actor.strip()
    if "@" not in key:
        return (*load_for_action(session, measure_id), find_person(session, key))
    found = session.execute(_LOAD_FOR_ACTION_BY_EMAIL,
                            {"measure_id": measure_id, "email": key.lower()}).first()
    if found is None:
        raise NotFound("措施", measure_id)
    if found[2] is None:
        raise NotFound("人员", key)
    return found[0], found[1] or GENESIS, found[2]


def new_history_entry(*, measure_id: int, seq: int, action: str, from_state: str | None,
                      to_state: str, actor_id: int | None, on_behalf_of_id: int | None,
                      comment: str | None, data: dict[str, Any], at: datetime,
                      prev_hash: str) -> dict[str, Any]:
    """Column values of one history row, its hash included (used by services and importers)."""
    values: dict[str, Any] = dict(
        measure_id=measure_id, seq=seq, action=action, from_state=from_state, to_state=to_state,
        actor_id=actor_id, on_behalf_of_id=on_behalf_of_id, comment=comment, data=data, at=at,
        prev_hash=prev_hash,
    )
    values["hash"] = entry_digest(**values)
    return values


def _provided(request: ActionRequest) -> set[Need]:
    provided: set[Need] = set()
    if request.comment and request.comment.strip():
        provided.add(Need.COMMENT)
    if request.deadline is not None:
        provided.add(Need.DEADLINE)
    if request.owner:
        provided.add(Need.OWNER)
    if request.result:
        provided.add(Need.RESULT)
    return provided


def current_acceptances(session: Session, measure_id: int) -> list[Acceptance]:
    """The acceptances (三方验收) of the measure's current submission: the verifications
    recorded since its last submission, oldest first."""
    last_submit = select(func.max(HistoryEntry.seq)).where(
        HistoryEntry.measure_id == measure_id,
        HistoryEntry.action == Action.SUBMIT.value).scalar_subquery()
    rows = session.execute(
        select(HistoryEntry.data, HistoryEntry.actor_id, HistoryEntry.on_behalf_of_id,
               HistoryEntry.at)
        .where(HistoryEntry.measure_id == measure_id, HistoryEntry.action == Action.VERIFY.value,
               HistoryEntry.seq > func.coalesce(last_submit, 0))
        .order_by(HistoryEntry.seq))
    return [Acceptance((data or {})["acceptor"], on_behalf or actor, as_utc(at).isoformat())
            for data, actor, on_behalf, at in rows if (data or {}).get("acceptor")]


def _validate_acceptance(session: Session, measure: Measure, principal: Person,
                         rels: set[Relation]) -> dict[str, Any]:
    """Which acceptor (三方验收) this verification fills and who is still to verify."""
    keys = parties(measure.campaign.acceptors)
    done = current_acceptances(session, measure.id)
    ids = {int(k.split(":")[1]) for k in keys if k.startswith("person:")}
    ids.update(a.by_id for a in done)
    names = dict(session.execute(select(Person.id, Person.name).where(Person.id.in_(ids)))
                 .all()) if ids else {}
    names[principal.id] = principal.name
    party, remaining = next_party(measure.id, principal.id, principal.name, rels, keys, done,
                                  names)
    return {"acceptor": party, "acceptor_label": party_label(party, names),
            "accepted": [a.party for a in done] + [party], "remaining": remaining}


def urge_count_and_last(session: Session, measure_id: int) -> tuple[int, datetime | None]:
    """How often a measure has been urged (催办), and when last (None: never)."""
    count, last = session.execute(
        select(func.count(HistoryEntry.id), func.max(HistoryEntry.at))
        .where(HistoryEntry.measure_id == measure_id,
               HistoryEntry.action == Action.URGE.value)).one()
    return int(count), last


def _urge_cooldown(measure: Measure, policies: PolicySet | None) -> timedelta:
    policy = (Policy() if policies is None
              else policies.effective(measure.kind, measure.campaign.policy))
    return timedelta(hours=policy.urge_cooldown_hours)


def _validate_extension_request(request: ActionRequest, measure: Measure,
                                today: date) -> dict[str, Any]:
    """A request (延期申请) is made before the deadline, for a later date, with a reason."""
    assert request.deadline is not None
    if measure.deadline is None:
        raise InputError(f"措施 {measure.id} 没有完成时限，无需申请延期", field="deadline")
    if today > measure.deadline:
        raise DeadlinePassed(measure.id, TRANSITIONS[request.action].label,
                             measure.deadline.isoformat())
    if request.deadline < today:
        raise InputError(f"申请的完成时限 {request.deadline} 早于今天 {today}", field="deadline")
    if request.deadline <= measure.deadline:
        raise InputError(f"申请的完成时限 {request.deadline} 应晚于当前时限 {measure.deadline}",
                         field="deadline")
    return {"deadline_from": _iso(measure.deadline), "deadline_to": request.deadline.isoformat()}


def _decision_data(action: Action, measure: Measure) -> dict[str, Any]:
    """What the history of a leader's decision on a waiting request (延期申请) records."""
    assert measure.extension_deadline is not None  # the lifecycle check saw it waiting
    if action is Action.APPROVE_EXTENSION:
        return {"deadline_from": _iso(measure.deadline),
                "deadline_to": measure.extension_deadline.isoformat(),
                "reason": measure.extension_reason, "requested_by": measure.extension_by_id}
    return {"deadline_requested": measure.extension_deadline.isoformat(),
            "reason_requested": measure.extension_reason,
            "requested_by": measure.extension_by_id}


def _validate_urge(session: Session, measure: Measure, now: datetime,
                   policies: PolicySet | None) -> dict[str, Any]:
    """A second 催办 inside the cool-down is refused, saying when it will be allowed."""
    count, last = urge_count_and_last(session, measure.id)
    cooldown = _urge_cooldown(measure, policies)
    if last is not None and now < last + cooldown:
        raise TooSoon(measure.id, TRANSITIONS[Action.URGE].label, local_text(last + cooldown))
    return {"nth": count + 1}


def _result_data(request: ActionRequest) -> dict[str, Any]:
    """The stated outcome (回头看: ok or relapse), for the actions that have one."""
    transition = TRANSITIONS[request.action]
    if not transition.results:
        if request.result is not None:
            raise InputError(f"「{transition.label}」不需要结论（--result / result）",
                             field="result")
        return {}
    return {"result": request.result}


def _validate_inputs(session: Session, request: ActionRequest, measure: Measure,
                     today: date, now: datetime, policies: PolicySet | None) -> dict[str, Any]:
    """Action-specific input checks; returns the data recorded in history."""
    data: dict[str, Any] = _result_data(request)
    if request.action is Action.REQUEST_EXTENSION:
        data = _validate_extension_request(request, measure, today)
    elif request.action in (Action.APPROVE_EXTENSION, Action.DECLINE_EXTENSION):
        data = _decision_data(request.action, measure)
    elif request.action is Action.URGE:
        data = _validate_urge(session, measure, now, policies)
    elif request.action is Action.EXTEND:
        assert request.deadline is not None
        if request.deadline < today:
            raise InputError(f"新的完成时限 {request.deadline} 早于今天 {today}", field="deadline")
        if request.deadline == measure.deadline:
            raise InputError(f"新的完成时限与当前时限相同（{measure.deadline}）", field="deadline")
        data = {"deadline_from": _iso(measure.deadline), "deadline_to": request.deadline.isoformat()}
    elif request.action is Action.REASSIGN:
        assert request.owner is not None
        new_owner = (request.owner if isinstance(request.owner, Person)
                     else find_person(session, request.owner))
        if not new_owner.active:
            raise InputError(f"{new_owner.name} 已停用，不能作为责任人", field="owner")
        if new_owner.id == measure.owner_id:
            raise InputError(f"{new_owner.name} 已是该措施的责任人", field="owner")
        data = {"owner_from": measure.owner_id, "owner_to": new_owner.id}
    if request.evidence and request.action is not Action.SUBMIT:
        raise InputError("只有「提交」可以附佐证材料；其他时候请用「报送进展」", field="evidence")
    return data


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def target_state(transition: Transition, state: State, request: ActionRequest,
                 data: dict[str, Any]) -> State:
    """Where the action leaves the measure: a 回头看 by its result; a 三方验收 verification
    leaves it submitted while other acceptors have still to verify it."""
    if transition.action is Action.VERIFY and data.get("remaining"):
        return state
    return transition.target(state, request.result)


def _changes(measure: Measure, transition: Transition, request: ActionRequest,
             data: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The measure's new column values for this action (pure: the caller writes them)."""
    changes: dict[str, Any] = {"next_reminder_at": now}  # the next sweep re-plans from here
    new_state = target_state(transition, State(measure.state), request, data)
    if new_state != measure.state:
        changes["state"] = new_state
        changes["state_changed_at"] = now
    no_request = dict(extension_deadline=None, extension_reason=None, extension_by_id=None,
                      extension_at=None)
    if request.action in (Action.EXTEND, Action.APPROVE_EXTENSION):
        if measure.original_deadline is None:
            changes["original_deadline"] = measure.deadline
        changes["deadline"] = date.fromisoformat(data["deadline_to"])
        # a date the leader chose: no longer counted from feedback, nor provisional
        changes.update(deadline_provisional=False, deadline_workdays=None,
                       deadline_counted_from=None)
        changes.update(no_request)  # the leader's own 延期 settles a waiting request too
    elif request.action is Action.REQUEST_EXTENSION:
        changes.update(extension_deadline=request.deadline,
                       extension_reason=(request.comment or "").strip(),
                       extension_by_id=data["requested_by"], extension_at=now)
    elif request.action is Action.DECLINE_EXTENSION:
        changes.update(no_request)
    elif request.action is Action.REASSIGN:
        changes["owner_id"] = data["owner_to"]
    elif request.action is Action.SUBMIT:
        changes["last_progress_at"] = now
    elif request.action is Action.RECHECK:
        changes["rechecked_at"] = now
    return changes


_MEASURES = Measure.__table__
_HISTORY = HistoryEntry.__table__
#: Built once: the SET clause comes from the parameter names given at execution (SQLAlchemy
#: caches one compiled form per set of names), so no statement is constructed per action.
_UPDATE_MEASURE = (update(_MEASURES)  # type: ignore[arg-type]
                   .where(_MEASURES.c.id == bindparam("where_id"),
                          _MEASURES.c.version == bindparam("where_version")))
#: The same without the version check, for writes that are not actions.
_UPDATE_QUIETLY = (update(_MEASURES)  # type: ignore[arg-type]
                   .where(_MEASURES.c.id == bindparam("where_id")))
_INSERT_HISTORY = insert(_HISTORY).returning(_HISTORY.c.id)  # type: ignore[arg-type]


def _write_measure(session: Session, measure: Measure, changes: dict[str, Any],
                   expected_version: int | None) -> None:
    """UPDATE ... SET ..., version = v + 1 WHERE id = :id AND version = :v; nobody else's change
    is ever overwritten. The ORM object is then told the new values as committed ones."""
    version = measure.version
    changes = dict(changes)
    replan = "next_reminder_at" in changes
    replan_at = changes.pop("next_reminder_at", None)
    values = {**changes, "version": version + 1}
    try:
        result = session.execute(
            _UPDATE_MEASURE, {**values, "where_id": measure.id, "where_version": version})
    except OperationalError as exc:  # SQLite: another writer got there first
        if "locked" in str(exc).lower() or "busy" in str(exc).lower():
            raise ConflictError(measure.id, expected_version) from exc
        raise
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(measure.id, expected_version)
    for key, value in values.items():
        set_committed_value(measure, key, value)
    if replan:
        set_next_reminder(session, [measure.id], replan_at)


def write_action(session: Session, measure: Measure, changes: dict[str, Any],
                 entry: dict[str, Any], expected_version: int | None,
                 progress: NewProgress | None = None) -> int:
    """Write an action: the measure's ``changes`` under the version check, then its history row
    ``entry`` (whose seq is the new version) and a submission's ``progress`` report; return the
    history row's id. On PostgreSQL the three go in one statement (``workflow.pg.actions``);
    the ORM object is told the new values either way."""
    if not _on_postgresql(session):
        _write_measure(session, measure, changes, expected_version)
        entry_id: int = session.execute(_INSERT_HISTORY, entry).scalar_one()
        if progress is not None:
            _insert_progress(session, measure, progress)
        return entry_id
    version = measure.version
    changes = dict(changes)
    replan = "next_reminder_at" in changes
    replan_at = changes.pop("next_reminder_at", None)
    written = pg_actions.write_action(
        session, measure.id, version, changes, entry,
        None if progress is None else {"author_id": progress.author_id, "text": progress.text,
                                       "at": progress.at},
        (replan_at,) if replan else None)
    if written is None:
        raise ConflictError(measure.id, expected_version)
    for key, value in {**changes, "version": version + 1}.items():
        set_committed_value(measure, key, value)
    if replan:
        note_next_reminder(session, [measure.id], replan_at)
    if progress is not None:
        assert written[1] is not None
        _attach_evidence(session, measure, written[1], progress.files)
    return written[0]


def _on_postgresql(session: Session) -> bool:
    bind = session.bind if session.bind is not None else session.get_bind()
    return bind.dialect.name == "postgresql"


def _write_measure_quietly(session: Session, measure_id: int, values: dict[str, Any]) -> None:
    """UPDATE a measure's columns for something that is not an action: no new version (the
    version is the seq of the last history row) and no history row."""
    session.execute(_UPDATE_QUIETLY, {**values, "where_id": measure_id})


_PROGRESS = ProgressReport.__table__
_EVIDENCE = Evidence.__table__
_INSERT_PROGRESS = insert(_PROGRESS).returning(_PROGRESS.c.id)  # type: ignore[arg-type]
_INSERT_EVIDENCE = insert(_EVIDENCE)  # type: ignore[arg-type]


@dataclass(frozen=True)
class NewProgress:
    """A progress report about to be written (by ``add_progress``, or with a submission)."""

    author_id: int
    text: str
    at: datetime
    files: Sequence[StoredFile] = ()


def new_progress(author: Person, text: str, files: Iterable[StoredFile],
                 now: datetime) -> NewProgress:
    """A progress report's values, checked: the text must say something."""
    text = text.strip()
    if not text:
        raise InputError("进展说明不能为空", field="comment")
    return NewProgress(author.id, text, now, tuple(files))


def add_progress(session: Session, measure: Measure, author: Person, text: str,
                 files: Iterable[StoredFile], now: datetime) -> int:
    """Record a progress report (整改进展) with its evidence files; return the report's id.

    The one way progress is written, by ``perform`` (a submission, through ``write_action``)
    and ``report_progress``."""
    return _insert_progress(session, measure, new_progress(author, text, files, now))


def _insert_progress(session: Session, measure: Measure, progress: NewProgress) -> int:
    report_id: int = session.execute(_INSERT_PROGRESS, {
        "measure_id": measure.id, "author_id": progress.author_id, "text": progress.text,
        "at": progress.at}).scalar_one()
    _attach_evidence(session, measure, report_id, progress.files)
    return report_id


def _attach_evidence(session: Session, measure: Measure, report_id: int,
                     files: Iterable[StoredFile]) -> None:
    rows = [{"report_id": report_id, "filename": stored.filename,
             "content_type": stored.content_type, "size": stored.size, "sha256": stored.sha256,
             "stored_path": stored.stored_path} for stored in files]
    if rows:
        session.execute(_INSERT_EVIDENCE, rows)
    if "progress" in measure.__dict__:  # a loaded collection would miss the new report
        session.expire(measure, ["progress"])


def perform(session: Session, request: ActionRequest, *, now: datetime,
            policies: PolicySet | None = None) -> ActionOutcome:
    """Carry out one action in the caller's transaction, or raise and change nothing.

    ``policies`` give the 催办 cool-down (the default policy's without them)."""
    measure, prev_hash, actor = load_for_action_by(session, request.measure_id, request.actor)
    if not actor.active:
        raise NotPermitted(actor.name, request.action.label, measure.id, [])
    today = local_date(now)
    principal, rels = acting_principal(session, actor, measure, request.action, today)
    with_acceptors = bool(measure.campaign.acceptors)
    transition = check(request.action, measure_id=measure.id, state=State(measure.state),
                       person=actor.name, relations=rels, provided=_provided(request),
                       pending_extension=measure.extension_deadline is not None,
                       result=request.result, with_acceptors=with_acceptors)
    data = _validate_inputs(session, request, measure, today, now, policies)
    if request.action is Action.VERIFY and with_acceptors:
        data.update(_validate_acceptance(session, measure, principal, rels))
    if request.action is Action.REQUEST_EXTENSION:
        data["requested_by"] = actor.id
    if request.expected_version is not None and request.expected_version != measure.version:
        raise ConflictError(measure.id, request.expected_version)

    from_state = State(measure.state)
    on_behalf_of = principal if principal.id != actor.id else None
    if on_behalf_of is not None:
        data["on_behalf_of_name"] = on_behalf_of.name
    changes = _changes(measure, transition, request, data, now)
    values = new_history_entry(
        measure_id=measure.id, seq=measure.version + 1, action=request.action.value,
        from_state=from_state.value, to_state=str(changes.get("state", from_state)),
        actor_id=actor.id, on_behalf_of_id=on_behalf_of.id if on_behalf_of else None,
        comment=(request.comment or "").strip() or None, data=data, at=now,
        prev_hash=prev_hash,
    )
    progress = (new_progress(actor, request.comment or "", request.evidence, now)
                if request.action is Action.SUBMIT else None)
    entry_id = write_action(session, measure, changes, values, request.expected_version,
                            progress)
    event = events.MeasureChanged(
        measure_id=measure.id, action=request.action.value, from_state=from_state.value,
        to_state=str(measure.state), actor_id=actor.id,
        on_behalf_of_id=values["on_behalf_of_id"], at=now, entry_id=entry_id)
    events.publish(session, [event])
    return ActionOutcome(measure, {"id": entry_id, **values}, event)


def recompute_deadline(session: Session, measure_id: int, *, deadline: date, provisional: bool,
                       actor: Person | None, comment: str, now: datetime) -> ActionOutcome:
    """Move the deadline of an open measure given as "N working days after feedback" to the day
    the calendar now gives, in history as ``recompute_deadline`` with both dates.

    Not a lifecycle action: no person asks for it (``actor`` is the admin who entered the
    holidays, or None for the system) and it is not a 延期. The original deadline moves too,
    since it was the same count on a calendar that was not yet known.
    """
    measure, prev_hash = load_for_action(session, measure_id)
    state = State(measure.state)
    if state not in OPEN_STATES or measure.deadline_workdays is None:
        raise InputError(f"措施 {measure_id} 的完成时限不再按反馈后工作日推算（状态：{state.label}），"
                         "不能重新计算", field="deadline")
    if deadline == measure.deadline:
        raise InputError(f"新的完成时限与当前时限相同（{deadline}）", field="deadline")
    data = {"deadline_from": _iso(measure.deadline), "deadline_to": deadline.isoformat(),
            "workdays": measure.deadline_workdays,
            "counted_from": _iso(measure.deadline_counted_from)}
    changes: dict[str, Any] = {"deadline": deadline, "deadline_provisional": provisional,
                               "next_reminder_at": now}  # the next sweep re-plans the stages
    if measure.original_deadline in (None, measure.deadline):
        changes["original_deadline"] = deadline
    values = new_history_entry(
        measure_id=measure.id, seq=measure.version + 1,
        action=SystemAction.RECOMPUTE_DEADLINE.value, from_state=state.value,
        to_state=state.value, actor_id=actor.id if actor else None, on_behalf_of_id=None,
        comment=comment, data=data, at=now, prev_hash=prev_hash)
    entry_id = write_action(session, measure, changes, values, None)
    event = events.MeasureChanged(
        measure_id=measure.id, action=SystemAction.RECOMPUTE_DEADLINE.value, from_state=state.value,
        to_state=state.value, actor_id=values["actor_id"], on_behalf_of_id=None, at=now,
        entry_id=entry_id)
    events.publish(session, [event])
    return ActionOutcome(measure, {"id": entry_id, **values}, event)


def mark_deadline_provisional(session: Session, measure_id: int, provisional: bool) -> None:
    """Set or clear the provisional mark of a deadline that stays the same day.

    Not an action: the deadline does not change, so no new version and no history row."""
    _write_measure_quietly(session, measure_id, {"deadline_provisional": provisional})


def report_progress(session: Session, *, measure_id: int, actor: str | Person, text: str,
                    files: Sequence[StoredFile], now: datetime) -> int:
    """A progress report without a state change, by the owner, a unit member, or their delegate;
    returns the report's id."""
    measure = load_measure(session, measure_id)
    person = actor if isinstance(actor, Person) else find_person(session, actor)
    allowed = {Relation.OWNER, Relation.UNIT_MEMBER, Relation.ASSISTING_MEMBER, Relation.ADMIN,
               Relation.LEADER}
    if not relations_with_delegation(session, person, measure, local_date(now)) & allowed:
        labels = [r.label for r in Relation if r in allowed]
        raise NotPermitted(person.name, "报送进展", measure.id, labels)
    if measure.state == State.CLOSED and measure.kind != Kind.LONG_TERM:
        raise InputError(f"措施 {measure.id} 已销号，不能再报送进展", field="state")
    report_id = add_progress(session, measure, person, text, files, now)
    # Not an action; the next sweep re-plans stagnation and check-in reminders from this report.
    _write_measure_quietly(session, measure.id, {"last_progress_at": now})
    set_next_reminder(session, [measure.id], now)
    session.expire(measure, ["last_progress_at"])
    return report_id


def store_evidence(store: EvidenceStore, paths: Iterable[str]) -> list[StoredFile]:
    """Store files named by path (CLI); raise EvidenceRejected on the first bad one."""
    stored: list[StoredFile] = []
    for path in paths:
        try:
            handle = open(path, "rb")
        except OSError as exc:
            raise InputError(f"无法读取佐证材料 {path}：{exc.strerror}", field="evidence") from exc
        with handle:
            stored.append(store.store(path, handle))
    return stored
