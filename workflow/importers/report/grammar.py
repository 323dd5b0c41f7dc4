"""The grammar of rectification reports, written down as data: how items are numbered, which
labels open an account, which words state a result, and how a document states its own totals.

The parser reads these tables and nothing else about the wording of documents, so a new
variant found in a real document is one row here (and one row in the table-driven tests),
not a new branch in the parser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from enum import StrEnum

# ---------------------------------------------------------------- numerals

CN_NUMERALS = "零〇一二两三四五六七八九十百"
CIRCLED = "".join(chr(c) for c in range(0x2460, 0x2474)) + "".join(
    chr(c) for c in range(0x3251, 0x3260))
#: A count as documents write it: Arabic digits or a Chinese numeral.
NUMBER = rf"(?P<n>\d+|[{CN_NUMERALS}]+)"

# ---------------------------------------------------------------- item markers (headings)


class Style(StrEnum):
    """The numbering styles of the tradition, outermost first."""

    CN = "cn"                      # 一、
    PAREN_CN = "paren_cn"          # (一) （一）
    ARABIC = "arabic"              # 1. 1、 1．
    PAREN_ARABIC = "paren_arabic"  # (1) （1） 1） 问题表现(1)
    CIRCLED = "circled"            # ① 问题① ①问题项 ①.


RANK: Mapping[Style, int] = {Style.CN: 1, Style.PAREN_CN: 2, Style.ARABIC: 3,
                             Style.PAREN_ARABIC: 4, Style.CIRCLED: 5}

#: Words written before an item's number that make it a sub-problem ("问题①", "问题表现(1)").
ITEM_PREFIXES = ("问题表现", "具体表现", "具体问题", "问题")
#: Words written after a circled number with the same effect ("①问题项").
ITEM_SUFFIXES = ("问题项", "问题")
_PREFIX = rf"(?P<prefix>{'|'.join(ITEM_PREFIXES)})?\s*"

#: Item markers at the start of a line, matched on text with full-width ASCII folded to
#: half-width (so "（1）" and "1．" match as "(1)" and "1."), first match wins.
ITEM_MARKERS: Sequence[tuple[Style, str]] = (
    (Style.CN, rf"^(?P<n>[{CN_NUMERALS}]{{1,4}})\s*[、.](?!\d)"),
    (Style.PAREN_CN, rf"^\(\s*(?P<n>[{CN_NUMERALS}]{{1,4}})\s*\)"),
    (Style.PAREN_ARABIC, rf"^{_PREFIX}\(\s*(?P<n>\d{{1,3}})\s*\)"),
    (Style.PAREN_ARABIC, r"^(?P<n>\d{1,2})\s*\)(?!\d)"),
    (Style.CIRCLED,
     rf"^{_PREFIX}(?P<n>[{CIRCLED}])\s*(?P<suffix>{'|'.join(ITEM_SUFFIXES)})?\s*[.、]?"),
    (Style.ARABIC, r"^(?P<n>\d{1,3})\s*[.、](?!\d)"),
)

#: Enumerations inside running text ("一是…二是…", and "①…②…" or "1.…2.…" that continue a list
#: begun in an account) are not items: "一是" matches no marker above, and a number that continues
#: the open account's list is read as text by the outline.
IN_TEXT_ENUMERATION = rf"[{CN_NUMERALS}]{{1,3}}是"


# ---------------------------------------------------------------- headings

#: Headings that name a group of problems, an area ("(一)反馈问题：…", "…方面存在的问题").
AREA_HEADINGS = r"反馈问题|问题清单|方面(?:存在的|的)?问题|存在(?:的)?问题|问题表现|反馈意见"
#: Also an area where the results show the ledger part is there ("（一）预算执行方面").
AREA_HEADINGS_LOOSE = r"方面"
#: Words before an area's own title, dropped from it ("反馈问题：学习有差距").
AREA_TITLE_PREFIX = r"^(?:反馈问题|问题方面|方面)\s*[:：]\s*"

#: The columns of a 问题清单 or 整改台账 table in a document, by what they hold.
TABLE_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "area": ("整治类别", "类别", "方面", "问题类别", "问题方面", "整改方面", "反馈问题", "领域"),
    "problem": ("主要内容", "自查自纠主要内容", "问题", "问题表现", "存在问题", "具体问题",
                "反馈问题具体表现", "问题描述", "整治内容", "整改内容", "问题清单"),
    "measure": ("整改措施", "整改任务", "措施"),
    "unit": ("责任单位", "责任部门", "责任处室", "责任科室", "牵头单位"),
    "leader": ("责任领导", "分管领导"),
    "owner": ("责任人", "具体责任人"),
    "deadline": ("完成时限", "整改时限", "完成时间"),
    "result": ("整改结果", "完成情况", "整改状态"),
    "progress": ("整改情况", "整改进展", "整改进展情况", "进展情况"),
}

# ---------------------------------------------------------------- labels inside an item


class SegmentKind(StrEnum):
    """What a run of text inside an item is: the problem's own words, or what a label opens."""

    TEXT = "text"          # the problem as the document states it
    RESULT = "result"      # 整改结果：完成
    PROGRESS = "progress"  # the account: 整改情况 / 整改进展 / 落实情况 / 完成情况
    MEASURE = "measure"    # 整改措施
    FIELD = "field"        # 责任单位 / 责任人 / 完成时限


