"""``rectiflow backup DIR`` and ``rectiflow restore DIR`` on this run's backend: a consistent copy
of the database and the evidence files, checked against the manifest before anything changes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbfixtures import BACKEND
from ops_support import Installation, build_ledger, evidence_contents, snapshot
from sqlalchemy import func, select

from workflow import db
from workflow.models import HistoryEntry, Measure


def act(run, inst: Installation) -> None:  # type: ignore[no-untyped-def]
    """A change after the backup: one more action on the first assigned measure."""
    with db.transaction(inst.sessions) as session:
        measure_id = session.scalar(select(Measure.id).where(Measure.state == "assigned")
                                    .order_by(Measure.id))
    result = run(inst, "measure", "do", str(measure_id), "start", "--as", "owner@example.edu.cn")
    assert result.code == 0, result.err


def history_count(inst: Installation) -> int:
    with db.transaction(inst.sessions) as session:
        return session.scalar(select(func.count()).select_from(HistoryEntry))


def test_backup_then_restore_over_a_changed_installation(installations, run, tmp_path):
    # Given an installation with a ledger in every state, backed up
    inst = installations.make(BACKEND, "live")
    build_ledger(inst)
    before, files, entries = snapshot(inst), evidence_contents(inst), history_count(inst)
    folder = tmp_path / "backup"
    result = run(inst, "backup", str(folder), "--json")
    assert result.code == 0, result.err
    summary = result.json()
    assert summary["backend"] == BACKEND and summary["evidence_files"] == 2
    assert summary["revision"] == db.head_revision()
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == "rectiflow-backup" and manifest["backend"] == BACKEND
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])
    # When the installation changes and loses its evidence files
    act(run, inst)
    for path in inst.evidence_dir.rglob("*.*"):
        path.unlink()
    # Then a restore without --force is refused, and changes nothing
    refused = run(inst, "restore", str(folder))
    assert refused.code == 2 and "--force" in refused.err
    assert history_count(inst) == entries + 1
    # And with --force the installation is as it was at the backup
    restored = run(inst, "restore", str(folder), "--force", "--json")
    assert restored.code == 0, restored.err
    assert restored.json()["revision"] == db.head_revision()
    assert snapshot(inst) == before
    assert evidence_contents(inst) == files
    assert history_count(inst) == entries
    assert run(inst, "audit", "verify").code == 0
    # And the restored installation keeps working
    act(run, inst)


@pytest.mark.skipif(BACKEND != "sqlite", reason="a second SQLite file; PostgreSQL restores "
                                                 "into the schema it was dumped from")
def test_sqlite_backup_restores_into_a_new_file(installations, run, tmp_path):
    inst = installations.make("sqlite", "live")
    build_ledger(inst)
    folder = tmp_path / "backup"
    assert run(inst, "backup", str(folder)).code == 0
    assert not list(folder.glob("*-wal"))
    url = f"sqlite:///{tmp_path / 'new' / 'restored.db'}"
    fresh = Installation(url, db.make_engine(url), "sqlite", tmp_path / "new-evidence")
    try:
        result = run(fresh, "restore", str(folder))
        assert result.code == 0, result.err
        assert snapshot(fresh) == snapshot(inst)
        assert evidence_contents(fresh) == evidence_contents(inst)
    finally:
        fresh.engine.dispose()


def _corrupt_database(folder: Path) -> str:
    name = "rectiflow.db" if BACKEND == "sqlite" else "rectiflow.dump"
    with (folder / name).open("r+b") as handle:
        handle.seek(200)
        byte = handle.read(1)
        handle.seek(200)
        handle.write(bytes([byte[0] ^ 0xFF]))
    return name


def _corrupt_evidence(folder: Path) -> str:
    path = next(p for p in (folder / "evidence").rglob("*.*"))
    path.write_bytes(path.read_bytes() + b"!")
    return path.name


def _drop_evidence(folder: Path) -> str:
    path = next(p for p in (folder / "evidence").rglob("*.*"))
    path.unlink()
    return path.name


def _bad_version(folder: Path) -> str:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["format_version"] = 7
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return "备份格式版本 7 不受支持"


def _no_manifest(folder: Path) -> str:
    (folder / "manifest.json").unlink()
    return "缺少 manifest.json"


CORRUPTIONS = [
    ("database altered", _corrupt_database, "校验和与清单不符"),
    ("evidence altered", _corrupt_evidence, "校验和与清单不符"),
    ("evidence missing", _drop_evidence, "备份文件缺失"),
    ("unknown format version", _bad_version, ""),
    ("manifest missing", _no_manifest, ""),
]


@pytest.mark.parametrize(("case", "corrupt", "reason"), CORRUPTIONS,
                         ids=[c[0] for c in CORRUPTIONS])
def test_a_corrupted_backup_is_refused_and_nothing_changes(installations, run, tmp_path, case,
                                                           corrupt, reason):
    # Given a backup, then a change to the installation
    inst = installations.make(BACKEND, "live")
    build_ledger(inst)
    folder = tmp_path / "backup"
    assert run(inst, "backup", str(folder)).code == 0
    act(run, inst)
    changed, files = snapshot(inst), evidence_contents(inst)
    # When the backup is damaged and restored with --force
    named = corrupt(folder)
    result = run(inst, "restore", str(folder), "--force")
    # Then it is refused with a message naming what is wrong, and nothing changed
    assert result.code == 2, result.err
    assert named in result.err and reason in result.err
    assert snapshot(inst) == changed and evidence_contents(inst) == files


def test_missing_evidence_files_fail_the_backup_but_it_is_written(installations, run, tmp_path):
    # Given an installation whose evidence folder lost a file the database refers to
    inst = installations.make(BACKEND, "live")
    build_ledger(inst)
    lost = next(p for p in sorted(inst.evidence_dir.rglob("*.*"))
                if not p.name.startswith("."))  # not a lock file
    lost.unlink()
    name = lost.relative_to(inst.evidence_dir).as_posix()
    # When it is backed up
    folder = tmp_path / "backup"
    result = run(inst, "backup", str(folder))
    # Then the command fails with exit 1, naming the missing file
    assert result.code == 1, result.err
    assert "备份不完整" in result.err and "1 个佐证材料文件" in result.err and name in result.err
    assert "已备份到" in result.out
    # And the backup is still written, with the missing file in its manifest
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["missing_evidence"] == [name]
    # And --json prints the summary, then fails too
    as_json = run(inst, "backup", str(tmp_path / "again"), "--json")
    assert as_json.code == 1 and as_json.json()["missing_evidence"] == [name]


def test_backup_refuses_a_non_empty_folder(installations, run, tmp_path):
    inst = installations.make(BACKEND, "live")
    folder = tmp_path / "backup"
    folder.mkdir()
    (folder / "keep.txt").write_text("x", encoding="utf-8")
    result = run(inst, "backup", str(folder))
    assert result.code == 2 and "不为空" in result.err
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]


@pytest.mark.skipif(BACKEND != "postgresql", reason="pg_dump is for PostgreSQL")
def test_missing_pg_dump_is_named(installations, run, tmp_path, monkeypatch):
    inst = installations.make("postgresql", "live")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = run(inst, "backup", str(tmp_path / "backup"))
    assert result.code == 1
    assert "找不到 pg_dump" in result.err and "postgresql-client" in result.err
    assert not (tmp_path / "backup").exists()


def test_the_pg_password_travels_only_in_pgpassword():
    from workflow.ops.backup import libpq_target, public_location

    conninfo, env = libpq_target("postgresql+psycopg://rf:s3cret@db.example:5433/rectiflow"
                                 "?options=-csearch_path%3Dx")
    assert "s3cret" not in conninfo and env == {"PGPASSWORD": "s3cret"}
    assert conninfo.startswith("postgresql://rf@db.example:5433/rectiflow")
    assert "s3cret" not in public_location("postgresql://rf:s3cret@h/d")



@pytest.fixture
def schema_not_owned(tmp_path: Path) -> Iterator[Installation]:
    """A login role with USAGE and CREATE on a schema that the superuser owns (as ``public``
    belongs to the database owner), the rectiflow tables migrated by that role."""
    from dbfixtures import PG_URL
    from ops_support import pg_available
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    if not pg_available():
        pytest.skip("PostgreSQL is not reachable")
    suffix = uuid.uuid4().hex[:8]
    role, schema = f"rf_user_{suffix}", f"rf_shared_{suffix}"
    admin = db.make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
        conn.execute(text(f"GRANT USAGE, CREATE ON SCHEMA {schema} TO {role}"))
        conn.execute(text(f"COMMENT ON SCHEMA {schema} IS 'shared schema'"))
    url = (make_url(PG_URL).set(username=role).render_as_string(hide_password=False)
           + f"?options=-csearch_path%3D{schema}")
    migrate = db.make_engine(url)
    db.upgrade(migrate)
    migrate.dispose()
    engine = db.make_engine(url)
    try:
        yield Installation(url, engine, "postgresql", tmp_path / "shared" / "evidence")
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()


@pytest.mark.skipif(BACKEND != "postgresql", reason="schema ownership is PostgreSQL's")
def test_restore_by_a_user_that_does_not_own_the_schema(schema_not_owned, run, tmp_path):
    # Given rectiflow's user, who may create in the schema but does not own it, and a backup
    inst = schema_not_owned
    build_ledger(inst)
    before, entries = snapshot(inst), history_count(inst)
    folder = tmp_path / "backup"
    assert run(inst, "backup", str(folder)).code == 0
    # When the ledger changes and another application keeps a table of its own in the schema
    act(run, inst)
    from dbfixtures import PG_URL
    from sqlalchemy import text

    schema = inst.url.rsplit("%3D", 1)[1]
    admin = db.make_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE TABLE {schema}.other_app (note text)"))
            conn.execute(text(f"INSERT INTO {schema}.other_app VALUES ('keep me')"))
        # Then rectiflow's user restores the backup over it
        restored = run(inst, "restore", str(folder), "--force")
        assert restored.code == 0, restored.err
        assert snapshot(inst) == before and history_count(inst) == entries
        assert run(inst, "audit", "verify").code == 0
        # And the schema, its comment and the other application's table are untouched
        with admin.connect() as conn:
            assert conn.scalar(text(f"SELECT note FROM {schema}.other_app")) == "keep me"
            assert conn.scalar(text("SELECT obj_description(oid, 'pg_namespace') FROM "
                                    "pg_namespace WHERE nspname = :s"), {"s": schema}) \
                == "shared schema"
    finally:
        admin.dispose()
    act(run, inst)


def test_the_schema_entries_are_left_out_of_the_restore_list():
    from workflow.ops.backup import without_schema_entries

    listing = ("; Selected TOC Entries:\n"
               "9; 2615 181244 SCHEMA - public postgres\n"
               "3490; 0 0 COMMENT - SCHEMA public postgres\n"
               "3491; 0 0 ACL - SCHEMA public postgres\n"
               "283; 1259 181245 TABLE public measures rf\n"
               "284; 0 0 COMMENT public TABLE measures rf\n"
               "3483; 0 181245 TABLE DATA public measures rf\n")
    assert without_schema_entries(listing) == (
        "; Selected TOC Entries:\n"
        "283; 1259 181245 TABLE public measures rf\n"
        "284; 0 0 COMMENT public TABLE measures rf\n"
        "3483; 0 181245 TABLE DATA public measures rf\n")
