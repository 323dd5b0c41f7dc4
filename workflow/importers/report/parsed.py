"""What the parser finds in a document (pure): areas → problems (→ sub-problems) → measures, the
result each states, the totals the document states about itself, and how the two differ.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from workflow.importers.report.grammar import (
    CLAUSE_END,
    RATE_TOLERANCE,
    RESULT_BRACKETS,
    RESULT_CLAUSE,
    RESULT_WORDS,
    TOTAL_LABELS,
    Result,
    Total,
)
from workflow.lifecycle import Kind, State

__all__ = ["TOTAL_LABELS", "Counting", "Difference", "Level", "ParsedArea", "ParsedMeasure",
           "ParsedProblem", "ParsedReport", "Result", "StatedRate", "Statements", "Total",
           "Unplaced", "classify_result", "first_sentence", "head_result", "state_for"]

# ---------------------------------------------------------------- results


def classify_result(text: str) -> Result | None:
    """完成/已完成 → done; 基本完成，长期建设 / 已完成整改并长期坚持 → long term;
    暂未完成 → not done; None when the words say none of these (the grammar's RESULT_WORDS)."""
    words = re.sub(r"\s", "", text)[:40]
    for result, found in RESULT_WORDS:
        if any(word in words for word in found):
            return result
    return None


def head_result(account: str) -> tuple[Result, str] | None:
    """The result stated at the head of an account ("已完成整改。2024年6月…", "基本完成，长期
    坚持；…", "【正在推进】…") and the phrase that states it; None when the account starts with
    anything else. A clause states a result when it is made only of the grammar's
    RESULT_VOCABULARY."""
    text = account.lstrip()
    for pair in RESULT_BRACKETS:
        if text[:1] == pair[0] and pair[1] in text[1:16]:
            text = text[1:text.index(pair[1], 1)] + "。" + text[text.index(pair[1], 1) + 1:]
            break
    clauses: list[str] = []
    position = 0
    while position < len(text) and len(clauses) < 3:
        end = position
        while end < len(text) and text[end] not in CLAUSE_END:
            end += 1
        clause = text[position:end]
        if not clause or RESULT_CLAUSE.fullmatch(clause) is None:
            break
        clauses.append(clause)
        position = end + 1
        while position < len(text) and text[position] in CLAUSE_END:
            position += 1
    if not clauses:
        return None
    phrase = "，".join(clauses)
    result = classify_result(phrase)
    return (result, phrase) if result is not None else None


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


class Level(StrEnum):
    """What a document's result counts count: its problems or its measures."""

    PROBLEMS = "problems"
    MEASURES = "measures"


@dataclass(frozen=True)
class Counting:
    """How a document counts its results, kept on the campaign so that the report written
    back counts the same way: at which level, and whether long-term items are counted among
    the completed ("已整改到位38项，其中需长期坚持的20项") or apart ("整改完成26项；长期建设3项")."""

    level: Level
    long_term_within_done: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"level": self.level.value, "long_term_within_done": self.long_term_within_done}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> Counting | None:
        if not raw or raw.get("level") not in {lv.value for lv in Level}:
            return None
        return cls(Level(raw["level"]), bool(raw.get("long_term_within_done")))


@dataclass(frozen=True)
class StatedRate:
    """A share the document states ("完成率96.3%", "…26项，占比89.7%"), in percent."""

    of: Total
    percent: float
    phrase: str


@dataclass
class Statements:
    """What a document says of itself: totals (with the phrase each was read from), rates, and
    whether it counts long-term items among the completed (None when it does not say)."""

    totals: dict[Total, int] = field(default_factory=dict)
    phrases: dict[Total, str] = field(default_factory=dict)
    rates: dict[Total, StatedRate] = field(default_factory=dict)
    long_term_within: bool | None = None


@dataclass(frozen=True)
class Difference:
    """One way the listed ledger differs from what the document says of itself: a total
    (``rate`` False) or a stated share in percent (``rate`` True)."""

    item: Total
    stated: float
    found: float
    message: str
    rate: bool = False

    def as_json(self) -> dict[str, Any]:
        item = f"{self.item.value}_rate" if self.rate else self.item.value
        return {"item": item, "stated": self.stated, "found": self.found,
                "message": self.message}


