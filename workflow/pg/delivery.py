"""Marking sent outbox messages on PostgreSQL: ``marks_without_flush_wait``.

Contract. ``marks_without_flush_wait(engine)`` gives a connection on which each statement is
its own transaction, committed at once (autocommit), whose commit returns without waiting for the
server to flush its WAL to disk (``synchronous_commit = off`` for this connection, reset before
it goes back to the pool). It is for statements that only record what was done already (a
message marked sent); each is as atomic and as visible to others as a committed transaction, and
costs one round trip (the portable code: BEGIN, the statement, COMMIT and the disk's wait).
What it gives up: after a crash of the *database server* (not of the deliverer: a killed
deliverer cannot lose a commit it was told of), the marks of the last moment (at most three
times ``wal_writer_delay``, 600 ms by default) may be lost, and their messages are sent again
once their lease runs out. It never loses a message: the claim that leased it was committed as
usual. The portable code commits every mark durably; SQLite's WAL mode with
``synchronous=NORMAL`` already behaves like this.

Why it exists, measured with ``bench/throughput.py`` (delivery): a durable commit waits for
the disk, about 6 ms on a shared machine, longer than the SMTP exchange itself (2 ms): one per
message kept delivery under 100 messages a second. Without the wait a mark costs a round trip.

How it is tested: ``tests/notifications/test_deliverer.py`` and the SIGKILL tests of
``tests/tasks/test_processes.py`` run through it on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError


@contextmanager
def marks_without_flush_wait(engine: Engine) -> Iterator[Connection]:
    """An autocommit connection whose commits do not wait for the disk (see above)."""
    with engine.connect() as connection:
        marks = connection.execution_options(isolation_level="AUTOCOMMIT")
        marks.exec_driver_sql("SET synchronous_commit = off")
        try:
            yield marks
        finally:
            with suppress(DBAPIError):  # a broken connection is discarded by the pool anyway
                marks.exec_driver_sql("RESET synchronous_commit")
