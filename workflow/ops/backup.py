"""Online backups of a whole installation, and restoring them (``rectiflow backup|restore``).

A backup folder holds the database, every evidence file and ``manifest.json`` with each file's
size and SHA-256:

- SQLite: ``rectiflow.db``, a consistent copy made with SQLite's online backup API (safe while
  the server writes; WAL included), switched to a self-contained rollback journal.
- PostgreSQL: ``rectiflow.dump``, ``pg_dump --format=custom --schema=SCHEMA`` of the schema
  rectiflow lives in. The password goes to the tool through ``PGPASSWORD``, never on a command
  line, in a log or in the manifest.

The database is copied first and the evidence files after: evidence is content-addressed and
only ever added, so every file the database copy refers to is there when the files are copied.

A restore checks every checksum before it touches anything, refuses a target that holds data
unless forced, copies the evidence files (adding files is harmless), then restores the
database (SQLite's backup API, or ``pg_restore --clean --if-exists --no-owner
--single-transaction``) and checks the schema revision. A PostgreSQL restore leaves the schema
itself alone when it exists (its DROP/CREATE, comment and grants are taken out of the dump's
list): rectiflow's database user need only own its tables and may CREATE in a schema it does
not own, and objects of others in that schema survive.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.engine import URL, make_url

from workflow import db
from workflow.errors import BackupRejected, ToolFailed
from workflow.models import Base, Evidence
from workflow.progress import SILENT, Reporter

BACKUP_FORMAT = "rectiflow-backup"
BACKUP_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "rectiflow.db"
PG_DUMP_FILE = "rectiflow.dump"
EVIDENCE_FOLDER = "evidence"
CHUNK = 1024 * 1024
#: Pages per step of SQLite's backup API: small enough for a moving bar, large enough that
#: a busy writer (each of whose commits restarts the copy) rarely starves it.
SQLITE_STEP_PAGES = 4096


def rectiflow_version() -> str:
    try:
        return metadata.version("rectiflow")
    except metadata.PackageNotFoundError:
        return "unknown"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_with_digest(source: Path, target: Path) -> tuple[int, str]:
    """Copy ``source`` to ``target`` (parents made); return the size and SHA-256 written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            dst.write(chunk)
    return size, digest.hexdigest()


def evidence_files(root: Path) -> list[Path]:
    """Files under the evidence folder, relative to it; uploads in progress (dot files) left out."""
    if not root.is_dir():
        return []
    return sorted(p.relative_to(root) for p in root.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in
                                             p.relative_to(root).parts))


# ------------------------------------------------------------------ PostgreSQL tools


def pg_tool(name: str) -> str:
    """The path of ``pg_dump``/``pg_restore``, or a clear error naming the missing tool."""
    found = shutil.which(name)
    if found is None:
        raise ToolFailed(name, f"找不到 {name}：PostgreSQL 的备份与恢复需要它。请安装与服务器版本"
                               "相同或更新的 PostgreSQL 客户端（Debian/Ubuntu：apt-get install "
                               "postgresql-client），并确保它在 PATH 中")
    return found


def libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI without the password, and the environment that carries it."""
    parsed = make_url(url)
    env: dict[str, str] = {}
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    # URL.set(password=None) would keep the password: build the URL without it.
    clean = URL.create("postgresql", username=parsed.username, host=parsed.host,
                       port=parsed.port, database=parsed.database, query=parsed.query)
    return clean.render_as_string(hide_password=False), env


def public_location(url: str) -> str:
    """The database URL as it may be shown: no password."""
    return make_url(url).render_as_string(hide_password=True)


def run_tool(command: list[str], extra_env: dict[str, str], tool: str) -> str:
    """Run a PostgreSQL client tool; its standard output, or ToolFailed (password masked)."""
    env = {**os.environ, **extra_env}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        password = extra_env.get("PGPASSWORD")
        if password:
            detail = detail.replace(password, "***")
        raise ToolFailed(tool, f"执行失败（退出码 {result.returncode}）：{detail}")
    return result.stdout


#: Entries of ``pg_restore --list`` about a schema itself (``ID; OID OID DESC NAMESPACE TAG``):
#: the schema (DROP/CREATE SCHEMA under --clean), its comment and its grants. Only the
#: schema's owner may run them.
_SCHEMA_ENTRY = re.compile(r"^\s*\d+;\s+\d+\s+\d+\s+(SCHEMA - |COMMENT - SCHEMA |ACL - SCHEMA )")


def without_schema_entries(listing: str) -> str:
    """A ``pg_restore --list`` listing without the entries that drop, create, comment on or
    grant on a schema itself; everything inside the schema is kept."""
    return "".join(line for line in listing.splitlines(keepends=True)
                   if not _SCHEMA_ENTRY.match(line))


def schema_exists(engine: Engine, schema: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :schema"),
                            {"schema": schema}).first() is not None


def current_schema(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT current_schema()")).scalar_one())


# ------------------------------------------------------------------ backing up


@dataclass
class BackupSummary:
    directory: Path
    backend: str
    revision: str | None
    database_bytes: int
    evidence_files: int
    evidence_bytes: int
    missing_evidence: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "backend": self.backend,
                "revision": self.revision, "database_bytes": self.database_bytes,
                "evidence_files": self.evidence_files, "evidence_bytes": self.evidence_bytes,
                "missing_evidence": self.missing_evidence}


def _prepare_target(target: Path) -> Callable[[], None]:
    """Refuse a non-empty folder; return how to clean up after a failed backup."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupRejected(str(target), "备份目录已存在且不为空；请指定一个新的或空的目录")
    existed = target.exists()
    target.mkdir(parents=True, exist_ok=True)

    def clean_up() -> None:
        if existed:
            for child in target.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        else:
            shutil.rmtree(target, ignore_errors=True)

    return clean_up


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupRejected(url, "内存数据库无法备份或恢复")
    return Path(database)


def _sqlite_copy(source: Path, target: Path, reporter: Reporter, description: str) -> None:
    """Copy one SQLite database into another with the online backup API."""
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target, timeout=30)
    try:
        pages = src.execute("PRAGMA page_count").fetchone()[0]
        reporter.phase(description, total=max(pages, 1))
        done = 0

        def step(_status: int, remaining: int, total: int) -> None:
            nonlocal done
            now_done = total - remaining
            reporter.advance(max(now_done - done, 0))
            done = now_done

        src.backup(dst, pages=SQLITE_STEP_PAGES, progress=step)
    finally:
        src.close()
        dst.close()


def _backup_sqlite(url: str, target: Path, reporter: Reporter) -> str | None:
    source = _sqlite_path(url)
    if not source.exists():
        raise BackupRejected(str(source), "数据库文件不存在")
    copy = target / SQLITE_FILE
    _sqlite_copy(source, copy, reporter, "备份数据库")
    conn = sqlite3.connect(copy)
    try:
        # The copy stands alone: no -wal/-shm files beside it.
        conn.execute("PRAGMA journal_mode=DELETE")
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise BackupRejected(str(copy), f"备份副本完整性检查失败：{check}")
        found = conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND "
                             "name='alembic_version'").fetchone()
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone() \
            if found else None
    finally:
        conn.close()
    return str(revision[0]) if revision else None


def _backup_postgresql(url: str, engine: Engine, target: Path, reporter: Reporter
                       ) -> tuple[str | None, str]:
    tool = pg_tool("pg_dump")
    schema = current_schema(engine)
    revision = db.current_revision(engine)
    reporter.phase("备份数据库（pg_dump）", total=None)
    conninfo, env = libpq_target(url)
    run_tool([tool, "--format=custom", f"--schema={schema}", f"--file={target / PG_DUMP_FILE}",
              f"--dbname={conninfo}"], env, "pg_dump")
    reporter.advance()
    return revision, schema


def create_backup(url: str, engine: Engine, evidence_root: Path, target: Path, *,
                  now: datetime, reporter: Reporter = SILENT) -> BackupSummary:
    """Back the installation at ``url`` (with its evidence folder) up into ``target``."""
    clean_up = _prepare_target(target)
    try:
        return _create_backup(url, engine, evidence_root, target, now, reporter)
    except BaseException:
        clean_up()
        raise


