"""End to end in a real browser: the owner logs in, starts and submits with evidence; the
reviewer verifies; the leader signs off from 待我销号, and from the message's link on a phone.

Playwright (from PyPI) drives Debian's chromium; screenshots are saved in
``RECTIFLOW_SCREENSHOT_DIR`` (default: the test's temporary folder)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import login, needs_chromium
from live_server import serving
from web_support import PASSWORD, state_of

pytestmark = needs_chromium


@pytest.fixture
def server(app: Any, with_passwords: Any) -> Iterator[str]:
    with serving(app) as url:
        yield url


def logout(page: Any) -> None:
    page.click("header form button")
    page.wait_for_url("**/login")


def test_owner_submits_with_evidence_and_the_leader_approves(
        server: str, chromium: Any, cast: Any, sessions: Any, shots: Path,
        tmp_path: Path, app: Any, clock: Any) -> None:
    evidence = tmp_path / "采购管理办法（修订稿）.pdf"
    evidence.write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    page = chromium.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    measure_url = f"{server}/measures/{cast.measure.id}"

    # The owner finds the measure in 我的事项, starts it, and submits with evidence
    login(page, server, cast.owner.email)
    assert "需要我整改" in page.content()
    page.screenshot(path=str(shots / "1-owner-my.png"), full_page=True)
    page.click(f"a[href='/measures/{cast.measure.id}#do-start']")
    page.click("#do-start button[type=submit]")
    page.wait_for_selector(".flash.ok")
    page.fill("#do-submit textarea[name=comment]",
              "已修订《食堂原材料采购管理办法》并经党总支会议审议通过，现已印发执行。")
    page.set_input_files("#do-submit input[type=file]", str(evidence))
    page.click("#do-submit button[type=submit]")
    page.wait_for_selector(".flash.ok")
    assert "采购管理办法（修订稿）.pdf" in page.content()
    page.screenshot(path=str(shots / "2-owner-submitted.png"), full_page=True)
    assert state_of(sessions, cast.measure.id) == "submitted"
    logout(page)

    # The leader verifies on the measure page
    login(page, server, cast.leader.email)
    assert "需要我核验" in page.content()
    page.goto(measure_url)
    page.click("#do-verify button[type=submit]")
    page.wait_for_selector(".flash.ok")
    assert state_of(sessions, cast.measure.id) == "verified"

    # ... and signs it off from 待我销号, where the evidence is listed
    page.click("a[href='/to-close']")
    assert "采购管理办法（修订稿）.pdf" in page.content()
    page.screenshot(path=str(shots / "3-leader-to-close.png"), full_page=True)
    page.check("input[name=pick]")
    page.click("form[action='/to-close'] button[type=submit]")
    page.wait_for_selector(".flash.ok")
    assert "已销号 1 项" in page.content()
    assert state_of(sessions, cast.measure.id) == "closed"
    page.goto(measure_url)
    page.screenshot(path=str(shots / "4-closed-history.png"), full_page=True)
    assert "已销号" in page.content()


def test_leader_approves_from_the_message_on_a_phone(
        server: str, chromium: Any, cast: Any, sessions: Any, shots: Path, app: Any,
        clock: Any, now: Any) -> None:
    from web_support import bring

    from notifications.channels.base import MemoryChannel
    from notifications.deliverer import Deliverer
    from workflow.lifecycle import State

    bring(sessions, cast.measure.id, State.VERIFIED, cast.admin, now)
    channel = MemoryChannel("file")
    Deliverer(sessions, {"file": channel}, base_url="http://testserver",
              link_maker=app.state.web.runtime.link_maker).run(clock)
    [sent] = [r.url for r in channel.sent if "/approve/" in r.url]
    link = sent.replace("http://testserver", server)  # the settings' base URL → this server
    phone = chromium.new_page(viewport={"width": 375, "height": 740}, locale="zh-CN",
                                  is_mobile=True, device_scale_factor=2)
    phone.goto(link)
    # 销号 asks for the leader's own sign-in (policy default), then comes back to the link
    phone.wait_for_url(re.compile(r"/login\?next=/approve/"))
    assert "登录后将回到确认页面" in phone.content()
    phone.screenshot(path=str(shots / "5-phone-login.png"), full_page=True)
    assert state_of(sessions, cast.measure.id) == "verified"  # opening changed nothing
    phone.fill("#email", cast.leader.email)
    phone.fill("#password", PASSWORD)
    phone.click("button[type=submit]")
    phone.wait_for_url(link)
    phone.screenshot(path=str(shots / "5-phone-confirm.png"), full_page=True)
    assert "确认销号" in phone.content()
    assert state_of(sessions, cast.measure.id) == "verified"
    button = phone.locator("#accept button[type=submit]")
    assert button.bounding_box()["height"] >= 44  # a thumb-sized button
    button.click()
    phone.wait_for_selector(".flash.ok")
    phone.screenshot(path=str(shots / "6-phone-done.png"), full_page=True)
    assert state_of(sessions, cast.measure.id) == "closed"
    phone.goto(link)
    assert "已使用" in phone.content()
