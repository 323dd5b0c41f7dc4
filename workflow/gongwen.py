"""Word files in the form of official documents (GB/T 9704-2012, 党政机关公文格式).

A4; 天头 37 mm, 订口 28 mm, 版心 156 × 225 mm (bottom 35 mm, right 26 mm); 22 lines of 28
characters; body 三号 (16 pt) 仿宋_GB2312 indented two characters; title 二号 (22 pt)
方正小标宋简体, centred; headings 一、 黑体, （一） 楷体_GB2312, 1. 仿宋 bold, （1） 仿宋; all text
black; page numbers 四号 (14 pt) 半角宋体 "— 1 —" at the foot, odd pages on the right and even
pages on the left, one character in; the issuing unit and the date (成文日期, Arabic numerals)
at the end, the date four characters from the right and the unit centred over it.

python-docx sets East Asian fonts only through ``w:rFonts w:eastAsia``; the built-in heading
styles carry theme fonts and colours, which are removed so that nothing but these fonts and
black is left. Pure: builds a ``docx.Document`` in memory, the caller saves it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from docx import Document
from docx.enum.section import WD_SECTION_START
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor

TITLE_FONT = "方正小标宋简体"
BODY_FONT = "仿宋_GB2312"
HEADING1_FONT = "黑体"
HEADING2_FONT = "楷体_GB2312"
PAGE_NUMBER_FONT = "宋体"

SIZE_2 = Pt(22)   # 二号
SIZE_3 = Pt(16)   # 三号
SIZE_4 = Pt(14)   # 四号
BLACK = RGBColor(0, 0, 0)

PAGE_WIDTH, PAGE_HEIGHT = Mm(210), Mm(297)
TOP, BOTTOM, LEFT, RIGHT = Mm(37), Mm(35), Mm(28), Mm(26)
LINES_PER_PAGE, CHARS_PER_LINE = 22, 28
#: 225 mm / 22 lines = 28.95 pt a line (in twips: 579, the grid's line pitch)
LINE_PITCH = Pt(28.95)
LINE_PITCH_TWIPS = 579
#: 156 mm / 28 characters = 15.79 pt a character: 三号 text is set 0.25 pt tighter (in twentieths
#: of a point), so that 28 characters fill a line in Word and in LibreOffice alike (LibreOffice
#: gives a character two cells of a character grid narrower than itself)
CHAR_SPACING = -5
#: the page number's distance from the page's bottom edge: 7 mm below the 版心 (35 − 7 − 5 mm)
FOOTER_DISTANCE = Mm(23)
INDENT = Pt(32)   # two characters of 三号


class Part(StrEnum):
    """What one paragraph of an official document is (its place in the form)."""

    TITLE = "title"
    NUMBER = "number"          # 发文字号 under the title
    ADDRESSEE = "addressee"    # 主送机关
    HEADING1 = "heading1"      # 一、
    HEADING2 = "heading2"      # （一）
    HEADING3 = "heading3"      # 1.
    HEADING4 = "heading4"      # （1）
    BODY = "body"
    BLANK = "blank"
    SIGNER = "signer"          # 发文机关署名 / 落款
    DATE = "date"              # 成文日期


@dataclass(frozen=True)
class Paragraph:
    """One paragraph: its part, its text and, for body text, a lead-in (``整改结果：``)."""

    part: Part
    text: str = ""
    label: str = ""


#: Font, size and bold of each part; headings use Word's heading styles (the outline).
FORMS: dict[Part, tuple[str, Any, bool]] = {
    Part.TITLE: (TITLE_FONT, SIZE_2, False),
    Part.NUMBER: (BODY_FONT, SIZE_3, False),
    Part.ADDRESSEE: (BODY_FONT, SIZE_3, False),
    Part.HEADING1: (HEADING1_FONT, SIZE_3, False),
    Part.HEADING2: (HEADING2_FONT, SIZE_3, False),
    Part.HEADING3: (BODY_FONT, SIZE_3, True),
    Part.HEADING4: (BODY_FONT, SIZE_3, False),
    Part.BODY: (BODY_FONT, SIZE_3, False),
    Part.BLANK: (BODY_FONT, SIZE_3, False),
    Part.SIGNER: (BODY_FONT, SIZE_3, False),
    Part.DATE: (BODY_FONT, SIZE_3, False),
}
HEADING_STYLES = {Part.HEADING1: "Heading 1", Part.HEADING2: "Heading 2",
                  Part.HEADING3: "Heading 3", Part.HEADING4: "Heading 4"}
INDENTED = {Part.HEADING1, Part.HEADING2, Part.HEADING3, Part.HEADING4, Part.BODY}


def subject_of(campaign_title: str) -> str:
    """What a campaign's title is about, without the 整改 words it ends with, so that a
    document can add its own ("…反馈问题整改" → "…反馈问题"): no doubled 整改."""
    core = campaign_title.strip()
    if core.startswith("关于"):
        core = core[2:]
    for ending in ("整改情况的报告", "整改情况报告", "整改工作情况", "整改情况", "整改工作", "整改"):
        if core.endswith(ending):
            return core[: -len(ending)]
    return core


def text_width(text: str) -> float:
    """Width in characters of 三号: a CJK character is one, an ASCII one half (半角)."""
    return sum(0.5 if ord(ch) < 0x2E80 else 1.0 for ch in text)


def set_fonts(rpr: Any, font: str) -> None:
    """Give a run or style properties element ``font`` for every script, East Asian included,
    and drop theme fonts (which would win over the named ones)."""
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.insert(0, fonts)
    for attribute in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        fonts.attrib.pop(qn(attribute), None)
    for attribute in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(attribute), font)


#: The run properties that come after ``w:spacing`` in the schema's order.
_AFTER_SPACING = ("w:w", "w:kern", "w:position", "w:sz", "w:szCs", "w:highlight", "w:u",
                  "w:effect", "w:bdr", "w:shd", "w:fitText", "w:vertAlign", "w:rtl", "w:cs",
                  "w:em", "w:lang", "w:eastAsianLayout", "w:specVanish", "w:oMath")


def set_char_spacing(rpr: Any, twentieths: int) -> None:
    """Character spacing (``w:spacing``) in twentieths of a point, in its place in the schema."""
    found = rpr.find(qn("w:spacing"))
    if found is not None:
        rpr.remove(found)
    spacing = OxmlElement("w:spacing")
    spacing.set(qn("w:val"), str(twentieths))
    following = {qn(tag) for tag in _AFTER_SPACING}
    for index, child in enumerate(rpr):
        if child.tag in following:
            rpr.insert(index, spacing)
            return
    rpr.append(spacing)


def _format_run(run: Any, font: str, size: Any, bold: bool) -> None:
    rpr = run._element.get_or_add_rPr()
    set_fonts(rpr, font)
    run.font.size = size
    run.font.bold = bold
    run.font.color.rgb = BLACK
    if size == SIZE_3:
        set_char_spacing(rpr, CHAR_SPACING)


def _format_style(style: Any, font: str, size: Any, bold: bool) -> None:
    set_fonts(style.element.get_or_add_rPr(), font)
    style.font.size = size
    style.font.bold = bold
    style.font.italic = False
    style.font.color.rgb = BLACK
    if size == SIZE_3:
        set_char_spacing(style.element.get_or_add_rPr(), CHAR_SPACING)
    pf = style.paragraph_format
    pf.space_before = Pt(0)
    pf.space_after = Pt(0)
    pf.line_spacing = LINE_PITCH
    pf.line_spacing_rule = WD_LINE_SPACING.EXACTLY


def _page_setup(document: Any) -> None:
    section = document.sections[0]
    section.start_type = WD_SECTION_START.NEW_PAGE
    section.page_width, section.page_height = PAGE_WIDTH, PAGE_HEIGHT
    section.top_margin, section.bottom_margin = TOP, BOTTOM
    section.left_margin, section.right_margin = LEFT, RIGHT
    section.header_distance = Mm(15)
    section.footer_distance = FOOTER_DISTANCE
    sect_pr = section._sectPr
    grid = sect_pr.find(qn("w:docGrid"))
    if grid is None:
        grid = OxmlElement("w:docGrid")
        sect_pr.append(grid)
    grid.set(qn("w:type"), "lines")
    grid.set(qn("w:linePitch"), str(LINE_PITCH_TWIPS))
    document.settings.odd_and_even_pages_header_footer = True
    _page_number(section.footer, WD_ALIGN_PARAGRAPH.RIGHT)       # odd pages: right
    _page_number(section.even_page_footer, WD_ALIGN_PARAGRAPH.LEFT)  # even pages: left


def _field_char(kind: str) -> Any:
    element = OxmlElement("w:fldChar")
    element.set(qn("w:fldCharType"), kind)
    return element


def _page_number(footer: Any, alignment: Any) -> None:
    """"— N —" with N a PAGE field, 四号 宋体, one character in from the outer side."""
    footer.is_linked_to_previous = False
    paragraph = footer.paragraphs[0] if footer.paragraphs else footer.add_paragraph()
    paragraph.alignment = alignment
    pf = paragraph.paragraph_format
    pf.first_line_indent = Pt(0)
    if alignment == WD_ALIGN_PARAGRAPH.RIGHT:
        pf.right_indent = SIZE_4
    else:
        pf.left_indent = SIZE_4

    def run(text: str = "") -> Any:
        r = paragraph.add_run(text)
        _format_run(r, PAGE_NUMBER_FONT, SIZE_4, False)
        return r

    run("— ")
    run()._element.append(_field_char("begin"))
    instruction = OxmlElement("w:instrText")
    instruction.set(qn("xml:space"), "preserve")
    instruction.text = " PAGE "
    run()._element.append(instruction)
    run()._element.append(_field_char("separate"))
    run("1")
    run()._element.append(_field_char("end"))
    run(" —")


def _default_run(document: Any) -> None:
    """The document's default run: 三号 仿宋 (the grid counts its characters in this size, so
    28 of them fill a line), with no theme fonts."""
    rpr = document.styles.element.find(
        f"{qn('w:docDefaults')}/{qn('w:rPrDefault')}/{qn('w:rPr')}")
    if rpr is None:  # python-docx's template has one; build it for any other
        defaults = OxmlElement("w:docDefaults")
        holder = OxmlElement("w:rPrDefault")
        rpr = OxmlElement("w:rPr")
        holder.append(rpr)
        defaults.append(holder)
        document.styles.element.insert(0, defaults)
    set_fonts(rpr, BODY_FONT)
    for tag in ("w:sz", "w:szCs"):
        element = rpr.find(qn(tag))
        if element is None:
            element = OxmlElement(tag)
            rpr.append(element)
        element.set(qn("w:val"), str(int(SIZE_3.pt * 2)))


def new_document(title: str) -> Any:
    """An empty document with the page, the grid, the styles and the page numbers set."""
    document = Document()
    _page_setup(document)
    normal = document.styles["Normal"]
    _format_style(normal, BODY_FONT, SIZE_3, False)
    normal.paragraph_format.first_line_indent = INDENT
    _default_run(document)
    for part, name in HEADING_STYLES.items():
        font, size, bold = FORMS[part]
        style = document.styles[name]
        _format_style(style, font, size, bold)
        style.paragraph_format.first_line_indent = INDENT
        style.paragraph_format.keep_with_next = True
    for name in ("Header", "Footer"):
        set_fonts(document.styles[name].element.get_or_add_rPr(), PAGE_NUMBER_FONT)
    document.core_properties.title = title
    return document


def add(document: Any, paragraph: Paragraph) -> Any:
    """Append one paragraph in its part's form."""
    part = paragraph.part
    style = HEADING_STYLES.get(part)
    shown = document.add_paragraph(style=style) if style else document.add_paragraph()
    pf = shown.paragraph_format
    pf.space_before = Pt(0)
    pf.space_after = Pt(0)
    pf.line_spacing = LINE_PITCH
    pf.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    pf.first_line_indent = INDENT if part in INDENTED else Pt(0)
    if part == Part.TITLE:
        shown.alignment = WD_ALIGN_PARAGRAPH.CENTER
    elif part == Part.NUMBER:
        shown.alignment = WD_ALIGN_PARAGRAPH.CENTER
    elif part in (Part.SIGNER, Part.DATE):
        shown.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    elif part == Part.BODY:
        shown.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
    font, size, bold = FORMS[part]
    if paragraph.label:
        _format_run(shown.add_run(paragraph.label), font, size, bold)
    text, rest = paragraph.text, ""
    if part == Part.HEADING3 and "。" in text[:-1]:
        # "1.组织学习还不到位。党总支未按照…": the heading is its first sentence, in bold; the
        # problem's description runs on in the body's form, as documents set it
        cut = text.index("。") + 1
        text, rest = text[:cut], text[cut:]
    if text or part == Part.BLANK:
        _format_run(shown.add_run(text), font, size, bold)
    if rest:
        body_font, body_size, body_bold = FORMS[Part.BODY]
        _format_run(shown.add_run(rest), body_font, body_size, body_bold)
    return shown


