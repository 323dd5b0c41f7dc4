"""Security headers on every answer, no caching of personal data, and the API docs served from
this site alone (no CDN)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest

PERSONAL = ["/my", "/ledger", "/ledger.xlsx", "/to-close", "/measures/{id}", "/admin",
            "/admin/outbox", "/login", "/approve/not-a-token", "/api/measures"]


def assert_security_headers(response: Any) -> None:
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "default-src 'self'" in csp and "object-src 'none'" in csp
    assert "unsafe-eval" not in csp and "script-src 'self' 'unsafe-inline'" not in csp
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"


@pytest.mark.parametrize("path", PERSONAL)
def test_personal_pages_carry_the_headers_and_are_not_cached(browser, api, cast, path):
    url = path.format(id=cast.measure.id)
    response = (api("admin") if path.startswith("/api/") else browser("admin")).get(url)
    assert response.status_code in (200, 400, 404), (url, response.status_code)
    assert_security_headers(response)
    assert response.headers["cache-control"] == "no-store"


def test_redirects_and_errors_carry_them_too(browser):
    anonymous = browser()
    response = anonymous.get("/my")
    assert response.status_code == 303
    assert_security_headers(response)
    assert response.headers["cache-control"] == "no-store"
    missing = anonymous.get("/no-such-page")
    assert missing.status_code == 404
    assert_security_headers(missing)


def test_static_files_may_be_cached(browser):
    response = browser().get("/static/swagger-ui/swagger-ui.css")
    assert response.status_code == 200
    assert response.headers["cache-control"].startswith("public")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert browser().get("/static/../app.py").status_code == 404


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href"):
            if found.get(name):
                self.urls.append(found[name] or "")
        if tag == "script" and not found.get("src"):
            self.inline_scripts += 1


def test_api_docs_reference_no_external_host(browser):
    client = browser()
    page = client.get("/api/docs")
    assert page.status_code == 200
    links = Links()
    links.feed(page.text)
    assert links.inline_scripts == 0
    assert links.urls, page.text
    for url in links.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, url  # local paths only
        assert client.get(url).status_code == 200, url
    assert not re.search(r"cdn|jsdelivr|unpkg", page.text, re.I)
    # The init script names no host either, and the OpenAPI document it loads is local
    init = client.get("/static/swagger-ui/init.js").text
    assert "http" not in init
    assert 'data-openapi-url="/openapi.json"' in page.text
    assert client.get("/openapi.json").json()["info"]["title"] == "rectiflow"
