"""Writing checked ledger rows: areas, problems, units, measures, first history rows, in batches.

A :class:`LedgerWriter` keeps the ids of the areas, problems and units it has seen, so a large
ledger goes in batch by batch in the caller's transaction without holding all rows at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from workflow import events
from workflow.history import GENESIS
from workflow.importers.ledger.rows import LedgerRow
from workflow.lifecycle import State, SystemAction
from workflow.models import (
    Area,
    Campaign,
    HistoryEntry,
    Measure,
    MeasureAssistingUnit,
    Problem,
    ProgressReport,
    ReminderSchedule,
    Unit,
)
from workflow.pg import bulk
from workflow.services.campaigns import place_unit
from workflow.services.measures import new_history_entry


def _insert_ids(session: Session, model: type[Area | Problem | Measure],
                values: Sequence[dict[str, Any]], key_columns: tuple[str, ...],
                lookup: Executable) -> list[int]:
    """Insert ``values`` and return their new ids in the same order.

    SQLite cannot batch INSERT ... RETURNING in parameter order (SQLAlchemy sends one statement
    per row there), so on SQLite the rows go in as one executemany and ``lookup`` reads
    ``key_columns`` + id back: safe because SQLite has one writer at a time. PostgreSQL takes
    the ids from the table's sequence and the rows by COPY (``workflow.pg.bulk``).
    """
    table = cast(Table, model.__table__)
    if session.get_bind().dialect.name == "postgresql":
        return bulk.insert_returning_ids(session, table, values)
    session.execute(insert(table), values)
    found = {tuple(row[:-1]): row[-1] for row in session.execute(lookup)}
    return [found[tuple(v[c] for c in key_columns)] for v in values]


def _insert(session: Session,
            model: type[HistoryEntry | ProgressReport | MeasureAssistingUnit | ReminderSchedule],
            values: Sequence[dict[str, Any]]) -> None:
    """Insert ``values`` (PostgreSQL: by COPY, ``workflow.pg.bulk``)."""
    table = cast(Table, model.__table__)
    if session.get_bind().dialect.name == "postgresql":
        bulk.insert_rows(session, table, values)
    else:
        session.execute(insert(table), values)


class LedgerWriter:
    """Writes batches of rows into one campaign; areas and problems are reused by their text."""

    def __init__(self, session: Session, campaign: Campaign, now: datetime) -> None:
        self.session = session
        self.campaign = campaign
        self.now = now
        self.areas = {a.title: a.id for a in session.scalars(
            select(Area).where(Area.campaign_id == campaign.id))}
        self.problems: dict[tuple[int, str], int] = {
            (p.area_id, p.text): p.id for p in session.scalars(
                select(Problem).join(Area).where(Area.campaign_id == campaign.id))}
        self.units = {u.name: u.id for u in session.scalars(select(Unit))}
        #: units known to sit under the campaign's inspected unit
        self.placed: set[int] = set()
        self.position = session.scalar(
            select(Measure.position).where(Measure.campaign_id == campaign.id)
            .order_by(Measure.position.desc()).limit(1)) or 0

    def write(self, rows: Sequence[LedgerRow]) -> list[int]:
        """Insert one batch of rows; the new measures' ids in row order."""
        if not rows:
            return []
        self._add_areas(rows)
        self._add_problems(rows)
        self._add_units(rows)
        return self._add_measures(rows)

    def _add_areas(self, rows: Sequence[LedgerRow]) -> None:
        campaign_id = self.campaign.id
        new_areas: list[dict[str, Any]] = []
        for row in rows:
            if row.area not in self.areas:
                self.areas[row.area] = -1
                new_areas.append({"campaign_id": campaign_id, "position": len(self.areas) - 1,
                                  "title": row.area})
        if new_areas:
            ids = _insert_ids(self.session, Area, new_areas, ("title",),
                              select(Area.title, Area.id).where(Area.campaign_id == campaign_id))
            for values, new_id in zip(new_areas, ids, strict=True):
                self.areas[values["title"]] = new_id

    def _add_problems(self, rows: Sequence[LedgerRow]) -> None:
        new_problems: list[dict[str, Any]] = []
        for row in rows:
            key = (self.areas[row.area], row.problem)
            if key not in self.problems:
                self.problems[key] = -1
                new_problems.append({"area_id": key[0], "position": len(self.problems),
                                     "text": row.problem})
        if new_problems:
            area_ids = sorted({p["area_id"] for p in new_problems})
            ids = _insert_ids(self.session, Problem, new_problems, ("area_id", "text"),
                              select(Problem.area_id, Problem.text, Problem.id)
                              .where(Problem.area_id.in_(area_ids)).order_by(Problem.id))
            for values, new_id in zip(new_problems, ids, strict=True):
                self.problems[(values["area_id"], values["text"])] = new_id

    def _add_units(self, rows: Sequence[LedgerRow]) -> None:
        # a campaign with an inspected unit places its ledger's units under it
        parent = self.campaign.inspected_unit_id
        names = {r.unit for r in rows if r.unit} | {u for r in rows for u in r.assisting}
        for name in sorted(names - self.units.keys()):
            self.units[name] = self.session.execute(
                insert(Unit).values(name=name, parent_id=parent).returning(Unit.id)).scalar_one()
            self.placed.add(self.units[name])
        if parent is not None:
            for name in sorted(names):
                if self.units[name] not in self.placed:
                    place_unit(self.session, self.campaign, self.units[name])
                    self.placed.add(self.units[name])

    def _add_measures(self, rows: Sequence[LedgerRow]) -> list[int]:
        campaign_id, now, start = self.campaign.id, self.now, self.position
        values = [
            {"campaign_id": campaign_id, "problem_id": self.problems[(self.areas[r.area], r.problem)],
             "position": start + i + 1, "seq": r.seq, "title": r.title, "kind": r.kind.value,
             "state": State.ASSIGNED.value, "deadline": r.deadline, "original_deadline": r.deadline,
             "deadline_provisional": r.deadline_provisional,
             "deadline_workdays": r.deadline_rule.workdays if r.deadline_rule else None,
             "deadline_counted_from": r.deadline_rule.counted_from if r.deadline_rule else None,
             "owner_id": r.owner_id, "leader_id": r.leader_id,
             "unit_id": self.units[r.unit] if r.unit else None, "version": 1,
             "created_at": now, "state_changed_at": now,
             "last_progress_at": now if r.note else None}
            for i, r in enumerate(rows)
        ]
        self.position = start + len(rows)
        ids = _insert_ids(self.session, Measure, values, ("position",),
                          select(Measure.position, Measure.id).where(
                              Measure.campaign_id == campaign_id, Measure.position > start,
                              Measure.position <= self.position))
        session = self.session
        # the next sweep plans them
        _insert(session, ReminderSchedule, [{"measure_id": mid, "next_reminder_at": now}
                                            for mid in ids])
        _insert(session, HistoryEntry, [
            new_history_entry(measure_id=mid, seq=1, action=SystemAction.CREATE.value, from_state=None,
                              to_state=State.ASSIGNED.value, actor_id=None, on_behalf_of_id=None,
                              comment=None, data={"row": r.row}, at=now, prev_hash=GENESIS)
            for mid, r in zip(ids, rows, strict=True)])
        assisting = [{"measure_id": mid, "unit_id": self.units[name], "position": i}
                     for mid, r in zip(ids, rows, strict=True)
                     for i, name in enumerate(r.assisting)]
        if assisting:
            _insert(session, MeasureAssistingUnit, assisting)
        notes = [{"measure_id": mid, "author_id": None, "text": r.note, "at": now}
                 for mid, r in zip(ids, rows, strict=True) if r.note]
        if notes:
            _insert(session, ProgressReport, notes)
        events.publish(session, [
            events.MeasureChanged(measure_id=mid, action=SystemAction.CREATE.value, from_state=None,
                                  to_state=State.ASSIGNED.value, actor_id=None,
                                  on_behalf_of_id=None, at=now)
            for mid in ids])
        return ids


def write_rows(session: Session, campaign: Campaign, rows: Sequence[LedgerRow],
               now: datetime) -> list[int]:
    """Insert ``rows`` into ``campaign`` in one go (demo data, tests, benchmarks)."""
    return LedgerWriter(session, campaign, now).write(rows)
