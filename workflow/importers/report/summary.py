"""What an import reports back: the ``import report --json`` document, and the clerk's summary in
Chinese that the command prints (the parsed tree on a dry run, counts found against counts stated,
what is left to complete).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from workflow.importers.report.parsed import TOTAL_LABELS, Level, ParsedProblem, ParsedReport
from workflow.lifecycle import State


@dataclass
class ReportImportSummary:
    """What an import found, wrote (unless dry run), and what the 整改办 must still complete."""

    campaign_id: int | None
    report: ParsedReport
    dry_run: bool

    @property
    def counts(self) -> dict[str, int]:
        return self.report.counts()

    def by_state(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for measure in self.report.measures():
            found[measure.state.value] = found.get(measure.state.value, 0) + 1
        return found

    def as_json(self) -> dict[str, Any]:
        counts = self.counts
        return {
            "campaign_id": self.campaign_id, "areas": counts["areas"],
            "problems": counts["problems"], "measures": counts["measures"],
            "sub_problems": counts["sub_problems"], "progress_reports": counts["progress_reports"],
            "dry_run": self.dry_run, "source": self.report.source, "by_state": self.by_state(),
            "stated": {t.value: n for t, n in self.report.stated.items()},
            "stated_rates": {t.value: r.percent for t, r in self.report.statements.rates.items()},
            "counting": counting.as_json() if (counting := self.report.counting()) else None,
            "differences": [d.as_json() for d in self.report.differences()],
            "to_complete": {"leader": counts["measures"], "owner": counts["measures"],
                            "unit": counts["measures"], "deadline": counts["measures"],
                            "result": counts["without_result"]},
            "unplaced": [{"line": u.line, "text": u.text, "reason": u.reason}
                         for u in self.report.unplaced],
            "skipped_sections": self.report.skipped_sections,
        }


# ---------------------------------------------------------------- the clerk's summary


def _problem_lines(problem: ParsedProblem, depth: int) -> Iterator[str]:
    pad = "  " * depth
    label = f"{problem.label} " if problem.label else ""
    if not problem.children and len(problem.measures) == 1:
        m = problem.measures[0]
        result = m.result.label if m.result else "未写明结果"
        extra = f"，进展 {len(m.progress)} 条" if m.progress else ""
        yield f"{pad}{label}{_short(problem.title)}  [{result} → {m.state.label}{extra}]"
        return
    yield f"{pad}{label}{_short(problem.title)}"
    for m in problem.measures:
        result = m.result.label if m.result else "未写明结果"
        yield f"{pad}  · {_short(m.title)}  [{result} → {m.state.label}]"
    for child in problem.children:
        yield from _problem_lines(child, depth + 1)


def _short(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def tree_lines(report: ParsedReport) -> list[str]:
    """The parsed tree as the dry run prints it."""
    lines: list[str] = []
    for area in report.areas:
        lines.append(f"{area.label}{area.title}")
        for problem in area.problems:
            lines.extend(_problem_lines(problem, 1))
    return lines


def summary_lines(summary: ReportImportSummary) -> list[str]:
    """Counts found vs stated, every difference, what is left to complete, what was not placed."""
    report = summary.report
    counts = summary.counts
    sub = f"（另含 {counts['sub_problems']} 个细项）" if counts["sub_problems"] else ""
    lines = [f"列出：{counts['areas']} 个方面、{counts['problems']} 个问题{sub}、"
             f"{counts['measures']} 项整改措施、{counts['progress_reports']} 条整改进展"]
    states = "、".join(f"{State(s).label} {n} 项" for s, n in summary.by_state().items())
    lines.append(f"导入状态：{states}")
    if report.stated:
        told = "；".join(f"{TOTAL_LABELS[t]} {n}（“{report.stated_phrases.get(t, '')}”）"
                        for t, n in report.stated.items())
        lines.append(f"文中自述：{told}")
    counting = report.counting()
    if counting is not None:
        level = "问题" if counting.level == Level.PROBLEMS else "整改措施"
        way = "长期坚持的计入已完成" if counting.long_term_within_done else "长期坚持的另计"
        lines.append(f"计数方式：文中按{level}统计整改结果，{way}；导出报告时照此统计。")
    for rate in report.statements.rates.values():
        lines.append(f"文中比例：{rate.of.label} {rate.percent:g}%（“{rate.phrase}”）")
    differences = report.differences()
    if differences:
        lines.append(f"与文中自述不符 {len(differences)} 处：")
        lines.extend(f"  - {d.message}" for d in differences)
    elif report.stated:
        lines.append("与文中自述的数字一致。")
    lines.append(f"待补充：{counts['measures']} 项措施均未写明责任领导、责任部门、责任人和完成时限，"
                 "请在台账中补录。")
    with_fields = [m for m in report.measures() if m.fields]
    if with_fields:
        lines.append(f"  其中 {len(with_fields)} 项原文写有责任单位、责任人或时限（已记入导入历史），"
                     "请据此补录。")
    unknown = [m for m in report.measures() if m.result is None]
    if unknown and len(unknown) == counts["measures"]:
        lines.append(f"未写明整改结果：全部 {len(unknown)} 项（有进展的按「整改中」、无进展的按「已交办」"
                     "导入），请逐项核实后再核验、销号。")
    elif unknown:
        lines.append(f"未写明整改结果：{len(unknown)} 项（有进展的按「整改中」、无进展的按「已交办」"
                     "导入），请核实：")
        lines.extend(f"  - 第 {m.line} 行：{_short(m.title)}" for m in unknown[:20])
        if len(unknown) > 20:
            lines.append(f"  - ……另有 {len(unknown) - 20} 项")
    if report.unplaced:
        lines.append(f"无法归位的内容 {len(report.unplaced)} 处：")
        lines.extend(f"  - 第 {u.line} 行：{_short(u.text)}（{u.reason}）" for u in report.unplaced)
    if report.skipped_sections:
        lines.append("未作为问题导入的部分：" + "；".join(_short(s, 30) for s in report.skipped_sections))
    return lines
