"""The official-document form (GB/T 9704-2012) as pure functions: titles without a doubled 整改,
a problem heading's first sentence in bold, the unit centred over the date."""

from __future__ import annotations

import io

import pytest
from docx import Document
from officialdoc import assert_official_form

from workflow import gongwen
from workflow.gongwen import Paragraph, Part


@pytest.mark.parametrize(("title", "subject"), [
    ("十届校党委第五轮巡察反馈问题整改", "十届校党委第五轮巡察反馈问题"),
    ("后勤党总支巡察整改工作", "后勤党总支巡察"),
    ("关于审计发现问题整改情况的报告", "审计发现问题"),
    ("2026年财务专项治理", "2026年财务专项治理"),
])
def test_subject_drops_the_words_a_document_adds(title: str, subject: str) -> None:
    assert gongwen.subject_of(title) == subject


def _read(paragraphs: list[Paragraph], signer: str | None = None, day: str | None = None):
    return Document(io.BytesIO(gongwen.write(paragraphs, title="t", signer=signer,
                                             date_text=day)))


def test_a_problem_heading_is_its_first_sentence_in_bold() -> None:
    document = _read([Paragraph(Part.HEADING3, "1.组织学习还不到位。党总支未按照要求组织学习。"),
                      Paragraph(Part.HEADING3, "2.制度修订滞后。")])
    first, second = document.paragraphs
    assert [(r.text, r.font.bold) for r in first.runs] == [
        ("1.组织学习还不到位。", True), ("党总支未按照要求组织学习。", False)]
    assert [(r.text, r.font.bold) for r in second.runs] == [("2.制度修订滞后。", True)]


def test_the_unit_is_centred_over_the_date_four_characters_in() -> None:
    # "2026年12月3日" is 6.5 characters wide (digits are half-width); a 4-character unit sits
    # 1.25 characters further in than the date, so that their centres meet
    document = _read([Paragraph(Part.BODY, "正文。")], signer="后勤总支", day="2026年12月3日")
    assert_official_form(document)
    unit, day = document.paragraphs[-2:]
    assert day.paragraph_format.right_indent.pt == 64
    assert unit.paragraph_format.right_indent.pt == 16 * (4 + 1.25)
    # a unit longer than the date stands two characters from the right
    document = _read([], signer="中共重庆医科大学后勤总支委员会", day="2026年12月3日")
    assert document.paragraphs[-2].paragraph_format.right_indent.pt == 32
    assert gongwen.text_width("2026年12月3日") == 6.5
