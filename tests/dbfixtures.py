"""Test support shared by fixtures and test modules, under a name of its own (test modules
must not import ``conftest``: several folders have one, and the name is ambiguous)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from workflow import db
from workflow.lifecycle import Kind
from workflow.models import Campaign, Measure, Person

BACKEND = os.environ.get("RECTIFLOW_TEST_DB", "sqlite")
PG_URL = os.environ.get("RECTIFLOW_TEST_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")
if BACKEND not in ("sqlite", "postgresql"):
    raise pytest.UsageError(f"RECTIFLOW_TEST_DB must be sqlite or postgresql, not {BACKEND!r}")


@dataclass
class CliResult:
    """What an in-process CLI run gave: exit code, stdout, stderr."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        import json

        return json.loads(self.out)


@dataclass
class Database:
    """One migrated database for a test: its URL (for CLI subprocesses) and an engine."""

    url: str
    engine: Engine
    backend: str

    @property
    def sessions(self) -> sessionmaker[Session]:
        return db.session_factory(self.engine)


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
        """Rows with keys area, problem, title, leader, owner, unit, deadline, kind, seq and
        assisting (协办部门, a list of unit names)."""
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
                    kind=Kind(row.get("kind", "deadline")),
                    assisting=tuple(row.get("assisting", ()))))
            write_rows(session, session.merge(campaign), ledger_rows, self.now)
            from sqlalchemy import select

            return list(session.scalars(select(Measure).where(Measure.campaign_id == campaign.id)
                                        .order_by(Measure.id)))


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


@contextmanager
def application_role(database: Database) -> Iterator[str]:
    """PostgreSQL: a login role that does not own the tables, granted as ``rectiflow db grant``
    grants it; yields a URL for this test's schema as that role, and drops the role after."""
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    from sqlalchemy import text

    from workflow.ops.dbroles import grant_application_role

    assert database.backend == "postgresql"
    role = f"rf_app_{uuid.uuid4().hex[:10]}"
    with database.engine.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        grant_application_role(conn, role)
    parts = urlsplit(database.url)
    host = parts.netloc.rpartition("@")[2]
    url = urlunsplit(parts._replace(netloc=f"{role}@{host}"))
    try:
        yield url
    finally:
        with database.engine.begin() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
