"""Marking a sent outbox message on PostgreSQL: ``mark_without_flush_wait``.

Contract. Called first in a transaction that only records what was done already (a message
marked sent), it makes that transaction's commit return without waiting for the server to flush
its WAL to disk (``SET LOCAL synchronous_commit = off``); nothing else changes, and the
transaction is as atomic and as visible to others as before. What it gives up: after a crash of
the *database server* (not of the deliverer: a killed deliverer cannot lose a commit it was told
of), the marks of the last moment (at most three times ``wal_writer_delay``, 600 ms by default)
may be lost, and their messages are sent again once their lease runs out. It never loses a
message: the claim that leased it was committed as usual. The portable code commits every mark
durably; SQLite's WAL mode with ``synchronous=NORMAL`` already behaves like this.

Why it exists, measured with ``bench/throughput.py`` (delivery): a durable commit waits for
the disk, about 6 ms on a shared machine, longer than the SMTP exchange itself (2 ms): one per
message kept delivery under 100 messages a second. Without the wait a mark costs a round trip.

How it is tested: ``tests/notifications/test_deliverer.py`` and the SIGKILL tests of
``tests/tasks/test_processes.py`` run through it on PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def mark_without_flush_wait(session: Session) -> None:
    """Let this transaction's commit return before its WAL reaches the disk (see above)."""
    session.execute(text("SET LOCAL synchronous_commit = off"))
