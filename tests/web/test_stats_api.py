"""``GET /api/stats?by=...``: figures grouped by unit, leader, area or campaign, each reader seeing
only the measures (and so the units, leaders and areas) in their own scope."""

from __future__ import annotations

from typing import Any

import pytest


def rows(client: Any, by: str) -> list[dict[str, Any]]:
    answer = client.get("/api/stats", params={"by": by})
    assert answer.status_code == 200, answer.text
    return answer.json()


def by_name(found: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {row[key]: row for row in found}


def test_the_whole_picture_for_the_zhenggaiban(spread: Any, api: Any) -> None:
    units = by_name(rows(api("reviewer"), "unit"), "unit")
    assert list(units) == sorted(units)
    wuye, yinshi = units["物业管理科"], units["饮食服务中心"]
    assert (wuye["total"], wuye["closed"], wuye["overdue"], wuye["in_progress"]) == (2, 1, 1, 0)
    assert wuye["completion_rate"] == 0.5
    assert (yinshi["total"], yinshi["closed"], yinshi["overdue"], yinshi["in_progress"]) == (
        2, 0, 1, 1)
    assert yinshi["completion_rate"] == 0.0
    leaders = by_name(rows(api("reviewer"), "leader"), "leader")
    assert leaders["Secretary"]["leader_email"] == "secretary@example.edu.cn"
    assert (leaders["Secretary"]["total"], leaders["Leader"]["total"]) == (2, 2)
    areas = rows(api("reviewer"), "area")
    assert [(r["area"], r["total"]) for r in areas] == [
        ("学习传达有差距", 1), ("作风建设有差距", 2), ("内部管理不规范", 1)]


def test_campaign_rows_agree_with_the_digest(spread: Any, api: Any) -> None:
    # One definition per rule: the campaign's row and its digest count alike
    client = api("reviewer")
    campaigns = {row["campaign_id"]: row for row in rows(client, "campaign")}
    assert campaigns[spread.audit.id]["campaign"] == "审计发现问题整改"
    for campaign_id, row in campaigns.items():
        digest = client.get(f"/api/campaigns/{campaign_id}/digest").json()
        for key in ("total", "overdue", "completion_rate", "on_time_rate", "by_state"):
            assert row[key] == digest[key], (campaign_id, key)


@pytest.mark.parametrize(("role", "units"), [
    ("owner", {"饮食服务中心": 2}),        # their unit: their own and Colleague's measure
    ("colleague", {"饮食服务中心": 2}),
    ("outsider", {"物业管理科": 2}),
    ("leader", {"饮食服务中心": 2}),       # the measures they lead
    ("secretary", {"物业管理科": 2, "饮食服务中心": 1}),  # leads two, first responsible of one
    ("admin", {"物业管理科": 2, "饮食服务中心": 2}),
    ("viewer", {"物业管理科": 2, "饮食服务中心": 2}),
])
def test_each_reader_sees_only_their_scope(spread: Any, api: Any, role: str,
                                           units: dict[str, int]) -> None:
    client = api(role)
    found = rows(client, "unit")
    assert {row["unit"]: row["total"] for row in found} == units
    hidden = {"物业管理科", "饮食服务中心"} - set(units)
    for by in ("unit", "leader", "area", "campaign"):
        text = client.get("/api/stats", params={"by": by}).text
        for name in hidden:
            assert name not in text, (by, name)


def test_an_owner_sees_no_other_units_areas_leaders_or_campaign_figures(spread: Any,
                                                                         api: Any) -> None:
    client = api("outsider")
    assert [r["leader"] for r in rows(client, "leader")] == ["Secretary"]
    assert [(r["area"], r["total"]) for r in rows(client, "area")] == [("作风建设有差距", 2)]
    assert [(r["campaign"], r["total"], r["overdue"]) for r in rows(client, "campaign")] == [
        ("审计发现问题整改", 2, 1)]


def test_the_page_session_may_ask_too(spread: Any, browser: Any) -> None:
    answer = browser("owner").get("/api/stats?by=unit")
    assert answer.status_code == 200
    assert [row["unit"] for row in answer.json()] == ["饮食服务中心"]


@pytest.mark.parametrize("by", ["person", "", "unit;drop table measure", "UNIT"])
def test_a_bad_grouping_is_422_naming_the_parameter(spread: Any, api: Any, by: str) -> None:
    answer = api("reviewer").get("/api/stats", params={"by": by})
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "by"
    assert "unit（部门）" in answer.json()["detail"]


def test_no_token_is_401(spread: Any, app: Any) -> None:
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        assert client.get("/api/stats?by=unit").status_code == 401
        bad = client.get("/api/stats?by=unit", headers={"Authorization": "Bearer forged"})
        assert bad.status_code == 401
