"""The 整改办's main paths in a real browser (Playwright + Debian's chromium): create a campaign,
preview a ledger with bad rows, add the unknown person from the preview, import the fixed file,
add a person, download the report; then every page at phone width (390 px) without sideways
scrolling. Screenshots go to ``RECTIFLOW_SCREENSHOT_DIR`` (default: the test's temporary folder)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import login, needs_chromium
from clerk_support import NOTICE_2027, bad_rows, ledger_csv
from live_server import serving
from sqlalchemy import func, select

from workflow import db
from workflow.models import Campaign, Measure, Person

pytestmark = needs_chromium


@pytest.fixture
def server(app: Any, with_passwords: Any) -> Iterator[str]:
    with serving(app) as url:
        yield url


def no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} is {width}px wide"


def test_a_clerk_creates_imports_adds_and_downloads(server: str, chromium: Any, sessions: Any,
                                                    shots: Path, tmp_path: Path,
                                                    cast: Any) -> None:
    page = chromium.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN",
                             accept_downloads=True)
    login(page, server, cast.reviewer.email)
    page.click("header a[href='/campaigns']")
    page.screenshot(path=str(shots / "clerk-1-campaigns.png"), full_page=True)

    # A campaign without a title is refused; what was typed stays in the form
    page.fill("#first_responsible", "secretary@example.edu.cn")
    page.fill("#feedback_date", "2026-12-01")
    page.click("#campaign-form button[type=submit]")
    assert page.locator("#title-error").inner_text() == "整改任务名称不能为空"
    assert page.input_value("#first_responsible") == "secretary@example.edu.cn"
    page.fill("#title", "2026年财务专项巡察反馈问题整改")
    page.click("#campaign-form button[type=submit]")
    page.wait_for_url("**/import")
    assert "已新建整改任务" in page.content()

    # A ledger with an unknown owner and an impossible date: every problem, nothing written
    bad = tmp_path / "财务巡察整改台账.csv"
    bad.write_bytes(ledger_csv(bad_rows()))
    page.set_input_files("#file", str(bad))
    page.click("#check")
    page.wait_for_selector("#refusal")
    rows = page.locator("table.problems tbody tr").all_inner_texts()
    assert len(rows) == 2 and "陈新人" in rows[0] and "2027-02-30" in rows[1]
    assert page.locator("#kept").is_visible()
    page.screenshot(path=str(shots / "clerk-2-import-problems.png"), full_page=True)
    # The unknown owner is added from the preview; the kept file is checked again
    form = page.locator("form[action$='/import/person']")
    form.locator("input[name=email]").fill("chen@example.edu.cn")
    form.locator("input[name=unit]").fill("计划财务处")
    form.locator("button[type=submit]").click()
    page.wait_for_selector(".flash.ok")
    rows = page.locator("table.problems tbody tr").all_inner_texts()
    assert len(rows) == 1 and "2027-02-30" in rows[0]
    # The fixed file is previewed, then imported
    fixed = tmp_path / "财务巡察整改台账（改）.csv"
    fixed.write_bytes(ledger_csv([r if r[0] != "13" else [*r[:7], "2027-02-26", "限期整改"]
                                  for r in bad_rows()]))
    page.set_input_files("#file", str(fixed))
    page.click("#check")
    page.wait_for_selector("#confirm")
    assert page.locator("#preview-counts").inner_text().replace("\n", "").count("3") >= 1
    page.screenshot(path=str(shots / "clerk-3-import-preview.png"), full_page=True)
    with db.transaction(sessions) as session:
        campaign = session.scalar(select(Campaign).where(
            Campaign.title == "2026年财务专项巡察反馈问题整改"))
        assert session.scalar(select(func.count()).select_from(Measure).where(
            Measure.campaign_id == campaign.id)) == 0
        campaign_id = campaign.id
    page.click("#confirm")
    page.wait_for_url(f"{server}/campaigns/{campaign_id}")
    assert "已导入「财务巡察整改台账（改）.csv」" in page.content()
    with db.transaction(sessions) as session:
        assert session.scalar(select(func.count()).select_from(Measure).where(
            Measure.campaign_id == campaign_id)) == 3
    page.screenshot(path=str(shots / "clerk-4-campaign.png"), full_page=True)

    # Download the report and open it
    with page.expect_download() as download:
        page.click("#report-docx")
    saved = tmp_path / "report.docx"
    download.value.save_as(saved)
    from docx import Document
    text = "\n".join(p.text for p in Document(str(saved)).paragraphs)
    assert "2026年财务专项巡察反馈问题整改" in text
    assert download.value.suggested_filename.endswith(".docx")

    # Add a person on the people page
    page.click("nav.sub a[href='/people']")
    page.fill("#name", "周敏")
    page.fill("#email", "zhou.min@example.edu.cn")
    page.fill("#unit", "计划财务处")
    page.check("input[name=roles][value=leader]")  # 责任人 is ticked already
    page.click("#person-form button[type=submit]")
    page.wait_for_selector(".flash.ok")
    assert "已添加人员 周敏" in page.content()
    with db.transaction(sessions) as session:
        zhou = session.scalar(select(Person).where(Person.email == "zhou.min@example.edu.cn"))
        assert zhou is not None and zhou.roles == ["owner", "leader"] and zhou.unit.name == "计划财务处"
    page.screenshot(path=str(shots / "clerk-5-people.png"), full_page=True)

    # The holiday notice is previewed
    page.click("nav.sub a[href='/calendar']")
    page.fill("#notice", NOTICE_2027)
    page.click("#preview")
    page.wait_for_selector("#festivals")
    page.screenshot(path=str(shots / "clerk-6-calendar-preview.png"), full_page=True)


PHONE_PAGES = ["/campaigns", "/campaigns/{id}", "/campaigns/{id}/import", "/people",
               "/people/{pid}", "/people/import/file", "/calendar", "/outbox"]


def test_every_clerk_page_fits_a_phone(server: str, chromium: Any, sessions: Any, shots: Path,
                                       tmp_path: Path, cast: Any) -> None:
    phone = chromium.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN",
                              is_mobile=True, device_scale_factor=2)
    login(phone, server, cast.reviewer.email)
    for template in PHONE_PAGES:
        path = template.format(id=cast.campaign.id, pid=cast.owner.id)
        phone.goto(server + path)
        assert phone.locator("h1").is_visible()
        no_sideways_scroll(phone)
        name = path.strip("/").replace("/", "-")
        phone.screenshot(path=str(shots / f"phone-{name}.png"), full_page=True)
    # A preview with problems, at phone width
    bad = tmp_path / "台账.csv"
    bad.write_bytes(ledger_csv(bad_rows()))
    phone.goto(f"{server}/campaigns/{cast.campaign.id}/import")
    phone.set_input_files("#file", str(bad))
    phone.click("#check")
    phone.wait_for_selector("#refusal")
    no_sideways_scroll(phone)
    phone.screenshot(path=str(shots / "phone-import-problems.png"), full_page=True)
    # A form works with a thumb: add a person
    phone.goto(f"{server}/people")
    phone.fill("#name", "吴刚")
    phone.fill("#email", "wu.gang@example.edu.cn")
    phone.check("input[name=roles][value=owner]")
    phone.click("#person-form button[type=submit]")
    phone.wait_for_selector(".flash.ok")
    with db.transaction(sessions) as session:
        assert session.scalar(select(Person.name).where(
            Person.email == "wu.gang@example.edu.cn")) == "吴刚"
