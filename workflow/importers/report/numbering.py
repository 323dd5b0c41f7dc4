"""Chinese outline numbering (pure): numerals (十三 ↔ 13), circled numbers (①), and the outline
number a line of a report starts with (一、 (一) 1. (1) ①, in the variants the grammar lists).
"""

from __future__ import annotations

from dataclasses import dataclass

from workflow.importers.report.grammar import CIRCLED, CN_NUMERALS, RANK, Style, compile_items

__all__ = ["CIRCLED", "CN_NUMERALS", "RANK", "Numbering", "Style", "chinese_number",
           "chinese_numeral", "circled_number", "normalize", "parse_numbering"]

#: Full-width ASCII (（）：；，．１２) to half-width, one character for one, so indices found in
#: the normalised text slice the verbatim text too.
_HALF_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def normalize(text: str) -> str:
    """The text with full-width ASCII folded to half-width; same length as ``text``."""
    return text.translate(_HALF_WIDTH)


_CN_VALUES = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}


def chinese_number(text: str) -> int:
    """The value of a Chinese numeral up to 999 (十三 → 13, 二十 → 20) or of Arabic digits."""
    if text.isdigit():
        return int(text)
    total, digit = 0, 0
    for char in text:
        if char in _CN_VALUES:
            digit = _CN_VALUES[char]
        elif char == "十":
            total += (digit or 1) * 10
            digit = 0
        elif char == "百":
            total += (digit or 1) * 100
            digit = 0
    return total + digit


def chinese_numeral(value: int) -> str:
    """1 → 一, 13 → 十三, 20 → 二十, 99 → 九十九 (enough for outline numbers)."""
    digits = "零一二三四五六七八九"
    if value < 10:
        return digits[value]
    tens, ones = divmod(value, 10)
    return ("" if tens == 1 else digits[tens]) + "十" + (digits[ones] if ones else "")


def circled_number(char: str) -> int:
    """The value of a circled number: ① → 1, ⑳ → 20, ㉑ → 21."""
    code = ord(char)
    return code - 0x2460 + 1 if code < 0x3000 else code - 0x3251 + 21


# ---------------------------------------------------------------- outline numbering


#: The item markers of the grammar, compiled once.
_NUMBERING = compile_items()


@dataclass(frozen=True)
class Numbering:
    """The outline number a line starts with, and the verbatim text after it."""

    style: Style
    value: int
    label: str
    rest: str
    prefixed: bool  # "问题①", "①问题项", "问题表现(1)": always a new item, never a list inside text

    @property
    def rank(self) -> int:
        return RANK[self.style]


def parse_numbering(raw: str) -> Numbering | None:
    """The numbering at the start of ``raw``, in any of the tradition's variants, or None."""
    stripped = raw.lstrip()
    offset = len(raw) - len(stripped)
    norm = normalize(stripped[:32])  # numbering is short; the rest need not be folded
    for style, pattern in _NUMBERING:
        match = pattern.match(norm)
        if match is None:
            continue
        token = match.group("n")
        value = circled_number(token) if style is Style.CIRCLED else chinese_number(token)
        groups = match.groupdict()
        prefixed = bool(groups.get("prefix") or groups.get("suffix"))
        rest = raw[offset + match.end():].strip().lstrip(":：").strip()
        return Numbering(style, value, stripped[:match.end()].strip(), rest, prefixed)
    return None
