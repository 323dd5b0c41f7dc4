"""Reading a document into the lines the parser reads: .txt (UTF-8, BOM tolerated, GB18030
fallback) and .docx (paragraphs and tables in document order, Word's automatic numbering rendered
as text, a table row as one tab-separated line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workflow.errors import InputError
from workflow.importers.report.numbering import chinese_numeral


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 (a BOM is dropped), else GB18030, the encodings Chinese Windows saves .txt in."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError(f"{name} 既不是 UTF-8 也不是 GB18030 编码的文本，无法读取", field="file")


def read_document(path: Path) -> list[str]:
    """The lines of a .txt or .docx document; a .docx table row becomes one tab-separated line."""
    if not path.exists():
        raise InputError(f"文件不存在：{path}", field="file")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return decode_text(path.read_bytes(), path.name).splitlines()
    if suffix == ".docx":
        return _read_docx(path)
    raise InputError(f"不支持的文件格式「{suffix}」：请用 .txt 或 .docx（.doc 请先在 Word 中另存为"
                     " .docx）", field="file")


def _read_docx(path: Path) -> list[str]:
    import docx
    from docx.table import Table as DocxTable
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises several types for a broken file
        raise InputError(f"无法读取 Word 文件 {path.name}：{exc}", field="file") from exc
    numbering = _WordNumbering(document)
    lines: list[str] = []
    for element in document.element.body.iterchildren():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(element, document)
            text = numbering.label(paragraph) + paragraph.text
            lines.extend(text.split("\n") if text.strip() else [""])
        elif tag == "tbl":
            for row in DocxTable(element, document).rows:
                cells: list[str] = []
                seen: set[int] = set()
                for cell in row.cells:
                    if id(cell._tc) in seen:  # a merged cell repeats across the row
                        continue
                    seen.add(id(cell._tc))
                    cells.append(" ".join(cell.text.split()))
                lines.extend(["\t" + "\t".join(cells), ""])
    return lines


class _WordNumbering:
    """Renders Word's automatic list numbers ("一、", "（一）", "1.", "①"), which python-docx
    leaves out of ``paragraph.text``, from the numbering part of the document."""

    _FORMATS = {"decimal", "chineseCounting", "chineseCountingThousand", "ideographTraditional",
                "decimalEnclosedCircle", "decimalEnclosedCircleChinese", "decimalFullWidth",
                "japaneseCounting"}

    def __init__(self, document: Any) -> None:
        self._levels: dict[tuple[str, int], tuple[str, str, int]] = {}
        self._counters: dict[str, dict[int, int]] = {}
        try:
            part = document.part.numbering_part
        except (KeyError, NotImplementedError, AttributeError):
            return
        self._load(part.element)

    def _load(self, root: Any) -> None:
        ns = root.nsmap.get("w") or "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
        w = f"{{{ns}}}"
        abstract: dict[str, dict[int, tuple[str, str, int]]] = {}
        for node in root.iterfind(f"{w}abstractNum"):
            levels: dict[int, tuple[str, str, int]] = {}
            for lvl in node.iterfind(f"{w}lvl"):
                fmt = lvl.find(f"{w}numFmt")
                text = lvl.find(f"{w}lvlText")
                start = lvl.find(f"{w}start")
                levels[int(lvl.get(f"{w}ilvl", "0"))] = (
                    fmt.get(f"{w}val", "decimal") if fmt is not None else "decimal",
                    text.get(f"{w}val", "") if text is not None else "",
                    int(start.get(f"{w}val", "1")) if start is not None else 1)
            abstract[node.get(f"{w}abstractNumId", "")] = levels
        for num in root.iterfind(f"{w}num"):
            ref = num.find(f"{w}abstractNumId")
            if ref is None:
                continue
            for ilvl, spec in abstract.get(ref.get(f"{w}val", ""), {}).items():
                self._levels[(num.get(f"{w}numId", ""), ilvl)] = spec

    @staticmethod
    def _num_pr(paragraph: Any) -> Any:
        """The paragraph's numbering properties, its own or inherited from its style."""
        ppr = paragraph._p.pPr
        if ppr is not None and ppr.numPr is not None:
            return ppr.numPr
        style = paragraph.style
        while style is not None:
            style_ppr = style.element.pPr
            if style_ppr is not None and style_ppr.numPr is not None:
                return style_ppr.numPr
            style = style.base_style
        return None

    def label(self, paragraph: Any) -> str:
        """The number Word shows before ``paragraph`` ("" when it has none or one of a format
        the tradition does not use); advances the list's counters."""
        num_pr = self._num_pr(paragraph)
        if num_pr is None or num_pr.numId is None:
            return ""
        num_id = str(num_pr.numId.val)
        ilvl = int(num_pr.ilvl.val) if num_pr.ilvl is not None else 0
        spec = self._levels.get((num_id, ilvl))
        if spec is None or spec[0] not in self._FORMATS:
            return ""
        counters = self._counters.setdefault(num_id, {})
        counters[ilvl] = counters.get(ilvl, spec[2] - 1) + 1
        for deeper in [k for k in counters if k > ilvl]:
            del counters[deeper]
        text = spec[1]
        for level in range(ilvl + 1):
            fmt = self._levels.get((num_id, level), ("decimal", "", 1))[0]
            value = counters.get(level, 1)
            text = text.replace(f"%{level + 1}", _format_number(value, fmt))
        return text


def _format_number(value: int, fmt: str) -> str:
    if fmt.startswith("decimalEnclosedCircle") and 1 <= value <= 20:
        return chr(0x2460 + value - 1)
    if fmt in ("chineseCounting", "chineseCountingThousand", "ideographTraditional",
               "japaneseCounting"):
        return chinese_numeral(value)
    return str(value)
