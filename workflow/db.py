"""Engines, sessions and migrations for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from workflow.events import PUBLISHER_KEY, EventPublisher

MIGRATIONS = Path(__file__).parent / "migrations"

#: A pooled server connection idle for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 5.0

def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    # Legacy sqlite3 transaction handling off; SQLAlchemy's begin event issues BEGIN instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # A writer that reads first (sweep, deliver) asks for the write lock up front, so another
    # writer's commit cannot invalidate its snapshot halfway through.
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the settings each backend needs."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
    engine = create_engine(url, **kwargs)
    _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: Engine) -> None:
    """Ping a pooled connection before use only when it has been idle for a while.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout: one more round trip per
    transaction, about a seventh of a short action's time. A connection handed back moments ago
    is alive; one that sat idle (a restarted server, a firewall's idle timeout) is checked, and
    replaced by the pool when the ping fails.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["rectiflow_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get("rectiflow_idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # new, or used moments ago
        try:
            alive = dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            raise exc.DisconnectionError(f"pooled connection is gone: {error}") from error
        if not alive:
            raise exc.DisconnectionError("pooled connection did not answer a ping")


def session_factory(engine: Engine, publisher: EventPublisher | None = None
                    ) -> sessionmaker[Session]:
    """Sessions over ``engine``; events their services publish go to ``publisher``."""
    info = {PUBLISHER_KEY: publisher} if publisher is not None else {}
    return sessionmaker(engine, expire_on_commit=False, info=info)


@contextmanager
def transaction(factory: sessionmaker[Session], *, write_lock: bool = False) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error. Entry points use this.

    ``write_lock`` takes SQLite's write lock at the start (BEGIN IMMEDIATE), for work that reads
    many rows and then writes; other backends rely on row locks instead.
    """
    with factory() as session:
        with session.begin():
            if write_lock:
                session.connection(execution_options={"sqlite_immediate": True})
            yield session


def _alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision``."""
    command.upgrade(_alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()
