"""Verifying the history hash chain of every measure (``rectiflow audit verify``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.history import ChainRow, verify_chain
from workflow.models import HistoryEntry, HistoryOrigin, Measure


@dataclass
class AuditReport:
    measures: int = 0
    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, object]:
        return {"ok": self.ok, "measures": self.measures, "entries": self.entries,
                "problems": self.problems}


def verify_history(session: Session, measure_id: int | None = None) -> AuditReport:
    """Recompute every chain; report rows altered, missing, or out of step with the measure."""
    report = AuditReport()
    measures = select(Measure.id, Measure.version, Measure.state).order_by(Measure.id)
    # An imported row was hashed over the ids it had where it was written (history_origin).
    entries = (select(HistoryEntry, HistoryOrigin)
               .outerjoin(HistoryOrigin, HistoryOrigin.history_id == HistoryEntry.id)
               .order_by(HistoryEntry.measure_id, HistoryEntry.seq))
    if measure_id is not None:
        measures = measures.where(Measure.id == measure_id)
        entries = entries.where(HistoryEntry.measure_id == measure_id)
    rows_by_measure: dict[int, list[ChainRow]] = {}
    for entry, origin in session.execute(entries.execution_options(yield_per=2000)):
        hashed = origin or entry
        rows_by_measure.setdefault(entry.measure_id, []).append(ChainRow(
            measure_id=hashed.measure_id, seq=entry.seq, action=entry.action,
            from_state=entry.from_state, to_state=entry.to_state, actor_id=hashed.actor_id,
            on_behalf_of_id=hashed.on_behalf_of_id, comment=entry.comment, data=entry.data,
            at=entry.at, prev_hash=entry.prev_hash, hash=entry.hash))
        report.entries += 1
    known: set[int] = set()
    for mid, version, state in session.execute(measures):
        known.add(mid)
        report.measures += 1
        report.problems.extend(verify_chain(mid, rows_by_measure.get(mid, []),
                                            version=version, state=str(state)))
    for orphan in sorted(set(rows_by_measure) - known):
        report.problems.append(f"历史记录指向不存在的措施 {orphan}")
    return report
