"""回头看 and 三方验收 on a phone, in a real browser (issue 15): the reviewer records a relapse
with the page's own form, and an acceptor accepts; the buttons are thumb-sized.

Screenshots are saved in ``RECTIFLOW_SCREENSHOT_DIR`` (default: the test's temporary folder)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import login, needs_chromium
from live_server import serving
from web_support import state_of

from workflow import db
from workflow.lifecycle import Action
from workflow.models import Campaign
from workflow.services.measures import ActionRequest, perform

pytestmark = needs_chromium


@pytest.fixture
def server(app: Any, with_passwords: Any) -> Iterator[str]:
    with serving(app) as url:
        yield url


def _walk(sessions: Any, measure_id: int, steps: list[str], who: str, now: Any) -> None:
    for step in steps:
        with db.transaction(sessions) as session:
            perform(session, ActionRequest(measure_id, Action(step), who, comment="推进"),
                    now=now)


def _phone(chromium: Any) -> Any:
    return chromium.new_page(viewport={"width": 375, "height": 740}, locale="zh-CN",
                             is_mobile=True, device_scale_factor=2)


def test_a_relapse_recorded_on_a_phone(server: str, chromium: Any, cast: Any, sessions: Any,
                                       now: Any, shots: Path) -> None:
    _walk(sessions, cast.measure.id, ["start", "submit", "verify", "close"], cast.admin.email,
          now)
    phone = _phone(chromium)
    login(phone, server, cast.reviewer.email)
    phone.goto(f"{server}/measures/{cast.measure.id}#do-recheck")
    form = phone.locator("#do-recheck")
    assert "回头看结论（必选）" in form.inner_text()
    # A relapse without a reason is refused and nothing changes
    form.locator("input[value=relapse]").check()
    button = form.locator("button[type=submit]")
    assert button.bounding_box()["height"] >= 44  # a thumb-sized button
    assert button.bounding_box()["width"] <= 375
    phone.screenshot(path=str(shots / "recheck-1-form.png"), full_page=True)
    button.click()
    phone.wait_for_load_state()
    assert "说明/理由" in phone.content()
    assert state_of(sessions, cast.measure.id) == "closed"
    # With the reason it reopens the measure, and the page says why
    phone.goto(f"{server}/measures/{cast.measure.id}#do-recheck")
    form = phone.locator("#do-recheck")
    form.locator("input[value=relapse]").check()
    form.locator("textarea[name=comment]").fill("抽查发现采购台账又有未登记情况")
    form.locator("button[type=submit]").click()
    phone.wait_for_selector(".flash.ok")
    assert state_of(sessions, cast.measure.id) == "in_progress"
    assert "已回头看（出现反弹），当前状态：整改中" in phone.locator(".flash.ok").inner_text()
    assert "出现反弹" in phone.locator("#rechecks").inner_text()
    phone.screenshot(path=str(shots / "recheck-2-relapsed.png"), full_page=True)


def test_an_acceptor_accepts_on_a_phone(server: str, chromium: Any, cast: Any, sessions: Any,
                                        now: Any, shots: Path) -> None:
    with db.transaction(sessions) as session:
        session.get_one(Campaign, cast.campaign.id).acceptors = ["reviewer", cast.secretary.id]
    _walk(sessions, cast.measure.id, ["start", "submit"], cast.owner.email, now)
    phone = _phone(chromium)
    login(phone, server, cast.secretary.email)
    phone.goto(f"{server}/measures/{cast.measure.id}")
    card = phone.locator("#acceptance").inner_text()
    assert "整改办：待验收" in card and "Secretary：待验收" in card
    phone.click("#do-verify button[type=submit]")
    phone.wait_for_selector(".flash.ok")
    assert "已记录您的验收，尚有 1 位验收人未验收" in phone.locator(".flash.ok").inner_text()
    card = phone.locator("#acceptance").inner_text()
    assert "Secretary：已验收" in card and "整改办：待验收" in card
    assert phone.locator("#do-verify").count() == 0
    assert state_of(sessions, cast.measure.id) == "submitted"
    phone.screenshot(path=str(shots / "acceptance-phone.png"), full_page=True)
