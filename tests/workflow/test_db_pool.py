"""Pooled PostgreSQL connections: pinged after idling, replaced when the server dropped them."""

from __future__ import annotations

import pytest
from dbfixtures import BACKEND, PG_URL
from sqlalchemy import text

from workflow import db

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="a server connection to drop")


def _backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _terminate(pid: int) -> None:
    admin = db.make_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


@pytest.fixture
def dropped():
    """An engine whose one pooled connection the server has just terminated, and its pid."""
    engine = db.make_engine(PG_URL, pool_size=1)
    first = _backend_pid(engine)
    _terminate(first)
    yield engine, first
    engine.dispose()


def test_an_idle_connection_the_server_dropped_is_replaced(dropped, monkeypatch) -> None:
    engine, first = dropped
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert _backend_pid(engine) != first  # the ping fails, the pool connects anew


def test_a_connection_used_moments_ago_is_not_pinged(dropped, monkeypatch) -> None:
    engine, first = dropped
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    # Without the ping the dead connection is handed out; its first statement fails, and the
    # pool throws it away, so the next checkout works again.
    with pytest.raises(Exception, match="terminat|closed|connection"):
        _backend_pid(engine)
    assert _backend_pid(engine) != first
