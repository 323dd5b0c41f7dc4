"""Signed checkpoints catch what the hash chain alone cannot: a tail deleted and the measure
rolled back, or a row edited and every hash after it recomputed.

The attacks are carried out for real with raw SQL and the chain's own digest function, as
someone holding the database (but not the audit key) would; plain ``audit verify`` is shown to
pass after each, and ``audit verify --checkpoint`` to fail naming the measure.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from test_history import append_only_triggers_off, execute  # noqa: E402

from config.settings import Settings
from tasks.clock import checkpoint_job, checkpoint_trigger
from workflow import db
from workflow.history import entry_digest
from workflow.lifecycle import Action
from workflow.models import HistoryEntry
from workflow.runtime import Runtime
from workflow.services.measures import ActionRequest, perform

KEY = "audit-key-kept-by-the-operators-0123456789"


@pytest.fixture
def two_measures(ledger, cast, sessions, now) -> tuple[int, int]:
    """The cast's measure started and submitted (3 rows); a second one started (2 rows)."""
    [_, other] = ledger.measures(cast.campaign, [{"leader": cast.leader, "owner": cast.owner,
                                                 "seq": "2", "title": "另一项措施"}])
    steps = [(cast.measure.id, Action.START, {}),
             (cast.measure.id, Action.SUBMIT, {"comment": "已修订采购管理办法"}),
             (other.id, Action.START, {})]
    for hours, (measure_id, action, extra) in enumerate(steps, start=1):
        with db.transaction(sessions) as session:
            perform(session, ActionRequest(measure_id, action, cast.owner.email, **extra),
                    now=now + timedelta(hours=hours))
    return cast.measure.id, other.id


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv("RECTIFLOW_AUDIT_KEY", KEY)


def checkpoint(rectiflow, tmp_path: Path) -> Path:
    out = tmp_path / "off-site" / "checkpoint.json"
    result = rectiflow("audit", "checkpoint", "--out", str(out))
    assert result.code == 0, result.err
    return out


def test_a_checkpoint_holds_the_signed_chain_heads(rectiflow, keyed, two_measures, tmp_path):
    first, other = two_measures
    out = checkpoint(rectiflow, tmp_path)
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["totals"] == {"measures": 2, "entries": 5}
    assert document["measures"][str(first)]["count"] == 3
    assert document["measures"][str(other)]["count"] == 2
    assert len(document["hmac_sha256"]) == 64
    result = rectiflow("audit", "verify", "--checkpoint", str(out))
    assert result.code == 0, result.err


def test_rows_added_after_the_checkpoint_still_verify(rectiflow, keyed, two_measures, tmp_path,
                                                      sessions, cast, now):
    out = checkpoint(rectiflow, tmp_path)
    with db.transaction(sessions) as session:
        perform(session, ActionRequest(two_measures[0], Action.VERIFY, cast.reviewer.email),
                now=now + timedelta(days=1))
    assert rectiflow("audit", "verify", "--checkpoint", str(out)).code == 0


def test_a_deleted_tail_rolled_back_is_caught(database, rectiflow, keyed, two_measures,
                                              tmp_path):
    first, _ = two_measures
    out = checkpoint(rectiflow, tmp_path)
    # When someone deletes the measure's last history row and rolls the measure back to match
    with append_only_triggers_off(database.engine):
        execute(database.engine, "DELETE FROM measure_history WHERE measure_id = :m AND seq = 3",
                m=first)
        execute(database.engine, "UPDATE measure SET version = 2, state = 'in_progress' "
                                 "WHERE id = :m", m=first)
    # Then the chain alone verifies (this is the hole)
    assert rectiflow("audit", "verify").code == 0
    # But against the checkpoint it fails with exit 1, naming the measure
    result = rectiflow("audit", "verify", "--checkpoint", str(out))
    assert result.code == 1
    assert f"措施 {first}：检查点时有 3 条历史，现在只有 2 条" in result.err
    assert f"措施 {first}：检查点时的第 3 条历史已不存在" in result.err
    document = rectiflow("audit", "verify", "--checkpoint", str(out), "--json").json()
    assert document["ok"] is False


