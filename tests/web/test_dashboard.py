"""``/dashboard`` (整改总览): the figures of ``/api/stats`` drawn as inline SVG, each number a
link to the ledger showing exactly the measures it counts, scoped to the reader."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import unescape
from typing import Any

import pytest

from workflow import db
from workflow.lifecycle import Action
from workflow.services.measures import ActionRequest, perform
from workflow.timeutil import SHANGHAI


def ledger_total(client: Any, href: str) -> int:
    """How many measures the ledger lists at ``href`` ("共 N 项")."""
    page = client.get(unescape(href))
    assert page.status_code == 200, page.text
    found = re.search(r"共 (\d+) 项", page.text)
    assert found, page.text
    return int(found.group(1))


def groups(html: str, section: str) -> dict[str, str]:
    """The SVG groups of one breakdown, by name → their markup."""
    part = html.split(f'id="by-{section}"', 1)[1].split("</section>", 1)[0]
    return {unescape(m.group(1)): m.group(2) for m in re.finditer(
        r'<g class="group" data-name="([^"]*)">(.*?)</g>', part, re.S)}


def href(markup: str, cls: str) -> str:
    found = re.search(rf'<a href="([^"]+)" class="{cls}">', markup)
    assert found, markup
    return found.group(1)


@pytest.mark.parametrize("by", ["unit", "leader", "area"])
def test_every_bar_links_to_the_measures_it_counts(spread: Any, browser: Any, api: Any,
                                                   by: str) -> None:
    # Given the 整改办, who sees everything, and the same figures from the API
    client = browser("reviewer")
    page = client.get("/dashboard")
    assert page.status_code == 200
    rows = {str(r[by]): r for r in api("reviewer").get(f"/api/stats?by={by}").json()}
    drawn = groups(page.text, by)
    # Then every group of the API is drawn, with its numbers
    assert set(drawn) == set(rows)
    for name, markup in drawn.items():
        row = rows[name]
        assert f"{row['closed']}/{row['total']}" in markup
        # and each link opens the ledger on exactly the measures behind the number
        assert ledger_total(client, href(markup, "all")) == row["total"]
        assert ledger_total(client, href(markup, "closed")) == row["closed"]
        if row["overdue"]:
            assert f"逾期 {row['overdue']}" in markup
            assert ledger_total(client, href(markup, "overdue")) == row["overdue"]


def test_the_totals_link_to_their_measures(spread: Any, browser: Any) -> None:
    client = browser("reviewer")
    html = client.get("/dashboard").text
    totals = html.split('id="totals"', 1)[1].split("</div>", 1)[0]
    links = dict(re.findall(r'<a (?:class="\w+" )?href="([^"]+)">([^<]+)<b class="num">', totals))
    numbers = dict(re.findall(r'href="([^"]+)">[^<]+<b class="num">(\d+)</b>', totals))
    assert set(links.values()) == {"整改措施", "已销号", "逾期", "7 个工作日内到期"}
    for link, number in numbers.items():
        assert ledger_total(client, link) == int(number), links[link]
    # 4 measures, 1 closed, 2 overdue (the spread), the cast's due 12-31 is not due soon
    assert [int(numbers[k]) for k in numbers] == [4, 1, 2, 0]


def test_the_weekly_trend_counts_sign_offs_and_deadlines(cast: Any, ledger: Any, sessions: Any,
                                                          browser: Any, clock: Any,
                                                          now: datetime) -> None:
    # Given three measures due in three different weeks, two signed off a week apart
    from datetime import date

    a, b, c = ledger.measures(ledger.campaign("周趋势"), [
        {"leader": cast.leader, "owner": cast.owner, "unit": "饮食服务中心",
         "title": f"措施{n}", "deadline": d}
        for n, d in ((1, date(2026, 11, 20)), (2, date(2026, 11, 27)), (3, date(2026, 12, 9)))])
    for measure, when in ((a, now - timedelta(days=8)), (b, now - timedelta(days=1))):
        with db.transaction(sessions) as session:
            for action, comment in ((Action.START, None), (Action.SUBMIT, "已完成"),
                                    (Action.VERIFY, None), (Action.CLOSE, None)):
                perform(session, ActionRequest(measure_id=measure.id, action=action,
                                               actor=cast.admin.email, comment=comment), now=when)
    client = browser("reviewer")
    html = client.get("/dashboard").text
    weeks = dict(re.findall(r'<g class="week" data-start="([\d-]+)">(.*?)</g>', html, re.S))
    assert len(weeks) == 8 and list(weeks)[-1] == "2026-12-07"  # the Monday of `now`
    # a signed off on Sunday 11-29 (Asia/Shanghai), in the week of 11-23; b on 12-06
    closed_a = (now - timedelta(days=8)).astimezone(SHANGHAI).date()
    assert closed_a == date(2026, 11, 29)
    expected = {"2026-11-23": (1, 1), "2026-11-30": (1, 0), "2026-11-16": (0, 1),
                "2026-12-07": (0, 1)}  # (closed, due) per week
    for start, markup in weeks.items():
        closed_link = re.search(r'<a href="([^"]*closed_from[^"]*)">', markup).group(1)
        due_link = re.search(r'<a href="([^"]*due_from[^"]*)">', markup).group(1)
        want = expected.get(start, (0, 0))
        assert (ledger_total(client, closed_link), ledger_total(client, due_link)) == want, start
    # c (due 12-09, this week) is still open but not yet overdue; the cast's measure is due 12-31
    assert "逾期未完成 " not in weeks["2026-12-07"]


@pytest.mark.parametrize(("role", "seen", "unseen"), [
    ("outsider", {"物业管理科"}, {"饮食服务中心", "修订食堂原材料采购管理办法"}),
    ("owner", {"饮食服务中心"}, {"物业管理科", "清理公房出租合同"}),
    ("secretary", {"物业管理科", "饮食服务中心"}, set()),
])
def test_each_reader_sees_only_their_scope(spread: Any, browser: Any, role: str,
                                           seen: set[str], unseen: set[str]) -> None:
    html = browser(role).get("/dashboard").text
    assert set(groups(html, "unit")) == seen
    for name in unseen:
        assert name not in html


def test_what_waits_for_the_reader_is_listed(spread: Any, browser: Any, sessions: Any,
                                             now: datetime) -> None:
    from web_support import bring

    from workflow.lifecycle import State

    bring(sessions, spread.measure.id, State.VERIFIED, spread.admin, now)
    html = browser("leader").get("/dashboard").text
    needs = html.split('id="needs"', 1)[1].split("</section>", 1)[0]
    assert "需要我销号" in needs and "修订食堂原材料采购管理办法" in needs
    assert f'href="/measures/{spread.measure.id}"' in needs
    assert "需要我销号" not in browser("outsider").get("/dashboard").text


def test_the_dashboard_needs_a_session_and_is_in_the_navigation(spread: Any, app: Any,
                                                               browser: Any) -> None:
    from fastapi.testclient import TestClient

    with TestClient(app) as anonymous:
        answer = anonymous.get("/dashboard", follow_redirects=False)
    assert answer.status_code in (302, 303) and "/login" in answer.headers["location"]
    assert '<a href="/dashboard"' in browser("viewer").get("/my").text


@pytest.mark.parametrize("query", ["due_from=2026-13-01", "closed_to=yesterday", "open=yes",
                                   "area_title=" + "x" * 500])
def test_a_bad_linked_filter_is_ignored_or_finds_nothing(spread: Any, browser: Any,
                                                          query: str) -> None:
    page = browser("reviewer").get(f"/ledger?{query}")
    assert page.status_code == 200
    assert re.search(r"共 (\d+) 项", page.text)


def test_a_long_section_shows_the_groups_needing_attention(cast: Any, ledger: Any,
                                                           browser: Any) -> None:
    from datetime import date

    from workflow.services.dashboard import SECTION_LIMIT

    # Given measures in 15 departments: 部门01 to 部门03 have one overdue measure each
    # (the cast's "now" is 2026-12-07), the others are due next year
    campaign = ledger.campaign("各部门自查问题整改")
    names = [f"部门{i:02d}" for i in range(1, 16)]
    ledger.measures(campaign, [
        {"leader": cast.leader, "owner": cast.owner, "unit": name,
         "deadline": date(2026, 11, 30) if i < 3 else date(2027, 6, 30)}
        for i, name in enumerate(names)])
    client = browser("reviewer")
    # When the 整改办 opens the dashboard
    html = client.get("/dashboard").text
    section = html.split('id="by-unit"', 1)[1].split("</section>", 1)[0]
    drawn = groups(html, "unit")
    # Then the departments section draws 12 of the 16 departments (with the cast's own),
    # the overdue ones first, and says how many there are with a link to all of them
    assert len(drawn) == SECTION_LIMIT
    assert list(drawn)[:3] == ["部门01", "部门02", "部门03"]
    assert "共 <span class=\"num\">16</span> 个" in section
    assert 'href="/dashboard?all=unit#by-unit"' in section
    # And ?all=unit draws every one, with the way back; the other sections stay cut
    full = client.get("/dashboard?all=unit")
    assert full.status_code == 200
    assert set(groups(full.text, "unit")) >= set(names)
    assert len(groups(full.text, "unit")) == 16
    assert 'href="/dashboard#by-unit"' in full.text
    # And a mistyped section shows the usual page
    assert len(groups(client.get("/dashboard?all=nonsense").text, "unit")) == SECTION_LIMIT
