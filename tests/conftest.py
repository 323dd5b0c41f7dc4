"""Shared fixtures: a real database per test (SQLite file or PostgreSQL schema), pinned time,
and a small ledger builder.

The backend is chosen by ``RECTIFLOW_TEST_DB`` (``sqlite``, the default, or ``postgresql``);
``.ci/run`` runs the whole suite once with each. PostgreSQL is reached through
``RECTIFLOW_TEST_PG_URL`` (default: the local ``test`` database with trust auth).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from workflow import db
from workflow.lifecycle import Kind
from workflow.models import Base, Campaign, Measure, Person
from workflow.timeutil import SHANGHAI

BACKEND = os.environ.get("RECTIFLOW_TEST_DB", "sqlite")
PG_URL = os.environ.get("RECTIFLOW_TEST_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")
if BACKEND not in ("sqlite", "postgresql"):
    raise pytest.UsageError(f"RECTIFLOW_TEST_DB must be sqlite or postgresql, not {BACKEND!r}")

os.environ.setdefault("TZ", "Asia/Shanghai")


def pytest_report_header(config: pytest.Config) -> str:
    return f"rectiflow test database: {BACKEND}"


def _pg_url(schema: str) -> str:
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


@pytest.fixture(autouse=True)
def _isolated_event_handlers() -> Iterator[None]:
    """Handlers a CLI run subscribes do not leak into the next test."""
    from workflow import events

    saved = dict(events._handlers)
    yield
    events._handlers.clear()
    events._handlers.update(saved)


@dataclass
class Database:
    """One migrated database for a test: its URL (for CLI subprocesses) and an engine."""

    url: str
    engine: Engine
    backend: str

    @property
    def sessions(self) -> sessionmaker[Session]:
        return db.session_factory(self.engine)


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLite: a migrated template file. PostgreSQL: a migrated schema for this run."""
    if BACKEND == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.db"
        engine = db.make_engine(f"sqlite:///{path}")
        db.upgrade(engine)
        engine.dispose()
        yield str(path)
        return
    schema = f"rf_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = db.make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = db.make_engine(_pg_url(schema))
    db.upgrade(engine)
    engine.dispose()
    yield schema
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def database(_template: str, tmp_path: Path) -> Iterator[Database]:
    """A clean, migrated database for one test."""
    if BACKEND == "sqlite":
        path = tmp_path / "rectiflow.db"
        shutil.copyfile(_template, path)
        url = f"sqlite:///{path}"
        engine = db.make_engine(url)
        yield Database(url, engine, "sqlite")
        engine.dispose()
        return
    url = _pg_url(_template)
    engine = db.make_engine(url, pool_size=25, max_overflow=10)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield Database(url, engine, "postgresql")
    engine.dispose()


@pytest.fixture
def sessions(database: Database) -> sessionmaker[Session]:
    return database.sessions


@pytest.fixture
def now() -> datetime:
    """A pinned Monday morning in Beijing."""
    return datetime(2026, 12, 7, 9, 30, tzinfo=SHANGHAI)


@pytest.fixture
def cli_env(database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for running the CLI against this test's database."""
    env = {
        "RECTIFLOW_DATABASE_URL": database.url,
        "RECTIFLOW_EVIDENCE_DIR": str(tmp_path / "evidence"),
        "RECTIFLOW_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    for key in list(os.environ):
        if key.startswith("RECTIFLOW_") and not key.startswith("RECTIFLOW_TEST_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        import json

        return json.loads(self.out)


@pytest.fixture
def rectiflow(cli_env: dict[str, str], capsys: pytest.CaptureFixture[str],
              monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run the CLI in-process: ``rectiflow("measure", "list", "--json")`` → CliResult."""
    import io
    import sys

    from workflow.cli import main

    def run(*args: str, stdin: str | None = None) -> CliResult:
        capsys.readouterr()
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


# ------------------------------------------------------------------ a small ledger builder


@dataclass
class Ledger:
    """People and one campaign with measures, built through the services."""

    sessions: sessionmaker[Session]
    now: datetime

    def person(self, name: str, *roles: str, unit: str | None = None,
               wecom_id: str | None = None) -> Person:
        from workflow.services.people import add_person

        email = f"{name.lower()}@example.edu.cn"
        with db.transaction(self.sessions) as session:
            return add_person(session, name=name, email=email, roles=roles or ("owner",),
                              unit=unit, wecom_id=wecom_id)

    def campaign(self, title: str = "第五轮巡察反馈问题整改",
                 first_responsible: Person | None = None) -> Campaign:
        with db.transaction(self.sessions) as session:
            campaign = Campaign(title=title, created_at=self.now,
                                first_responsible_id=first_responsible.id
                                if first_responsible else None)
            session.add(campaign)
            session.flush()
            return campaign

    def measures(self, campaign: Campaign, rows: list[dict[str, Any]]) -> list[Measure]:
        """Rows with keys area, problem, title, leader, owner, unit, deadline, kind, seq."""
        from workflow.importers.ledger import LedgerRow, write_rows
        from workflow.services.people import get_or_create_unit

        with db.transaction(self.sessions) as session:
            ledger_rows = []
            for number, row in enumerate(rows, start=2):
                if row.get("unit"):
                    get_or_create_unit(session, row["unit"])
                ledger_rows.append(LedgerRow(
                    row=number, seq=row.get("seq", str(number - 1)),
                    area=row.get("area", "学习传达有差距"),
                    problem=row.get("problem", "组织学习还不到位"),
                    title=row.get("title", f"整改措施{number - 1}"),
                    leader_id=row["leader"].id, unit=row.get("unit"),
                    owner_id=row["owner"].id, deadline=row.get("deadline", date(2026, 12, 31)),
                    kind=Kind(row.get("kind", "deadline"))))
            write_rows(session, session.merge(campaign), ledger_rows, self.now)
            from sqlalchemy import select

            return list(session.scalars(select(Measure).where(Measure.campaign_id == campaign.id)
                                        .order_by(Measure.id)))


@pytest.fixture
def ledger(sessions: sessionmaker[Session], now: datetime) -> Ledger:
    return Ledger(sessions, now)


@dataclass
class Cast:
    """A typical cast: first responsible, leader, reviewer, owner, a unit colleague, an outsider,
    an admin and a viewer; one campaign; one measure owned by ``owner`` in ``unit``."""

    secretary: Person
    leader: Person
    reviewer: Person
    owner: Person
    colleague: Person
    outsider: Person
    admin: Person
    viewer: Person
    campaign: Campaign
    measure: Measure


@pytest.fixture
def cast(ledger: Ledger) -> Cast:
    secretary = ledger.person("Secretary", "leader", unit="后勤党总支")
    leader = ledger.person("Leader", "leader", unit="后勤处")
    reviewer = ledger.person("Reviewer", "reviewer", unit="整改办")
    owner = ledger.person("Owner", "owner", unit="饮食服务中心")
    colleague = ledger.person("Colleague", "owner", unit="饮食服务中心")
    outsider = ledger.person("Outsider", "owner", unit="物业管理科")
    admin = ledger.person("Admin", "admin", unit="整改办")
    viewer = ledger.person("Viewer", "viewer")
    campaign = ledger.campaign(first_responsible=secretary)
    [measure] = ledger.measures(campaign, [
        {"leader": leader, "owner": owner, "unit": "饮食服务中心",
         "title": "修订食堂原材料采购管理办法"}])
    return Cast(secretary, leader, reviewer, owner, colleague, outsider, admin, viewer,
                campaign, measure)
