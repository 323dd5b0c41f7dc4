"""Two inspected units in one installation (issue 22): each unit's 整改办 (reviewer), leader,
viewer and owner against the other unit's campaign, measure, evidence, report, digest, notices,
statistics, exports and autocomplete: 404 (or the role refusal every campaign gets), and
nothing of the other unit in counts, lists or messages. The 巡察办 (supervisor) sees both and
may urge, but not act on a measure. The cast's campaign, without an inspected unit, stays
visible to everyone as before."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update
from web_support import PASSWORD, bring

from workflow import db
from workflow.lifecycle import DocumentKind, State
from workflow.models import Evidence, Person, Unit
from workflow.reminders import WorkdayIndex
from workflow.services.campaigns import create_campaign
from workflow.services.notices import DocumentRequest, issue_notices

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
UNITS = {"a": "甲学院", "b": "乙学院"}
ROLES = ("reviewer", "leader", "viewer", "owner")


def _place(sessions: Any, child: str, parent: str) -> None:
    with db.transaction(sessions) as session:
        parent_id = session.scalar(select(Unit.id).where(Unit.name == parent))
        session.execute(update(Unit).where(Unit.name == child).values(parent_id=parent_id))


@pytest.fixture
def two(cast: Any, ledger: Any, sessions: Any, now: Any, password_hash: str) -> Any:
    """Per unit (a, b): a campaign inspecting it, people in its sub-units (整改办, 教务处 and an
    owner in 教务科), one measure submitted with evidence and one overdue with a 督办 document;
    and a 巡察办 outside both."""
    for key, name in UNITS.items():
        with db.transaction(sessions) as session:
            campaign = create_campaign(session, title=f"{name}巡察反馈问题整改", now=now,
                                       inspected_unit=name)
        reviewer = ledger.person(f"Reviewer{key.upper()}", "reviewer", unit=f"{name}整改办")
        leader = ledger.person(f"Leader{key.upper()}", "leader", unit=f"{name}教务处")
        viewer = ledger.person(f"Viewer{key.upper()}", "viewer", unit=name)
        owner = ledger.person(f"Owner{key.upper()}", "owner", unit=f"{name}教务科")
        for child in (f"{name}整改办", f"{name}教务处"):
            _place(sessions, child, name)
        submitted, late = ledger.measures(campaign, [
            {"leader": leader, "owner": owner, "unit": f"{name}教务科", "area": f"{name}方面",
             "title": f"{name}修订教学管理办法"},
            {"leader": leader, "owner": owner, "unit": f"{name}教务科", "area": f"{name}方面",
             "title": f"{name}清理实验室台账", "deadline": date(2026, 11, 30)},
        ])
        bring(sessions, submitted.id, State.IN_PROGRESS, cast.admin, now)
        for role, person in (("reviewer", reviewer), ("leader", leader), ("viewer", viewer),
                             ("owner", owner)):
            setattr(cast, f"{role}_{key}", person)
        setattr(cast, f"campaign_{key}", campaign)
        setattr(cast, f"submitted_{key}", submitted)
        setattr(cast, f"late_{key}", late)
        with db.transaction(sessions) as session:
            key_of = f"{late.id}|2026-11-30|overdue:1"
            issued = issue_notices(session, [DocumentRequest(
                measure_id=late.id, kind=DocumentKind.NOTICE, stage="overdue:1",
                stage_key=key_of, deadline=date(2026, 11, 30), reply_days=3)], now=now,
                days=WorkdayIndex(lambda d: d.weekday() < 5))
            setattr(cast, f"notice_{key}", issued[key_of].id)
    cast.supervisor = ledger.person("Supervisor", "supervisor", unit="巡察办")
    with db.transaction(sessions) as session:
        session.execute(update(Person).values(password_hash=password_hash))
    return cast


def _evidence(two: Any, browser: Any, sessions: Any, key: str) -> int:
    """The owner of unit ``key`` submits its first measure with a PDF; the evidence's id."""
    measure = getattr(two, f"submitted_{key}")
    b = browser(f"owner_{key}")
    answer = b.post(f"/measures/{measure.id}/actions/submit", {"comment": "已修订并印发"},
                    files=[("evidence", ("办法.pdf", PDF, "application/pdf"))])
    assert answer.status_code == 303, answer.text
    with db.transaction(sessions) as session:
        return session.scalars(select(Evidence.id).order_by(Evidence.id.desc())).first()


