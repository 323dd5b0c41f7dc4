"""workflow.pg.items.as_json writes the text the json module would write (compact, Chinese as
UTF-8), for the values the outbox statements carry: pure, so it runs on every backend."""

from __future__ import annotations

import json
from enum import StrEnum

import pytest

from workflow.pg.items import as_json


class Kind(StrEnum):
    OVERDUE = "overdue:1"


def reference(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("value", [
    [{"message_id": 7, "measure_id": 12, "rule": Kind.OVERDUE,
      "key": "reminder|12|overdue:1|2026-12-07|3", "reason": "已逾期 3 个工作日（代张三接收）"}],
    {"items": [{"deadline": None, "urgency": 2, "on_time": True, "share": 0.25}],
     "name": "李四"},
    {Kind.OVERDUE: 1, 3: "三", "引号\"与\\反斜杠": "换行\n制表\t"},
    [],
])
def test_as_json_writes_what_the_json_module_writes(value: object) -> None:
    assert as_json(value) == reference(value)
    assert json.loads(as_json(value)) == json.loads(reference(value))


def test_as_json_refuses_what_json_cannot_write() -> None:
    with pytest.raises(TypeError):
        as_json({"ids": {1, 2}})
