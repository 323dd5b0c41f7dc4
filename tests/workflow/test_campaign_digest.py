"""The whole campaign's digest counted where the measures lie (``digest_of_campaign``) against
the one built from the two snapshots in Python (``digest_for`` with ``Scope(whole=True)``), on
the backend under test.

Two campaigns are worked on for five weeks through the services, by a fixed random sequence of
every kind of action (开始, 提交, 退回, 审核, 销号, 重新打开, 延期, 改派, 催办, 回头看 ...) and
progress reports, with measures added midway; deadlines fall on a few days, so the lists tie
on their working days. The digests are then asked for as of moments inside that work: most
measures changed after them are rewound, some measures did not exist yet.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from notifications.digest import LIST_LIMIT, render_digest
from tests.conftest import Ledger
from workflow import db
from workflow.errors import RectiflowError
from workflow.lifecycle import OPEN_STATES, TRANSITIONS, Action, Kind
from workflow.models import Campaign, HistoryEntry, Measure, Person
from workflow.reminders import WorkdayIndex
from workflow.services.campaign_digest import digest_of_campaign
from workflow.services.digest import Scope, digest_for
from workflow.services.measures import ActionRequest, perform, report_progress
from workflow.timeutil import SHANGHAI
from workflow.workcalendar import WorkCalendar

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)  # a Monday
DAYS = WorkdayIndex(WorkCalendar().is_workday)
DEADLINES = [date(2026, 11, d) for d in (6, 7, 13, 20, 27)] + [date(2026, 12, d)
                                                               for d in (4, 11, 18)]
AREAS = [("学习传达有差距", "组织学习还不到位"), ("学习传达有差距", "传达部署不及时"),
         ("履行职能职责有不足", "服务意识还不够强"), ("作风建设不扎实", "工作作风不够严实")]
LISTS = ("overdue_items", "due_soon_items", "stagnating_items")
#: who does what: the measure's owner, a reviewer or the measure's leader
BY_OWNER = (Action.START, Action.SUBMIT, Action.REQUEST_EXTENSION)
BY_REVIEWER = (Action.VERIFY, Action.REJECT, Action.RECHECK)
FORWARD = (Action.START, Action.SUBMIT, Action.VERIFY, Action.CLOSE)
BY_LEADER = (Action.CLOSE, Action.REOPEN, Action.EXTEND, Action.REASSIGN, Action.URGE,
             Action.APPROVE_EXTENSION, Action.DECLINE_EXTENSION)


class Worked:
    """Two campaigns and five weeks of work on them."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        rng = random.Random(20261102)
        ledger = Ledger(sessions, T0)
        self.sessions = sessions
        secretary = ledger.person("Secretary", "leader")
        self.leaders = [ledger.person(f"Leader{i}", "leader") for i in range(3)]
        self.reviewer = ledger.person("Reviewer", "reviewer")
        self.owners = [ledger.person(f"Owner{i}", "owner", unit=unit) for i, unit in
                       enumerate(["饮食服务中心", "物业管理科", "资产处", "饮食服务中心"])]
        self.campaigns = [ledger.campaign(first_responsible=secretary),
                          ledger.campaign("2026年度内部审计发现问题整改")]

        numbered = iter(range(1, 1000))

        def rows(n: int) -> list[dict[str, Any]]:
            made = []
            for _ in range(n):
                area, problem = rng.choice(AREAS)
                kind = rng.choice([Kind.DEADLINE] * 4 + [Kind.IMMEDIATE, Kind.LONG_TERM])
                owner = rng.choice(self.owners)
                made.append({"seq": str(next(numbered)), "area": area, "problem": problem, "kind": kind.value,
                             "deadline": None if kind is Kind.LONG_TERM and rng.random() < 0.5
                             else rng.choice(DEADLINES), "owner": owner,
                             "leader": rng.choice(self.leaders),
                             "unit": None if rng.random() < 0.1 else owner.unit.name})
            return made

        self.measures = [m.id for m in ledger.measures(self.campaigns[0], rows(40))]
        self.measures += [m.id for m in ledger.measures(self.campaigns[1], rows(12))]
        at = T0
        for step in range(500):
            at += timedelta(hours=rng.choice([1, 1, 2, 3]))
            if step == 250:  # measures added midway, to the first campaign
                self.measures += [m.id for m in Ledger(sessions, at).measures(
                    self.campaigns[0], rows(8))]
            self._act(rng, rng.choice(self.measures), at)

    def _act(self, rng: random.Random, measure_id: int, at: datetime) -> None:
        with db.transaction(self.sessions) as session:
            measure = session.get(Measure, measure_id)
            assert measure is not None
            owner, leader = session.get(Person, measure.owner_id), session.get(
                Person, measure.leader_id)
            assert owner is not None and leader is not None
            if rng.random() < 0.15 and measure.state in OPEN_STATES:
                report_progress(session, measure_id=measure_id, actor=owner.email,
                                text="按计划推进，已完成阶段性工作", files=[], now=at)
                return
            # the work mostly moves forward (开始, 提交, 核验, 销号), else any action of the state
            action = rng.choice([a for a in (*FORWARD, *FORWARD, *FORWARD, *BY_OWNER,
                                             *BY_REVIEWER, *BY_LEADER)
                                 if measure.state in TRANSITIONS[a].sources])
            actor = (owner if action in BY_OWNER else
                     self.reviewer if action in BY_REVIEWER else leader)
            deadline = (max(measure.deadline or T0.date(), at.date())
                        + timedelta(days=rng.choice([3, 7, 14])))
            request = ActionRequest(
                measure_id, action, actor.email, comment="情况说明",
                deadline=deadline if action in (Action.EXTEND, Action.REQUEST_EXTENSION)
                else None,
                owner=rng.choice(self.owners).email if action is Action.REASSIGN else None,
                result=rng.choice(["ok", "relapse"]) if action is Action.RECHECK else None)
        try:
            with db.transaction(self.sessions) as session:
                perform(session, request, now=at)
        except RectiflowError:
            pass  # not allowed now (no extension asked for, say): nothing happened