def _other_words(two: Any, key: str) -> list[str]:
    """What must not appear anywhere for a person of the other unit."""
    name = UNITS[key]
    return [f"{name}修订教学管理办法", f"{name}清理实验室台账", f"{name}巡察反馈问题整改",
            f"{name}教务科", f"{name}方面", getattr(two, f"owner_{key}").name]


def _clean(text: str, words: list[str]) -> None:
    for word in words:
        assert word not in text, word


@pytest.mark.parametrize("role", ROLES)
def test_a_units_people_cannot_reach_the_other_unit(two: Any, api: Any, browser: Any,
                                                    sessions: Any, role: str) -> None:
    evidence_b = _evidence(two, browser, sessions, "b")
    who = f"{role}_a"
    client, page = api(who), browser(who)
    hidden = _other_words(two, "b")
    b_ids = {two.submitted_b.id, two.late_b.id}

    # lists: none of b's measures, and the counts are a's only
    listed = client.get("/api/measures").json()
    assert not b_ids & {m["id"] for m in listed}
    _clean(str(listed), hidden)

    # each of b's objects is 404, with a message that names nothing of b
    for url in (f"/api/measures/{two.submitted_b.id}", f"/api/notices/{two.notice_b}",
                f"/api/notices/{two.notice_b}/document"):
        answer = client.get(url)
        assert answer.status_code == 404, (url, answer.text)
        _clean(answer.text, hidden)
    for url in (f"/measures/{two.submitted_b.id}", f"/evidence/{evidence_b}",
                f"/notices/{two.notice_b}"):
        answer = page.get(url)
        assert answer.status_code == 404, (url, answer.status_code)
        _clean(answer.text, hidden)
    for action in ("verify", "reject", "start"):
        answer = client.post(f"/api/measures/{two.submitted_b.id}/actions/{action}",
                             json={"comment": "不行"})
        assert answer.status_code == 404, (action, answer.text)
    answer = client.post(f"/api/measures/{two.late_b.id}/urge", json={"comment": "请抓紧"})
    assert answer.status_code == 404
    assert client.get("/api/notices").status_code == 200
    assert two.notice_b not in {n["id"] for n in client.get("/api/notices").json()}

    # the campaign's report, digest and import: 404 for a clerk, the role refusal otherwise
    for url in (f"/api/campaigns/{two.campaign_b.id}/report?format=md",
                f"/api/campaigns/{two.campaign_b.id}/digest"):
        answer = client.get(url)
        assert answer.status_code == (404 if role == "reviewer" else 403), (url, answer.text)
        _clean(answer.text, hidden)
    for url in (f"/campaigns/{two.campaign_b.id}", f"/campaigns/{two.campaign_b.id}/digest",
                f"/campaigns/{two.campaign_b.id}/import"):
        answer = page.get(url)
        assert answer.status_code in (404 if role == "reviewer" else 403,), (url, answer.text)
        _clean(answer.text, hidden)

    # statistics by every grouping: nothing of b, not even an empty group
    for by in ("unit", "leader", "area", "campaign", "inspected_unit"):
        rows = client.get("/api/stats", params={"by": by}).json()
        _clean(str(rows), hidden)
        assert sum(r["total"] for r in rows) == len(listed), by

    # the ledger page, its filter choices (autocomplete) and its export
    ledger = page.get("/ledger")
    assert ledger.status_code == 200
    _clean(ledger.text, hidden)
    sheet = load_workbook(io.BytesIO(page.get("/ledger.xlsx").content)).active
    assert sheet is not None
    _clean(str(list(sheet.iter_rows(values_only=True))), hidden)
    _clean(page.get("/my").text, hidden)


