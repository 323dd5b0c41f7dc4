"""Export one campaign as a self-describing archive, and import it into another installation.

The archive is a zip: ``manifest.json`` (format, versions, source backend, the campaign, each
table's row count and SHA-256, each evidence file's size and SHA-256), one JSON array per table
under ``data/`` with every column of every record, and the evidence files as
``evidence/<sha256>``. Datetimes are ISO 8601 with their offset, dates ``YYYY-MM-DD``.

This is how a unit moves between installations, SQLite to PostgreSQL included. An import gives
every record a fresh id (the target may hold other campaigns and people): people are matched by
email and units by name; a campaign whose title the target already has is refused. History rows
keep their hashes: each imported row gets a ``history_origin`` row with the ids it was hashed
over, so ``rectiflow audit verify`` recomputes the same digests in the target.

Password hashes (argon2) are exported by default so that people can log in after a move;
``with_passwords=False`` leaves them out. Anyone holding the archive holds those hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Column, Date, Table, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.type_api import TypeEngine

from workflow import db
from workflow.errors import ArchiveRejected, InputError, NotFound
from workflow.history import ChainRow, verify_chain
from workflow.models import (
    ApprovalLink,
    Area,
    Base,
    CalendarDay,
    Campaign,
    Evidence,
    HistoryEntry,
    HistoryOrigin,
    Measure,
    MeasureAssistingUnit,
    OutboxItem,
    OutboxMessage,
    Person,
    Problem,
    ProgressReport,
    ReminderSchedule,
    Unit,
    UTCDateTime,
)
from workflow.ops.backup import rectiflow_version, sha256_of
from workflow.progress import SILENT, Reporter

ARCHIVE_FORMAT = "rectiflow-archive"
ARCHIVE_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
INSERT_CHUNK = 500
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
STORED_PATH_RE = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}(\.[a-z0-9]{1,10})?$")

#: Archive tables in the order an import writes them (referenced tables first).
TABLES: dict[str, type[Base]] = {
    "units": Unit,
    "people": Person,
    "campaign": Campaign,
    "areas": Area,
    "problems": Problem,
    "measures": Measure,
    "assisting_units": MeasureAssistingUnit,
    "progress_reports": ProgressReport,
    "evidence": Evidence,
    "history": HistoryEntry,
    "outbox_messages": OutboxMessage,
    "outbox_items": OutboxItem,
    "approval_links": ApprovalLink,
    "calendar_days": CalendarDay,
}
#: Tables an archive written before they existed does not have (read as empty).
OPTIONAL_TABLES = frozenset({"assisting_units"})
#: History records carry, besides their columns, the ids their hash was computed over.
ORIGIN_KEY = "hashed_ids"


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def _columns(name: str) -> list[Column[Any]]:
    columns = list(_table(TABLES[name]).columns)
    if name == "measures":  # a measure's reminder time travels with it (reminder_schedule)
        columns.append(_table(ReminderSchedule).c.next_reminder_at)
    return columns


# ------------------------------------------------------------------ JSON values


def _is_datetime(kind: TypeEngine[Any]) -> bool:
    return isinstance(kind, UTCDateTime)


def to_json_value(column: Column[Any], value: Any) -> Any:
    """A column value as JSON: datetimes ISO 8601 with offset, dates YYYY-MM-DD."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def from_json_value(column: Column[Any], value: Any) -> Any:
    """The column value for a JSON value; ValueError if it does not fit the column."""
    if value is None:
        if not column.nullable:
            raise ValueError(f"{column.name} 不能为空")
        return None
    if _is_datetime(column.type):
        moment = datetime.fromisoformat(str(value))
        if moment.tzinfo is None:
            raise ValueError(f"{column.name} 的时间「{value}」缺少时区")
        return moment
    if isinstance(column.type, Date):
        return date.fromisoformat(str(value))
    python_type = _python_type(column)
    if python_type is bool and not isinstance(value, bool):
        raise ValueError(f"{column.name} 应为 true/false")
    if python_type is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValueError(f"{column.name} 应为整数")
    if python_type is str and not isinstance(value, str):
        raise ValueError(f"{column.name} 应为文本")
    return value


def _python_type(column: Column[Any]) -> type | None:
    try:
        return cast(type, column.type.python_type)
    except NotImplementedError:
        return None


def record_of(row: Mapping[str, Any], columns: Sequence[Column[Any]]) -> dict[str, Any]:
    return {c.name: to_json_value(c, row[c.name]) for c in columns}


# ------------------------------------------------------------------ export


