"""Fixtures for the web app: the app over the test database with a pinned clock, clients that
log in as each person of the cast, and API tokens."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from web_support import PASSWORD, csrf_of

from config.settings import Settings
from workflow import db
from workflow.lifecycle import State
from workflow.models import Measure, Person
from workflow.runtime import Runtime
from workflow.web.app import create_app
from workflow.web.security import LoginLimiter


@pytest.fixture(scope="session")
def password_hash() -> str:
    from workflow.passwords import hash_password

    return hash_password(PASSWORD)


class Clock:
    """A settable clock for the app (tests move time forward)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(now: datetime) -> Clock:
    return Clock(now)


@pytest.fixture
def web_settings(database: Any, tmp_path: Path) -> Settings:
    return Settings(database_url=database.url, evidence_dir=tmp_path / "evidence",
                    outbox_dir=tmp_path / "outbox", evidence_max_bytes=64 * 1024,
                    base_url="http://testserver", secret_key="test-secret")


@pytest.fixture
def runtime(database: Any, web_settings: Settings, clock: Clock) -> Runtime:
    return Runtime(web_settings, engine=database.engine, clock=clock)


@pytest.fixture
def sessions(runtime: Runtime) -> sessionmaker[Session]:
    """The runtime's sessions: what a test does through the services notifies people, as it
    does in the web app's process."""
    return runtime.sessions


@pytest.fixture
def app(runtime: Runtime) -> Any:
    return create_app(runtime, limiter=LoginLimiter(attempts=5, window=900))


@pytest.fixture
def with_passwords(cast: Any, sessions: sessionmaker[Session], password_hash: str) -> Any:
    """The cast, each with the password ``PASSWORD``."""
    with db.transaction(sessions) as session:
        session.execute(update(Person).values(password_hash=password_hash))
    return cast


class Browser:
    """A TestClient logged in as one person, with the CSRF token of its session."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def login(self, email: str, password: str = PASSWORD) -> Any:
        page = self.client.get("/login")
        token = csrf_of(page.text)
        response = self.client.post("/login", data={"email": email, "password": password,
                                                    "csrf_token": token, "next": "/my"},
                                    follow_redirects=False)
        if response.status_code == 303:
            self.csrf = csrf_of(self.client.get("/my").text)
        return response

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, follow_redirects=False, **kwargs)

    def post(self, url: str, data: dict[str, Any] | None = None, *, csrf: bool = True,
             **kwargs: Any) -> Any:
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.csrf
        return self.client.post(url, data=form, follow_redirects=False, **kwargs)


@pytest.fixture
def browser(app: Any, with_passwords: Any) -> Iterator[Any]:
    """``browser("owner")`` → a Browser logged in as that member of the cast."""
    clients: list[TestClient] = []

    def make(role: str | None = None) -> Browser:
        client = TestClient(app, base_url="http://testserver")
        clients.append(client)
        b = Browser(client)
        if role is not None:
            response = b.login(getattr(with_passwords, role).email)
            assert response.status_code == 303, response.text
        return b

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def api(app: Any, with_passwords: Any) -> Iterator[Any]:
    """``api("owner")`` → a TestClient whose requests carry that person's bearer token."""
    clients: list[TestClient] = []

    def make(role: str) -> TestClient:
        client = TestClient(app, base_url="http://testserver")
        clients.append(client)
        response = client.post("/api/token", json={"email": getattr(with_passwords, role).email,
                                                   "password": PASSWORD})
        assert response.status_code == 200, response.text
        client.headers["Authorization"] = f"Bearer {response.json()['token']}"
        return client

    yield make
    for client in clients:
        client.close()


# ------------------------------------------------------------------ a spread of measures


@pytest.fixture
def spread(cast: Any, ledger: Any, sessions: Any) -> Any:
    """Besides the cast's measure (Owner, 饮食服务中心, led by Leader, due 12-31), an audit
    campaign: two measures of 物业管理科 (Outsider's, led by Secretary), one overdue and one
    closed, and one of Colleague in 饮食服务中心 (led by Leader), in progress and overdue."""
    audit = ledger.campaign("审计发现问题整改")
    overdue, closed, late = ledger.measures(audit, [
        {"leader": cast.secretary, "owner": cast.outsider, "unit": "物业管理科",
         "area": "作风建设有差距", "title": "清理公房出租合同", "deadline": date(2026, 11, 30)},
        {"leader": cast.secretary, "owner": cast.outsider, "unit": "物业管理科",
         "area": "作风建设有差距", "title": "建立维修资金台账", "deadline": date(2026, 12, 31)},
        {"leader": cast.leader, "owner": cast.colleague, "unit": "饮食服务中心",
         "area": "内部管理不规范", "title": "食堂出入库登记", "deadline": date(2026, 12, 1)},
    ])
    with db.transaction(sessions) as session:
        session.execute(update(Measure).where(Measure.id == closed.id)
                        .values(state=State.CLOSED))
        session.execute(update(Measure).where(Measure.id == late.id)
                        .values(state=State.IN_PROGRESS))
    cast.audit = audit
    return cast


# ------------------------------------------------------------------ browser tests


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("RECTIFLOW_SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def chromium() -> Iterator[Any]:
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
