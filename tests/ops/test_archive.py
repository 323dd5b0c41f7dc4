"""``rectiflow export`` and ``rectiflow import archive``: a campaign moves between installations,
SQLite and PostgreSQL in both directions, with every record, history hash and evidence file."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from dbfixtures import BACKEND, Ledger
from ops_support import TITLE, at, build_ledger, evidence_contents, snapshot
from sqlalchemy import func, select

from workflow import db
from workflow.models import Campaign, HistoryEntry, Measure, Person
from workflow.passwords import verify_password

TARGETS = ["sqlite", "postgresql"]


def export(run, inst, out: Path, *extra: str):  # type: ignore[no-untyped-def]
    result = run(inst, "export", TITLE, "--out", str(out), "--json", *extra)
    assert result.code == 0, result.err
    return result.json()


@pytest.mark.parametrize("target_backend", TARGETS)
def test_round_trip_compares_every_record_and_file(installations, run, tmp_path, target_backend):
    # Given a ledger in every state on this run's backend
    source = installations.make(BACKEND, "source")
    build_ledger(source)
    # When it is exported and imported into an empty installation on the target backend
    archive = tmp_path / "campaign.zip"
    exported = export(run, source, archive)
    target = installations.make(target_backend, "target")
    imported = run(target, "import", "archive", str(archive), "--json")
    assert imported.code == 0, imported.err
    summary = imported.json()
    assert (summary["areas"], summary["problems"], summary["measures"]) == (2, 7, 8)
    assert summary["tables"] == exported["tables"]
    # Then every record matches field by field (ids relabelled) and every file byte for byte
    before, after = snapshot(source), snapshot(target)
    assert set(before) == set(after)
    for table in before:
        assert after[table] == before[table], table
    assert len(before["history"]) > 20 and before["outbox_messages"] and before["approval_links"]
    assert evidence_contents(target) == evidence_contents(source)
    assert len(evidence_contents(source)) == 2
    # And the history chain verifies in the target, with the source's hashes
    verified = run(target, "audit", "verify", "--json")
    assert verified.code == 0, verified.out
    assert verified.json()["ok"] and verified.json()["entries"] == len(before["history"])
    # And people can log in with the passwords they had
    with db.transaction(target.sessions) as session:
        leader = session.scalar(select(Person).where(Person.email == "leader@example.edu.cn"))
        assert verify_password(leader.password_hash, "correct horse")


def test_import_into_an_installation_with_other_data_and_onwards(installations, run, tmp_path):
    # Given a target that already has its own campaign and one of the same people
    source = installations.make(BACKEND, "source")
    build_ledger(source)
    other = "postgresql" if BACKEND == "sqlite" else "sqlite"
    target = installations.make(other, "target")
    Ledger(target.sessions, at(1)).person("Early", "viewer")  # so the ids differ
    build_ledger(target, title="2025年专项治理")
    archive = tmp_path / "campaign.zip"
    export(run, source, archive)
    # When the archive is imported there
    result = run(target, "import", "archive", str(archive), "--json")
    assert result.code == 0, result.err
    summary = result.json()
    # Then people are matched by email and units by name, nobody is duplicated
    assert summary["people_created"] == 0 and summary["people_matched"] == 5
    assert summary["units_matched"] == summary["tables"]["units"]
    with db.transaction(target.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Person)) == 7
        assert session.scalar(select(func.count()).select_from(Campaign)) == 2
    before, after = snapshot(source), snapshot(target)
    for table in ("areas", "problems", "measures", "history", "progress_reports", "evidence",
                  "outbox_items", "outbox_messages", "approval_links"):
        assert after[table] == before[table], table
    assert run(target, "audit", "verify").code == 0
    # And an action in the target chains onto the imported history
    with db.transaction(target.sessions) as session:
        measure_id = session.scalar(select(Measure.id).join(Campaign).where(
            Campaign.title == TITLE, Measure.state == "assigned").order_by(Measure.id))
    acted = run(target, "measure", "do", str(measure_id), "start", "--as", "owner@example.edu.cn")
    assert acted.code == 0, acted.err
    assert run(target, "audit", "verify").code == 0
    # And exported again and imported into a third installation, the chain still verifies
    onward = tmp_path / "onward.zip"
    export(run, target, onward)
    third = installations.make(BACKEND, "third")
    assert run(third, "import", "archive", str(onward)).code == 0
    verified = run(third, "audit", "verify", "--json")
    assert verified.code == 0, verified.out
    with db.transaction(third.sessions) as session:
        hashes = set(session.scalars(select(HistoryEntry.hash)))
    with db.transaction(source.sessions) as session:
        assert set(session.scalars(select(HistoryEntry.hash))) <= hashes


def test_archive_is_self_describing(installations, run, tmp_path):
    source = installations.make(BACKEND, "source")
    build_ledger(source)
    archive = tmp_path / "campaign.zip"
    export(run, source, archive, "--without-passwords")
    with zipfile.ZipFile(archive) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["format"] == "rectiflow-archive" and manifest["format_version"] == 1
        assert manifest["source_backend"] == BACKEND and manifest["password_hashes"] is False
        assert manifest["campaign"]["title"] == TITLE
        for name, entry in manifest["tables"].items():
            assert len(json.loads(zf.read(entry["file"]))) == entry["rows"], name
        assert {e["file"] for e in manifest["evidence"]} <= set(zf.namelist())
        [measure] = [m for m in json.loads(zf.read("data/measures.json")) if m["seq"] == "1"]
        assert measure["deadline"] == "2026-11-20"
        assert measure["created_at"].endswith("+00:00")
        people = json.loads(zf.read("data/people.json"))
        assert all(p["password_hash"] is None for p in people)


def test_the_password_warning_only_when_hashes_are_in_the_archive(installations, run, tmp_path):
    from sqlalchemy import update

    # Given a ledger where only the leader has a password
    source = installations.make(BACKEND, "source")
    build_ledger(source)
    warning = "归档中包含人员登录密码的哈希"
    with_hash = run(source, "export", TITLE, "--out", str(tmp_path / "a.zip"))
    # Then exporting it warns that the archive holds a password hash
    assert with_hash.code == 0 and warning in with_hash.err
    # When nobody has a password any more
    with db.transaction(source.sessions) as session:
        session.execute(update(Person).values(password_hash=None))
    # Then the export says nothing about passwords, and neither do its summary and manifest
    plain = run(source, "export", TITLE, "--out", str(tmp_path / "b.zip"))
    assert plain.code == 0 and warning not in plain.err and "密码" not in plain.err
    assert export(run, source, tmp_path / "c.zip")["password_hashes"] is False
    with zipfile.ZipFile(tmp_path / "c.zip") as zf:
        assert json.loads(zf.read("manifest.json"))["password_hashes"] is False


def _rewrite(archive: Path, out: Path, change) -> Path:  # type: ignore[no-untyped-def]
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(out, "w") as dst:
        members = {name: src.read(name) for name in src.namelist()}
        for name, body in change(members).items():
            dst.writestr(name, body)
    return out


def _manifest_change(**fields):  # type: ignore[no-untyped-def]
    def change(members: dict[str, bytes]) -> dict[str, bytes]:
        manifest = json.loads(members["manifest.json"])
        manifest.update(fields)
        return {**members, "manifest.json": json.dumps(manifest).encode()}
    return change


def _tamper(members: dict[str, bytes]) -> dict[str, bytes]:
    return {**members, "data/measures.json": members["data/measures.json"].replace(
        "措施1".encode(), "措施X".encode())}


def _tamper_evidence(members: dict[str, bytes]) -> dict[str, bytes]:
    name = next(n for n in members if n.startswith("evidence/"))
    return {**members, name: members[name] + b"x"}


def _drop_manifest(members: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in members.items() if k != "manifest.json"}


BAD_ARCHIVES = [
    ("not a zip", None, "不是 zip 文件"),
    ("missing manifest", _drop_manifest, "缺少 manifest.json"),
    ("checksum mismatch", _tamper, r"data/measures.json 的校验和与清单不符"),
    ("evidence altered", _tamper_evidence, "的大小与清单不符"),
    ("unknown format version", _manifest_change(format_version=99), "格式版本 99 不受支持"),
    ("other format", _manifest_change(format="something-else"), "不是 rectiflow 归档清单"),
]


@pytest.mark.parametrize(("case", "change", "message"), BAD_ARCHIVES,
                         ids=[c[0] for c in BAD_ARCHIVES])
def test_bad_archives_are_refused_and_nothing_is_written(installations, run, tmp_path, case,
                                                        change, message):
    source = installations.make(BACKEND, "source")
    build_ledger(source)
    archive = tmp_path / "campaign.zip"
    export(run, source, archive)
    target = installations.make(BACKEND, "target")
    if change is None:
        bad = tmp_path / "bad.zip"
        bad.write_text("这不是压缩包", encoding="utf-8")
    else:
        bad = _rewrite(archive, tmp_path / "bad.zip", change)
    result = run(target, "import", "archive", str(bad))
    assert result.code == 2
    assert "无法导入" in result.err and "未写入任何数据" in result.err
    import re

    assert re.search(message, result.err), result.err
    with db.transaction(target.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0
        assert session.scalar(select(func.count()).select_from(Person)) == 0
    assert not target.evidence_dir.exists() or not any(target.evidence_dir.rglob("*.*"))


def test_a_campaign_already_present_is_refused(installations, run, tmp_path):
    source = installations.make(BACKEND, "source")
    build_ledger(source)
    archive = tmp_path / "campaign.zip"
    export(run, source, archive)
    target = installations.make(BACKEND, "target")
    assert run(target, "import", "archive", str(archive)).code == 0
    with db.transaction(target.sessions) as session:
        counts = session.scalar(select(func.count()).select_from(HistoryEntry))
    again = run(target, "import", "archive", str(archive))
    assert again.code == 2
    assert f"整改任务「{TITLE}」已存在于本系统" in again.err
    with db.transaction(target.sessions) as session:
        assert session.scalar(select(func.count()).select_from(HistoryEntry)) == counts


def test_dry_run_writes_nothing(installations, run, tmp_path):
    source = installations.make(BACKEND, "source")
    build_ledger(source)
    archive = tmp_path / "campaign.zip"
    export(run, source, archive)
    target = installations.make(BACKEND, "target")
    result = run(target, "import", "archive", str(archive), "--dry-run", "--json")
    assert result.code == 0, result.err
    assert result.json()["dry_run"] is True and result.json()["measures"] == 8
    with db.transaction(target.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0
    assert not target.evidence_dir.exists()


def test_tampered_history_in_an_archive_is_refused(installations, run, tmp_path):
    # Given an archive whose history was edited and its checksums recomputed to match
    source = installations.make(BACKEND, "source")
    build_ledger(source)
    archive = tmp_path / "campaign.zip"
    export(run, source, archive)

    def forge(members: dict[str, bytes]) -> dict[str, bytes]:
        import hashlib

        history = json.loads(members["data/history.json"])
        history[3]["comment"] = "篡改的意见"
        body = json.dumps(history, ensure_ascii=False).encode()
        manifest = json.loads(members["manifest.json"])
        manifest["tables"]["history"].update(bytes=len(body),
                                             sha256=hashlib.sha256(body).hexdigest())
        return {**members, "data/history.json": body,
                "manifest.json": json.dumps(manifest).encode()}

    forged = _rewrite(archive, tmp_path / "forged.zip", forge)
    target = installations.make(BACKEND, "target")
    result = run(target, "import", "archive", str(forged))
    # Then the import refuses it: the hash chain does not verify
    assert result.code == 2
    assert "历史记录哈希链校验失败" in result.err


def test_an_archive_from_before_assisting_units_is_still_read(installations, run, tmp_path):
    # Given an archive as written before 协办单位 existed (no assisting_units table)
    source = installations.make(BACKEND, "source")
    build_ledger(source)
    archive = tmp_path / "campaign.zip"
    exported = export(run, source, archive)
    assert exported["tables"]["assisting_units"] == 4

    def older(members: dict[str, bytes]) -> dict[str, bytes]:
        manifest = json.loads(members["manifest.json"])
        del manifest["tables"]["assisting_units"]
        kept = {k: v for k, v in members.items() if k != "data/assisting_units.json"}
        return {**kept, "manifest.json": json.dumps(manifest).encode()}

    target = installations.make(BACKEND, "target")
    result = run(target, "import", "archive", str(_rewrite(archive, tmp_path / "old.zip", older)),
                 "--json")
    # Then it imports, with no assisting units
    assert result.code == 0, result.err
    assert result.json()["measures"] == 8
    assert snapshot(target)["assisting_units"] == []


def test_the_inspected_unit_moves_with_the_campaign(installations, run, tmp_path):
    # Given a campaign whose inspected unit is 后勤集团, its units below it
    source = installations.make(BACKEND, "source")
    build_ledger(source)
    with db.transaction(source.sessions) as session:
        from workflow.services.campaigns import set_inspected_unit

        campaign = session.scalar(select(Campaign).where(Campaign.title == TITLE))
        set_inspected_unit(session, campaign, "后勤集团")
    archive = tmp_path / "campaign.zip"
    export(run, source, archive)
    # When it is imported into an installation that has other units already
    target = installations.make(BACKEND, "target")
    assert run(target, "campaign", "add", "别的任务", "--inspected-unit", "别的单位").code == 0
    assert run(target, "import", "archive", str(archive), "--json").code == 0
    # Then it names the same unit, by name, in the target
    listed = {c["title"]: c["inspected_unit"]
              for c in run(target, "campaign", "list", "--json").json()}
    assert listed == {TITLE: "后勤集团", "别的任务": "别的单位"}
