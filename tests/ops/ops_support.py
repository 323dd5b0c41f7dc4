"""Support for the operations tests: installations on either backend (a database and an evidence
folder), a ledger with something in every table, an in-process CLI runner, and a canonical
snapshot of a campaign's records that compares across installations (ids relabelled)."""

from __future__ import annotations

import io
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dbfixtures import PG_URL, CliResult, Database, Ledger
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from notifications.events import make_outbox_writer
from workflow import db
from workflow.events import EventPublisher
from workflow.evidence import EvidenceStore
from workflow.lifecycle import Action
from workflow.models import (
    ApprovalLink,
    Area,
    CalendarDay,
    Campaign,
    Evidence,
    HistoryEntry,
    Measure,
    MeasureAssistingUnit,
    OutboxItem,
    OutboxMessage,
    Person,
    Problem,
    ProgressReport,
    Unit,
)
from workflow.passwords import hash_password
from workflow.policy import load_policy_file
from workflow.services.approvals import mint
from workflow.services.measures import ActionRequest, perform, report_progress
from workflow.services.people import set_delegate
from workflow.services.sweep import reminder_context, sweep
from workflow.timeutil import SHANGHAI

TITLE = "第五轮巡察反馈问题整改"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@dataclass
class Installation(Database):
    """One rectiflow installation: a migrated database and an evidence folder."""

    evidence_dir: Path

    @property
    def env(self) -> dict[str, str]:
        return {"RECTIFLOW_DATABASE_URL": self.url, "RECTIFLOW_EVIDENCE_DIR": str(self.evidence_dir)}


def pg_available() -> bool:
    engine = db.make_engine(PG_URL)
    try:
        with engine.connect():
            return True
    except Exception:
        return False
    finally:
        engine.dispose()


class Installations:
    """Makes installations for one test and removes the PostgreSQL schemas afterwards."""

    def __init__(self, tmp_path: Path, sqlite_template: Path) -> None:
        self.tmp_path = tmp_path
        self.sqlite_template = sqlite_template
        self.schemas: list[str] = []
        self.engines: list[Engine] = []

    def make(self, backend: str, name: str) -> Installation:
        folder = self.tmp_path / name
        folder.mkdir()
        if backend == "sqlite":
            path = folder / "rectiflow.db"
            shutil.copyfile(self.sqlite_template, path)
            url = f"sqlite:///{path}"
        else:
            if not pg_available():
                pytest.skip("PostgreSQL is not reachable")
            schema = f"rf_ops_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            admin = db.make_engine(PG_URL)
            with admin.begin() as conn:
                conn.execute(text(f"CREATE SCHEMA {schema}"))
            admin.dispose()
            self.schemas.append(schema)
            url = f"{PG_URL}?options=-csearch_path%3D{schema}"
            migrate = db.make_engine(url)
            db.upgrade(migrate)
            migrate.dispose()
        engine = db.make_engine(url)
        self.engines.append(engine)
        return Installation(url, engine, backend, folder / "evidence")

    def close(self) -> None:
        for engine in self.engines:
            engine.dispose()
        if self.schemas:
            admin = db.make_engine(PG_URL)
            with admin.begin() as conn:
                for schema in self.schemas:
                    conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ops-template") / "template.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def installations(tmp_path: Path, sqlite_template: Path) -> Iterator[Installations]:
    made = Installations(tmp_path, sqlite_template)
    yield made
    made.close()


# ------------------------------------------------------------------ running the CLI


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """``run(installation, "backup", DIR)``: the CLI in-process against one installation."""
    from workflow.cli import main

    for key in list(os.environ):
        if key.startswith("RECTIFLOW_") and not key.startswith("RECTIFLOW_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RECTIFLOW_OUTBOX_DIR", str(tmp_path / "outbox"))

    def invoke(installation: Installation, *args: str, stdin: str | None = None) -> CliResult:
        for key, value in installation.env.items():
            monkeypatch.setenv(key, value)
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


# ------------------------------------------------------------------ a ledger in every state


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 11, day, hour, 30, tzinfo=SHANGHAI)


def build_ledger(inst: Installation, title: str = TITLE, prefix: str = "") -> None:
    """People (a unit tree, a delegate, a password), a campaign with a policy, a sub-problem,
    measures in every state with history, progress with evidence files, outbox rows from
    events and a sweep, an approval link, and a calendar override."""
    policies = load_policy_file(None)
    # Actions write their notices, as they do under the runtime
    sessions = db.session_factory(
        inst.engine, EventPublisher([make_outbox_writer(policies, frozenset())]))
    _build(inst, sessions, title, prefix, policies)


