"""Writing a lifecycle action on PostgreSQL in one statement: ``write_action``.

Contract. ``write_action(session, measure_id, version, changes, entry)`` does what the portable
``workflow.services.measures.write_action`` does, in the caller's transaction: it sets the
measure's ``changes`` and ``version + 1`` where the measure's version is still ``version``, and
only then inserts the history row ``entry`` (whose ``seq`` is ``version + 1``); it returns the
new row's id, or None when the version check failed, in which case nothing was written. The
portable code sends an UPDATE, checks its row count, then an INSERT; this sends one statement::

    WITH moved AS (UPDATE measure SET ..., version = :version + 1
                   WHERE id = :id AND version = :version RETURNING id)
    INSERT INTO measure_history (...) SELECT ... FROM moved RETURNING id

The history row is inserted only from the row the UPDATE moved, so a lost race writes neither;
both sides see the same values, the hash chain is computed by the caller as before, and the
database's triggers and unique ``(measure_id, seq)`` still guard the history.

When it is used: ``workflow.services.measures.perform`` (and the deadline recomputation) pick it
whenever the session is on PostgreSQL; the readable two statements stay the code on SQLite.

Why it exists, measured with ``bench/transitions.py`` (one thread, PostgreSQL): an action was
BEGIN, the load, the UPDATE, the INSERT and COMMIT, five round trips; this makes it four.

How it is tested: every test of ``tests/workflow`` that performs actions runs through it when the
tests run on PostgreSQL; ``tests/pg/test_actions_adapter.py`` checks the lost race and that the
rows written are those of the portable code.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Insert, bindparam, insert, select, update
from sqlalchemy.orm import Session

from workflow.models import HistoryEntry, Measure

_MEASURES = Measure.__table__
_HISTORY = HistoryEntry.__table__
#: the history row's columns, in the order the statement inserts them
_ENTRY_COLUMNS = tuple(c.name for c in _HISTORY.columns if c.name != "id")  # type: ignore[attr-defined]

#: one statement per set of measure columns an action changes (a handful of shapes in all)
_STATEMENTS: dict[tuple[str, ...], Insert] = {}


def _statement(columns: tuple[str, ...]) -> Insert:
    found = _STATEMENTS.get(columns)
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
        found = _STATEMENTS[columns] = (insert(_HISTORY)  # type: ignore[arg-type]
                                        .from_select(list(_ENTRY_COLUMNS), entry)
                                        .returning(_HISTORY.c.id))
    return found


def write_action(session: Session, measure_id: int, version: int, changes: dict[str, Any],
                 entry: dict[str, Any]) -> int | None:
    """The measure's changes and its history row in one statement (see above)."""
    values = {**changes, "version": version + 1}
    params = {f"set_{name}": value for name, value in values.items()}
    params.update((f"entry_{name}", entry[name]) for name in _ENTRY_COLUMNS)
    params.update(where_id=measure_id, where_version=version)
    entry_id: int | None = session.execute(_statement(tuple(values)), params).scalar()
    return entry_id
