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
from datetime import datetime
from pathlib import Path

import pytest
from dbfixtures import BACKEND, PG_URL, Cast, CliResult, Database, Ledger  # noqa: E402,F401
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from workflow import db
from workflow.models import Base
from workflow.timeutil import SHANGHAI

os.environ.setdefault("TZ", "Asia/Shanghai")


def pytest_report_header(config: pytest.Config) -> str:
    return f"rectiflow test database: {BACKEND}"


def _pg_url(schema: str) -> str:
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


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
        # The documented maintenance path (README, "Running as a role that does not own the
        # tables"): only a superuser may set replica mode, which skips the append-only triggers,
        # TRUNCATE's included, for this transaction alone.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
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


@pytest.fixture
def ledger(sessions: sessionmaker[Session], now: datetime) -> Ledger:
    return Ledger(sessions, now)


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