def _build(inst: Installation, sessions: sessionmaker[Session], title: str, prefix: str,
           policies: Any) -> None:
    ledger = Ledger(sessions, at(2))
    p = {name: ledger.person(f"{prefix}{name}", role, unit=unit) for name, role, unit in [
        ("Secretary", "leader", "后勤党总支"), ("Leader", "leader", "后勤处"),
        ("Reviewer", "reviewer", "整改办"), ("Owner", "owner", "饮食服务中心"),
        ("Colleague", "owner", "饮食服务中心"), ("Admin", "admin", "整改办")]}
    with db.transaction(sessions) as session:
        parent = session.scalar(select(Unit).where(Unit.name == "后勤处"))
        session.execute(update(Unit).where(Unit.name == "饮食服务中心").values(parent_id=parent.id))
        owner = session.get(Person, p["Owner"].id)
        set_delegate(session, owner, session.get(Person, p["Colleague"].id), date(2026, 12, 31))
        session.get(Person, p["Leader"].id).password_hash = hash_password("correct horse")
        session.get(Person, p["Leader"].id).mobile = "13800000000"
        if session.get(CalendarDay, date(2027, 1, 4)) is None:
            session.add(CalendarDay(day=date(2027, 1, 4), is_workday=False, note="元旦调休",
                                    created_at=at(2)))
    campaign = ledger.campaign(title, first_responsible=p["Secretary"])
    with db.transaction(sessions) as session:
        c = session.get(Campaign, campaign.id)
        c.feedback_date = date(2026, 11, 1)
        c.policy = {"reminders": {"before": [5, 1]}}
    rows = [{"leader": p["Leader"], "owner": p["Owner"], "unit": "饮食服务中心",
             "title": f"措施{i}：修订食堂原材料采购管理办法", "deadline": date(2026, 11, 20 + i),
             "kind": "long_term" if i == 6 else "deadline",
             "area": "学习传达有差距" if i < 4 else "制度执行不严格",
             "problem": f"问题{i % 3}",
             "assisting": [f"{prefix}协办科", "后勤党总支"] if i in (1, 2) else []}
            for i in range(8)]
    measures = ledger.measures(campaign, rows)
    with db.transaction(sessions) as session:
        problem = session.get(Problem, measures[0].problem_id)
        session.add(Problem(area_id=problem.area_id, parent_id=problem.id, position=9,
                            text="问题①：采购台账不完整"))

    store = EvidenceStore(inst.evidence_dir, 10 * 1024 * 1024)
    pdf = store.store("采购办法.pdf", io.BytesIO(PDF))
    png = store.store("现场照片.png", io.BytesIO(PNG))
    ids = [m.id for m in measures]
    o, lead, rev, col = p["Owner"].email, p["Leader"].email, p["Reviewer"].email, p["Colleague"].email
    steps: list[tuple[int, Action, str, dict[str, Any]]] = [
        (1, Action.START, o, {}),
        (2, Action.START, o, {}), (2, Action.SUBMIT, o, {"comment": "已修订", "evidence": (pdf,)}),
        (3, Action.START, o, {}), (3, Action.SUBMIT, o, {"comment": "已完成", "evidence": (pdf, png)}),
        (3, Action.VERIFY, rev, {}),
        (4, Action.START, o, {}), (4, Action.SUBMIT, o, {"comment": "已整改"}),
        (4, Action.VERIFY, rev, {}), (4, Action.CLOSE, lead, {"comment": "同意销号"}),
        (5, Action.START, o, {}), (5, Action.SUBMIT, o, {"comment": "初稿"}),
        (5, Action.REJECT, rev, {"comment": "佐证不足"}),
        (5, Action.EXTEND, lead, {"comment": "需要更多时间", "deadline": date(2026, 12, 31)}),
        (6, Action.START, o, {}), (6, Action.SUBMIT, o, {"comment": "长期坚持"}),
        (6, Action.VERIFY, rev, {}), (6, Action.CLOSE, lead, {}),
        (7, Action.REASSIGN, lead, {"owner": col}),
        (6, Action.RECHECK, rev, {"result": "ok"}),  # 回头看
    ]
    for n, (index, action, actor, extra) in enumerate(steps):
        with db.transaction(sessions) as session:
            perform(session, ActionRequest(ids[index], action, actor, **extra),
                    now=at(3) + timedelta(hours=n))
    with db.transaction(sessions) as session:
        report_progress(session, measure_id=ids[1], actor=o, text="正在推进", files=[png],
                        now=at(12))
        mint(session, measure=session.get(Measure, ids[3]), action=Action.CLOSE,
             person_id=p["Leader"].id, now=at(12))
        # 三方验收 from now on: a role and a person
        session.get_one(Campaign, campaign.id).acceptors = ["reviewer", p["Leader"].id]
    with db.transaction(sessions, write_lock=True) as session:
        sweep(session, reminder_context(session, policies, frozenset()), now=at(23, 10))
    with db.transaction(sessions) as session:
        first = session.scalar(select(OutboxMessage).order_by(OutboxMessage.id))
        first.status, first.attempts, first.sent_at = "sent", 1, at(23, 11)


# ------------------------------------------------------------------ comparing installations


PEOPLE_COLUMNS = {"owner_id", "leader_id", "author_id", "actor_id", "on_behalf_of_id",
                  "recipient_id", "person_id", "first_responsible_id", "delegate_id"}
TABLE_OF = {"campaign_id": "campaign", "area_id": "areas", "problem_id": "problems",
            "measure_id": "measures", "report_id": "progress_reports",
            "message_id": "outbox_messages"}


