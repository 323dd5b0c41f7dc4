"""What the parser finds in a document (pure): areas → problems (→ sub-problems) → measures, the
result each states, the totals the document states about itself, and how the two differ.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from workflow.lifecycle import Kind, State

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


_NOT_DONE = re.compile(r"未完成|暂未|尚未|未整改|正在|推进中|进行中|部分完成|持续推进中")
_LONG = re.compile(r"长期|持续|常态")
_DONE = re.compile(r"完成|已整改|整改到位|办结|销号")


def classify_result(text: str) -> Result | None:
    """完成/已完成 → done; 基本完成，长期建设 / 已完成整改并长期坚持 → long term;
    暂未完成 → not done; None when the words say none of these."""
    words = re.sub(r"\s", "", text)[:40]
    if _NOT_DONE.search(words):
        return Result.NOT_DONE
    if _LONG.search(words):
        return Result.LONG_TERM
    if _DONE.search(words):
        return Result.DONE
    return None


#: Result → (state, kind) of the imported measure.
RESULT_STATE: Mapping[Result, tuple[State, Kind]] = {
    Result.DONE: (State.CLOSED, Kind.DEADLINE),
    Result.LONG_TERM: (State.VERIFIED, Kind.LONG_TERM),
    Result.NOT_DONE: (State.IN_PROGRESS, Kind.DEADLINE),
}


def state_for(result: Result | None, has_progress: bool) -> tuple[State, Kind]:
    """The state a measure is imported in. No stated result: in progress if something was
    reported, otherwise assigned (a feedback list before any work)."""
    if result is not None:
        return RESULT_STATE[result]
    return (State.IN_PROGRESS if has_progress else State.ASSIGNED), Kind.DEADLINE


# ---------------------------------------------------------------- the parsed ledger


@dataclass
class ParsedMeasure:
    """One measure to create: a leaf problem, or a row of a table."""

    title: str
    line: int
    result: Result | None
    result_text: str | None = None
    progress: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> State:
        return state_for(self.result, bool(self.progress))[0]

    @property
    def kind(self) -> Kind:
        return state_for(self.result, bool(self.progress))[1]


@dataclass
class ParsedProblem:
    """A problem (问题) with its sub-problems; leaves carry the measures."""

    text: str
    line: int
    label: str = ""
    result: Result | None = None  # as stated for this problem itself
    children: list[ParsedProblem] = field(default_factory=list)
    measures: list[ParsedMeasure] = field(default_factory=list)

    @property
    def title(self) -> str:
        return first_sentence(self.text)

    def walk(self) -> Iterator[ParsedProblem]:
        yield self
        for child in self.children:
            yield from child.walk()

    def all_measures(self) -> Iterator[ParsedMeasure]:
        for problem in self.walk():
            yield from problem.measures

    def overall(self) -> Result | None:
        """The problem's result: its own, else summed up from what its measures say
        (any not done → not done; any long term → long term; else done)."""
        if self.result is not None:
            return self.result
        results = {m.result for m in self.all_measures() if m.result is not None}
        for candidate in (Result.NOT_DONE, Result.LONG_TERM, Result.DONE):
            if candidate in results:
                return candidate
        return None


@dataclass
class ParsedArea:
    title: str
    line: int
    label: str = ""
    problems: list[ParsedProblem] = field(default_factory=list)


@dataclass(frozen=True)
class Unplaced:
    """A line of the ledger part that could not be put under any problem."""

    line: int
    text: str
    reason: str


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


@dataclass(frozen=True)
class Difference:
    """One way the listed ledger differs from what the document says of itself."""

    item: Total
    stated: int
    found: int
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"item": self.item.value, "stated": self.stated, "found": self.found,
                "message": self.message}


@dataclass
class ParsedReport:
    """What a document lists and what it says it lists."""

    areas: list[ParsedArea]
    stated: dict[Total, int]
    stated_phrases: dict[Total, str]
    unplaced: list[Unplaced]
    skipped_sections: list[str]
    source: str = "outline"  # "outline", "feedback" (no results in it), "table", or a mix

    def problems(self) -> Iterator[ParsedProblem]:
        for area in self.areas:
            yield from area.problems

    def measures(self) -> Iterator[ParsedMeasure]:
        for problem in self.problems():
            yield from problem.all_measures()

    def counts(self) -> dict[str, int]:
        top = list(self.problems())
        measures = list(self.measures())
        return {
            "areas": len(self.areas),
            "problems": len(top),
            "sub_problems": sum(1 for p in top for _ in p.walk()) - len(top),
            "measures": len(measures),
            "progress_reports": sum(len(m.progress) for m in measures),
            "without_result": sum(1 for m in measures if m.result is None),
        }

    def found_results(self, level: str) -> dict[Total, int]:
        """How many problems (``level="problems"``) or measures are done, long term, not done."""
        if level == "problems":
            results = [p.overall() for p in self.problems()]
        else:
            results = [m.result for m in self.measures()]
        return {Total.DONE: results.count(Result.DONE),
                Total.LONG_TERM: results.count(Result.LONG_TERM),
                Total.NOT_DONE: results.count(Result.NOT_DONE)}

    def result_level(self) -> str:
        """Whether the stated done/long-term counts count problems or measures: the level whose
        stated total they add up to (problems when undecided)."""
        parts = [self.stated.get(t) for t in (Total.DONE, Total.LONG_TERM, Total.NOT_DONE)]
        told = sum(p for p in parts if p is not None)
        if told == self.stated.get(Total.PROBLEMS):
            return "problems"
        if told == self.stated.get(Total.MEASURES) or Total.PROBLEMS not in self.stated:
            return "measures"
        return "problems"

    def differences(self) -> list[Difference]:
        """Every stated total the listed ledger does not match (pure)."""
        counts = self.counts()
        level = self.result_level()
        found: dict[Total, int] = {Total.AREAS: counts["areas"], Total.PROBLEMS: counts["problems"],
                                   Total.MEASURES: counts["measures"], **self.found_results(level)}
        diffs: list[Difference] = []
        for item, stated in self.stated.items():
            have = found[item]
            if have == stated:
                continue
            diffs.append(Difference(item, stated, have, _difference_text(item, stated, have,
                                                                         counts, level)))
        return diffs


def _difference_text(item: Total, stated: int, found: int, counts: Mapping[str, int],
                     level: str) -> str:
    gap = f"少 {stated - found}" if found < stated else f"多 {found - stated}"
    if item is Total.PROBLEMS and counts["sub_problems"]:
        return (f"文中称 {stated} 个问题，逐项列出 {found} 个问题（其下细分为 {counts['measures']} "
                f"项），{gap} 个")
    if item is Total.MEASURES:
        return (f"文中称整改措施 {stated} 条，逐项列出的只有 {found} 项，{gap} 项；"
                "台账不完整，请补齐" if found < stated else
                f"文中称整改措施 {stated} 条，逐项列出 {found} 项，{gap} 项")
    if item in (Total.DONE, Total.LONG_TERM, Total.NOT_DONE):
        unit = "个问题" if level == "problems" else "项措施"
        return (f"文中称{item.label} {stated} 项，逐项写明{item.label}的有 {found} {unit}，"
                f"{gap} 项")
    return f"文中称 {stated} 个{item.label}，逐项列出 {found} 个，{gap} 个"


def first_sentence(text: str, limit: int = 200) -> str:
    """The text up to its first full stop, without the stop; the first line at most."""
    head = text.strip().split("\n", 1)[0]
    match = re.search(r"[。!?！？]", head)
    sentence = head[:match.start()] if match else head
    sentence = sentence.strip().rstrip("；;，,：:")
    if len(sentence) > limit:
        sentence = sentence[:limit] + "…"
    return sentence or head[:limit]