@pytest.fixture
def worked(sessions: sessionmaker[Session]) -> Worked:
    return Worked(sessions)


MOMENTS = [T0 + timedelta(days=7), T0 + timedelta(days=14, hours=5),
           T0 + timedelta(days=21), T0 + timedelta(days=26, hours=14, minutes=59),
           T0 + timedelta(days=42)]


@pytest.mark.parametrize("stagnation", [10, 2, 0])
def test_the_counted_digest_says_what_the_snapshots_say(
        worked: Worked, sessions: sessionmaker[Session], stagnation: int) -> None:
    seen = {"changes": 0, "rewound": 0, "tied_at_the_cut": 0, "longer_than_the_cut": 0}
    with sessions() as session:
        last_change = max(m.state_changed_at for m in session.query(Measure))
        ids = [None, *(c.id for c in session.query(Campaign).order_by(Campaign.id))]
        for campaign_id in ids:
            for at in MOMENTS:
                # When the whole campaign's digest is counted, and built from the snapshots
                expected = digest_for(session, campaign_id, at, Scope(whole=True), DAYS,
                                      stagnation=stagnation).as_json()
                counted = digest_of_campaign(session, campaign_id, at, DAYS,
                                             stagnation=stagnation).as_json()
                cut = digest_of_campaign(session, campaign_id, at, DAYS, stagnation=stagnation,
                                         limit=3).as_json()
                # Then they say the same, every figure, list, breakdown and change alike
                assert counted == expected, (campaign_id, at)
                # And cut to three, each list is the first three of the whole one
                for key in LISTS:
                    assert cut[key] == expected[key][:3], (campaign_id, at, key)
                    longer = expected[key][3:]
                    seen["longer_than_the_cut"] += bool(longer)
                    seen["tied_at_the_cut"] += bool(longer) and longer[0][key_days(key)] \
                        == expected[key][2][key_days(key)]
                assert {k: v for k, v in cut.items() if k not in LISTS} \
                    == {k: v for k, v in expected.items() if k not in LISTS}
                seen["changes"] += len(expected["changes"])
                seen["rewound"] += at < last_change
    # And the work was not vacuous: changes, moments with later work, lists tied at the cut
    assert seen["changes"] > 50 and seen["rewound"] >= 8
    assert seen["longer_than_the_cut"] >= 10 and seen["tied_at_the_cut"] >= 10, seen
    with sessions() as session:
        done = set(session.scalars(select(HistoryEntry.action).distinct()))
    assert {"extend", "reassign", "urge", "recheck", "close", "reopen", "reject"} <= done


def key_days(key: str) -> str:
    return {"overdue_items": "overdue_days", "due_soon_items": "working_days_left",
            "stagnating_items": "idle_working_days"}[key]


def test_the_rendered_digest_is_the_same_either_way(worked: Worked,
                                                    sessions: sessionmaker[Session]) -> None:
    at = MOMENTS[2]
    with sessions() as session:
        campaign_id = worked.campaigns[0].id
        built = digest_for(session, campaign_id, at, Scope(whole=True), DAYS)
        counted = digest_of_campaign(session, campaign_id, at, DAYS, limit=LIST_LIMIT)
    shown = render_digest(built, "https://zg.example.edu.cn", name="各位领导", chart=False)
    again = render_digest(counted, "https://zg.example.edu.cn", name="各位领导", chart=False)
    assert (again.html, again.text, again.markdown) == (shown.html, shown.text, shown.markdown)
    assert "逾期" in shown.text and built.stats.counts.total > 40