#: Labels that open a segment, at the start of a line; a colon (half- or full-width) may follow
#: or be missing.
LABELS: Mapping[str, SegmentKind] = {
    # the result, on a line of its own
    "整改结果": SegmentKind.RESULT, "整改状态": SegmentKind.RESULT, "完成状态": SegmentKind.RESULT,
    # the account of the work (a result may stand at its head)
    "整改进展情况": SegmentKind.PROGRESS, "整改落实情况": SegmentKind.PROGRESS,
    "整改完成情况": SegmentKind.PROGRESS, "整改推进情况": SegmentKind.PROGRESS,
    "整改进展": SegmentKind.PROGRESS, "整改情况": SegmentKind.PROGRESS,
    "进展情况": SegmentKind.PROGRESS, "落实情况": SegmentKind.PROGRESS,
    "完成情况": SegmentKind.PROGRESS,
    # what will be done
    "整改措施": SegmentKind.MEASURE, "具体措施": SegmentKind.MEASURE,
    "主要措施": SegmentKind.MEASURE, "整改举措": SegmentKind.MEASURE,
    # who and when
    "责任单位": SegmentKind.FIELD, "责任部门": SegmentKind.FIELD, "责任领导": SegmentKind.FIELD,
    "责任人": SegmentKind.FIELD, "完成时限": SegmentKind.FIELD, "整改时限": SegmentKind.FIELD,
}
#: Labels also recognised in the middle of a line, after a sentence end and with a colon
#: ("…不健全。整改结果：完成。整改情况：…").
INLINE_LABELS = ("整改结果", "整改进展情况", "整改落实情况", "整改完成情况", "整改进展", "整改情况",
                 "落实情况", "完成情况", "整改措施", "责任单位", "责任人", "完成时限")

# ---------------------------------------------------------------- results


class Result(StrEnum):
    """What the document says of one problem or measure."""

    DONE = "done"
    LONG_TERM = "long_term"
    NOT_DONE = "not_done"

    @property
    def label(self) -> str:
        return {Result.DONE: "已完成", Result.LONG_TERM: "长期坚持",
                Result.NOT_DONE: "未完成"}[self]


#: Words that decide a result, by precedence: the first row with a word in the text wins, so
#: "持续推进中" is not done while "持续推进" is long term, and "基本完成，长期建设" is long term.
RESULT_WORDS: Sequence[tuple[Result, tuple[str, ...]]] = (
    (Result.NOT_DONE, ("未完成", "暂未", "尚未", "未整改", "正在", "推进中", "进行中", "部分完成",
                       "持续推进中", "办理中", "整改中")),
    (Result.LONG_TERM, ("长期", "持续", "常态")),
    (Result.DONE, ("完成", "已整改", "整改到位", "办结", "销号", "已落实", "落实到位")),
)

#: The vocabulary of a result phrase: a clause at the head of an account made only of these
#: words ("已完成整改", "已整改到位并长期坚持", "正在推进", "已办结") states the result; a clause
#: with any other word ("已完成制订学习方案", "已于2024年10月更新") is the account itself.
RESULT_VOCABULARY = (
    "已经", "已", "均", "全部", "基本", "暂未", "尚未", "未", "正在", "仍在", "持续", "长期",
    "完成", "整改", "到位", "办结", "办理", "落实", "推进", "销号", "坚持", "建设", "并", "中",
    "常态化", "目前", "现已",
)
#: Brackets a result phrase may be written in ("【已完成】", "（正在推进）").
RESULT_BRACKETS = ("【】", "[]", "()", "（）", "〔〕")
#: What ends a clause of a result phrase.
CLAUSE_END = "，,。；;、.!！ \t"


def _vocabulary_pattern() -> re.Pattern[str]:
    words = "|".join(sorted(RESULT_VOCABULARY, key=len, reverse=True))
    return re.compile(rf"(?:{words})+")


RESULT_CLAUSE = _vocabulary_pattern()

# ---------------------------------------------------------------- stated totals


class Total(StrEnum):
    """The totals a report states about itself."""

    AREAS = "areas"
    PROBLEMS = "problems"
    MEASURES = "measures"
    DONE = "done"
    LONG_TERM = "long_term"
    NOT_DONE = "not_done"

    @property
    def label(self) -> str:
        return TOTAL_LABELS[self]


TOTAL_LABELS: Mapping[Total, str] = {
    Total.AREAS: "方面", Total.PROBLEMS: "问题", Total.MEASURES: "整改措施",
    Total.DONE: "已完成", Total.LONG_TERM: "长期坚持/长期建设", Total.NOT_DONE: "未完成",
}