def _create_backup(url: str, engine: Engine, evidence_root: Path, target: Path, now: datetime,
                   reporter: Reporter) -> BackupSummary:
    backend = engine.dialect.name
    manifest: dict[str, Any] = {
        "format": BACKUP_FORMAT, "format_version": BACKUP_FORMAT_VERSION,
        "rectiflow_version": rectiflow_version(), "backend": backend,
        "created_at": now.isoformat(), "source": public_location(url),
    }
    if backend == "sqlite":
        revision = _backup_sqlite(url, target, reporter)
        database_file = SQLITE_FILE
    elif backend == "postgresql":
        revision, schema = _backup_postgresql(url, engine, target, reporter)
        manifest["schema"] = schema
        database_file = PG_DUMP_FILE
        # The schema's own entries left out: its owner need not be rectiflow's user.
        manifest["restore_command"] = (f"pg_restore --list {PG_DUMP_FILE} | grep -v -E "
                                       "'^[0-9]+; [0-9]+ [0-9]+ (SCHEMA - |COMMENT - SCHEMA |"
                                       "ACL - SCHEMA )' > restore.list && "
                                       "pg_restore --clean --if-exists --no-owner "
                                       "--single-transaction --exit-on-error "
                                       f"--use-list=restore.list --dbname=URL {PG_DUMP_FILE}")
    else:
        raise BackupRejected(backend, "不支持备份这种数据库")
    manifest["alembic_revision"] = revision
    files: list[dict[str, Any]] = []
    database_path = target / database_file
    files.append({"path": database_file, "size": database_path.stat().st_size,
                  "sha256": sha256_of(database_path)})

    # After the database copy: every file it refers to is already on disk.
    relative_paths = evidence_files(evidence_root)
    reporter.phase("复制佐证材料", total=len(relative_paths))
    evidence_bytes = 0
    for relative in relative_paths:
        size, digest = copy_with_digest(evidence_root / relative,
                                        target / EVIDENCE_FOLDER / relative)
        files.append({"path": f"{EVIDENCE_FOLDER}/{relative.as_posix()}", "size": size,
                      "sha256": digest})
        evidence_bytes += size
        reporter.advance()
    copied = {r.as_posix() for r in relative_paths}
    with engine.connect() as conn:
        referenced = set(conn.scalars(select(Evidence.stored_path).distinct()))
    missing = sorted(referenced - copied)
    manifest["missing_evidence"] = missing
    manifest["files"] = files
    _write_json_atomically(target / MANIFEST, manifest)
    return BackupSummary(target, backend, revision, files[0]["size"], len(relative_paths),
                         evidence_bytes, missing)


