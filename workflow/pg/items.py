"""Outbox items inserted on PostgreSQL: ``PostgresItems``.

Contract. ``PostgresItems`` is an ``outbox.ItemStore`` that leaves exactly what
``outbox.PortableItems`` leaves: the rows given are inserted in the caller's transaction, those
whose key exists already are skipped, and ``inserted_keys`` gives the keys inserted.

When it is used: ``outbox.write_notices`` (the notifications that actions and imports cause)
picks it whenever the session is on PostgreSQL; the sweep's store (``workflow.pg.sweep``) sends
the same statement from its writer thread.

Why it exists, measured with ``bench/import.py`` (50,000 rows, so 50,000 "assigned" items): the
portable ``INSERT ... ON CONFLICT DO NOTHING`` executemany is one statement per row on the
server (psycopg pipelines them, but the server still plans and runs each one); one statement
over a JSON document inserts them all. The messages' payloads go the other way: one UPDATE a
message, pipelined, each payload written by orjson. A burst's 2,069 messages list 240,000 items
in 63 MB of JSON; one UPDATE over a document of 32 messages took 0.6 s for them (the server
parses each payload twice: in the document, then as the column's value), an UPDATE a message
0.22 s (``FILL_ROWS``).

How it is tested: every outbox and import test runs through it when the tests run on
PostgreSQL; ``tests/pg/test_sweep_adapter.py`` compares the sweep's items with the portable ones.
"""

from __future__ import annotations

from typing import Any

import orjson
from psycopg.types.json import Json

from workflow.outbox import ItemRow, PortableItems


def json_bytes(value: Any) -> bytes:
    """``value`` as a JSON document for one of these statements: compact, with Chinese as
    UTF-8 rather than ``\\uXXXX`` escapes (a burst's message payloads are a third smaller; the
    ``json`` columns keep the text as sent). orjson writes the same text as ``json.dumps(value,
    ensure_ascii=False, separators=(",", ":"))``, six times faster: a burst's 60 MB of
    payloads took 1.1 s with the json module, 0.2 s with orjson. ``OPT_NON_STR_KEYS``: keys
    that are ``str`` subclasses (a ``StrEnum`` member) or numbers are written as the json module
    writes them, instead of refused."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def json_parameter(value: Any) -> Json:
    """``value`` as a ``json`` parameter holding ``json_bytes``' text: psycopg sends those bytes
    as they are, when it sends the statement. Decoding them to a ``str`` for psycopg to encode
    back cost 0.1 s for a burst's 63 MB of payloads."""
    return Json(value, dumps=json_bytes)


INSERT_ITEMS = (
    "INSERT INTO outbox_item (message_id, measure_id, rule, key) "
    "SELECT message_id, measure_id, rule, key FROM json_to_recordset(CAST(%(rows)s AS json)) "
    "AS item(message_id integer, measure_id integer, rule varchar, key varchar) "
    "ON CONFLICT (key) DO NOTHING")


#: A placeholder's subject, payload and key (``OutboxWriter.finish``), one message a statement:
#: run as an executemany, which psycopg pipelines (``fill_rows`` gives its parameters).
FILL_MESSAGES = (
    "UPDATE outbox_message SET subject = %(subject)s, payload = CAST(%(payload)s AS json), "
    "key = %(key)s WHERE id = %(id)s")


def fill_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``FILL_MESSAGES``'s parameters for the messages ``rows`` (id, subject, payload, key)."""
    return [{"id": row["id"], "subject": row["subject"], "payload": json_parameter(row["payload"]),
             "key": row["key"]} for row in rows]


class PostgresItems(PortableItems):
    """``PortableItems`` with the rows sent as one JSON document, and the payloads written by
    orjson."""

    def _insert(self, rows: list[ItemRow]) -> int:
        if not rows:
            return 0
        result = self.session.connection().exec_driver_sql(INSERT_ITEMS,
                                                          {"rows": json_parameter(rows)})
        return int(result.rowcount)

    def fill_messages(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.session.connection().exec_driver_sql(FILL_MESSAGES, fill_rows(rows))
