"""Checks shared by the tests of official documents (GB/T 9704-2012): the page, the fonts, the
page-number field, read back with python-docx; and page one rendered to PNG with LibreOffice
(headless) and pdftoppm, kept as a test artefact for a person to look at.

Artefacts go to ``$RECTIFLOW_TEST_ARTEFACTS`` when set, else to ``artefacts/`` under pytest's
base temporary folder (``/tmp/pytest-of-$USER/pytest-N/artefacts``); they are never committed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor

FONTS_BY_SIZE = {Pt(22): {"方正小标宋简体"}, Pt(16): {"仿宋_GB2312", "黑体", "楷体_GB2312"},
                 Pt(14): {"宋体"}}


def east_asian_font(run: Any) -> str | None:
    fonts = run._element.rPr.find(qn("w:rFonts")) if run._element.rPr is not None else None
    return None if fonts is None else fonts.get(qn("w:eastAsia"))


def assert_page_form(document: Any) -> None:
    """A4, 天头 37 mm, 订口 28 mm, bottom 35 mm, right 26 mm (版心 156 × 225 mm), 22 lines."""
    section = document.sections[0]
    assert abs(section.page_width - Mm(210)) < Mm(0.5)
    assert abs(section.page_height - Mm(297)) < Mm(0.5)
    assert abs(section.top_margin - Mm(37)) < Mm(0.5)
    assert abs(section.left_margin - Mm(28)) < Mm(0.5)
    assert abs(section.bottom_margin - Mm(35)) < Mm(0.5)
    assert abs(section.right_margin - Mm(26)) < Mm(0.5)
    text_width = section.page_width - section.left_margin - section.right_margin
    text_height = section.page_height - section.top_margin - section.bottom_margin
    assert abs(text_width - Mm(156)) < Mm(0.5) and abs(text_height - Mm(225)) < Mm(0.5)
    grid = section._sectPr.find(qn("w:docGrid"))
    assert grid is not None and grid.get(qn("w:linePitch")) == "579"  # 225 mm / 22 lines


def assert_runs_form(document: Any) -> None:
    """Every run with text: a named East Asian font that fits its size, black."""
    for paragraph in document.paragraphs:
        for run in paragraph.runs:
            if not run.text.strip():
                continue
            font, size = east_asian_font(run), run.font.size
            assert size in FONTS_BY_SIZE, (run.text, size)
            assert font in FONTS_BY_SIZE[size], (run.text, font, size)
            assert run.font.color.rgb == RGBColor(0, 0, 0), run.text


def assert_page_numbers(document: Any) -> None:
    """"— PAGE —" in 四号 宋体: odd pages' footer on the right, even pages' on the left."""
    assert document.settings.odd_and_even_pages_header_footer
    section = document.sections[0]
    for footer, outer in ((section.footer, "right"), (section.even_page_footer, "left")):
        [paragraph] = footer.paragraphs
        assert paragraph.alignment is not None and paragraph.alignment.name.lower() == outer
        xml = paragraph._p.xml
        assert "<w:instrText" in xml and " PAGE " in xml
        assert '<w:fldChar w:fldCharType="begin"/>' in xml
        assert paragraph.text == "— 1 —"  # the field's cached result between the dashes
        for run in paragraph.runs:
            assert run.font.size == Pt(14) and east_asian_font(run) == "宋体"


def assert_official_form(document: Any) -> None:
    assert_page_form(document)
    assert_runs_form(document)
    assert_page_numbers(document)


def artefacts_dir(factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("RECTIFLOW_TEST_ARTEFACTS")
    folder = Path(configured) if configured else factory.getbasetemp() / "artefacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def render_first_page(docx: Path, folder: Path, name: str) -> Path:
    """Page one of ``docx`` as ``folder/name.png`` (LibreOffice → PDF → pdftoppm); skips the
    test when either tool is missing."""
    soffice, pdftoppm = shutil.which("soffice"), shutil.which("pdftoppm")
    if not soffice or not pdftoppm:
        pytest.skip("LibreOffice (soffice) or pdftoppm is not installed")
    with tempfile.TemporaryDirectory() as work:
        profile = Path(work) / "profile"
        subprocess.run([soffice, f"-env:UserInstallation={profile.as_uri()}", "--headless",
                        "--convert-to", "pdf", "--outdir", work, str(docx)],
                       check=True, capture_output=True, timeout=240)
        pdf = Path(work) / (docx.stem + ".pdf")
        assert pdf.is_file(), "LibreOffice wrote no PDF"
        subprocess.run([pdftoppm, "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile",
                        str(pdf), str(folder / name)], check=True, capture_output=True,
                       timeout=120)
    image = folder / f"{name}.png"
    assert image.is_file() and image.stat().st_size > 5000
    return image
