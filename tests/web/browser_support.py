"""What the browser tests share besides their fixtures (``shots`` and ``chromium``, in
conftest.py): where Debian's chromium is, how it is started, and the login form filled in."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from web_support import PASSWORD

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="chromium is not installed (apt-get install chromium)")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def login(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/my")
