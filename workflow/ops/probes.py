"""Does each part of the installation answer? The database (and at which schema revision) and
the broker, for ``/readyz`` and ``rectiflow doctor``.

Each probe does one small, harmless thing with a short timeout and either returns what it saw
or raises what the client raised; the callers decide what that means (a 503, a doctor line).
The channels (SMTP, WeCom) are probed on the notification side, ``notifications/probes.py``:
the domain does not talk to mail or WeCom servers, so the entry points hand those checks in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from workflow import db

#: A dependency that does not answer within this many seconds counts as down.
ANSWER_TIMEOUT = 3.0


def check_database(sessions: sessionmaker[Session]) -> None:
    """A ``SELECT 1`` in a session of its own."""
    with sessions() as session:
        session.execute(text("SELECT 1"))


def check_broker(url: str, timeout: float = ANSWER_TIMEOUT) -> None:
    """A Redis PING, or an AMQP connection opened and closed."""
    if url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
        return
    from kombu import Connection

    with Connection(url, connect_timeout=timeout) as connection:
        connection.ensure_connection(max_retries=1, timeout=timeout)


@dataclass(frozen=True)
class SchemaFacts:
    """The database's backend and migration revision, and the revisions this code ships."""

    backend: str
    current: str | None
    head: str | None
    known: frozenset[str]


def backend_label(url: str) -> str:
    name = make_url(url).get_backend_name()
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(name, name)


def sqlite_file_missing(url: str) -> Path | None:
    """The SQLite file ``url`` names when it does not exist (connecting would create it empty)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database)  # type: ignore[arg-type]
    return None if path.exists() else path


def read_schema(engine: Engine) -> SchemaFacts:
    """Connect and read the migration revision; the code's own revisions come from its
    migration scripts."""
    scripts = ScriptDirectory(str(db.MIGRATIONS))
    known = frozenset(script.revision for script in scripts.walk_revisions())
    return SchemaFacts(backend_label(str(engine.url)), db.current_revision(engine),
                       scripts.get_current_head(), known)