def test_an_edit_with_every_hash_recomputed_is_caught(database, sessions, rectiflow, keyed,
                                                      two_measures, tmp_path):
    first, other = two_measures
    out = checkpoint(rectiflow, tmp_path)
    # When someone rewrites the submission's comment and recomputes the chain from there on
    with db.transaction(sessions) as session:
        rows = list(session.query(HistoryEntry).filter_by(measure_id=first)
                    .order_by(HistoryEntry.seq))
        forged = []
        prev = rows[0].prev_hash
        for row in rows:
            comment = "已全部整改到位" if row.seq == 3 else row.comment
            digest = entry_digest(measure_id=row.measure_id, seq=row.seq, action=row.action,
                                  from_state=row.from_state, to_state=row.to_state,
                                  actor_id=row.actor_id, on_behalf_of_id=row.on_behalf_of_id,
                                  comment=comment, data=row.data, at=row.at, prev_hash=prev)
            forged.append((row.id, comment, prev, digest))
            prev = digest
    with append_only_triggers_off(database.engine):
        for row_id, comment, prev_hash, digest in forged:
            execute(database.engine, "UPDATE measure_history SET comment = :c, prev_hash = :p, "
                    "hash = :h WHERE id = :i", c=comment, p=prev_hash, h=digest, i=row_id)
    # Then the chain alone verifies
    assert rectiflow("audit", "verify").code == 0
    # But the checkpoint names the measure, and only that one
    result = rectiflow("audit", "verify", "--checkpoint", str(out))
    assert result.code == 1
    assert f"措施 {first}：第 3 条历史与检查点不符" in result.err
    assert f"措施 {other}：" not in result.err


def test_a_whole_measure_deleted_is_caught(database, rectiflow, keyed, two_measures, tmp_path):
    _, other = two_measures
    out = checkpoint(rectiflow, tmp_path)
    with append_only_triggers_off(database.engine):
        execute(database.engine, "DELETE FROM measure_history WHERE measure_id = :m", m=other)
        execute(database.engine, "DELETE FROM measure WHERE id = :m", m=other)
    assert rectiflow("audit", "verify").code == 0
    result = rectiflow("audit", "verify", "--checkpoint", str(out))
    assert result.code == 1
    assert f"措施 {other}：检查点" in result.err and "现在一条也没有" in result.err


def test_a_forged_checkpoint_or_another_key_is_refused(rectiflow, keyed, two_measures, tmp_path,
                                                       monkeypatch):
    first, _ = two_measures
    out = checkpoint(rectiflow, tmp_path)
    # A checkpoint edited to match a rolled-back database does not carry a valid signature
    document = json.loads(out.read_text(encoding="utf-8"))
    document["measures"][str(first)]["count"] = 2
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document), encoding="utf-8")
    result = rectiflow("audit", "verify", "--checkpoint", str(forged))
    assert result.code == 1 and "签名不符" in result.err
    # The right file under another key is refused too
    monkeypatch.setenv("RECTIFLOW_AUDIT_KEY", "someone-elses-key")
    assert rectiflow("audit", "verify", "--checkpoint", str(out)).code == 1


def test_bad_input_is_named(rectiflow, two_measures, tmp_path, monkeypatch):
    # No key: exit 2, the variable named, nothing written
    out = tmp_path / "c.json"
    result = rectiflow("audit", "checkpoint", "--out", str(out))
    assert result.code == 2 and "RECTIFLOW_AUDIT_KEY" in result.err and not out.exists()
    monkeypatch.setenv("RECTIFLOW_AUDIT_KEY", KEY)
    result = rectiflow("audit", "verify", "--checkpoint", str(tmp_path / "missing.json"))
    assert result.code == 2 and "无法读取检查点文件" in result.err
    (tmp_path / "junk.json").write_text("not json", encoding="utf-8")
    result = rectiflow("audit", "verify", "--checkpoint", str(tmp_path / "junk.json"))
    assert result.code == 2 and "不是有效的 JSON" in result.err
    (tmp_path / "other.json").write_text('{"format": "x"}', encoding="utf-8")
    result = rectiflow("audit", "verify", "--checkpoint", str(tmp_path / "other.json"))
    assert result.code == 1 and "不是 rectiflow 审计检查点文件" in result.err
    result = rectiflow("audit", "checkpoint", "--out", str(out))
    assert result.code == 0


def test_the_clock_writes_checkpoints_into_the_chosen_folder(database, two_measures, tmp_path,
                                                             now):
    folder = tmp_path / "checkpoints"
    settings = Settings(database_url=database.url, audit_key=KEY, audit_checkpoint_dir=folder,
                        audit_checkpoint_minutes=240)
    runtime = Runtime(settings, engine=database.engine)
    jobs = checkpoint_job(runtime)
    when, job = jobs["audit_checkpoint"]
    assert str(when) == str(checkpoint_trigger(240))
    assert "hour='*/4'" in str(when)
    job(now)
    [written] = folder.iterdir()
    assert written.name == "checkpoint-20261207T093000.json"
    document = json.loads(written.read_text(encoding="utf-8"))
    assert document["totals"]["entries"] == 5
    # Without a key (or a folder) the clock writes none
    assert checkpoint_job(Runtime(Settings(database_url=database.url,
                                           audit_checkpoint_dir=folder),
                                  engine=database.engine)) == {}
    assert checkpoint_job(Runtime(Settings(database_url=database.url, audit_key=KEY),
                                  engine=database.engine)) == {}
    with database.engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM measure_history")) == 5
