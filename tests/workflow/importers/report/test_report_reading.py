"""Reading .txt and .docx documents into the parser's lines."""

from __future__ import annotations

import pytest
from report_documents import build_docx

from workflow.errors import InputError
from workflow.importers.report import Total, parse_report, read_document
from workflow.importers.report.reading import decode_text
from workflow.lifecycle import State


def test_txt_encodings(tmp_path):
    text = "（一）反馈问题：学习\n1.制度不健全。\n整改结果：完成\n"
    for name, data in [("utf8.txt", text.encode("utf-8")),
                       ("bom.txt", b"\xef\xbb\xbf" + text.encode("utf-8")),
                       ("gbk.txt", text.encode("gb18030"))]:
        (tmp_path / name).write_bytes(data)
        assert read_document(tmp_path / name)[0] == "（一）反馈问题：学习"
    assert decode_text("中文".encode("gb18030"), "x.txt") == "中文"


def test_unsupported_or_missing_files(tmp_path):
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4")
    with pytest.raises(InputError, match="不支持的文件格式"):
        read_document(tmp_path / "report.pdf")
    with pytest.raises(InputError, match="文件不存在"):
        read_document(tmp_path / "missing.txt")
    (tmp_path / "broken.docx").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="无法读取 Word 文件"):
        read_document(tmp_path / "broken.docx")


def test_docx_paragraphs_tables_and_word_numbering(tmp_path):
    path = build_docx(tmp_path / "整改报告.docx")
    read = read_document(path)
    assert "一、组织整改落实情况" in read and "三、巡察整改成效" in read
    assert "问题①：合同审核超时。" in read
    assert "\t整治类别\t主要内容\t责任单位" in read
    report = parse_report(read)
    assert [a.title for a in report.areas] == ["学习有差距", "食堂管理", "收费管理"]
    assert [m.state for m in report.measures()] == [
        State.CLOSED, State.VERIFIED, State.IN_PROGRESS, State.ASSIGNED, State.ASSIGNED]
    assert report.skipped_sections == ["一、组织整改落实情况", "三、巡察整改成效"]
    assert {(d.item, d.stated, d.found) for d in report.differences()} == {
        (Total.AREAS, 2, 3), (Total.PROBLEMS, 3, 4), (Total.MEASURES, 4, 5)}
