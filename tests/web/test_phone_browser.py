"""Every page a message links to, and the dashboard, on a phone (390×844) for each role, in
Debian's chromium: nothing scrolls sideways, the key fields are inside the screen, and no date,
number or button breaks across lines. Screenshots at phone and desktop width are kept in
``RECTIFLOW_SCREENSHOT_DIR`` (default: the test's temporary folder)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from browser_support import login, needs_chromium
from live_server import serving
from sqlalchemy import select

from workflow import db
from workflow.lifecycle import Action, State
from workflow.models import Measure, OfficialNotice
from workflow.policy import load_policy_file
from workflow.schedule import set_next_reminder
from workflow.services.approvals import mint
from workflow.services.measures import load_measure
from workflow.services.sweep import reminder_context, sweep

pytestmark = needs_chromium

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
LONG_TITLE = ("建立健全食堂大宗原材料集中采购、入库验收、出库登记和成本核算全流程管理制度，"
              "并对近三年采购合同逐一复核")


@pytest.fixture
def world(spread: Any, ledger: Any, sessions: Any, now: datetime, web_support_bring: Any
          ) -> Any:
    """The spread (two units, two campaigns, overdue and closed measures), a measure with a
    long title and a long 方面, the cast's measure verified (its leader and the first
    responsible each hold a close link), and the 督办通知书 the sweep issued."""
    cast = spread
    long = ledger.measures(cast.campaign, [
        {"leader": cast.leader, "owner": cast.owner, "unit": "饮食服务中心", "seq": "9",
         "title": LONG_TITLE, "area": "落实全面从严治党主体责任和监督责任还有差距",
         "deadline": date(2026, 12, 9)}])[-1]
    web_support_bring(sessions, cast.measure.id, State.VERIFIED, cast.admin, now)
    with db.transaction(sessions, write_lock=True) as session:
        set_next_reminder(session, session.scalars(select(Measure.id)).all(),
                          now - timedelta(minutes=1))
    with db.transaction(sessions, write_lock=True) as session:
        sweep(session, reminder_context(session, load_policy_file(None), frozenset()), now=now)
    with db.transaction(sessions) as session:
        measure = load_measure(session, cast.measure.id)
        cast.links = {
            who: mint(session, measure=measure, action=Action.CLOSE, person_id=person.id,
                      now=now)
            for who, person in (("leader", cast.leader), ("secretary", cast.secretary))}
        cast.notice_ids = list(session.scalars(select(OfficialNotice.id)))
    cast.long = long
    return cast


@pytest.fixture
def web_support_bring() -> Any:
    from web_support import bring

    return bring


@pytest.fixture
def server(app: Any, with_passwords: Any) -> Iterator[str]:
    with serving(app) as url:
        yield url


#: The pages each role is sent to by its messages (and the navigation's 总览), as
#: (name, path); ``{m}`` is the cast's measure, ``{long}`` the long one, ``{link}`` the role's
#: approval link.
PAGES: dict[str, list[tuple[str, str]]] = {
    "owner": [("my", "/my"), ("measure", "/measures/{long}"), ("ledger", "/ledger"),
              ("overdue", "/ledger?overdue=1"), ("notices", "/notices"),
              ("dashboard", "/dashboard")],
    "leader": [("my", "/my"), ("approve", "/approve/{link}"), ("to-close", "/to-close"),
               ("measure", "/measures/{m}"), ("ledger", "/ledger"), ("notices", "/notices"),
               ("dashboard", "/dashboard")],
    "reviewer": [("my", "/my"), ("ledger", "/ledger"), ("overdue", "/ledger?overdue=1"),
                 ("measure", "/measures/{long}"), ("notices", "/notices"),
                 ("dashboard", "/dashboard")],
    "secretary": [("my", "/my"), ("approve", "/approve/{link}"), ("to-close", "/to-close"),
                  ("ledger", "/ledger"), ("dashboard", "/dashboard")],
    "viewer": [("my", "/my"), ("ledger", "/ledger"), ("measure", "/measures/{m}"),
               ("dashboard", "/dashboard")],
}

#: Elements whose text must stay on one line: dates, counts, buttons, badges, headings of
#: columns. Wrapped if two of its text boxes do not overlap vertically.
UNBROKEN = ".date, .nw, .num, button, .button, .badge:not(.due), th, .counts a"
WRAPPED_JS = """(selector) => {
  const found = [];
  for (const el of document.querySelectorAll(selector)) {
    const range = document.createRange();
    range.selectNodeContents(el);
    const boxes = [...range.getClientRects()].filter(b => b.width > 0 && b.height > 0);
    if (!boxes.length) continue;  // not shown (a folded filter, a phone-hidden column)
    const apart = boxes.some(a => boxes.some(b => b.top >= a.bottom - 1));
    if (apart) found.push(el.outerHTML.slice(0, 160));
  }
  return found;
}"""
#: Every date ("2026-12-01", "2026-12-01 周二", "2026-12-01（周二）") and count of working days
#: in the page's text, wherever it is, must be on one line.
DATES_JS = r"""() => {
  const pattern = /\d{4}-\d{2}-\d{2}(?:（周.）| 周.)?|\d+ ?个工作日/g, found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const texts = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) texts.push(node);
  // a date split over several text nodes (spans) is checked through its parent's text
  const parents = new Set(texts.map(n => n.parentElement));
  for (const el of parents) {
    const text = el.textContent;
    for (const match of text.matchAll(pattern)) {
      const range = document.createRange();
      let start = match.index, end = match.index + match[0].length, offset = 0;
      const inner = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      for (let node = inner.nextNode(); node; node = inner.nextNode()) {
        const len = node.textContent.length;
        if (start >= offset && start <= offset + len) range.setStart(node, start - offset);
        if (end >= offset && end <= offset + len) { range.setEnd(node, end - offset); break; }
        offset += len;
      }
      const boxes = [...range.getClientRects()].filter(b => b.width > 0 && b.height > 0);
      if (boxes.some(a => boxes.some(b => b.top >= a.bottom - 1))) found.push(match[0]);
    }
  }
  return found;
}"""
#: Key fields, by page: each shown one must lie inside the screen's width.
KEY_FIELDS = ("#ledger .title-link, #ledger td.deadline, #ledger td.state, #ledger td.health, "
              "#ledger td.owner, .my-section .title-link, .my-section td.deadline, "
              ".my-section td.state, .my-section td.owner, .my-section td.do a, "
              "#accept button, #refuse button, #refuse textarea, #totals a, svg.chart, "
              "svg.chart text, ul.items li, #notices .title-link, form[action='/to-close'] button, "
              "dl.facts dd, .actions button")
OUTSIDE_JS = """(selector) => {
  const width = window.innerWidth, found = [];
  for (const el of document.querySelectorAll(selector)) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (box.left < -0.5 || box.right > width + 0.5)
      found.push(`${el.tagName}.${el.className.baseVal ?? el.className} ${box.left}-${box.right}: `
                 + (el.textContent || '').trim().slice(0, 40));
  }
  return found;
}"""
#: In a dashboard bar, a group's name and its figures must not overlap.
OVERLAP_JS = """() => [...document.querySelectorAll('svg.bars g.group')].filter(g => {
  const [name, figures] = g.querySelectorAll(':scope > text, :scope > a > text');
  if (!name || !figures) return false;
  return name.getBoundingClientRect().right > figures.getBoundingClientRect().left;
}).map(g => g.dataset.name)"""


def check_phone_page(page: Any, label: str) -> None:
    width = page.evaluate("window.innerWidth")
    scroll = page.evaluate("document.scrollingElement.scrollWidth")
    assert scroll <= width, f"{label}: scrolls sideways ({scroll} > {width})"
    assert page.evaluate(OUTSIDE_JS, KEY_FIELDS) == [], label
    assert page.evaluate(WRAPPED_JS, UNBROKEN) == [], label
    assert page.evaluate(DATES_JS) == [], label
    assert page.evaluate(OVERLAP_JS) == [], label


@pytest.mark.parametrize("role", list(PAGES))
def test_every_page_fits_a_phone(role: str, world: Any, server: str, chromium: Any,
                                 shots: Path) -> None:
    person = getattr(world, role)
    values = {"m": world.measure.id, "long": world.long.id,
              "link": world.links.get(role, "")}
    phone = chromium.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True,
                                 has_touch=True, device_scale_factor=2)
    desktop = chromium.new_context(viewport=DESKTOP, locale="zh-CN")
    try:
        for context in (phone, desktop):
            login(context.new_page(), server, person.email)
        p, d = phone.pages[0], desktop.pages[0]
        for name, path in PAGES[role]:
            url = server + path.format(**values)
            answer = p.goto(url)
            assert answer is not None and answer.status == 200, (role, name, answer)
            p.screenshot(path=str(shots / f"{role}-{name}-phone.png"), full_page=True)
            check_phone_page(p, f"{role} {name}")
            d.goto(url)
            d.screenshot(path=str(shots / f"{role}-{name}-desktop.png"), full_page=True)
        # the ledger's filters fold away on the phone and stand open on the desktop
        for page, shown in ((p, False), (d, True)):
            page.goto(f"{server}/ledger")
            assert page.locator("form.filters select[name=state]").is_visible() is shown
        p.goto(f"{server}/ledger")
        p.click("details.fold > summary")
        assert p.locator("form.filters select[name=state]").is_visible()
        check_phone_page(p, f"{role} ledger, filters open")
        p.screenshot(path=str(shots / f"{role}-ledger-filters-phone.png"), full_page=True)
    finally:
        phone.close()
        desktop.close()


def test_the_ledger_is_cards_on_a_phone_and_a_table_on_a_desktop(world: Any, server: str,
                                                                 chromium: Any) -> None:
    phone = chromium.new_page(viewport=PHONE, is_mobile=True)
    login(phone, server, world.reviewer.email)
    phone.goto(f"{server}/ledger")
    row = phone.locator(f"#ledger tr:has(a[href='/measures/{world.long.id}'])")
    # one card: its title on top, the deadline, state, days and owner below, all on screen
    title = row.locator(".title-link").bounding_box()
    for cell in ("td.deadline", "td.state", "td.health", "td.owner"):
        box = row.locator(cell).bounding_box()
        assert box["y"] >= title["y"] + title["height"] - 1, cell
        assert box["x"] + box["width"] <= PHONE["width"], cell
    assert "完成时限" in row.locator("td.deadline").evaluate(
        "el => getComputedStyle(el, '::before').content")
    assert "还有" in row.locator("td.health").inner_text()
    assert phone.locator("#ledger thead").is_hidden()
    wide = chromium.new_page(viewport=DESKTOP)
    login(wide, server, world.reviewer.email)
    wide.goto(f"{server}/ledger")
    assert wide.locator("#ledger thead").is_visible()


def test_the_dashboard_links_work_in_the_browser(world: Any, server: str, chromium: Any) -> None:
    phone = chromium.new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    login(phone, server, world.reviewer.email)
    phone.goto(f"{server}/dashboard")
    # tap the overdue figure of 物业管理科: the ledger lists exactly its overdue measure
    group = phone.locator("svg.bars g.group[data-name='物业管理科']")
    group.locator("a.overdue").click()
    phone.wait_for_url("**/ledger?**")
    assert "共 1 项" in phone.content()
    assert "清理公房出租合同" in phone.content()


def test_the_approval_page_refuses_an_empty_reason_in_the_browser(world: Any, server: str,
                                                                  chromium: Any,
                                                                  shots: Path) -> None:
    phone = chromium.new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    login(phone, server, world.leader.email)
    phone.goto(f"{server}/approve/{world.links['leader']}")
    for button in ("#accept button", "#refuse button"):
        assert phone.locator(button).bounding_box()["height"] >= 44  # thumb-sized
    assert phone.locator("#accept button").inner_text() == "确认销号"
    assert phone.locator("#refuse button").inner_text() == "退回整改"
    # the browser itself will not send an empty reason (required) ...
    phone.click("#refuse button")
    assert phone.evaluate("document.querySelector('#reason').validity.valueMissing")
    # ... and the server refuses one of blanks with 422, keeping the page
    phone.fill("#reason", "   ")
    with phone.expect_response(lambda r: r.request.method == "POST") as answer:
        phone.click("#refuse button")
    assert answer.value.status == 422
    assert phone.locator("#refusal-error").is_visible()
    phone.screenshot(path=str(shots / "leader-approve-refused-phone.png"), full_page=True)
    phone.fill("#reason", "佐证材料缺少会议纪要，请补充")
    phone.click("#refuse button")
    phone.wait_for_selector(".flash.ok")
    assert "已退回整改" in phone.content()
    phone.screenshot(path=str(shots / "leader-approve-returned-phone.png"), full_page=True)


def test_the_digest_chart_is_readable_on_a_phone(world: Any, server: str, chromium: Any,
                                                 shots: Path) -> None:
    # The campaign's digest page is the mail's HTML with the chart as a data URI (cid: in mail)
    from notifications.chart import DPI, FONT_PT, WIDTH_PX

    phone = chromium.new_page(viewport=PHONE, is_mobile=True, device_scale_factor=2)
    login(phone, server, world.reviewer.email)
    phone.goto(f"{server}/campaigns/{world.campaign.id}/digest")
    image = phone.locator("img[alt^='整改进展']")
    assert image.get_attribute("width") == str(WIDTH_PX)  # for mail clients that ignore CSS
    box = image.bounding_box()
    natural = image.evaluate("img => img.naturalWidth")
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
    # the labels, FONT_PT points drawn at DPI, shown at least as large as the mail's small text
    label_px = FONT_PT / 72 * DPI * box["width"] / natural
    assert label_px >= 12, label_px
    phone.screenshot(path=str(shots / "digest-phone.png"), full_page=True)
