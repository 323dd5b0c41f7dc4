"""The hash chain over a measure's history: pure functions, no I/O."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


def entry_digest(*, measure_id: int, seq: int, action: str, from_state: str | None,
                 to_state: str, actor_id: int | None, on_behalf_of_id: int | None,
                 comment: str | None, data: Mapping[str, Any], at: datetime,
                 prev_hash: str) -> str:
    """SHA-256 over a canonical rendering of one history row and its predecessor's hash."""
    canonical = json.dumps(
        {
            "measure_id": measure_id,
            "seq": seq,
            "action": action,
            "from": from_state,
            "to": to_state,
            "actor": actor_id,
            "for": on_behalf_of_id,
            "comment": comment,
            "data": dict(data),
            # microseconds dropped: not every backend keeps them the same way
            "at": at.astimezone(UTC).replace(microsecond=0).isoformat(),
            "prev": prev_hash,
        },
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainRow:
    measure_id: int
    seq: int
    action: str
    from_state: str | None
    to_state: str
    actor_id: int | None
    on_behalf_of_id: int | None
    comment: str | None
    data: Mapping[str, Any]
    at: datetime
    prev_hash: str
    hash: str


def verify_chain(measure_id: int, rows: Iterable[ChainRow], *, version: int,
                 state: str) -> list[str]:
    """Problems found in one measure's history (empty when it verifies)."""
    problems: list[str] = []
    prev = GENESIS
    expected_seq = 1
    last: ChainRow | None = None
    for row in rows:
        if row.seq != expected_seq:
            problems.append(f"措施 {measure_id}：历史第 {expected_seq} 条缺失（见到第 {row.seq} 条）")
            expected_seq = row.seq
        if row.prev_hash != prev:
            problems.append(f"措施 {measure_id}：第 {row.seq} 条与上一条的链接不符")
        digest = entry_digest(
            measure_id=row.measure_id, seq=row.seq, action=row.action,
            from_state=row.from_state, to_state=row.to_state, actor_id=row.actor_id,
            on_behalf_of_id=row.on_behalf_of_id, comment=row.comment, data=row.data,
            at=row.at, prev_hash=row.prev_hash)
        if digest != row.hash:
            problems.append(f"措施 {measure_id}：第 {row.seq} 条内容被篡改（哈希不符）")
        prev = row.hash
        expected_seq += 1
        last = row
    if last is None:
        problems.append(f"措施 {measure_id}：没有任何历史记录")
        return problems
    if last.seq != version:
        problems.append(f"措施 {measure_id}：版本为 {version}，但历史只到第 {last.seq} 条")
    if last.to_state != state:
        problems.append(f"措施 {measure_id}：当前状态 {state} 与最后一条历史的 {last.to_state} 不符")
    return problems