def test_a_units_own_people_see_their_campaign_and_the_shared_one(two: Any, api: Any) -> None:
    seen = {role: {m["id"] for m in api(f"{role}_a").get("/api/measures").json()}
            for role in ROLES}
    a_ids = {two.submitted_a.id, two.late_a.id}
    # 整改办 and viewer: their unit's campaign and the one without an inspected unit
    assert seen["reviewer"] == seen["viewer"] == a_ids | {two.measure.id}
    # leader and owner: what they lead or own, as before
    assert seen["leader"] == seen["owner"] == a_ids
    assert api("reviewer_a").get(f"/api/campaigns/{two.campaign_a.id}/digest").json()[
        "total"] == 2
    titles = {c["title"]: c for c in api("reviewer_a").get("/api/campaigns").json()}
    assert set(titles) == {"甲学院巡察反馈问题整改", two.campaign.title}
    assert titles["甲学院巡察反馈问题整改"]["inspected_unit"] == "甲学院"
    assert titles[two.campaign.title]["inspected_unit"] is None
    # the cast's reviewer, outside both units, keeps the installation-wide campaign only
    assert {m["id"] for m in api("reviewer").get("/api/measures").json()} == {two.measure.id}
    # the reviewer may verify their own unit's submission
    answer = api("reviewer_a").post(f"/api/measures/{two.submitted_a.id}/actions/submit",
                                    json={"comment": "x"})
    assert answer.status_code == 403  # only the owner submits


def test_the_supervisor_sees_compares_and_urges_but_does_not_act(two: Any, api: Any) -> None:
    client = api("supervisor")
    ids = {m["id"] for m in client.get("/api/measures").json()}
    assert {two.submitted_a.id, two.late_a.id, two.submitted_b.id, two.late_b.id,
            two.measure.id} <= ids
    rows = {r["inspected_unit"]: r for r in client.get(
        "/api/stats", params={"by": "inspected_unit"}).json()}
    assert set(rows) == {"甲学院", "乙学院", "（未指定被巡察单位）"}
    a = rows["甲学院"]
    assert (a["total"], a["closed"], a["overdue"], a["urges"], a["relapses"]) == (2, 0, 1, 0, 0)
    assert [c["campaign"] for c in a["campaigns"]] == ["甲学院巡察反馈问题整改"]
    assert {"completion_rate", "on_time_rate", "rank"} <= set(a)
    urged = client.post(f"/api/measures/{two.late_b.id}/urge", json={"comment": "请抓紧整改"})
    assert urged.status_code == 200, urged.text
    rows = {r["inspected_unit"]: r for r in client.get(
        "/api/stats", params={"by": "inspected_unit"}).json()}
    assert (rows["乙学院"]["urges"], rows["甲学院"]["urges"]) == (1, 0)
    assert rows["乙学院"]["campaigns"][0]["urges"] == 1
    for action in ("start", "verify", "close"):
        answer = client.post(f"/api/measures/{two.submitted_b.id}/actions/{action}",
                             json={"comment": "x"})
        assert answer.status_code == 403, (action, answer.text)
    # a unit's reviewer compares only their own unit
    own = client_rows = api("reviewer_a").get("/api/stats", params={"by": "inspected_unit"}).json()
    assert {r["inspected_unit"] for r in client_rows} == {"甲学院", "（未指定被巡察单位）"}
    assert own


def test_cli_refuses_the_other_units_reviewer_and_the_supervisor(two: Any, rectiflow: Any,
                                                                  sessions: Any) -> None:
    result = rectiflow("measure", "do", str(two.submitted_b.id), "start",
                       "--as", two.reviewer_a.email)
    assert result.code == 3, result.err
    with db.transaction(sessions) as session:
        session.execute(update(Person).values(password_hash=None))
    bring(sessions, two.submitted_b.id, State.SUBMITTED, two.admin, two_now(two))
    for who in (two.reviewer_a, two.supervisor):
        result = rectiflow("measure", "do", str(two.submitted_b.id), "verify", "--as", who.email)
        assert result.code == 3, (who.name, result.err)
    assert rectiflow("measure", "do", str(two.submitted_b.id), "verify",
                     "--as", two.reviewer_b.email).code == 0
    listed = rectiflow("campaign", "list", "--json")
    assert {c["title"]: c["inspected_unit"] for c in __import__("json").loads(listed.out)} == {
        two.campaign.title: None, "甲学院巡察反馈问题整改": "甲学院", "乙学院巡察反馈问题整改": "乙学院"}


def two_now(two: Any) -> Any:
    from datetime import datetime

    from workflow.timeutil import SHANGHAI
    return datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI) + timedelta(minutes=1)


def test_units_of_the_ledger_go_under_the_inspected_unit(two: Any, sessions: Any) -> None:
    with db.transaction(sessions) as session:
        parents = {name: parent for name, parent in session.execute(
            select(Unit.name, Unit.parent_id))}
        ids = dict(session.execute(select(Unit.name, Unit.id)).all())
    assert parents["甲学院教务科"] == ids["甲学院"]
    assert parents["乙学院教务科"] == ids["乙学院"]
    assert parents["饮食服务中心"] is None  # the installation-wide campaign's unit stays


