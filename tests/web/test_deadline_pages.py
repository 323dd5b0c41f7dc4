"""A deadline given as "反馈后30个工作日" on the web: the provisional mark on the ledger, the
measure page and in the API, and the admin's calendar page counting it again."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from workflow import db
from workflow.importers.ledger import LedgerRow, write_rows
from workflow.lifecycle import Kind
from workflow.models import HistoryEntry, Measure
from workflow.workcalendar import DeadlineRule, WorkCalendar, reset_fallback_warnings

#: Feedback on Thursday 2026-12-10; 30 working days, Monday–Friday over unknown 2027: 2027-01-21.
RULE = DeadlineRule(date(2026, 12, 10), 30)


@pytest.fixture
def counted(cast: Any, sessions: Any, now: Any) -> int:
    """A measure of the cast's campaign whose deadline was counted into 2027."""
    reset_fallback_warnings()
    deadline = RULE.apply(WorkCalendar())
    assert deadline == (date(2027, 1, 21), True)
    row = LedgerRow(row=2, seq="30", area="学习传达有差距", problem="组织学习还不到位",
                    title="制订政治理论学习工作规程", leader_id=cast.leader.id, unit="饮食服务中心",
                    owner_id=cast.owner.id, deadline=deadline.day, kind=Kind.DEADLINE,
                    deadline_rule=RULE, deadline_provisional=deadline.provisional)
    with db.transaction(sessions) as session:
        write_rows(session, session.merge(cast.campaign), [row], now)
        return session.scalars(select(Measure.id).where(Measure.seq == "30")).one()


def test_the_provisional_mark_is_shown_everywhere(browser: Any, api: Any, counted: int) -> None:
    # The API carries the mark and the rule
    shown = api("owner").get(f"/api/measures/{counted}").json()
    assert (shown["deadline"], shown["deadline_provisional"]) == ("2027-01-21", True)
    assert shown["deadline_rule"] == {"counted_from": "2026-12-10", "workdays": 30}
    listed = {m["id"]: m for m in api("owner").get("/api/measures").json()}
    assert listed[counted]["deadline_provisional"] is True
    # The ledger marks the deadline with ? and explains it; the measure page says why
    b = browser("admin")
    ledger = b.get("/ledger").text
    assert '2027-01-21<span class="provisional"' in ledger
    assert "完成时限后标 ? 的是临时期限" in ledger
    page = b.get(f"/measures/{counted}").text
    assert "2026-12-10 反馈后30个工作日" in page and "暂定：该年节假日尚未公布" in page


def test_entering_a_holiday_on_the_admin_page_counts_the_deadline_again(
        browser: Any, api: Any, cast: Any, sessions: Any, counted: int) -> None:
    # When the admin enters 2027's New Year's Day on the calendar page
    b = browser("admin")
    response = b.post("/admin/calendar", {"day": "2027-01-01", "kind": "holiday", "note": "元旦"})
    assert response.status_code == 303
    # Then the page says which deadline moved
    assert "已重新计算 1 项措施的完成时限" in b.get("/admin/calendar").text
    # And the deadline is one working day later, no longer provisional, recorded under the admin
    shown = api("owner").get(f"/api/measures/{counted}").json()
    assert (shown["deadline"], shown["deadline_provisional"]) == ("2027-01-22", False)
    with db.transaction(sessions) as session:
        entry = session.scalars(select(HistoryEntry).where(HistoryEntry.measure_id == counted)
                                .order_by(HistoryEntry.seq.desc())).first()
        assert entry is not None
        assert (entry.action, entry.actor_id, entry.data["deadline_from"],
                entry.data["deadline_to"]) == (
            "recompute_deadline", cast.admin.id, "2027-01-21", "2027-01-22")
    # And the measure page lists it under 时限变更 as 重算时限
    page = b.get(f"/measures/{counted}").text
    assert "重算时限" in page and "2027-01-22" in page
    assert '<span class="provisional"' not in b.get("/ledger").text
