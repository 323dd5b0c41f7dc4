"""Random action sequences by random people never take a measure off the lifecycle table.

Hypothesis draws a sequence of (action, person, inputs); each step runs through ``perform`` in its
own transaction. A small model, read from the lifecycle table, predicts each outcome; the
database must agree, and the history must stay a faithful, verifiable account of the successes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from workflow import db
from workflow.errors import (
    ExtensionPending,
    InputError,
    NotPermitted,
    RectiflowError,
    TooSoon,
    TransitionNotAllowed,
)
from workflow.lifecycle import TRANSITIONS, Action, Need, Relation, State
from workflow.models import HistoryEntry, Measure
from workflow.services.audit import verify_history
from workflow.services.measures import ActionRequest, perform

PEOPLE = ["owner", "colleague", "reviewer", "leader", "secretary", "admin", "outsider", "viewer"]
#: Relations that do not depend on who owns the measure at the moment.
FIXED_RELATIONS: dict[str, set[Relation]] = {
    "owner": {Relation.UNIT_MEMBER},
    "colleague": {Relation.UNIT_MEMBER},
    "reviewer": {Relation.REVIEWER},
    "leader": {Relation.LEADER},
    "secretary": {Relation.FIRST_RESPONSIBLE},
    "admin": {Relation.ADMIN},
    "outsider": set(),
    "viewer": set(),
}
FIRST_DEADLINE = date(2026, 12, 31)
TODAY = date(2026, 12, 7)  # the ``now`` fixture's date


@dataclass(frozen=True)
class Step:
    action: Action
    person: str
    comment: str | None
    deadline: date | None
    new_owner: str | None


#: Any step at all: most of these are refused.
any_step = st.builds(
    Step,
    action=st.sampled_from(list(Action)),
    person=st.sampled_from(PEOPLE),
    comment=st.sampled_from([None, "", "   ", "已按要求整改"]),
    deadline=st.sampled_from([None, date(2026, 12, 1), FIRST_DEADLINE, date(2027, 1, 15),
                              date(2027, 3, 1)]),
    new_owner=st.sampled_from([None, "owner", "colleague", "outsider"]),
)


@dataclass
class Model:
    """What the measure should look like, from the table alone."""

    state: State = State.ASSIGNED
    owner: str = "owner"
    deadline: date = FIRST_DEADLINE
    successes: int = 0
    #: the date an extension request waiting for the leader asks for (延期申请)
    requested: date | None = None
    #: urged already: the steps are minutes apart, inside the cool-down (催办)
    urged: bool = False

    def relations(self, person: str) -> set[Relation]:
        return FIXED_RELATIONS[person] | ({Relation.OWNER} if person == self.owner else set())

    def predict(self, step: Step) -> type[RectiflowError] | None:
        """The error ``perform`` must raise for ``step``, or None for success."""
        transition = TRANSITIONS[step.action]
        if not transition.who & self.relations(step.person):
            return NotPermitted
        if self.state not in transition.sources:
            return TransitionNotAllowed
        if not transition.allowed_with(self.requested is not None):
            return ExtensionPending
        provided = {n for n, given_ in [(Need.COMMENT, (step.comment or "").strip()),
                                        (Need.DEADLINE, step.deadline),
                                        (Need.OWNER, step.new_owner)] if given_}
        if transition.needs - provided:
            return InputError
        if step.action is Action.EXTEND and (step.deadline < TODAY  # type: ignore[operator]
                                             or step.deadline == self.deadline):
            return InputError
        if step.action is Action.REASSIGN and step.new_owner == self.owner:
            return InputError
        if step.action is Action.REQUEST_EXTENSION and (
                step.deadline < TODAY or step.deadline <= self.deadline):  # type: ignore[operator]
            return InputError
        if step.action is Action.URGE and self.urged:
            return TooSoon
        return None

    def apply(self, step: Step) -> None:
        self.state = TRANSITIONS[step.action].target(self.state)
        if step.action is Action.EXTEND:
            assert step.deadline is not None
            self.deadline = step.deadline
            self.requested = None
        if step.action is Action.REQUEST_EXTENSION:
            self.requested = step.deadline
        if step.action is Action.APPROVE_EXTENSION:
            assert self.requested is not None
            self.deadline, self.requested = self.requested, None
        if step.action is Action.DECLINE_EXTENSION:
            self.requested = None
        if step.action is Action.URGE:
            self.urged = True
        if step.action is Action.REASSIGN:
            assert step.new_owner is not None
            self.owner = step.new_owner
        self.successes += 1


def plausible_step(model: Model) -> st.SearchStrategy[Step]:
    """A step the table allows now, by someone allowed, with good inputs; so that sequences get
    past the first states instead of being refused over and over."""
    later = [d for d in (date(2027, 1, 15), date(2027, 3, 1)) if d > model.deadline]
    choices = [
        (action, person)
        for action, transition in TRANSITIONS.items() if model.state in transition.sources
        and transition.allowed_with(model.requested is not None)
        and not (action is Action.URGE and model.urged)
        and not (action is Action.REQUEST_EXTENSION and not later)
        for person in PEOPLE if transition.who & model.relations(person)
    ]
    return st.sampled_from(choices).flatmap(lambda pick: st.builds(
        Step, action=st.just(pick[0]), person=st.just(pick[1]), comment=st.just("已按要求整改"),
        deadline=st.sampled_from(later if pick[0] is Action.REQUEST_EXTENSION else
                                 [d for d in (date(2027, 1, 15), date(2027, 3, 1))
                                  if d != model.deadline]),
        new_owner=st.sampled_from([p for p in ("owner", "colleague", "outsider")
                                   if p != model.owner]),
    ))


def test_random_sequences_stay_on_the_table(sessions, ledger, cast, now):
    serial = itertools.count(1)
    emails = {name: getattr(cast, name).email for name in PEOPLE}

    def read(measure_id: int) -> tuple[str, int, int]:
        with db.transaction(sessions) as session:
            measure = session.get_one(Measure, measure_id)
            rows = session.scalar(select(func.count()).select_from(HistoryEntry)
                                  .where(HistoryEntry.measure_id == measure_id))
            return str(measure.state), measure.version, rows or 0

    @settings(max_examples=40, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(data=st.data(), length=st.integers(min_value=0, max_value=15))
    def run(data: st.DataObject, length: int) -> None:
        # Given a freshly imported measure of the cast's campaign
        number = next(serial)
        measure_id = ledger.measures(cast.campaign, [{
            "leader": cast.leader, "owner": cast.owner, "unit": "饮食服务中心",
            "seq": f"P{number}", "title": f"随机操作序列 {number}"}])[-1].id
        model = Model()
        for i in range(length):
            step = data.draw(st.one_of(any_step, plausible_step(model)), label=f"step {i}")
            state, version, rows = read(measure_id)
            expected_error = model.predict(step)
            request = ActionRequest(
                measure_id, step.action, emails[step.person], comment=step.comment,
                deadline=step.deadline,
                owner=emails[step.new_owner] if step.new_owner else None)
            # When the person tries the step
            try:
                with db.transaction(sessions) as session:
                    outcome = perform(session, request, now=now + timedelta(minutes=i))
                    entry = (outcome.entry.action, outcome.entry.from_state,
                             outcome.entry.to_state)
                error = None
            except RectiflowError as exc:
                error = exc
            after_state, after_version, after_rows = read(measure_id)
            # Then the outcome is the one the table predicts
            if expected_error is None:
                assert error is None, f"{step} refused: {error}"
                transition = TRANSITIONS[step.action]
                assert State(state) in transition.sources
                assert entry == (step.action.value, state, transition.target(State(state)))
                assert after_state == transition.target(State(state))
                assert (after_version, after_rows) == (version + 1, rows + 1)
                model.apply(step)
            else:
                assert isinstance(error, expected_error), f"{step}: {error!r}"
                assert (after_state, after_version, after_rows) == (state, version, rows)
            assert after_state == model.state
        # And the history is one creation plus one row per success, and verifies
        state, version, rows = read(measure_id)
        assert rows == 1 + model.successes
        assert version == 1 + model.successes
        with db.transaction(sessions) as session:
            first = session.scalars(select(HistoryEntry.action)
                                    .where(HistoryEntry.measure_id == measure_id)
                                    .order_by(HistoryEntry.seq).limit(1)).one()
            report = verify_history(session)
        assert first == "create"
        assert report.ok, report.problems

    run()
