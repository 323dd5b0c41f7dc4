"""The migrations build exactly the schema the models describe, on the backend under test, and
the newest one can be undone and redone."""

from __future__ import annotations

import json

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from dbfixtures import Database
from sqlalchemy import inspect, text

from workflow import db
from workflow.models import Base


def _differences(database: Database) -> list[object]:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        return list(compare_metadata(context, Base.metadata))


def test_migrated_schema_matches_the_models(database: Database) -> None:
    assert _differences(database) == []


def test_outbox_items_are_indexed_without_foreign_keys(database: Database) -> None:
    # migration 0009: a burst writes a quarter of a million items; the keys are checked by
    # construction in OutboxWriter, the indexes stay for the lookups
    schema = inspect(database.engine)
    assert schema.get_foreign_keys("outbox_item") == []
    indexed = {tuple(ix["column_names"]) for ix in schema.get_indexes("outbox_item")}
    assert {("message_id",), ("measure_id",)} <= indexed
    # migration 0020: the sweep's index moved with the reminder times to reminder_schedule
    [reminder] = [ix for ix in schema.get_indexes("reminder_schedule")
                  if ix["name"] == "ix_reminder_schedule_due"]
    assert reminder["column_names"] == ["next_reminder_at", "measure_id"]


def test_reminder_times_are_off_the_measure_row(database: Database) -> None:
    # migration 0020: moving a burst's reminder times on must not rewrite the measures and their
    # indexes
    schema = inspect(database.engine)
    assert "next_reminder_at" not in {c["name"] for c in schema.get_columns("measure")}
    assert not [ix for ix in schema.get_indexes("measure")
                if "next_reminder_at" in ix["column_names"]]


def test_the_newest_migration_goes_down_and_up_again(database: Database) -> None:
    from alembic import command

    config = db._alembic_config(database.engine)
    command.downgrade(config, "0008")  # through 0010 (campaign.counting) and 0009
    try:
        assert db.current_revision(database.engine) == "0008"
        assert inspect(database.engine).get_foreign_keys("outbox_item") != []
        assert "counting" not in {c["name"] for c in inspect(database.engine).get_columns("campaign")}
    finally:  # on PostgreSQL the schema is shared by the whole run
        db.upgrade(database.engine)
    assert db.current_revision(database.engine) == db.head_revision()
    assert _differences(database) == []


def test_migration_0020_moves_the_reminder_times_and_back(tmp_path) -> None:
    # Given a database at 0018 with a measure due at a time and one with none (a SQLite file
    # of its own: the shared test database is at head)
    from alembic import command
    from sqlalchemy import text

    engine = db.make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = db._alembic_config(engine)
    command.upgrade(config, "0018")
    stamp = "'2026-01-01 00:00:00.000000'"
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO campaign (id, title, created_at) VALUES (1, 'c', {stamp})"))
        conn.execute(text("INSERT INTO area (id, campaign_id, position, title) VALUES (1, 1, 0, 'a')"))
        conn.execute(text("INSERT INTO problem (id, area_id, position, text) VALUES (1, 1, 0, 'p')"))
        for mid, at in ((1, "'2026-06-01 01:00:00.000000'"), (2, "NULL")):
            conn.execute(text(
                "INSERT INTO measure (id, campaign_id, problem_id, position, title, kind, state, "
                "version, next_reminder_at, created_at, state_changed_at) VALUES "
                f"({mid}, 1, 1, {mid}, 'm', 'deadline', 'assigned', 1, {at}, {stamp}, {stamp})"))
        conn.execute(text("INSERT INTO measure_history (measure_id, seq, action, to_state, data, at, "
                          f"hash, prev_hash) VALUES (1, 1, 'create', 'assigned', '{{}}', {stamp}, 'h', 'g')"))
    try:
        # When it is upgraded, Then the time moved to reminder_schedule; and back on downgrade
        command.upgrade(config, "head")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT measure_id, next_reminder_at FROM reminder_schedule")
                                ).all() == [(1, "2026-06-01 01:00:00.000000")]
            assert conn.execute(text("SELECT count(*) FROM measure_history")).scalar() == 1
        command.downgrade(config, "0018")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT id, next_reminder_at FROM measure ORDER BY id")
                                ).all() == [(1, "2026-06-01 01:00:00.000000"), (2, None)]
    finally:
        engine.dispose()


def _payload_compression(database: Database) -> str | None:
    """The compression set on outbox_message.payload (None: the server's default)."""
    with database.engine.connect() as conn:
        found = conn.execute(text(
            "SELECT attcompression FROM pg_attribute WHERE attname = 'payload' "
            "AND attrelid = 'outbox_message'::regclass")).scalar()
    return {"l": "lz4", "p": "pglz"}.get(found or "")


def test_outbox_payloads_are_compressed_with_lz4_where_the_server_has_it(database: Database
                                                                          ) -> None:
    # migration 0021: a burst's 80 MB of payloads; pglz was a quarter of its last statements
    if database.engine.dialect.name != "postgresql":
        pytest.skip("TOAST compression is PostgreSQL's")
    with database.engine.connect() as conn:
        has_lz4 = conn.execute(text(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
            "WHERE name = 'default_toast_compression'")).scalar()
    if not has_lz4:
        assert _payload_compression(database) is None  # left as it was
        return
    assert _payload_compression(database) == "lz4"
    # a large payload is stored compressed with it, and reads back as written
    payload = {"items": [{"measure_id": i, "reason": f"整改措施{i}已逾期3个工作日，请抓紧推进"}
                         for i in range(400)], "name": "张三"}
    with database.engine.begin() as conn:
        message_id = conn.execute(text(
            "INSERT INTO outbox_message (channel, kind, recipient, subject, payload, key, status, "
            "attempts, not_before, created_at, info) VALUES ('file', 'reminder', 'a@b.cn', 's', "
            "CAST(:payload AS json), 'lz4-probe', 'pending', 0, now(), now(), '{}') RETURNING id"),
            {"payload": json.dumps(payload, ensure_ascii=False)}).scalar()
        stored = conn.execute(text(
            "SELECT pg_column_compression(payload), payload FROM outbox_message WHERE id = :id"),
            {"id": message_id}).one()
        conn.execute(text("DELETE FROM outbox_message WHERE id = :id"), {"id": message_id})
    assert stored == ("lz4", payload)
    # and 0021 goes down (the server's default again) and up
    config = db._alembic_config(database.engine)
    command.downgrade(config, "0020")
    try:
        assert _payload_compression(database) is None
    finally:
        db.upgrade(database.engine)
    assert _payload_compression(database) == "lz4"
