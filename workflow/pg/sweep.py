"""The reminder sweep's reads and writes on PostgreSQL: ``PostgresSweepStore``.

Contract. ``PostgresSweepStore`` replaces ``workflow.services.sweep.SweepStore`` method for
method, and a sweep through it must leave exactly what the portable store leaves: the same
outbox messages (recipient, channel, subject, payload, key, send time), the same outbox items
(message, measure, rule, key), the same ``next_reminder_at`` on every measure, in the caller's
transaction; nothing is written anywhere else. Concretely:

- ``read_due`` returns the same ``DueMeasure`` rows in the same order;
- ``insert_items`` inserts the rows given, skipping those whose key exists, and
  ``inserted_keys`` gives the keys it inserted; ``fill_messages`` fills the placeholders;
- ``move_on`` writes each measure's next reminder time where its version is still the one
  planned and its reminder time the one read;
- callers need not know how: statements may still be running when a method returns, but
  anything else that uses the session (a query, a flush, the commit or rollback) first waits
  for them, and a statement that failed raises there, in the caller's thread.

When it is used: ``workflow.services.sweep.sweep`` picks it (``store_for``) whenever the
session is on PostgreSQL; ``sweep(..., make_store=SweepStore)`` runs the portable statements
there instead. The per-action notifications (``outbox.write_notices``) always use the portable
code: they write a handful of rows.

Why it exists, measured with ``bench/sweep.py``'s 100,000-measure burst: the server makes the
measures' local dates as it reads them (Python's ``astimezone`` for three times a row cost more
than the rest of reading); and each batch's writes are one statement over a JSON document, which
the json module encodes far faster than array parameters, where an executemany is one
statement per row (psycopg pipelines them, but the server still plans and runs each one).
And the server works while Python plans: the writes, and the read of the next batch, are run
in order by one helper thread (``_Writer``) on the session's own connection, so in the
caller's transaction. ``_Writer`` hooks a wait onto that connection (before each statement,
commit and rollback), so the connection is used by one thread at a time and the adapter's
callers never wait for it themselves. The writes' rows are not sent back: ``inserted_keys``
compares the counts inserted with those sent, and queries only when they differ.

How it is tested: ``tests/pg/test_sweep_adapter.py`` runs the same ledger through both stores on
PostgreSQL and compares the outbox rows and reminder times exactly; every sweep test in
``tests/workflow/test_sweep.py`` runs through this store when the tests run on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from sqlalchemy import Date, cast, event, func
from sqlalchemy.orm import Session

from workflow.outbox import ItemRow, keys_inserted
from workflow.pg.items import FILL_MESSAGES, INSERT_ITEMS, fill_rows, json_parameter
from workflow.services.sweep import (
    MEASURE_TIMES,
    DueMeasure,
    NextReminder,
    SweepStore,
    due_parameters,
    due_query,
)
from workflow.timeutil import SHANGHAI

# Run by the driver itself, from the writer thread: psycopg's parameters (and INSERT_ITEMS,
# workflow.pg.items').
MOVE_ON = (
    "UPDATE reminder_schedule SET next_reminder_at = planned.next_at "
    "FROM json_to_recordset(CAST(%(planned)s AS json)) "
    "AS planned(id integer, version integer, next_at timestamptz, was timestamptz), measure "
    "WHERE reminder_schedule.measure_id = planned.id "
    "AND reminder_schedule.next_reminder_at = planned.was "
    "AND measure.id = planned.id AND measure.version = planned.version")


def _local_date(column: Any) -> Any:
    """The column's date in Asia/Shanghai, made by the server."""
    return cast(func.timezone(SHANGHAI.key, column), Date)


