"""Lines into the numbered outline (pure)."""

from __future__ import annotations

import pytest

from workflow.importers.report.outline import build_outline, split_inline


@pytest.mark.parametrize(("line", "pieces"), [
    ("1.问题。整改结果：完成。整改情况：已制定计划。",
     ["1.问题。", "整改结果：完成。", "整改情况：已制定计划。"]),
    ("整改措施：加强学习。整改情况:已学习", ["整改措施：加强学习。", "整改情况:已学习"]),
    ("本单位整改情况良好", ["本单位整改情况良好"]),
])
def test_markers_inside_a_line_split_it(line, pieces):
    assert split_inline(line) == pieces


def test_outline_keeps_blank_lines_out():
    outline = build_outline(["一、甲", "", "", "（一）乙", "", "1.丙"])
    [section] = outline.root.children
    assert section.children[0].children[0].heading == "丙"
