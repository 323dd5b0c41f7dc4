"""The reminder sweep's reads and writes on PostgreSQL: ``PostgresSweepStore``.

Contract. ``PostgresSweepStore`` replaces ``workflow.services.sweep.SweepStore`` method for
method, and a sweep through it must leave exactly what the portable store leaves: the same
outbox messages (recipient, channel, subject, payload, key, send time), the same outbox items
(message, measure, rule, key), the same ``next_reminder_at`` on every measure, in the caller's
transaction; nothing is written anywhere else, and nothing runs in another thread.
Concretely:

- ``read_due`` returns the same ``DueMeasure`` rows in the same order;
- ``insert_items`` inserts the rows given, skips those whose key exists, and returns the keys
  it inserted;
- ``move_on`` writes each measure's next reminder time where its version is still the one
  planned.

When it is used: ``workflow.services.sweep.sweep`` picks it (``store_for``) whenever the
session is on PostgreSQL; ``sweep(..., make_store=SweepStore)`` runs the portable statements
there instead. The per-action notifications (``outbox.write_notices``) always use the portable
code: they write a handful of rows.

Why it exists, measured with ``bench/sweep.py``'s 100,000-measure burst: the server makes the
measures' local dates as it reads them (Python's ``astimezone`` for three times a row cost more
than the rest of reading); and each batch's writes are one statement over a JSON document, which
the json module encodes far faster than array parameters, where an executemany is one
statement per row (psycopg pipelines them, but the server still plans and runs each one).

How it is tested: ``tests/pg/test_sweep_adapter.py`` runs the same ledger through both stores on
PostgreSQL and compares the outbox rows and reminder times exactly; every sweep test in
``tests/workflow/test_sweep.py`` runs through this store when the tests run on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Date, cast, func, text

from workflow.outbox import ItemRow
from workflow.services.sweep import (
    MEASURE_TIMES,
    DueMeasure,
    NextReminder,
    SweepStore,
    due_parameters,
    due_query,
)
from workflow.timeutil import SHANGHAI

INSERT_ITEMS = text(
    "INSERT INTO outbox_item (message_id, measure_id, rule, key) "
    "SELECT message_id, measure_id, rule, key FROM json_to_recordset(CAST(:rows AS json)) "
    "AS item(message_id integer, measure_id integer, rule varchar, key varchar) "
    "ON CONFLICT (key) DO NOTHING RETURNING key")

MOVE_ON = text(
    "UPDATE measure SET next_reminder_at = planned.next_at "
    "FROM json_to_recordset(CAST(:planned AS json)) "
    "AS planned(id integer, version integer, next_at timestamptz) "
    "WHERE measure.id = planned.id AND measure.version = planned.version")




def _local_date(column: Any) -> Any:
    """The column's date in Asia/Shanghai, made by the server."""
    return cast(func.timezone(SHANGHAI.key, column), Date)


class PostgresSweepStore(SweepStore):
    """``SweepStore`` with local dates made by the server, and one statement over a JSON
    document per batch for the writes."""

    def read_due(self, now: datetime, batch: int, after: DueMeasure | None) -> list[DueMeasure]:
        query = due_query(after, times=[_local_date(time) for time in MEASURE_TIMES])
        return [DueMeasure(*row) for row in
                self.session.execute(query, due_parameters(now, batch, after))]

    def insert_items(self, rows: list[ItemRow]) -> set[str]:
        return set(self.session.scalars(INSERT_ITEMS, {"rows": json.dumps(rows)}))

    def move_on(self, reminders: Sequence[NextReminder]) -> None:
        if not reminders:
            return
        # measures planned alike share their next time: each is formatted once
        shown = {at: at.isoformat() for at in {r.at for r in reminders} if at is not None}
        self.session.execute(MOVE_ON, {"planned": json.dumps([
            {"id": r.measure_id, "version": r.version,
             "next_at": shown[r.at] if r.at is not None else None} for r in reminders])})