def _write_json_atomically(path: Path, document: Any) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(document, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(partial, path)


# ------------------------------------------------------------------ restoring


def read_backup(directory: Path, reporter: Reporter = SILENT) -> dict[str, Any]:
    """The manifest of a backup folder, after checking every file against it."""
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise BackupRejected(str(directory), f"不是 rectiflow 备份目录（缺少 {MANIFEST}），"
                                             "或备份没有完成")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupRejected(str(manifest_path), f"清单无法读取：{exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BACKUP_FORMAT:
        raise BackupRejected(str(manifest_path), "不是 rectiflow 备份清单")
    if manifest.get("format_version") != BACKUP_FORMAT_VERSION:
        raise BackupRejected(str(manifest_path),
                             f"备份格式版本 {manifest.get('format_version')!r} 不受支持（本程序支持 "
                             f"{BACKUP_FORMAT_VERSION}）")
    files = manifest.get("files")
    if not isinstance(files, list) or not files:
        raise BackupRejected(str(manifest_path), "清单中没有文件列表")
    reporter.phase("校验备份文件", total=len(files))
    root = directory.resolve()
    for entry in files:
        path = (directory / str(entry.get("path", ""))).resolve()
        if root not in path.parents:
            raise BackupRejected(str(manifest_path), f"清单中的路径「{entry.get('path')}」越出备份目录")
        if not path.is_file():
            raise BackupRejected(str(path), "备份文件缺失")
        if path.stat().st_size != entry.get("size") or sha256_of(path) != entry.get("sha256"):
            raise BackupRejected(str(path), "校验和与清单不符：备份文件已损坏或被改动")
        reporter.advance()
    return manifest


def _known_revision(revision: str | None) -> bool:
    if revision is None:
        return True
    script = ScriptDirectory(str(db.MIGRATIONS))
    return any(r.revision == revision for r in script.walk_revisions())


def holds_data(engine: Engine) -> bool:
    """True if any rectiflow table in the target database has a row."""
    with engine.connect() as conn:
        present = set(inspect(conn).get_table_names())
        for table in Base.metadata.sorted_tables:
            if table.name in present and conn.execute(
                    select(1).select_from(table).limit(1)).first() is not None:
                return True
    return False


@dataclass
class RestoreSummary:
    directory: Path
    backend: str
    revision: str | None
    head: str | None
    evidence_files: int

    @property
    def needs_upgrade(self) -> bool:
        return self.revision != self.head

    def as_json(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "backend": self.backend,
                "revision": self.revision, "head": self.head,
                "needs_upgrade": self.needs_upgrade, "evidence_files": self.evidence_files}


def _restore_evidence(directory: Path, manifest: dict[str, Any], evidence_root: Path,
                      reporter: Reporter) -> int:
    entries = [e for e in manifest["files"] if str(e["path"]).startswith(f"{EVIDENCE_FOLDER}/")]
    reporter.phase("恢复佐证材料", total=len(entries))
    for entry in entries:
        relative = str(entry["path"])[len(EVIDENCE_FOLDER) + 1:]
        target = evidence_root / relative
        if not (target.is_file() and target.stat().st_size == entry["size"]
                and sha256_of(target) == entry["sha256"]):
            partial = target.with_name(f".restore-{target.name}")
            _size, digest = copy_with_digest(directory / str(entry["path"]), partial)
            if digest != entry["sha256"]:
                partial.unlink(missing_ok=True)
                raise BackupRejected(str(directory / str(entry["path"])), "复制时校验和不符")
            os.replace(partial, target)
        reporter.advance()
    return len(entries)


def restore_backup(directory: Path, url: str, engine: Engine, evidence_root: Path, *,
                   force: bool = False, reporter: Reporter = SILENT) -> RestoreSummary:
    """Restore the backup in ``directory`` into the database at ``url`` and the evidence folder.

    Everything is checked first; on a refusal nothing is changed.
    """
    manifest = read_backup(directory, reporter)
    backend = engine.dialect.name
    if manifest.get("backend") != backend:
        raise BackupRejected(str(directory), f"这是 {manifest.get('backend')} 的备份，目标数据库是 "
                                             f"{backend}；跨数据库迁移请用 rectiflow export 与 "
                                             "rectiflow import archive")
    revision = manifest.get("alembic_revision")
    if not _known_revision(revision):
        raise BackupRejected(str(directory), f"备份的数据库结构版本 {revision} 比本程序新；请先升级 "
                                             "rectiflow 再恢复")
    if backend == "postgresql":
        tool = pg_tool("pg_restore")
        occupied = holds_data(engine)
        keep_schema = schema_exists(engine, str(manifest.get("schema") or "public"))
    else:
        target_path = _sqlite_path(url)
        occupied = target_path.exists() and holds_data(engine)
    if occupied and not force:
        raise BackupRejected(public_location(url), "目标数据库中已有数据；确认要用备份覆盖它时，"
                                                   "请加 --force")
    copied = _restore_evidence(directory, manifest, evidence_root, reporter)
    engine.dispose()
    if backend == "postgresql":
        reporter.phase("恢复数据库（pg_restore）", total=None)
        _pg_restore(tool, url, directory / PG_DUMP_FILE, keep_schema=keep_schema)
        reporter.advance()
    else:
        target_path.parent.mkdir(parents=True, exist_ok=True)
        _sqlite_copy(directory / SQLITE_FILE, target_path, reporter, "恢复数据库")
    restored = db.current_revision(engine)
    if restored != revision:
        raise BackupRejected(public_location(url), f"恢复后的结构版本 {restored} 与备份清单中的 "
                                                   f"{revision} 不符")
    return RestoreSummary(directory, backend, restored, db.head_revision(), copied)



def _pg_restore(tool: str, url: str, dump: Path, *, keep_schema: bool) -> None:
    """``pg_restore --clean`` of ``dump`` in one transaction. When the schema exists already
    (the usual case: ``public``, or a schema an administrator made for rectiflow), the dump's
    entries for the schema itself are left out through ``--use-list``, so only rectiflow's own
    objects are dropped and recreated."""
    conninfo, env = libpq_target(url)
    command = [tool, "--clean", "--if-exists", "--no-owner", "--single-transaction",
               "--exit-on-error", f"--dbname={conninfo}"]
    if not keep_schema:
        run_tool([*command, str(dump)], env, "pg_restore")
        return
    listing = without_schema_entries(run_tool([tool, "--list", str(dump)], {}, "pg_restore"))
    with tempfile.TemporaryDirectory(prefix="rectiflow-restore-") as folder:
        use_list = Path(folder) / "restore.list"
        use_list.write_text(listing, encoding="utf-8")
        run_tool([*command, f"--use-list={use_list}", str(dump)], env, "pg_restore")
