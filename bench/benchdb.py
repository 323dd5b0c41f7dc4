"""Throwaway databases for the benchmarks.

``fresh_engine("sqlite")`` is a migrated SQLite file in a temporary folder;
``fresh_engine("postgresql")`` a migrated schema of its own on the server at
``RECTIFLOW_BENCH_PG_URL`` (default: the local ``test`` database with trust auth). Either is
removed on exit, whatever happens. ``pg_schema_url`` gives just the URL of an empty schema, for
benchmarks that migrate it themselves (through the CLI, say).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from workflow import db

PG_URL = os.environ.get("RECTIFLOW_BENCH_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def pg_schema_url(prefix: str = "rf_bench") -> Iterator[str]:
    """The URL of a new, empty schema (its ``search_path``); dropped on exit."""
    schema = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = db.make_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    finally:
        admin.dispose()


@contextmanager
def sqlite_url(prefix: str = "rf_bench") -> Iterator[str]:
    """The URL of a SQLite file in a new temporary folder; the folder is removed on exit."""
    folder = tempfile.mkdtemp(prefix=f"{prefix}_")
    try:
        yield f"sqlite:///{folder}/bench.db"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def fresh_engine(backend: str, prefix: str = "rf_bench") -> Iterator[Engine]:
    """A migrated, empty database of ``backend`` (sqlite or postgresql) and its engine."""
    place = sqlite_url(prefix) if backend == "sqlite" else pg_schema_url(prefix)
    with place as url:
        engine = db.make_engine(url)
        try:
            db.upgrade(engine)
            yield engine
        finally:
            engine.dispose()