class _Writer:
    """Statements run in order by one helper thread on the session's own connection (so in
    its transaction), while the caller goes on: psycopg releases the GIL while the server
    works. Before anything else uses that connection (a statement, a commit, a rollback), it
    waits for them: ``attach`` hooks that wait onto the connection, so no caller has to."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._driver: Any = None  # the connection's psycopg connection, once attached
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[Future[Any]] = []

    def execute(self, statement: str, parameters: dict[str, Any]) -> Future[int]:
        """Send ``statement``; the future gives its row count."""
        return self._submit(self._run, statement, parameters)

    def execute_many(self, statement: str, parameters: list[dict[str, Any]]) -> Future[None]:
        """Send ``statement`` once for each of ``parameters`` (psycopg pipelines them)."""
        return self._submit(self._run_many, statement, parameters)

    def fetch(self, statement: str, parameters: dict[str, Any]) -> Future[list[Any]]:
        """Send a query; the future gives its rows."""
        return self._submit(self._fetch, statement, parameters)

    def _submit(self, work: Callable[[str, Any], Any], statement: str,
                parameters: Any) -> Future[Any]:
        if self._driver is None:
            self._attach()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, "rectiflow-sweep-writer")
        future = self._executor.submit(work, statement, parameters)
        self._pending.append(future)
        return future

    def _attach(self) -> None:
        """Use the session's connection, and wait before anything else uses it."""
        connection = self.session.connection()
        self._driver = connection.connection.driver_connection
        event.listen(connection, "before_cursor_execute", self._before_statement)
        event.listen(connection, "commit", self._before_commit)
        event.listen(connection, "rollback", self._before_rollback)

    def _run(self, statement: str, parameters: dict[str, Any]) -> int:
        with self._driver.cursor() as cursor:
            cursor.execute(statement, parameters)
            return int(cursor.rowcount)

    def _run_many(self, statement: str, parameters: list[dict[str, Any]]) -> None:
        with self._driver.cursor() as cursor:
            cursor.executemany(statement, parameters)

    def _fetch(self, statement: str, parameters: dict[str, Any]) -> list[Any]:
        with self._driver.cursor() as cursor:
            cursor.execute(statement, parameters)
            return list(cursor.fetchall())

    def wait(self) -> None:
        """Return once every statement sent has finished (the thread then stops); raise the
        first that failed."""
        pending, self._pending = self._pending, []
        executor, self._executor = self._executor, None
        try:
            for future in pending:
                future.result()
        finally:
            if executor is not None:
                executor.shutdown()

    def _before_statement(self, *_: Any) -> None:
        self.wait()

    def _before_commit(self, _connection: Any) -> None:
        self.wait()  # a failed write fails the commit

    def _before_rollback(self, _connection: Any) -> None:
        try:
            self.wait()
        except Exception:  # noqa: BLE001  # rolled back anyway
            pass


def _position(measure: DueMeasure | None) -> tuple[Any, ...] | None:
    return None if measure is None else (measure.next_reminder_at, measure.id)


class PostgresSweepStore(SweepStore):
    """``SweepStore`` with local dates made by the server, and one statement over a JSON
    document per batch for the writes, run while Python plans the next batch."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._writer = _Writer(session)
        self._sent: list[tuple[int, Future[int]]] = []  # rows sent, and rows inserted
        self._message_ids: set[int] = set()  # the messages they point at
        self._ahead: tuple[tuple[Any, ...] | None, Future[list[Any]]] | None = None  # next batch
        dialect = session.get_bind().dialect
        # the due query for psycopg, with its constant parameters: first, or after a position
        self._due_statements: dict[bool, tuple[str, dict[str, Any]]] = {}
        for following in (False, True):
            compiled = due_query(following, times=[
                _local_date(time) for time in MEASURE_TIMES]).compile(dialect=dialect)
            self._due_statements[following] = (str(compiled), dict(compiled.params))

    def read_due(self, now: datetime, batch: int, after: DueMeasure | None) -> list[DueMeasure]:
        """As ``SweepStore.read_due``; a full batch also sends the read of the next one, which
        the server runs while Python plans this one (before this batch's writes, which do not
        change it: they move measures before the position read from)."""
        ahead, self._ahead = self._ahead, None
        position = _position(after)
        if ahead is not None and ahead[0] == position:
            rows = ahead[1].result()
        else:
            self._writer.wait()
            rows = self._fetch_due(now, batch, after).result()
        due = [DueMeasure(*row) for row in rows]
        if len(due) == batch:
            self._ahead = (_position(due[-1]), self._fetch_due(now, batch, due[-1]))
        return due

    def _fetch_due(self, now: datetime, batch: int, after: DueMeasure | None
                   ) -> Future[list[Any]]:
        statement, defaults = self._due_statements[after is not None]
        return self._writer.fetch(statement, {**defaults,
                                              **due_parameters(now, batch, after)})

    def insert_items(self, rows: list[ItemRow]) -> None:
        self._sent.append((len(rows), self._writer.execute(
            INSERT_ITEMS, {"rows": json_parameter(rows)})))
        self._message_ids.update(row["message_id"] for row in rows)

    def inserted_keys(self) -> set[str] | None:
        """Every key sent (``None``), unless some existed already: then those pointing at the messages
        the rows point at (only this sweep writes into them). Sending every key back would cost
        more than this query in the usual case."""
        self._writer.wait()
        return keys_inserted(self.session, self._message_ids, all_inserted=all(
            future.result() == sent for sent, future in self._sent))

    def fill_messages(self, rows: list[dict[str, Any]]) -> None:
        """One statement a message, pipelined, sent while the last writes may still run."""
        if rows:
            self._writer.execute_many(FILL_MESSAGES, fill_rows(rows))

    def move_on(self, reminders: Sequence[NextReminder]) -> None:
        if not reminders:
            return
        # measures planned alike share their next time: each is formatted once
        times = {r.at for r in reminders} | {r.was for r in reminders}
        shown = {at: at.isoformat() for at in times if at is not None}
        self._writer.execute(MOVE_ON, {"planned": json_parameter([
            {"id": r.measure_id, "version": r.version,
             "next_at": shown[r.at] if r.at is not None else None, "was": shown[r.was]}
            for r in reminders])})