def snapshot(inst: Installation, title: str = TITLE) -> dict[str, Any]:
    """Every record of the campaign, each id replaced by a label that means the same record in
    any installation: people by email, units by name, the rest by their order."""
    with db.transaction(inst.sessions) as session:
        return _snapshot(session, title)


def _rows(session: Session, model: Any, where: Any) -> list[dict[str, Any]]:
    table = model.__table__
    return [dict(r._mapping) for r in session.execute(
        select(table).where(where).order_by(*table.primary_key.columns))]


def _snapshot(session: Session, title: str) -> dict[str, Any]:
    campaign_id = session.scalar(select(Campaign.id).where(Campaign.title == title))
    measure_ids = select(Measure.id).where(Measure.campaign_id == campaign_id)
    tables = {
        "campaign": _rows(session, Campaign, Campaign.id == campaign_id),
        "areas": _rows(session, Area, Area.campaign_id == campaign_id),
        "problems": _rows(session, Problem, Problem.area_id.in_(
            select(Area.id).where(Area.campaign_id == campaign_id))),
        "measures": _rows(session, Measure, Measure.campaign_id == campaign_id),
        "progress_reports": _rows(session, ProgressReport,
                                  ProgressReport.measure_id.in_(measure_ids)),
        "history": _rows(session, HistoryEntry, HistoryEntry.measure_id.in_(measure_ids)),
        "outbox_items": _rows(session, OutboxItem, OutboxItem.measure_id.in_(measure_ids)),
        "approval_links": _rows(session, ApprovalLink, ApprovalLink.measure_id.in_(measure_ids)),
    }
    tables["evidence"] = _rows(session, Evidence, Evidence.report_id.in_(
        [r["id"] for r in tables["progress_reports"]]))
    tables["outbox_messages"] = _rows(session, OutboxMessage, OutboxMessage.id.in_(
        {i["message_id"] for i in tables["outbox_items"]}))
    people = {pid: email for pid, email in session.execute(select(Person.id, Person.email))}
    units = {uid: name for uid, name in session.execute(select(Unit.id, Unit.name))}
    labels = {name: {r["id"]: f"{name}#{n}" for n, r in enumerate(rows)}
              for name, rows in tables.items()}

    def label(column: str, value: Any, table: str) -> Any:
        if value is None:
            return None
        if column in PEOPLE_COLUMNS:
            return people[value]
        if column == "unit_id" or (table == "units" and column == "parent_id"):
            return units[value]
        if column == "parent_id" and table == "problems":
            return labels["problems"][value]
        if column in TABLE_OF:
            return labels[TABLE_OF[column]][value]
        return value

    shown: dict[str, Any] = {}
    for name, rows in tables.items():
        shown[name] = [{k: label(k, v, name) for k, v in r.items() if k != "id"} for r in rows]
    for item in shown["outbox_items"]:
        item["key"] = _relabel_key(item["key"], {0: labels["measures"], 3: people})
    for message in shown["outbox_messages"]:
        message["key"] = _relabel_key(message["key"], {1: people})
        for item in message["payload"].get("items", []):
            item["measure_id"] = labels["measures"][item["measure_id"]]
    person_ids = {r[c] for rows in tables.values() for r in rows for c in PEOPLE_COLUMNS
                  if r.get(c) is not None}
    shown["people"] = sorted(({**{k: label(k, v, "people") for k, v in r.items() if k != "id"}}
                              for r in _rows(session, Person, Person.id.in_(person_ids))),
                             key=lambda r: r["email"])
    shown["units"] = sorted(({k: label(k, v, "units") for k, v in r.items() if k != "id"}
                             for r in _rows(session, Unit, Unit.id.is_not(None))),
                            key=lambda r: r["name"])
    shown["calendar_days"] = _rows(session, CalendarDay, CalendarDay.day.is_not(None))
    for campaign in shown["campaign"]:  # 三方验收: people by email, roles as they are
        campaign["acceptors"] = [people[a] if isinstance(a, int) else a
                                 for a in campaign["acceptors"] or []]
    shown["assisting_units"] = [
        (labels["measures"][r["measure_id"]], units[r["unit_id"]], r["position"])
        for r in _rows(session, MeasureAssistingUnit,
                       MeasureAssistingUnit.measure_id.in_(measure_ids))]
    return shown


def _relabel_key(key: str, positions: dict[int, dict[int, str]]) -> str:
    parts = key.split("|")
    for index, mapping in positions.items():
        if index < len(parts) and parts[index].isdigit() and int(parts[index]) in mapping:
            parts[index] = mapping[int(parts[index])]
    return "|".join(parts)


def evidence_contents(inst: Installation, title: str = TITLE) -> dict[str, bytes]:
    """Each evidence file the campaign refers to, by stored path, read from the folder."""
    with db.transaction(inst.sessions) as session:
        paths = session.scalars(select(Evidence.stored_path).join(ProgressReport).join(Measure)
                                .join(Campaign).where(Campaign.title == title)).all()
    return {p: (inst.evidence_dir / p).read_bytes() for p in sorted(set(paths))}