_AFTER_AUTOSPACE = ("w:bidi", "w:adjustRightInd", "w:snapToGrid", "w:spacing", "w:ind",
                    "w:contextualSpacing", "w:mirrorIndents", "w:suppressOverlap", "w:jc")


def no_autospace(paragraph: Any) -> None:
    """No extra space between Chinese and digits (``w:autoSpaceDN``, ``w:autoSpaceDE``), so a
    date is as wide as its characters and the unit above it can be centred on it."""
    ppr = paragraph._p.get_or_add_pPr()
    following = {qn(tag) for tag in _AFTER_AUTOSPACE}
    position = next((i for i, child in enumerate(ppr) if child.tag in following), len(ppr))
    for tag in ("w:autoSpaceDN", "w:autoSpaceDE"):
        element = OxmlElement(tag)
        element.set(qn("w:val"), "0")
        ppr.insert(position, element)


def add_signature(document: Any, signer: str | None, date_text: str) -> None:
    """正文下空一行 the unit (if any), then the date, right-aligned as GB/T 9704 places them."""
    add(document, Paragraph(Part.BLANK))
    if signer:
        unit = add(document, Paragraph(Part.SIGNER, signer))
        shift = (text_width(date_text) - text_width(signer)) / 2
        unit.paragraph_format.right_indent = Pt(16 * max(4 + shift, 2))
        no_autospace(unit)
    date_paragraph = add(document, Paragraph(Part.DATE, date_text))
    date_paragraph.paragraph_format.right_indent = Pt(16 * 4)
    no_autospace(date_paragraph)


def write(paragraphs: list[Paragraph], *, title: str, signer: str | None,
          date_text: str | None) -> bytes:
    """The whole document as .docx bytes: the paragraphs, then the unit and the date."""
    document = new_document(title)
    for paragraph in paragraphs:
        add(document, paragraph)
    if date_text:
        add_signature(document, signer, date_text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
