"""Audit checkpoints: the history's chain heads, signed with a key kept outside the database.

The hash chain alone proves nothing against someone who can write the database: they can delete
a measure's last rows and roll the measure back, or edit a row and recompute every hash after
it. A checkpoint records, per measure, how many history rows it had and the hash of the last
one, signed with HMAC-SHA256 under ``RECTIFLOW_AUDIT_KEY``. Because each hash covers the one
before it, "row N still has hash H" vouches for rows 1..N: verifying against a checkpoint finds
any row that existed then and is missing or different now. Building and checking are pure;
reading the heads and the files is kept to the few functions at the end.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from workflow.errors import InputError
from workflow.models import HistoryEntry
from workflow.timeutil import SHANGHAI, as_utc

FORMAT = "rectiflow-audit-checkpoint/1"


@dataclass(frozen=True)
class Head:
    """One measure's chain head: how many rows, and the last row's seq and hash."""

    count: int
    last_seq: int
    last_hash: str


def canonical(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":")).encode("utf-8")


def sign(document: Mapping[str, Any], key: str) -> str:
    return hmac.new(key.encode("utf-8"), canonical(document), hashlib.sha256).hexdigest()


def build_checkpoint(heads: Mapping[int, Head], at: datetime, key: str) -> dict[str, Any]:
    """The signed document: per measure (by id) its count and last hash, and the totals."""
    body: dict[str, Any] = {
        "format": FORMAT,
        "created_at": as_utc(at).isoformat(),
        "measures": {str(mid): {"count": h.count, "last_seq": h.last_seq, "last_hash": h.last_hash}
                     for mid, h in sorted(heads.items())},
        "totals": {"measures": len(heads), "entries": sum(h.count for h in heads.values())},
    }
    return {**body, "hmac_sha256": sign(body, key)}


def check_signature(document: Mapping[str, Any], key: str) -> list[str]:
    """Problems with the file itself: a wrong format or a signature that does not match."""
    if not isinstance(document, Mapping) or document.get("format") != FORMAT:
        return [f"不是 rectiflow 审计检查点文件（format 应为 {FORMAT}）"]
    body = {k: v for k, v in document.items() if k != "hmac_sha256"}
    given = document.get("hmac_sha256")
    if not isinstance(given, str) or not hmac.compare_digest(given, sign(body, key)):
        return ["检查点的签名不符：文件被改动过，或 RECTIFLOW_AUDIT_KEY 与签名时不同"]
    return []


def compare_heads(document: Mapping[str, Any], heads: Mapping[int, Head],
                  rows: Mapping[tuple[int, int], str]) -> list[str]:
    """Each measure of the checkpoint must still have its rows: at least ``count`` of them, and
    its row ``last_seq`` with the same hash. ``rows`` maps (measure, seq) → hash for exactly
    the rows the checkpoint names."""
    problems: list[str] = []
    at = document.get("created_at", "")
    for key, then in document.get("measures", {}).items():
        measure_id = int(key)
        now = heads.get(measure_id)
        if now is None:
            problems.append(f"措施 {measure_id}：检查点（{at}）时有 {then['count']} 条历史，"
                            "现在一条也没有（措施或其历史被删除）")
            continue
        if now.count < then["count"]:
            problems.append(f"措施 {measure_id}：检查点时有 {then['count']} 条历史，现在只有 "
                            f"{now.count} 条（末尾的记录被删除或回滚）")
        current = rows.get((measure_id, then["last_seq"]))
        if current is None:
            problems.append(f"措施 {measure_id}：检查点时的第 {then['last_seq']} 条历史已不存在")
        elif current != then["last_hash"]:
            problems.append(f"措施 {measure_id}：第 {then['last_seq']} 条历史与检查点不符"
                            "（此前的历史被改写后重新计算了哈希）")
    return problems


# ------------------------------------------------------------------ reading and writing (I/O)


def read_heads(session: Session) -> dict[int, Head]:
    """Every measure's chain head, in two indexed reads."""
    counts = select(HistoryEntry.measure_id, func.count().label("n"),
                    func.max(HistoryEntry.seq).label("last")).group_by(HistoryEntry.measure_id)
    last = aliased(HistoryEntry)
    sub = counts.subquery()
    heads: dict[int, Head] = {}
    for measure_id, count, last_seq, last_hash in session.execute(
            select(sub.c.measure_id, sub.c.n, sub.c.last, last.hash)
            .join(last, (last.measure_id == sub.c.measure_id) & (last.seq == sub.c.last))):
        heads[int(measure_id)] = Head(int(count), int(last_seq), last_hash)
    return heads


def read_named_rows(session: Session, document: Mapping[str, Any]) -> dict[tuple[int, int], str]:
    wanted = {(int(k), int(v["last_seq"])) for k, v in document.get("measures", {}).items()}
    found: dict[tuple[int, int], str] = {}
    ids = sorted({m for m, _ in wanted})
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for measure_id, seq, digest in session.execute(
                select(HistoryEntry.measure_id, HistoryEntry.seq, HistoryEntry.hash)
                .where(HistoryEntry.measure_id.in_(chunk))):
            if (measure_id, seq) in wanted:
                found[(measure_id, seq)] = digest
    return found


def require_key(key: str | None) -> str:
    if not key:
        raise InputError("未设置 RECTIFLOW_AUDIT_KEY：检查点要用保存在数据库以外的密钥签名"
                         "（如 python3 -c 'import secrets; print(secrets.token_hex(32))' 生成，"
                         "只交给运维保管）", field="RECTIFLOW_AUDIT_KEY")
    return key


def write_checkpoint(session: Session, out: Path, key: str, at: datetime) -> dict[str, Any]:
    """Sign the current heads and write them to ``out`` atomically (a reader never sees half)."""
    document = build_checkpoint(read_heads(session), at, require_key(key))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".checkpoint-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return document


def scheduled_name(at: datetime) -> str:
    """The file the clock writes for a checkpoint taken at ``at``."""
    return f"checkpoint-{at.astimezone(SHANGHAI):%Y%m%dT%H%M%S}.json"


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"无法读取检查点文件 {path}：{exc.strerror or exc}",
                         field="checkpoint") from exc
    except ValueError as exc:
        raise InputError(f"检查点文件 {path} 不是有效的 JSON：{exc}", field="checkpoint") from exc
    if not isinstance(document, dict):
        raise InputError(f"检查点文件 {path} 不是 rectiflow 审计检查点", field="checkpoint")
    return document


def verify_against(session: Session, document: Mapping[str, Any], key: str) -> list[str]:
    """Problems between the database and a checkpoint (signature first)."""
    problems = check_signature(document, require_key(key))
    if problems:
        return problems
    return compare_heads(document, read_heads(session), read_named_rows(session, document))
