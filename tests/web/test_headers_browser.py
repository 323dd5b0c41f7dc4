"""In chromium, with the Content-Security-Policy in force: every page still works and reports
no violation, and /api/docs draws Swagger UI from this site alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from browser_support import login, needs_chromium
from live_server import serving

from workflow import db
from workflow.lifecycle import Action
from workflow.services.measures import ActionRequest, perform

pytestmark = needs_chromium


@pytest.fixture
def server(app: Any, with_passwords: Any) -> Iterator[str]:
    with serving(app) as url:
        yield url


WATCH_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


def watched_page(chromium: Any, base: str) -> tuple[Any, list[str], set[str]]:
    page = chromium.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page.add_init_script(WATCH_CSP)
    console: list[str] = []
    hosts: set[str] = set()
    page.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning")
            else None)
    page.on("request", lambda r: hosts.add(urlsplit(r.url).netloc))
    return page, console, hosts


def violations(page: Any, console: list[str]) -> list[str]:
    found = list(page.evaluate("window.__csp || []"))
    found += [m for m in console if "Content Security Policy" in m or "Refused to" in m]
    return found


def test_every_page_works_under_the_policy(server, chromium, cast, sessions, now,
                                          shots: Path):
    with db.transaction(sessions) as session:
        perform(session, ActionRequest(cast.measure.id, Action.START, cast.owner.email), now=now)
    page, console, hosts = watched_page(chromium, server)
    login(page, server, cast.admin.email)
    for path, marker in [("/my", "我的事项"), ("/ledger", "台账"),
                         (f"/measures/{cast.measure.id}", cast.measure.title),
                         ("/to-close", "销号"), ("/admin", "管理"), ("/admin/calendar", "节假日调整"),
                         ("/admin/policy", "提醒策略"), ("/admin/outbox", "发送失败"),
                         ("/admin/sweep-preview", "提醒")]:
        page.goto(server + path)
        assert marker in page.content(), path
        # the stylesheet applied: the header has its colour
        colour = page.evaluate("getComputedStyle(document.querySelector('header'))"
                               ".backgroundColor")
        assert colour == "rgb(139, 26, 26)", (path, colour)
        assert violations(page, console) == [], path
    page.screenshot(path=str(shots / "csp-measure.png"), full_page=True)
    # A form still posts (form-action 'self'), and logging out works
    page.click("header form button")
    page.wait_for_url("**/login")
    assert violations(page, console) == []
    assert hosts == {urlsplit(server).netloc}


def test_swagger_ui_is_drawn_from_local_files(server, chromium, shots: Path):
    page, console, hosts = watched_page(chromium, server)
    page.goto(f"{server}/api/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20000)
    assert "rectiflow" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-tag", timeout=20000)
    assert page.locator(".opblock").count() > 3
    page.screenshot(path=str(shots / "api-docs.png"), full_page=False)
    assert violations(page, console) == []
    assert hosts == {urlsplit(server).netloc}, hosts
