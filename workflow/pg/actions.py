"""Writing a lifecycle action on PostgreSQL in one statement: ``write_action``.

Contract. ``write_action(session, measure_id, version, changes, entry, progress)`` does what
the portable ``workflow.services.measures.write_action`` does, in the caller's transaction: it
sets the measure's ``changes`` and ``version + 1`` where the measure's version is still
``version``, and only then inserts the history row ``entry`` (whose ``seq`` is ``version + 1``)
and, for a submission, the ``progress`` report's row (its evidence files are the caller's);
it returns the new history row's id and the report's id (None without ``progress``), or None
when the version check failed, in which case nothing was written. The portable code sends an
UPDATE, checks its row count, then an INSERT or two; this sends one statement::

    WITH moved AS (UPDATE measure SET ..., version = :version + 1
                   WHERE id = :id AND version = :version RETURNING id),
         report AS (INSERT INTO progress_report (...) SELECT ... FROM moved RETURNING id),
         scheduled AS (INSERT INTO reminder_schedule ... SELECT id, :at FROM moved
                       ON CONFLICT (measure_id) DO UPDATE ...)
    INSERT INTO measure_history (...) SELECT ... FROM moved
    RETURNING id, (SELECT id FROM report)

The history row is inserted only from the row the UPDATE moved, so a lost race writes neither;
both sides see the same values, the hash chain is computed by the caller as before, and the
database's triggers and unique ``(measure_id, seq)`` still guard the history.

When it is used: ``workflow.services.measures.perform`` (and the deadline recomputation) pick it
whenever the session is on PostgreSQL; the readable separate statements stay the code on SQLite.

Why it exists, measured with ``bench/transitions.py`` (one thread, PostgreSQL): an action was
BEGIN, the load, the UPDATE, the INSERT (two for a submission) and COMMIT, 5.25 round trips on
the benchmark's mix; this makes it four. On a busy machine each round trip costs more than the
Python work of the statement (each waits for the server process to be scheduled).

How it is tested: every test of ``tests/workflow`` that performs actions runs through it when the
tests run on PostgreSQL; ``tests/pg/test_actions_adapter.py`` checks the lost race and that the
rows written are those of the portable code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Insert, bindparam, insert, null, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from workflow.models import HistoryEntry, Measure, ProgressReport, ReminderSchedule

_MEASURES = Measure.__table__
_HISTORY = HistoryEntry.__table__
_PROGRESS = ProgressReport.__table__
_SCHEDULE = ReminderSchedule.__table__
#: the history row's columns, in the order the statement inserts them
_ENTRY_COLUMNS = tuple(c.name for c in _HISTORY.columns if c.name != "id")  # type: ignore[attr-defined]
#: a progress report's columns but its id and measure (the measure's comes from the update)
PROGRESS_COLUMNS = ("author_id", "text", "at")

#: one statement per set of measure columns an action changes (a handful of shapes in all),
#: with or without a progress report and a next reminder time
_STATEMENTS: dict[tuple[tuple[str, ...], bool, bool], Insert] = {}


def _statement(columns: tuple[str, ...], with_progress: bool, with_schedule: bool) -> Insert:
    found = _STATEMENTS.get((columns, with_progress, with_schedule))
    if found is None:
        moved = (update(_MEASURES)  # type: ignore[arg-type]
                 .where(_MEASURES.c.id == bindparam("where_id"),
                        _MEASURES.c.version == bindparam("where_version"))
                 .values({name: bindparam(f"set_{name}", type_=_MEASURES.c[name].type)
                          for name in columns})
                 .returning(_MEASURES.c.id)
                 .cte("moved"))
        entry = select(*[bindparam(f"entry_{name}", type_=_HISTORY.c[name].type)
                         for name in _ENTRY_COLUMNS]).select_from(moved)
        report_id: Any = null()
        if with_progress:
            report = (insert(_PROGRESS)  # type: ignore[arg-type]
                      .from_select(["measure_id", *PROGRESS_COLUMNS], select(
                          moved.c.id, *[bindparam(f"progress_{name}",
                                                  type_=_PROGRESS.c[name].type)
                                        for name in PROGRESS_COLUMNS]))
                      .returning(_PROGRESS.c.id)
                      .cte("report"))
            report_id = select(report.c.id).scalar_subquery()
        found = (insert(_HISTORY)  # type: ignore[arg-type]
                 .from_select(list(_ENTRY_COLUMNS), entry)
                 .returning(_HISTORY.c.id, report_id))
        if with_schedule:  # the sweep plans the measure again from the given time
            upsert = pg_insert(_SCHEDULE).from_select(  # type: ignore[arg-type]
                ["measure_id", "next_reminder_at"],
                select(moved.c.id, bindparam("schedule_at",
                                             type_=_SCHEDULE.c.next_reminder_at.type)))
            found = found.add_cte(upsert.on_conflict_do_update(
                index_elements=["measure_id"],
                set_={"next_reminder_at": upsert.excluded.next_reminder_at}).cte("scheduled"))
        _STATEMENTS[columns, with_progress, with_schedule] = found
    return found


def write_action(session: Session, measure_id: int, version: int, changes: dict[str, Any],
                 entry: dict[str, Any], progress: dict[str, Any] | None = None,
                 schedule: tuple[datetime | None] | None = None
                 ) -> tuple[int, int | None] | None:
    """The measure's changes, its history row, a submission's progress report and, given
    ``schedule`` (``(when,)``), its next reminder time (``reminder_schedule``) in one statement
    (see above): the history row's id and the report's, or None on a lost race."""
    values = {**changes, "version": version + 1}
    params = {f"set_{name}": value for name, value in values.items()}
    params.update((f"entry_{name}", entry[name]) for name in _ENTRY_COLUMNS)
    if progress is not None:
        params.update((f"progress_{name}", progress[name]) for name in PROGRESS_COLUMNS)
    params.update(where_id=measure_id, where_version=version)
    if schedule is not None:
        params["schedule_at"] = schedule[0]
    row = session.execute(_statement(tuple(values), progress is not None, schedule is not None),
                          params).first()
    return None if row is None else (row[0], row[1])