@dataclass
class ExportSummary:
    out: Path
    campaign_id: int
    title: str
    rows: dict[str, int]
    evidence_files: int
    evidence_bytes: int
    password_hashes: bool

    def as_json(self) -> dict[str, Any]:
        return {"out": str(self.out), "campaign_id": self.campaign_id, "title": self.title,
                "tables": self.rows, "evidence_files": self.evidence_files,
                "evidence_bytes": self.evidence_bytes, "password_hashes": self.password_hashes,
                "areas": self.rows["areas"], "problems": self.rows["problems"],
                "measures": self.rows["measures"]}


def find_campaign(session: Session, ref: str) -> Campaign:
    """A campaign by id or by exact title."""
    ref = ref.strip()
    campaign = session.scalar(select(Campaign).where(Campaign.title == ref))
    if campaign is None and ref.isdigit():
        campaign = session.get(Campaign, int(ref))
    if campaign is None:
        raise NotFound("整改任务", ref)
    return campaign


def _rows(session: Session, model: type[Base], where: Any) -> list[dict[str, Any]]:
    table = _table(model)
    order = list(table.primary_key.columns)
    result = session.execute(select(table).where(where).order_by(*order))
    return [dict(r._mapping) for r in result]


def _rows_by_ids(session: Session, model: type[Base], ids: Iterable[int]) -> list[dict[str, Any]]:
    table = _table(model)
    wanted = sorted(set(ids))
    found: list[dict[str, Any]] = []
    for start in range(0, len(wanted), 1000):
        found.extend(dict(r._mapping) for r in session.execute(
            select(table).where(table.c.id.in_(wanted[start:start + 1000]))))
    return sorted(found, key=lambda r: r["id"])


def _closure(session: Session, model: type[Unit] | type[Person], ids: set[int],
             link: str) -> list[dict[str, Any]]:
    """Rows for ``ids`` and every row they reach through ``link`` (parent unit, delegate)."""
    rows: dict[int, dict[str, Any]] = {}
    todo = set(ids)
    while todo:
        found = _rows_by_ids(session, model, todo)
        rows.update((r["id"], r) for r in found)
        todo = {r[link] for r in found if r[link] is not None} - set(rows)
    return sorted(rows.values(), key=lambda r: r["id"])


def _history_people(data: Mapping[str, Any]) -> set[int]:
    return {v for k in ("owner_from", "owner_to") if isinstance(v := data.get(k), int)}


def collect_campaign(session: Session, campaign: Campaign, *, with_passwords: bool = True
                     ) -> dict[str, list[dict[str, Any]]]:
    """Every record of one campaign and the people, units and calendar days they rely on."""
    measure_ids = select(Measure.id).where(Measure.campaign_id == campaign.id)
    tables: dict[str, list[dict[str, Any]]] = {}
    tables["campaign"] = _rows(session, Campaign, Campaign.id == campaign.id)
    tables["areas"] = _rows(session, Area, Area.campaign_id == campaign.id)
    tables["problems"] = _rows(session, Problem, Problem.area_id.in_(
        select(Area.id).where(Area.campaign_id == campaign.id)))
    tables["measures"] = _rows(session, Measure, Measure.campaign_id == campaign.id)
    times = dict(session.execute(select(ReminderSchedule.measure_id,
                                        ReminderSchedule.next_reminder_at)
                                 .where(ReminderSchedule.measure_id.in_(measure_ids))).all())
    for row in tables["measures"]:
        row["next_reminder_at"] = times.get(row["id"])
    tables["assisting_units"] = _rows(session, MeasureAssistingUnit,
                                      MeasureAssistingUnit.measure_id.in_(measure_ids))
    tables["progress_reports"] = _rows(session, ProgressReport,
                                       ProgressReport.measure_id.in_(measure_ids))
    tables["evidence"] = _rows(session, Evidence, Evidence.report_id.in_(
        select(ProgressReport.id).where(ProgressReport.measure_id.in_(measure_ids))))
    history = _rows(session, HistoryEntry, HistoryEntry.measure_id.in_(measure_ids))
    origins = {o.history_id: o for o in session.scalars(select(HistoryOrigin).where(
        HistoryOrigin.history_id.in_(select(HistoryEntry.id).where(
            HistoryEntry.measure_id.in_(measure_ids)))))}
    for row in history:
        origin = origins.get(row["id"])
        row[ORIGIN_KEY] = {
            "measure_id": origin.measure_id if origin else row["measure_id"],
            "actor_id": origin.actor_id if origin else row["actor_id"],
            "on_behalf_of_id": origin.on_behalf_of_id if origin else row["on_behalf_of_id"],
            "source": origin.source if origin else None,
        }
    tables["history"] = history
    tables["outbox_items"] = _rows(session, OutboxItem, OutboxItem.measure_id.in_(measure_ids))
    tables["outbox_messages"] = _rows_by_ids(
        session, OutboxMessage, {i["message_id"] for i in tables["outbox_items"]
                                 if i["message_id"] is not None})
    tables["approval_links"] = _rows(session, ApprovalLink,
                                     ApprovalLink.measure_id.in_(measure_ids))

    people: set[int | None] = set()
    people.update(r["first_responsible_id"] for r in tables["campaign"])
    people.update(a for r in tables["campaign"] for a in r["acceptors"] or ()
                  if isinstance(a, int))
    for m in tables["measures"]:
        people.update((m["owner_id"], m["leader_id"], m["extension_by_id"]))
    people.update(r["author_id"] for r in tables["progress_reports"])
    for h in history:
        people.update((h["actor_id"], h["on_behalf_of_id"]))
        people.update(_history_people(h["data"] or {}))
    people.update(r["recipient_id"] for r in tables["outbox_messages"])
    people.update(r["person_id"] for r in tables["approval_links"])
    people.discard(None)
    tables["people"] = _closure(session, Person, {p for p in people if p is not None},
                                "delegate_id")
    if not with_passwords:
        for person in tables["people"]:
            person["password_hash"] = None
    units = {m["unit_id"] for m in tables["measures"]} | {p["unit_id"] for p in tables["people"]}
    units.update(a["unit_id"] for a in tables["assisting_units"])
    units.update(r.get("inspected_unit_id") for r in tables["campaign"])
    tables["units"] = _closure(session, Unit, {u for u in units if u is not None}, "parent_id")
    tables["calendar_days"] = _rows(session, CalendarDay, CalendarDay.day.is_not(None))
    return {name: tables[name] for name in TABLES}