def test_a_unit_of_the_other_inspected_unit_is_refused(two: Any, ledger: Any,
                                                       sessions: Any, now: Any) -> None:
    from workflow.errors import InputError

    with db.transaction(sessions) as session:
        campaign = create_campaign(session, title="甲学院第二轮", now=now, inspected_unit="甲学院")
    with pytest.raises(InputError, match="乙学院教务科.*不属于被巡察单位「甲学院」"):
        ledger.measures(campaign, [{"leader": two.leader_a, "owner": two.owner_a,
                                    "unit": "乙学院教务科"}])


def test_a_scoped_reviewer_creates_campaigns_of_their_own_unit(two: Any, api: Any) -> None:
    client = api("reviewer_a")
    made = client.post("/api/campaigns", json={"title": "甲学院专项治理"})
    assert made.status_code == 201, made.text
    mine = {c["title"]: c for c in client.get("/api/campaigns").json()}
    assert mine["甲学院专项治理"]["inspected_unit"] == "甲学院"
    refused = client.post("/api/campaigns", json={"title": "越权", "inspected_unit": "乙学院"})
    assert refused.status_code == 422 and refused.json()["field"] == "inspected_unit"
    made = api("admin").post("/api/campaigns", json={"title": "乙学院专项", "inspected_unit": "乙学院"})
    assert made.status_code == 201
    listed = {c["title"]: c for c in api("reviewer_b").get("/api/campaigns").json()}
    assert listed["乙学院专项"]["inspected_unit"] == "乙学院" and "甲学院专项治理" not in listed


def test_people_lists_leave_out_the_other_unit(two: Any, api: Any, browser: Any) -> None:
    names = {p["name"] for p in api("reviewer_a").get("/api/people").json()}
    assert "OwnerA" in names and "OwnerB" not in names and "ReviewerB" not in names
    page = browser("reviewer_a").get("/campaigns").text
    assert "ownerb@" not in page and "ownera@" in page
    assert browser("reviewer_a").get(f"/people/{two.owner_b.id}").status_code in (404, 422)
    assert {p["name"] for p in api("admin").get("/api/people").json()} >= {"OwnerA", "OwnerB"}


assert PASSWORD


def test_weekly_digests_go_to_each_units_own_people_and_the_ranking_to_the_supervisor(
        two: Any, sessions: Any, now: Any) -> None:
    from sqlalchemy import select as sql_select

    from notifications.render import render
    from workflow.models import OutboxMessage
    from workflow.policy import load_policy_file
    from workflow.services.digest import send_weekly_digests

    with db.transaction(sessions) as session:
        run = send_weekly_digests(session, load_policy_file(None), frozenset(), now)
        assert run.messages
        sent = {(m.recipient_id, (m.payload or {}).get("campaign_id"),
                 bool((m.payload or {}).get("ranking")))
                for m in session.scalars(sql_select(OutboxMessage))}
        ranking = session.scalar(sql_select(OutboxMessage).where(
            OutboxMessage.recipient_id == two.supervisor.id))
        assert ranking is not None
        shown = render(session, ranking, "http://testserver")
    # a unit's 整改办 reads its own campaign's digest and the installation-wide one, never the
    # other unit's; the cast's 整改办 (outside both units) only the installation-wide one
    assert (two.reviewer_a.id, two.campaign_a.id, False) in sent
    assert (two.reviewer_a.id, two.campaign_b.id, False) not in sent
    assert (two.reviewer_b.id, two.campaign_a.id, False) not in sent
    assert (two.reviewer.id, two.campaign_a.id, False) not in sent
    assert (two.reviewer.id, two.campaign.id, False) in sent
    assert (two.reviewer_a.id, two.campaign.id, False) in sent
    assert {who for who, _, ranked in sent if ranked} == {two.supervisor.id}
    assert "甲学院" in shown.text and "乙学院" in shown.text and "排名" in shown.text
    assert "<td>甲学院</td>" in shown.html
    # a second run in the same week writes nothing twice
    with db.transaction(sessions) as session:
        again = send_weekly_digests(session, load_policy_file(None), frozenset(), now)
    assert not again.messages


