"""db.StatementQueue on a real PostgreSQL server: statements run in order, in the caller's
transaction, while the caller goes on; a failure reaches the caller and nothing is kept."""

from __future__ import annotations

import threading

import pytest
from dbfixtures import BACKEND, PG_URL
from sqlalchemy import text

from workflow import db

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="the queue is for PostgreSQL")


def _table(session) -> None:
    session.execute(text("CREATE TEMP TABLE q (n integer, by text) ON COMMIT DROP"))


def test_statements_run_in_order_in_the_callers_transaction_and_thread_elsewhere() -> None:
    engine = db.make_engine(PG_URL)
    try:
        with db.session_factory(engine)() as session, session.begin():
            _table(session)
            caller = threading.get_ident()
            threads: set[int] = set()

            def numbered(n: int):
                def parameters() -> dict[str, object]:
                    threads.add(threading.get_ident())
                    return {"n": n}
                return parameters

            with db.StatementQueue(session) as queue:
                counts = [queue.execute("INSERT INTO q (n) SELECT %(n)s FROM pg_sleep(0.01)",
                                        numbered(n)) for n in range(5)]
                # a query sees every statement sent before it
                seen = queue.fetch("SELECT array_agg(n ORDER BY n) FROM q", {})
                assert seen.result() == [([0, 1, 2, 3, 4],)]
                assert [c.result() for c in counts] == [1] * 5
            assert caller not in threads and len(threads) == 1
            # and the caller's own session, in the same transaction, sees them too
            assert session.execute(text("SELECT count(*) FROM q")).scalar_one() == 5
    finally:
        engine.dispose()


def test_a_failing_statement_is_raised_by_wait_and_its_transaction_is_undone() -> None:
    engine = db.make_engine(PG_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS q_kept (n integer)"))
            conn.execute(text("TRUNCATE q_kept"))
        with pytest.raises(Exception, match="division by zero"):
            with db.session_factory(engine)() as session, session.begin():
                with db.StatementQueue(session) as queue:
                    queue.execute("INSERT INTO q_kept VALUES (1)", {})
                    queue.execute("INSERT INTO q_kept VALUES (1 / %(zero)s)", {"zero": 0})
                    queue.execute("INSERT INTO q_kept VALUES (3)", {})
                    queue.wait()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM q_kept")).scalar_one() == 0
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS q_kept"))
        engine.dispose()


def test_without_background_each_statement_runs_at_once() -> None:
    engine = db.make_engine(PG_URL)
    try:
        with db.session_factory(engine)() as session, session.begin():
            _table(session)
            queue = db.StatementQueue(session, background=False)
            done = queue.execute("INSERT INTO q (n) VALUES (%(n)s)", {"n": 7})
            assert done.done() and done.result() == 1
            assert queue.fetch_now("SELECT n FROM q", {}) == [(7,)]
    finally:
        engine.dispose()
