"""The figures counted in the database (``workflow.services.figures``) against the same figures
counted in Python over the records (``workflow.stats``), on the backend under test.

The measures are drawn at random but for a fixed seed, in every state and kind, with deadlines
around the reading day and times on both sides of midnight in Asia/Shanghai (a measure signed
off at 23:59 on its deadline's day is on time, at 00:01 the next day it is late), over several
campaigns, 方面, units and leaders, some without unit or leader, some with an extended deadline.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from workflow.lifecycle import OPEN_STATES, Kind, State
from workflow.models import Area, Campaign, Measure, Person, Problem, Unit
from workflow.reminders import WorkdayIndex
from workflow.services import figures
from workflow.services.digest import current_records
from workflow.stats import NO_UNIT, Counts, MeasureRecord, Reading, bounds, count_by
from workflow.timeutil import SHANGHAI, local_date
from workflow.workcalendar import WorkCalendar

TODAY = date(2026, 9, 29)  # a Tuesday, before the National Day holidays
MEASURES = 400


@pytest.fixture(scope="module")
def days() -> WorkdayIndex:
    return WorkdayIndex(WorkCalendar().is_workday)


def moment(rng: random.Random, day: date) -> datetime:
    """A time on ``day`` in Shanghai, often right at one end of the day."""
    at = rng.choice([time(0, 0), time(0, 1), time(7, 59), time(8, 0), time(12, 30),
                     time(23, 59, 59)])
    return datetime.combine(day, at, SHANGHAI).astimezone(UTC)


def around(rng: random.Random, spread: int) -> date:
    return TODAY + timedelta(days=rng.randint(-spread, spread))


@pytest.fixture
def filled(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    rng = random.Random(20260929)
    with sessions.begin() as session:
        units = [Unit(name=name) for name in ("饮食服务中心", "物业管理科", "资产处", "基建处")]
        leaders = [Person(name=f"领导{i}", email=f"leader{i}@example.edu.cn", roles=["leader"])
                   for i in range(3)]
        session.add_all([*units, *leaders])
        session.flush()
        problems: list[tuple[Campaign, Problem]] = []
        for c in range(3):
            campaign = Campaign(title=f"第{c + 1}轮巡察反馈问题整改",
                                created_at=datetime(2026, 6, 1, tzinfo=UTC))
            session.add(campaign)
            session.flush()
            # 方面 named alike across campaigns are one group; their places differ
            for a, title in enumerate(["学习传达有差距", "履行职能职责有不足", "作风建设不扎实"]
                                      [c % 2:]):
                area = Area(campaign_id=campaign.id, position=(a + c) % 3, title=title)
                session.add(area)
                session.flush()
                for p in range(2):
                    problem = Problem(area_id=area.id, position=p, text=f"问题{c}{a}{p}")
                    session.add(problem)
                    session.flush()
                    problems.append((campaign, problem))
        for i in range(MEASURES):
            campaign, problem = rng.choice(problems)
            state = rng.choice(list(State))
            deadline = None if rng.random() < 0.1 else around(rng, 40)
            original = (None if deadline is None or rng.random() < 0.7
                        else deadline - timedelta(days=rng.randint(1, 20)))
            changed = moment(rng, around(rng, 30) if rng.random() < 0.8 else
                         (deadline or TODAY) + timedelta(days=rng.choice([0, 1])))
            changed = min(changed, datetime.combine(TODAY, time(9), SHANGHAI).astimezone(UTC))
            progress = (None if rng.random() < 0.5
                        else moment(rng, TODAY - timedelta(days=rng.randint(0, 30))))
            session.add(Measure(
                campaign_id=campaign.id, problem_id=problem.id, position=i % 5, seq=str(i),
                title=f"整改措施{i}", kind=rng.choice(list(Kind)), state=state,
                deadline=deadline, original_deadline=original,
                unit_id=None if rng.random() < 0.1 else rng.choice(units).id,
                leader_id=None if rng.random() < 0.1 else rng.choice(leaders).id,
                created_at=datetime(2026, 6, 1, tzinfo=UTC), state_changed_at=changed,
                last_progress_at=progress))
    return sessions


@pytest.mark.parametrize("stagnation", [10, 1, 0])
def test_database_counts_equal_python_counts(filled: sessionmaker[Session], days: WorkdayIndex,
                                             stagnation: int) -> None:
    reading = bounds(TODAY, days, stagnation=stagnation)
    with filled() as session:
        records = current_records(session)
        assert len(records) == MEASURES

        def by(key: Callable[[MeasureRecord], object]) -> dict[object, dict[str, object]]:
            return {k: _plain(v) for k, v in count_by(
                records, key, TODAY, days, stagnation=stagnation).items()}

        counted = figures.Counted(session, reading, None)
        expected_campaigns = by(lambda r: r.campaign_id)
        assert {k: _plain(v) for k, v in counted.by_campaign().items()} == expected_campaigns
        assert list(counted.by_campaign()) == list(expected_campaigns)
        assert {k: _plain(v) for k, v in counted.by_leader().items()} == by(lambda r: r.leader_id)
        assert {k: _plain(v) for k, v in counted.by_unit_name(NO_UNIT).items()} \
            == by(lambda r: r.unit or NO_UNIT)
        areas = counted.by_area()
        expected_areas = by(lambda r: r.area)
        # the 方面 keep the order the ledger first shows them in
        assert list(areas) == list(expected_areas)
        assert {k: _plain(v) for k, v in areas.items()} == expected_areas


def test_every_flag_is_exercised(filled: sessionmaker[Session], days: WorkdayIndex) -> None:
    # Given the random ledger: it holds measures of every flag, so the comparison means something
    with filled() as session:
        whole = figures.total(figures.Counted(session, bounds(TODAY, days), None)
                              .by_campaign().values())
    assert whole.total == MEASURES
    assert min(whole.overdue, whole.due_soon, whole.stagnating, whole.on_time,
               whole.on_time_due - whole.on_time, whole.completed) > 0


def test_a_condition_counts_only_what_it_picks(filled: sessionmaker[Session],
                                               days: WorkdayIndex) -> None:
    with filled() as session:
        leader_id = session.query(Person.id).order_by(Person.id).first()[0]  # type: ignore[index]
        condition = Measure.leader_id == leader_id
        records = current_records(session, condition=condition)
        counted = figures.Counted(session, bounds(TODAY, days), condition).by_campaign()
    expected = count_by(records, lambda r: r.campaign_id, TODAY, days)
    assert {k: _plain(v) for k, v in counted.items()} == {k: _plain(v) for k, v in expected.items()}
    assert 0 < sum(c.total for c in counted.values()) < MEASURES


def test_the_days_of_the_trend_equal_the_records(filled: sessionmaker[Session],
                                                 days: WorkdayIndex) -> None:
    first = TODAY - timedelta(days=40)
    with filled() as session:
        records = current_records(session)
        counted = figures.by_day(session, first, TODAY, None)
    closed = _tally(local_date(r.state_changed_at) for r in records
                    if r.state is State.CLOSED and local_date(r.state_changed_at) >= first)
    due = _tally(r.deadline for r in records if r.deadline is not None and r.deadline >= first)
    late = _tally(r.deadline for r in records if r.deadline is not None and r.deadline >= first
                  and r.state in OPEN_STATES and r.deadline < TODAY)
    assert dict(counted.closed) == closed
    assert dict(counted.due) == due
    assert {d: n for d, n in counted.late.items() if n} == late


@pytest.mark.parametrize("stagnation", [1, 2, 5, 10, 30])
def test_bounds_agree_with_the_working_day_count(days: WorkdayIndex, stagnation: int) -> None:
    # Given every day of the two months before the reading day, over the National Day holidays
    for today in (TODAY, date(2026, 10, 8), date(2026, 10, 10)):
        reading = Reading(today, days, stagnation=stagnation)
        until = bounds(today, days, stagnation=stagnation).idle_until
        for back in range(0, 70):
            day = today - timedelta(days=back)
            anchor = datetime.combine(day, time(12), SHANGHAI)
            # Then a day counts as stagnating by the bound exactly when it does by the count
            assert (until is not None and day <= until) == (reading.idle(anchor) >= stagnation)


def _tally(days: object) -> dict[date, int]:
    found: dict[date, int] = {}
    for day in days:  # type: ignore[attr-defined]
        found[day] = found.get(day, 0) + 1
    return found


def _plain(counts: Counts) -> dict[str, object]:
    return {**counts.as_json(), "on_time_due": counts.on_time_due, "on_time": counts.on_time}
