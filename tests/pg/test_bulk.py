"""workflow.pg.bulk keeps its contract: COPY leaves the rows SQLAlchemy's insert leaves (types,
JSON, UTC times, NULLs), ids come back in row order, and bad rows are refused before anything
is sent."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from workflow import db
from workflow.history import GENESIS
from workflow.models import HistoryEntry, Problem
from workflow.pg import bulk
from workflow.services.measures import new_history_entry
from workflow.timeutil import SHANGHAI

pytestmark = pytest.mark.skipif(os.environ.get("RECTIFLOW_TEST_DB", "sqlite") != "postgresql",
                                reason="COPY is PostgreSQL's")

TABLE = HistoryEntry.__table__


def history_row(measure_id: int, seq: int, **changes) -> dict:
    values = dict(measure_id=measure_id, seq=seq, action="import", from_state=None,
                  to_state="assigned", actor_id=None, on_behalf_of_id=None,
                  comment="含“引号”、逗号,制表\t符和\\反斜杠", data={"row": 7, "来源": "台账.xlsx"},
                  at=datetime(2026, 12, 7, 9, 30, tzinfo=SHANGHAI), prev_hash=GENESIS)
    values.update(changes)
    return new_history_entry(**values)


def stored(session, measure_id: int) -> list[tuple]:
    return [(h.seq, h.action, h.from_state, h.to_state, h.actor_id, h.comment, h.data, h.at,
             h.prev_hash, h.hash)
            for h in session.scalars(select(HistoryEntry).where(HistoryEntry.measure_id == measure_id)
                                     .order_by(HistoryEntry.seq))]


def test_copy_leaves_what_an_insert_leaves(sessions, cast):
    rows = [history_row(0, 2), history_row(0, 3, comment=None, actor_id=cast.owner.id,
                                           at=datetime(2026, 1, 1, 0, 0, tzinfo=UTC))]
    with db.transaction(sessions) as session:
        first, second = cast.measure.id, session.scalars(
            select(HistoryEntry.measure_id).where(HistoryEntry.measure_id != cast.measure.id)
        ).first() or cast.measure.id
        session.execute(insert(TABLE), [{**row, "measure_id": first} for row in rows])
        bulk.insert_rows(session, TABLE, [{**row, "measure_id": second, "seq": row["seq"] + 10}
                                          for row in rows])
    with sessions() as session:
        by_insert = [r for r in stored(session, first) if r[0] in (2, 3)]
        by_copy = [(seq - 10, *rest) for seq, *rest in stored(session, second) if seq in (12, 13)]
    assert by_copy == by_insert
    assert by_copy[0][6] == {"row": 7, "来源": "台账.xlsx"}
    assert by_copy[1][7] == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)


def test_ids_come_back_in_row_order(sessions, cast):
    with db.transaction(sessions) as session:
        area_id = session.scalar(select(Problem.area_id).limit(1))
        ids = bulk.insert_returning_ids(session, Problem.__table__, [
            {"area_id": area_id, "position": 100 + n, "text": f"问题{n}"} for n in range(5)])
    with sessions() as session:
        texts = {p.id: p.text for p in session.scalars(select(Problem).where(Problem.id.in_(ids)))}
    assert [texts[i] for i in ids] == [f"问题{n}" for n in range(5)]
    assert len(set(ids)) == 5


@pytest.mark.parametrize(("rows", "message"), [
    ([{"measure_id": 1, "seq": 9, "nonsense": 1}], "has no column nonsense"),
    ([{k: v for k, v in history_row(1, 9).items() if k != "data"}], "give data"),
    ([history_row(1, 9), {**history_row(1, 10), "comment_extra": 1}], "same columns"),
])
def test_bad_rows_are_refused_before_anything_is_sent(sessions, cast, rows, message):
    with sessions() as session:
        before = len(stored(session, cast.measure.id))
    with pytest.raises(ValueError, match=message), db.transaction(sessions) as session:
        bulk.insert_rows(session, TABLE, [{**row, "measure_id": cast.measure.id} for row in rows])
    with sessions() as session:
        assert len(stored(session, cast.measure.id)) == before