#: Counting words after a number ("15类问题", "9件", "31个大项").
CLASSIFIER = r"\s*(?:个|项|条|件|类|处)\s*"
#: Words between a result and its count ("已完成整改事项27个", "长期坚持的问题3项").
_KIND = r"(?:的)?(?:整改)?(?:的)?(?:事项|问题|任务|措施)?"

#: How documents state a total, each row one shape; ``{N}`` is the count. Searched in every
#: text of the document, sections outside the ledger part first; the first match of a total wins.
TOTAL_PHRASES: Sequence[tuple[Total, str]] = (
    (Total.AREAS, r"(?<![一\d])(?P<n>\d+)\s*个?\s*大?方面"),             # 3方面 / 5个大方面
    (Total.AREAS, rf"(?P<n>[{CN_NUMERALS}]+)\s*个\s*大?方面"),          # 三个方面 (not 一方面)
    (Total.PROBLEMS, rf"{{N}}{CLASSIFIER}(?:反馈|具体|突出)?问题"),        # 29项问题 / 15类问题
    (Total.PROBLEMS, r"{N}\s*个\s*大项"),                             # 31个大项
    (Total.PROBLEMS, rf"问题(?:清单)?\s*(?:共)?\s*{{N}}{CLASSIFIER}"),   # 梳理问题清单27条
    (Total.MEASURES, rf"{{N}}{CLASSIFIER}(?:具体)?整改(?:措施|任务|责任清单)"),  # 41项整改任务
    (Total.MEASURES, rf"整改(?:措施|任务)\s*(?:共)?\s*{{N}}{CLASSIFIER}"),     # 整改措施91条
    (Total.MEASURES, r"{N}\s*个\s*小项"),
    (Total.DONE, rf"(?<![未没])(?:已经|均已|已)?(?:整改完成|完成整改|已完成|已落实|已整改(?:到位|完成)?"
                 rf"|整改到位|办结|已销号){_KIND}\s*{{N}}{CLASSIFIER}"),  # 已整改到位38项 / 已办结9件
    (Total.LONG_TERM, rf"(?P<within>其中)?\s*(?:需)?(?:长期建设|长期坚持|长期整改|持续整改|持续推进)"
                      rf"{_KIND}\s*{{N}}{CLASSIFIER}"),                  # 其中需长期坚持的20项
    (Total.NOT_DONE, rf"(?:未完成|尚未完成|暂未完成|正在整改|整改中|推进中|正在推进|正在办理|办理中)"
                     rf"{_KIND}\s*{{N}}{CLASSIFIER}"),                   # 正在办理4件
)
#: "N个方面、M项问题" stated together decides both (an area count alone is ambiguous).
AREAS_THEN_PROBLEMS = (
    rf"(?:(?P<a>\d+)\s*个?|(?P<acn>[{CN_NUMERALS}]+)\s*个)\s*大?方面\s*[,、，]?\s*(?:共)?\s*"
    rf"{{N}}\s*(?:{CLASSIFIER}(?:反馈|具体|突出)?问题|个\s*大项)")
#: A stated rate: "完成率96.3%", "整改率为100%", or "占比89.7%" right after a stated count.
RATE_PHRASES: Sequence[tuple[Total | None, str]] = (
    (Total.DONE, r"(?:整改)?(?:完成|整改|办结|销号)率\s*(?:为|达|达到)?\s*(?P<r>\d+(?:\.\d+)?)\s*%"),
    (None, r"(?:占比|占)\s*(?:为)?\s*(?P<r>\d+(?:\.\d+)?)\s*%"),         # follows a count
)
#: How far (characters) a "占比" may stand after the count it belongs to.
RATE_REACH = 12
#: Rates are written rounded; a stated rate this far (percentage points) from the items is off.
RATE_TOLERANCE = 0.1

# ---------------------------------------------------------------- what a report is not

#: Titles of documents that are not rectification reports, looked for near the top of a
#: document that lists no results.
NOT_A_REPORT = (
    ("会议通知", r"^(?!.*(?:印发|转发)).*(?:召开|举行).{0,30}会的?通知$|^会议通知$"),
    ("通知", r"^(?!.*(?:印发|转发)).*通知$"),
    ("会议纪要", r"纪要$"),
    ("邀请函", r"邀请函$"),
    ("议程", r"议程$"),
)
#: What the importer looks for, said to a person whose document was refused.
LOOKED_FOR = ("按「一、（一）1.（1）①」等编号逐项列出的问题，并写明「整改结果」或「整改情况：已完成整改」"
              "一类的结果；或是一张含「问题/主要内容」「整改措施」列的问题清单表格")


def compile_items() -> list[tuple[Style, re.Pattern[str]]]:
    return [(style, re.compile(source)) for style, source in ITEM_MARKERS]


def compile_totals() -> list[tuple[Total, re.Pattern[str]]]:
    return [(total, re.compile(source.replace("{N}", NUMBER))) for total, source in TOTAL_PHRASES]