def test_the_supervisor_issues_a_notice_and_the_other_units_reviewer_cannot(
        two: Any, api: Any, rectiflow: Any) -> None:
    made = api("supervisor").post(f"/api/measures/{two.late_b.id}/notices",
                                  json={"kind": "reminder"})
    assert made.status_code == 201, made.text
    doc = made.json()
    assert doc["kind"] == "reminder" and doc["stage"] == "manual:reminder"
    assert doc["unit"] == "乙学院教务科"
    # once per measure, deadline and kind: the same document again
    again = api("supervisor").post(f"/api/measures/{two.late_b.id}/notices",
                                   json={"kind": "reminder"})
    assert again.status_code == 201 and again.json()["id"] == doc["id"]
    assert api("reviewer_b").get(f"/api/notices/{doc['id']}").status_code == 200
    assert api("reviewer_a").get(f"/api/notices/{doc['id']}").status_code == 404
    assert api("reviewer_a").post(f"/api/measures/{two.late_b.id}/notices",
                                  json={"kind": "notice"}).status_code == 404
    assert api("owner_b").post(f"/api/measures/{two.late_b.id}/notices",
                               json={"kind": "notice"}).status_code == 403
    assert api("reviewer_b").post(f"/api/measures/{two.late_b.id}/notices",
                                  json={"kind": "warning"}).status_code == 201
    result = rectiflow("notice", "issue", str(two.late_a.id), "--kind", "warning",
                       "--as", two.reviewer_b.email)
    assert result.code == 3, result.err
    result = rectiflow("notice", "issue", str(two.late_a.id), "--kind", "warning",
                       "--as", two.supervisor.email, "--json")
    assert result.code == 0, result.err
    assert '"manual:warning"' in result.out


def test_metrics_name_each_campaigns_inspected_unit(two: Any, sessions: Any, now: Any) -> None:
    from workflow.metrics import MeasureCollector

    families = {f.name: f for f in MeasureCollector(sessions, lambda: now).collect()}
    info = {(s.labels["campaign_id"], s.labels["inspected_unit"])
            for s in families["rectiflow_campaign_inspected_unit"].samples}
    assert info == {(str(two.campaign_a.id), "甲学院"), (str(two.campaign_b.id), "乙学院")}


def test_a_units_reviewer_cannot_add_people_to_the_other_unit_or_make_a_supervisor(
        two: Any, api: Any) -> None:
    client = api("reviewer_a")
    refused = client.post("/api/people", json={"name": "冒名", "email": "fake@example.edu.cn",
                                               "roles": ["viewer"], "unit": "乙学院教务科",
                                               "password": "long-enough-1"})
    assert refused.status_code == 422 and refused.json()["field"] == "unit"
    assert client.post("/api/people", json={"name": "巡察", "email": "x2@example.edu.cn",
                                            "roles": ["supervisor"]}).status_code == 403
    made = client.post("/api/people", json={"name": "新同事", "email": "new@example.edu.cn",
                                            "roles": ["owner"], "unit": "甲学院教务科"})
    assert made.status_code == 201, made.text
    assert api("admin").post("/api/people", json={"name": "巡察二", "email": "x3@example.edu.cn",
                                                  "roles": ["supervisor"]}).status_code == 201


def test_the_supervisors_dashboard_ranks_the_inspected_units(two: Any, api: Any,
                                                             browser: Any) -> None:
    from tests.web.test_dashboard import groups, href, ledger_total

    # Given the 巡察办's dashboard and the same figures from the API
    client = browser("supervisor")
    page = client.get("/dashboard")
    assert page.status_code == 200
    rows = {r["inspected_unit"]: r for r in api("supervisor").get(
        "/api/stats", params={"by": "inspected_unit"}).json()}
    drawn = groups(page.text, "inspected_unit")
    # Then every inspected unit is drawn, first, and each unit's bar opens its measures
    assert set(drawn) == set(rows)
    assert page.text.index('id="by-inspected_unit"') < page.text.index('id="by-unit"')
    for name in ("甲学院", "乙学院"):
        row = rows[name]
        assert f"{row['closed']}/{row['total']}" in drawn[name]
        assert ledger_total(client, href(drawn[name], "all")) == row["total"]
        if row["overdue"]:
            assert ledger_total(client, href(drawn[name], "overdue")) == row["overdue"]
    # and a unit's 整改办 gets no comparison and no word of the other unit
    own = browser("reviewer_a").get("/dashboard")
    assert own.status_code == 200
    assert 'id="by-inspected_unit"' not in own.text
    assert "乙学院" not in own.text
