"""Bulk inserts on PostgreSQL: ids taken from the table's sequence in one query, rows sent by COPY.

Contract. ``insert_rows(session, table, rows)`` leaves exactly what
``session.execute(insert(table), rows)`` leaves, in the session's transaction;
``insert_returning_ids`` also gives the new ids in the order of ``rows``, as
``INSERT ... RETURNING`` would. Every row has the same keys. Each value goes through its column
type's bind processing first (UTC datetimes, JSON), as SQLAlchemy's own insert does; but COPY runs
no Python-side column defaults, so a row must give every column that has one (a missing one
raises ``ValueError`` before anything is sent). Row triggers run as for any insert.

When it is used: the ledger importer (``workflow.importers.ledger.writing``) writes its
measures, first history rows and progress notes through it on PostgreSQL; SQLite keeps the
portable executemany.

Why it exists, measured with ``bench/import.py`` (50,000 rows): SQLAlchemy's INSERT ... RETURNING
sends batches of a few hundred rows as one long statement each, which psycopg parses afresh every
time (too long for its statement cache), and an executemany is one statement per row on the
server; COPY sends the rows as one stream.

How it is tested: ``tests/pg/test_bulk.py`` compares rows written by both ways, defaults and
types included, and checks the refusals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session


def insert_returning_ids(session: Session, table: Table, rows: Sequence[dict[str, Any]]
                         ) -> list[int]:
    """Insert ``rows``; their new ids, in order."""
    if not rows:
        return []
    sequence = func.pg_get_serial_sequence(table.name, table.c.id.name)
    ids = list(session.scalars(select(func.nextval(sequence))
                               .select_from(func.generate_series(1, len(rows)))))
    insert_rows(session, table, [{**row, "id": new_id} for row, new_id in zip(rows, ids,
                                                                                strict=True)])
    return ids


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``table`` with COPY."""
    if not rows:
        return
    names = list(rows[0])
    unknown = [name for name in names if name not in table.c]
    if unknown:
        raise ValueError(f"{table.name} has no column {', '.join(unknown)}")
    missing = [c.name for c in table.c if c.default is not None and c.name not in names]
    if missing:
        raise ValueError(f"COPY into {table.name} runs no Python defaults: give "
                         f"{', '.join(missing)}")
    expected = set(names)
    if any(row.keys() != expected for row in rows):
        raise ValueError(f"every row into {table.name} must give the same columns")
    connection = session.connection()
    dialect = connection.dialect
    processors = [table.c[name].type._cached_bind_processor(dialect) for name in names]
    columns = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    table_name = dialect.identifier_preparer.format_table(table)
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(  # type: ignore[union-attr]
            f"COPY {table_name} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[name] if process is None or row[name] is None
                            else process(row[name])
                            for name, process in zip(names, processors, strict=True)])
