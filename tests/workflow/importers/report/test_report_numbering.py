"""Outline numbering and Chinese numerals (pure)."""

from __future__ import annotations

import pytest

from workflow.importers.report.numbering import Style, chinese_number, chinese_numeral, parse_numbering


@pytest.mark.parametrize(("line", "style", "value", "rest", "prefixed"), [
    ("一、组织整改落实情况", Style.CN, 1, "组织整改落实情况", False),
    ("十三、其他", Style.CN, 13, "其他", False),
    ("二十一.其他", Style.CN, 21, "其他", False),
    ("(一)反馈问题：学习", Style.PAREN_CN, 1, "反馈问题：学习", False),
    ("（十二）反馈问题:两个责任", Style.PAREN_CN, 12, "反馈问题:两个责任", False),
    ("( 三 ) 空格", Style.PAREN_CN, 3, "空格", False),
    ("1.组织学习还不到位。", Style.ARABIC, 1, "组织学习还不到位。", False),
    ("2、学习形式单一", Style.ARABIC, 2, "学习形式单一", False),
    ("３．全角数字", Style.ARABIC, 3, "全角数字", False),
    ("12. 十二", Style.ARABIC, 12, "十二", False),
    ("(1)党组学习有差距。", Style.PAREN_ARABIC, 1, "党组学习有差距。", False),
    ("（2）节约型机关", Style.PAREN_ARABIC, 2, "节约型机关", False),
    ("问题表现(1)：询价记录不全", Style.PAREN_ARABIC, 1, "询价记录不全", True),
    ("问题表现（3）验收", Style.PAREN_ARABIC, 3, "验收", True),
    ("问题①：学校要求", Style.CIRCLED, 1, "学校要求", True),
    ("问题②:缙云校区", Style.CIRCLED, 2, "缙云校区", True),
    ("①建立制度", Style.CIRCLED, 1, "建立制度", False),
    ("③ 召开会议", Style.CIRCLED, 3, "召开会议", False),
    ("④.完善", Style.CIRCLED, 4, "完善", False),
    ("①问题项：缙云校区", Style.CIRCLED, 1, "缙云校区", True),
    ("  ⑩、缩进", Style.CIRCLED, 10, "缩进", False),
])
def test_numbering_variants(line, style, value, rest, prefixed):
    numbering = parse_numbering(line)
    assert numbering is not None
    assert (numbering.style, numbering.value, numbering.rest, numbering.prefixed) == (
        style, value, rest, prefixed)


@pytest.mark.parametrize("line", [
    "2024.5月完成", "2024年12月完成", "一是深化思想认识", "3.8万元资产已补记", "十三个方面",
    "（2021年）文件", "整改情况：已完成", "第三轮巡察",
])
def test_text_that_is_not_numbering(line):
    assert parse_numbering(line) is None


@pytest.mark.parametrize(("text", "value"), [
    ("一", 1), ("十", 10), ("十三", 13), ("二十", 20), ("二十九", 29), ("两", 2), ("29", 29),
])
def test_chinese_numbers(text, value):
    assert chinese_number(text) == value
    if not text.isdigit() and text != "两":
        assert chinese_numeral(value) == text