_RESULT_OF: Mapping[Total, Result] = {Total.DONE: Result.DONE, Total.LONG_TERM: Result.LONG_TERM,
                                     Total.NOT_DONE: Result.NOT_DONE}


@dataclass
class ParsedReport:
    """What a document lists and what it says it lists."""

    areas: list[ParsedArea]
    stated: dict[Total, int]
    stated_phrases: dict[Total, str]
    unplaced: list[Unplaced]
    skipped_sections: list[str]
    source: str = "outline"  # "outline", "feedback" (no results in it), "table", or a mix
    statements: Statements = field(default_factory=Statements)

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

    def found_results(self, level: str, within: bool = False) -> dict[Total, int]:
        """How many problems (``level="problems"``) or measures are done, long term, not done;
        with ``within``, the long-term ones are counted among the done as well."""
        if level == Level.PROBLEMS:
            results = [p.overall() for p in self.problems()]
        else:
            results = [m.result for m in self.measures()]
        found = {total: results.count(result) for total, result in _RESULT_OF.items()}
        if within:
            found[Total.DONE] += found[Total.LONG_TERM]
        return found

    def result_level(self) -> str:
        """Whether the stated done/long-term counts count problems or measures: the level whose
        stated total they add up to (problems when undecided)."""
        told = self._told(self.long_term_within())
        if told == self.stated.get(Total.PROBLEMS):
            return Level.PROBLEMS
        if told == self.stated.get(Total.MEASURES) or Total.PROBLEMS not in self.stated:
            return Level.MEASURES
        return Level.PROBLEMS

    def _told(self, within: bool) -> int:
        parts = [Total.DONE, Total.NOT_DONE] if within else list(_RESULT_OF)
        return sum(self.stated.get(t) or 0 for t in parts)

    def long_term_within(self) -> bool:
        """Whether the document counts long-term items among the completed: as it says ("其中"),
        else when only that reading adds up to a stated total."""
        said = self.statements.long_term_within
        if said is not None:
            return said
        if Total.LONG_TERM not in self.stated or Total.DONE not in self.stated:
            return False
        totals = {self.stated.get(Total.PROBLEMS), self.stated.get(Total.MEASURES)} - {None}
        return self._told(True) in totals and self._told(False) not in totals

    def counting(self) -> Counting | None:
        """How the document counts its results; None when it states no result count."""
        if not any(t in self.stated for t in _RESULT_OF) and not self.statements.rates:
            return None
        return Counting(Level(self.result_level()), self.long_term_within())

    def differences(self) -> list[Difference]:
        """Every stated total and rate the listed ledger does not match (pure)."""
        counts = self.counts()
        level = self.result_level()
        within = self.long_term_within()
        results = self.found_results(level, within)
        found: dict[Total, int] = {Total.AREAS: counts["areas"], Total.PROBLEMS: counts["problems"],
                                   Total.MEASURES: counts["measures"], **results}
        diffs: list[Difference] = []
        for item, stated in self.stated.items():
            have = found[item]
            if have == stated:
                continue
            diffs.append(Difference(item, stated, have, _difference_text(item, stated, have,
                                                                         counts, level)))
        listed = counts["problems"] if level == Level.PROBLEMS else counts["measures"]
        for item, rate in self.statements.rates.items():
            share = round(100 * results[item] / listed, 1) if listed else 0.0
            if abs(share - rate.percent) > RATE_TOLERANCE:
                unit = "个问题" if level == Level.PROBLEMS else "项措施"
                diffs.append(Difference(item, rate.percent, share, (
                    f"文中称{item.label}{rate.percent:g}%（“{rate.phrase}”），按逐项列出的 {listed} "
                    f"{unit}计为 {share:g}%，相差 {abs(share - rate.percent):.1f} 个百分点"), True))
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
