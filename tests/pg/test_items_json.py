"""workflow.pg.items.json_bytes writes the text the json module would write (compact, Chinese
as UTF-8), for the values the outbox statements carry: pure, so it runs on every backend. On
PostgreSQL, ``json_parameter`` (those bytes, as psycopg sends them) reaches the server as that
text."""

from __future__ import annotations

import json
import os
from enum import StrEnum

import pytest

from workflow.pg.items import json_bytes, json_parameter


class Kind(StrEnum):
    OVERDUE = "overdue:1"


def reference(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


VALUES = [
    [{"message_id": 7, "measure_id": 12, "rule": Kind.OVERDUE,
      "key": "reminder|12|overdue:1|2026-12-07|3", "reason": "已逾期 3 个工作日（代张三接收）"}],
    {"items": [{"deadline": None, "urgency": 2, "on_time": True, "share": 0.25}],
     "name": "李四"},
    {Kind.OVERDUE: 1, 3: "三", "引号\"与\\反斜杠": "换行\n制表\t"},
    [],
]


@pytest.mark.parametrize("value", VALUES)
def test_json_bytes_writes_what_the_json_module_writes(value: object) -> None:
    assert json_bytes(value).decode() == reference(value)
    assert json.loads(json_bytes(value)) == json.loads(reference(value))


def test_json_bytes_refuses_what_json_cannot_write() -> None:
    with pytest.raises(TypeError):
        json_bytes({"ids": {1, 2}})


@pytest.mark.skipif(os.environ.get("RECTIFLOW_TEST_DB", "sqlite") != "postgresql",
                    reason="a psycopg parameter")
@pytest.mark.parametrize("value", VALUES)
def test_json_parameter_reaches_the_server_as_json_bytes_text(sessions, value: object) -> None:
    """The ``json`` column keeps the text as sent: the server must see ``json_bytes``' text."""
    with sessions() as session:
        shown = session.connection().exec_driver_sql(
            "SELECT CAST(%(value)s AS json)::text", {"value": json_parameter(value)}).scalar_one()
    assert shown == json_bytes(value).decode()