def _json_bytes(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")


def export_campaign(session: Session, campaign_ref: str, out: Path, *, evidence_root: Path,
                    now: datetime, with_passwords: bool = True,
                    reporter: Reporter = SILENT) -> ExportSummary:
    """Write one campaign, with its history, outbox and evidence files, to the zip ``out``."""
    campaign = find_campaign(session, campaign_ref)
    reporter.phase("读取数据", total=len(TABLES))
    tables = collect_campaign(session, campaign, with_passwords=with_passwords)
    reporter.advance(len(TABLES))
    # What the archive holds, not what was asked: nobody may have a password yet.
    hashes_included = any(person["password_hash"] for person in tables["people"])

    evidence: dict[str, Path] = {}
    for record in tables["evidence"]:
        evidence.setdefault(record["sha256"], evidence_root / record["stored_path"])
    missing = sorted(str(p) for p in evidence.values() if not p.is_file())
    if missing:
        raise InputError(f"佐证材料文件缺失，无法导出（{len(missing)} 个）：{'、'.join(missing[:5])}",
                         field="evidence")

    manifest: dict[str, Any] = {
        "format": ARCHIVE_FORMAT, "format_version": ARCHIVE_FORMAT_VERSION,
        "archive_id": uuid.uuid4().hex, "rectiflow_version": rectiflow_version(),
        "alembic_revision": db.head_revision(),
        "source_backend": session.get_bind().dialect.name, "exported_at": now.isoformat(),
        "campaign": {"id": campaign.id, "title": campaign.title},
        "password_hashes": hashes_included, "tables": {}, "evidence": [],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            reporter.phase("写入数据表", total=len(tables))
            for name, rows in tables.items():
                columns = _columns(name)
                records = [record_of(r, columns) | ({ORIGIN_KEY: r[ORIGIN_KEY]}
                                                    if name == "history" else {})
                           for r in rows]
                body = _json_bytes(records)
                member = f"data/{name}.json"
                archive.writestr(member, body)
                manifest["tables"][name] = {"file": member, "rows": len(records),
                                            "bytes": len(body),
                                            "sha256": hashlib.sha256(body).hexdigest()}
                reporter.advance()
            reporter.phase("打包佐证材料", total=len(evidence))
            total_bytes = 0
            for sha, path in sorted(evidence.items()):
                if sha256_of(path) != sha:
                    raise InputError(f"佐证材料文件 {path} 的内容与登记的校验和不符，无法导出",
                                     field="evidence")
                archive.write(path, f"evidence/{sha}")
                size = path.stat().st_size
                manifest["evidence"].append({"file": f"evidence/{sha}", "sha256": sha,
                                             "size": size})
                total_bytes += size
                reporter.advance()
            archive.writestr(MANIFEST, _json_bytes(manifest))
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return ExportSummary(out, campaign.id, campaign.title,
                         {name: len(rows) for name, rows in tables.items()}, len(evidence),
                         total_bytes, hashes_included)


# ------------------------------------------------------------------ reading an archive


@dataclass
class Archive:
    """A checked archive: its manifest, its records (column values decoded) and evidence."""

    source: str
    manifest: dict[str, Any]
    tables: dict[str, list[dict[str, Any]]]
    evidence: dict[str, bytes]

    @property
    def label(self) -> str:
        return f"archive {self.manifest['archive_id']}"


def _manifest(zf: zipfile.ZipFile, source: str) -> dict[str, Any]:
    if MANIFEST not in zf.namelist():
        raise ArchiveRejected(source, f"缺少 {MANIFEST}，不是 rectiflow 导出的归档")
    try:
        manifest = json.loads(zf.read(MANIFEST).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArchiveRejected(source, f"{MANIFEST} 无法解析：{exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        raise ArchiveRejected(source, f"{MANIFEST} 不是 rectiflow 归档清单")
    version = manifest.get("format_version")
    if version != ARCHIVE_FORMAT_VERSION:
        raise ArchiveRejected(source, f"归档格式版本 {version!r} 不受支持（本程序支持 "
                                      f"{ARCHIVE_FORMAT_VERSION}），请用相同或更新版本的 rectiflow 导入")
    for key in ("archive_id", "campaign", "tables", "evidence"):
        if key not in manifest:
            raise ArchiveRejected(source, f"{MANIFEST} 缺少「{key}」")
    return manifest


def _member(zf: zipfile.ZipFile, source: str, name: str, size: int, sha256: str) -> bytes:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ArchiveRejected(source, f"缺少文件 {name}") from None
    if info.file_size != size:
        raise ArchiveRejected(source, f"{name} 的大小与清单不符")
    try:
        body = zf.read(info)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveRejected(source, f"{name} 无法读取：{exc}") from None
    if hashlib.sha256(body).hexdigest() != sha256:
        raise ArchiveRejected(source, f"{name} 的校验和与清单不符：文件已损坏或被改动")
    return body


def _decode_records(source: str, name: str, body: bytes, expected_rows: Any
                    ) -> list[dict[str, Any]]:
    try:
        records = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArchiveRejected(source, f"data/{name}.json 无法解析：{exc}") from None
    if not isinstance(records, list) or len(records) != expected_rows:
        raise ArchiveRejected(source, f"data/{name}.json 的记录数与清单不符")
    columns = _columns(name)
    known = {c.name for c in columns} | ({ORIGIN_KEY} if name == "history" else set())
    decoded: list[dict[str, Any]] = []
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise ArchiveRejected(source, f"data/{name}.json 第 {number} 条不是对象")
        unknown = sorted(set(record) - known)
        if unknown:
            raise ArchiveRejected(source, f"data/{name}.json 第 {number} 条有未知字段："
                                          f"{'、'.join(unknown)}")
        try:
            values = {c.name: from_json_value(c, record.get(c.name)) for c in columns}
        except ValueError as exc:
            raise ArchiveRejected(source, f"data/{name}.json 第 {number} 条：{exc}") from None
        if name == "history":
            values[ORIGIN_KEY] = record.get(ORIGIN_KEY) or {}
        decoded.append(values)
    return decoded


def read_archive(path: Path, reporter: Reporter = SILENT) -> Archive:
    """Open and check an archive: format, every checksum and every record; raise ArchiveRejected."""
    source = path.name
    if not path.is_file():
        raise ArchiveRejected(source, "文件不存在")
    if not zipfile.is_zipfile(path):
        raise ArchiveRejected(source, "不是 zip 文件")
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = _manifest(zf, source)
            listed = manifest["tables"]
            if not isinstance(listed, dict) or not (
                    set(TABLES) - OPTIONAL_TABLES <= set(listed) <= set(TABLES)):
                raise ArchiveRejected(source, f"{MANIFEST} 的数据表列表与格式不符")
            entries = manifest["evidence"]
            reporter.phase("校验归档", total=len(TABLES) + len(entries))
            tables: dict[str, list[dict[str, Any]]] = {}
            for name in TABLES:
                if name not in listed:  # an optional table the archive predates
                    tables[name] = []
                    reporter.advance()
                    continue
                entry = listed[name]
                body = _member(zf, source, f"data/{name}.json", entry.get("bytes"),
                               entry.get("sha256"))
                tables[name] = _decode_records(source, name, body, entry.get("rows"))
                reporter.advance()
            evidence: dict[str, bytes] = {}
            for entry in entries:
                sha = str(entry.get("sha256", ""))
                if not SHA256_RE.match(sha):
                    raise ArchiveRejected(source, f"清单中的佐证材料校验和「{sha}」无效")
                evidence[sha] = _member(zf, source, f"evidence/{sha}", entry.get("size"), sha)
                reporter.advance()
    except zipfile.BadZipFile as exc:
        raise ArchiveRejected(source, f"zip 文件已损坏：{exc}") from None
    archive = Archive(source, manifest, tables, evidence)
    _check_consistency(archive)
    return archive


def _check_consistency(archive: Archive) -> None:
    source = archive.source
    if len(archive.tables["campaign"]) != 1:
        raise ArchiveRejected(source, "归档中应恰好有一个整改任务")
    for record in archive.tables["evidence"]:
        if record["sha256"] not in archive.evidence:
            raise ArchiveRejected(source, f"佐证材料「{record['filename']}」的文件不在归档中")
        if not STORED_PATH_RE.match(record["stored_path"]) or \
                not record["stored_path"].split("/")[1].startswith(record["sha256"]):
            raise ArchiveRejected(source, f"佐证材料「{record['filename']}」的存放路径无效")
    problems = verify_archive_history(archive.tables)
    if problems:
        shown = "；".join(problems[:5])
        raise ArchiveRejected(source, f"历史记录哈希链校验失败（{len(problems)} 处）：{shown}")


def verify_archive_history(tables: Mapping[str, list[dict[str, Any]]]) -> list[str]:
    """The hash chain of every measure in the archive, checked over the ids it was hashed with."""
    chains: dict[int, list[ChainRow]] = {}
    for h in sorted(tables["history"], key=lambda r: (r["measure_id"], r["seq"])):
        hashed = h.get(ORIGIN_KEY) or {}
        chains.setdefault(h["measure_id"], []).append(ChainRow(
            measure_id=hashed.get("measure_id", h["measure_id"]), seq=h["seq"],
            action=h["action"], from_state=h["from_state"], to_state=h["to_state"],
            actor_id=hashed.get("actor_id", h["actor_id"]),
            on_behalf_of_id=hashed.get("on_behalf_of_id", h["on_behalf_of_id"]),
            comment=h["comment"], data=h["data"] or {}, at=h["at"], prev_hash=h["prev_hash"],
            hash=h["hash"]))
    problems: list[str] = []
    for m in tables["measures"]:
        problems.extend(verify_chain(m["id"], chains.get(m["id"], []), version=m["version"],
                                     state=str(m["state"])))
    return problems


# ------------------------------------------------------------------ importing


@dataclass
class ArchiveImportSummary:
    campaign_id: int | None
    title: str
    rows: dict[str, int]
    people_created: int = 0
    people_matched: int = 0
    units_created: int = 0
    units_matched: int = 0
    calendar_added: int = 0
    calendar_conflicts: list[str] = field(default_factory=list)
    evidence_files_written: int = 0
    dry_run: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"campaign_id": self.campaign_id, "title": self.title,
                "areas": self.rows["areas"], "problems": self.rows["problems"],
                "measures": self.rows["measures"], "tables": self.rows,
                "people_created": self.people_created, "people_matched": self.people_matched,
                "units_created": self.units_created, "units_matched": self.units_matched,
                "calendar_added": self.calendar_added,
                "calendar_conflicts": self.calendar_conflicts,
                "evidence_files_written": self.evidence_files_written, "dry_run": self.dry_run}


def _insert_ids(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` (no ids) and return their new ids, in order."""
    table = _table(model)
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    ids: list[int] = []
    for start in range(0, len(rows), INSERT_CHUNK):
        ids.extend(session.scalars(statement, list(rows[start:start + INSERT_CHUNK])))
    return ids


def _without_id(record: Mapping[str, Any], name: str) -> dict[str, Any]:
    return {c.name: record[c.name] for c in _columns(name) if c.name != "id"}


class IdMap(dict[int, int]):
    """Source id → target id for one table."""

    def of(self, value: int | None) -> int | None:
        return None if value is None else self[value]


@dataclass
class _Importer:
    session: Session
    archive: Archive
    summary: ArchiveImportSummary
    maps: dict[str, IdMap] = field(default_factory=dict)

    def run(self, reporter: Reporter) -> None:
        steps: list[tuple[str, Callable[[], None]]] = [
            ("units", self.units), ("people", self.people), ("campaign", self.campaign),
            ("areas", self.areas), ("problems", self.problems), ("measures", self.measures),
            ("assisting_units", self.assisting_units), ("progress_reports", self.progress),
            ("evidence", self.evidence),
            ("history", self.history), ("outbox_messages", self.outbox_messages),
            ("outbox_items", self.outbox_items), ("approval_links", self.approval_links),
            ("calendar_days", self.calendar_days)]
        reporter.phase("写入数据", total=len(steps))
        for _name, step in steps:
            step()
            reporter.advance()

    def records(self, name: str) -> list[dict[str, Any]]:
        return sorted(self.archive.tables[name], key=lambda r: r["id"])

    def insert(self, name: str, rows: list[dict[str, Any]],
               transform: Callable[[dict[str, Any]], dict[str, Any]]) -> IdMap:
        values = [transform(_without_id(r, name)) for r in rows]
        new_ids = _insert_ids(self.session, TABLES[name], values)
        mapping = IdMap(zip((r["id"] for r in rows), new_ids, strict=True))
        self.maps[name] = mapping
        return mapping

    def units(self) -> None:
        records = self.records("units")
        existing = dict(self.session.execute(select(Unit.name, Unit.id).where(
            Unit.name.in_([r["name"] for r in records]))).all()) if records else {}
        mapping = IdMap()
        new = [r for r in records if r["name"] not in existing]
        for r in records:
            if r["name"] in existing:
                mapping[r["id"]] = existing[r["name"]]
        created = self.insert("units", new, lambda v: {**v, "parent_id": None})
        mapping.update(created)
        self.maps["units"] = mapping
        for r in new:
            if r["parent_id"] is not None:
                self.session.execute(update(Unit).where(Unit.id == mapping[r["id"]])
                                     .values(parent_id=mapping[r["parent_id"]]))
        self.summary.units_created = len(new)
        self.summary.units_matched = len(records) - len(new)

    def people(self) -> None:
        records = self.records("people")
        existing: dict[str, int] = {}
        emails = [r["email"].lower() for r in records]
        for start in range(0, len(emails), 1000):
            existing.update(self.session.execute(
                select(func.lower(Person.email), Person.id)
                .where(func.lower(Person.email).in_(emails[start:start + 1000]))).all())
        units = self.maps["units"]
        new = [r for r in records if r["email"].lower() not in existing]
        mapping = IdMap({r["id"]: existing[r["email"].lower()] for r in records
                         if r["email"].lower() in existing})
        mapping.update(self.insert("people", new, lambda v: {
            **v, "unit_id": units.of(v["unit_id"]), "delegate_id": None}))
        self.maps["people"] = mapping
        for r in new:
            if r["delegate_id"] is not None:
                self.session.execute(update(Person).where(Person.id == mapping[r["id"]])
                                     .values(delegate_id=mapping[r["delegate_id"]]))
        self.summary.people_created = len(new)
        self.summary.people_matched = len(records) - len(new)

    def campaign(self) -> None:
        people = self.maps["people"]
        units = self.maps["units"]
        mapping = self.insert("campaign", self.records("campaign"), lambda v: {
            **v, "first_responsible_id": people.of(v["first_responsible_id"]),
            # 三方验收: the people named are people of this installation now; roles stay
            "acceptors": [people[a] if isinstance(a, int) else a for a in v["acceptors"]]
            if v["acceptors"] else v["acceptors"],
            "inspected_unit_id": units.of(v.get("inspected_unit_id"))})
        self.summary.campaign_id = next(iter(mapping.values()))

    def areas(self) -> None:
        campaigns = self.maps["campaign"]
        self.insert("areas", self.records("areas"),
                    lambda v: {**v, "campaign_id": campaigns[v["campaign_id"]]})

    def problems(self) -> None:
        areas = self.maps["areas"]
        rows = self.records("problems")
        mapping = self.insert("problems", rows,
                              lambda v: {**v, "area_id": areas[v["area_id"]], "parent_id": None})
        for r in rows:
            if r["parent_id"] is not None:
                self.session.execute(update(Problem).where(Problem.id == mapping[r["id"]])
                                     .values(parent_id=mapping[r["parent_id"]]))

    def measures(self) -> None:
        campaigns, problems = self.maps["campaign"], self.maps["problems"]
        people, units = self.maps["people"], self.maps["units"]
        rows = self.records("measures")
        mapping = self.insert("measures", rows, lambda v: {
            **{k: value for k, value in v.items() if k != "next_reminder_at"},
            "campaign_id": campaigns[v["campaign_id"]], "problem_id": problems[v["problem_id"]],
            "owner_id": people.of(v["owner_id"]), "leader_id": people.of(v["leader_id"]),
            "unit_id": units.of(v["unit_id"]), "extension_by_id": people.of(v["extension_by_id"])})
        schedule = [{"measure_id": mapping[r["id"]], "next_reminder_at": r["next_reminder_at"]}
                    for r in rows if r.get("next_reminder_at") is not None]
        if schedule:
            self.session.execute(insert(_table(ReminderSchedule)), schedule)

    def assisting_units(self) -> None:
        measures, units = self.maps["measures"], self.maps["units"]
        rows = [{**r, "measure_id": measures[r["measure_id"]], "unit_id": units[r["unit_id"]]}
                for r in self.archive.tables["assisting_units"]]
        if rows:
            self.session.execute(insert(_table(MeasureAssistingUnit)), rows)

    def progress(self) -> None:
        measures, people = self.maps["measures"], self.maps["people"]
        self.insert("progress_reports", self.records("progress_reports"), lambda v: {
            **v, "measure_id": measures[v["measure_id"]], "author_id": people.of(v["author_id"])})

    def evidence(self) -> None:
        reports = self.maps["progress_reports"]
        self.insert("evidence", self.records("evidence"),
                    lambda v: {**v, "report_id": reports[v["report_id"]]})

    def history(self) -> None:
        measures, people = self.maps["measures"], self.maps["people"]
        rows = self.records("history")
        mapping = self.insert("history", rows, lambda v: {
            **v, "measure_id": measures[v["measure_id"]], "actor_id": people.of(v["actor_id"]),
            "on_behalf_of_id": people.of(v["on_behalf_of_id"])})
        origins = []
        for r in rows:
            hashed = r[ORIGIN_KEY]
            origins.append({
                "history_id": mapping[r["id"]],
                "measure_id": hashed.get("measure_id", r["measure_id"]),
                "actor_id": hashed.get("actor_id", r["actor_id"]),
                "on_behalf_of_id": hashed.get("on_behalf_of_id", r["on_behalf_of_id"]),
                "source": hashed.get("source") or self.archive.label})
        if origins:
            self.session.execute(insert(_table(HistoryOrigin)), origins)

    def outbox_messages(self) -> None:
        people, measures = self.maps["people"], self.maps["measures"]
        rows = self.records("outbox_messages")
        keys = [remap_message_key(r["key"], people) for r in rows]
        taken = _existing_keys(self.session, OutboxMessage, keys)
        suffix = f"|import-{self.archive.manifest['archive_id'][:8]}"
        by_id = {r["id"]: k + (suffix if k in taken else "") for r, k in zip(rows, keys, strict=True)}

        def transform(v: dict[str, Any]) -> dict[str, Any]:
            payload = dict(v["payload"] or {})
            if isinstance(payload.get("items"), list):
                payload["items"] = [{**i, "measure_id": measures[i["measure_id"]]}
                                    for i in payload["items"]
                                    if isinstance(i, dict) and i.get("measure_id") in measures]
            return {**v, "recipient_id": people.of(v["recipient_id"]), "payload": payload}

        # The key is set per row after the transform: rows are matched by position.
        values = [transform(_without_id(r, "outbox_messages")) | {"key": by_id[r["id"]]}
                  for r in rows]
        new_ids = _insert_ids(self.session, OutboxMessage, values)
        self.maps["outbox_messages"] = IdMap(zip((r["id"] for r in rows), new_ids, strict=True))

    def outbox_items(self) -> None:
        people, measures = self.maps["people"], self.maps["measures"]
        messages = self.maps["outbox_messages"]
        rows = self.records("outbox_items")
        keys = [remap_item_key(r["key"], measures, people) for r in rows]
        taken = _existing_keys(self.session, OutboxItem, keys)
        suffix = f"|import-{self.archive.manifest['archive_id'][:8]}"
        values = [_without_id(r, "outbox_items") | {
            "message_id": messages.of(r["message_id"]), "measure_id": measures[r["measure_id"]],
            "key": k + (suffix if k in taken else "")} for r, k in zip(rows, keys, strict=True)]
        self.maps["outbox_items"] = IdMap(zip((r["id"] for r in rows),
                                              _insert_ids(self.session, OutboxItem, values),
                                              strict=True))

    def approval_links(self) -> None:
        rows = self.records("approval_links")
        tokens = [r["token_sha256"] for r in rows]
        if _existing_values(self.session, ApprovalLink.token_sha256, tokens):
            raise ArchiveRejected(self.archive.source, "其中的审批链接已存在于本系统：这个归档可能已经"
                                                       "导入过")
        measures, people = self.maps["measures"], self.maps["people"]
        messages = self.maps["outbox_messages"]
        self.insert("approval_links", rows, lambda v: {
            **v, "measure_id": measures[v["measure_id"]], "person_id": people[v["person_id"]],
            "message_id": messages.of(v["message_id"])})

    def calendar_days(self) -> None:
        rows = self.archive.tables["calendar_days"]
        existing = {d.day: d for d in self.session.scalars(select(CalendarDay))}
        added = []
        for r in rows:
            have = existing.get(r["day"])
            if have is None:
                added.append(r)
            elif have.is_workday != r["is_workday"]:
                self.summary.calendar_conflicts.append(r["day"].isoformat())
        if added:
            self.session.execute(insert(_table(CalendarDay)), added)
        self.summary.calendar_added = len(added)


def _existing_values(session: Session, column: Any, values: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(values), 1000):
        found.update(session.scalars(select(column).where(
            column.in_(values[start:start + 1000]))))
    return found


def _existing_keys(session: Session, model: type[OutboxMessage] | type[OutboxItem],
                   keys: Sequence[str]) -> set[str]:
    return _existing_values(session, model.key, keys)


def _remap_part(parts: list[str], index: int, mapping: Mapping[int, int]) -> None:
    if index < len(parts) and parts[index].isdigit() and int(parts[index]) in mapping:
        parts[index] = str(mapping[int(parts[index])])


def remap_item_key(key: str, measures: Mapping[int, int], people: Mapping[int, int]) -> str:
    """An item key ``measure|deadline|stage|recipient|channel`` in the target's ids, so that
    the target's sweeps recognise what was already sent."""
    parts = key.split("|")
    if len(parts) == 5:
        _remap_part(parts, 0, measures)
        _remap_part(parts, 3, people)
    return "|".join(parts)


def remap_message_key(key: str, people: Mapping[int, int]) -> str:
    """A message key ``kind|recipient|channel|digest[|...]`` in the target's ids."""
    parts = key.split("|")
    if len(parts) >= 4 and parts[0] != "robot":
        _remap_part(parts, 1, people)
    return "|".join(parts)


def _evidence_writes(archive: Archive, evidence_root: Path) -> list[tuple[Path, bytes]]:
    writes: dict[Path, bytes] = {}
    for record in archive.tables["evidence"]:
        target = evidence_root / record["stored_path"]
        writes.setdefault(target, archive.evidence[record["sha256"]])
    return sorted(writes.items())


def write_evidence(archive: Archive, evidence_root: Path, created: list[Path],
                   reporter: Reporter = SILENT) -> int:
    """Store the archive's evidence files under ``evidence_root`` (content-addressed); files
    written are appended to ``created`` so a caller whose commit fails can take them back."""
    writes = _evidence_writes(archive, evidence_root)
    reporter.phase("写入佐证材料", total=len(writes))
    written = 0
    for target, body in writes:
        sha = hashlib.sha256(body).hexdigest()
        if target.is_file():
            if sha256_of(target) != sha:
                raise ArchiveRejected(archive.source, f"目标佐证目录中的 {target} 内容与校验和不符，"
                                                      "请先检查该文件")
            reporter.advance()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".import-{target.name}")
        partial.write_bytes(body)
        os.replace(partial, target)
        created.append(target)
        written += 1
        reporter.advance()
    return written


def import_archive(session: Session, path: Path, *, evidence_root: Path, dry_run: bool = False,
                   created: list[Path] | None = None,
                   reporter: Reporter = SILENT) -> ArchiveImportSummary:
    """Load an archive into this installation in the caller's transaction; all or nothing.

    With ``dry_run`` every record is still inserted (so the database checks them too); the
    caller rolls back, and no evidence file is written.
    """
    archive = read_archive(path, reporter)
    [campaign] = archive.tables["campaign"]
    title = campaign["title"]
    if session.scalar(select(Campaign.id).where(Campaign.title == title)) is not None:
        raise ArchiveRejected(archive.source, f"整改任务「{title}」已存在于本系统；如需再次导入，"
                                              "请先在原系统中改名后重新导出")
    summary = ArchiveImportSummary(None, title, {n: len(r) for n, r in archive.tables.items()},
                                   dry_run=dry_run)
    _Importer(session, archive, summary).run(reporter)
    session.flush()
    if not dry_run:
        summary.evidence_files_written = write_evidence(
            archive, evidence_root, created if created is not None else [], reporter)
    return summary
