"""Benchmark of the report parser: a ~2 MB rectification report must parse in under 2 s.

Run from the repository root::

    python3 bench/report_parse.py            # ~2 MB, 7 runs
    python3 bench/report_parse.py --mb 8     # a larger document

The document is synthetic, in the style of real reports: non-problem sections numbered like the
problem part, areas "(一)反馈问题：…", problems "1.", sub-items "问题①" and "(1)", every result
marker, progress texts with dates and lists running on over several lines, and stated totals.
It is built by repeating a varied outline until it reaches the size asked for. Only
``parse_report`` (pure, no I/O) is timed; the printed counts show the parse found everything.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workflow.importers.report import parse_report  # noqa: E402
from workflow.importers.report.numbering import chinese_numeral  # noqa: E402

GOAL_SECONDS = 2.0
RESULTS = ["完成", "已完成", "基本完成，长期建设。", "已完成整改并长期坚持", "暂未完成"]
PROGRESS = ["整改情况", "整改进展情况", "整改情况"]
FILLER = ("组织全体职工集中学习，研究制定贯彻落实的具体举措，明确责任科室和完成时限，"
          "建立整改台账，采取对账销号制度，确保件件有落实、事事有回音。")


def _progress(rng: random.Random) -> list[str]:
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    word = rng.choice(PROGRESS)
    text = f"{word}：2024年{month}月{day}日{FILLER * rng.randint(1, 4)}"
    if rng.random() < 0.2:
        return [f"{text}①修订制度；", "②开展培训；", f"③ 2024年{month}月起纳入考核。"]
    return [text]


def _problem(rng: random.Random, number: int) -> tuple[list[str], int]:
    """One problem's lines and how many measures it holds (its sub-items, or itself)."""
    lines = [f"{number}.{FILLER[:rng.randint(8, 20)]}。{FILLER * rng.randint(1, 3)}"]
    if rng.random() < 0.25:
        subs = rng.randint(1, 3)
        style = rng.choice(["问题{circled}：", "({n})", "问题表现（{n}）"])  # one style per problem
        for sub in range(1, subs + 1):
            label = style.format(circled=chr(0x2460 + sub - 1), n=sub)
            lines += [f"{label}{FILLER[:30]}。", f"整改结果：{rng.choice(RESULTS)}", *_progress(rng)]
        return lines, subs
    return lines + [f"整改结果：{rng.choice(RESULTS)}", *_progress(rng)], 1


def synthetic_report(target_bytes: int, seed: int = 7) -> tuple[list[str], int, int, int]:
    """Lines of a report of about ``target_bytes`` in UTF-8, its area, problem and measure
    counts."""
    rng = random.Random(seed)
    head = ["关于巡察反馈意见整改情况的报告", "", "一、整改工作开展情况",
            "（一）提高政治站位。召开专题会议研究部署整改工作。", "（二）压实整改责任。", "",
            "二、反馈问题整改情况"]
    body: list[str] = []
    size = sum(len(line.encode()) + 1 for line in head)
    areas = problems = measures = 0
    while size < target_bytes:
        areas += 1
        count = rng.randint(2, 5)
        area = [f"（{chinese_numeral(areas % 99 + 1)}）反馈问题：第{areas}个方面{FILLER[:12]}", ""]
        for number in range(1, count + 1):
            problem_lines, held = _problem(rng, number)
            area += problem_lines
            measures += held
        problems += count
        body += area
        size += sum(len(line.encode()) + 1 for line in area)
    tail = ["三、巡察整改成效",
            f"针对巡察组提出的{areas}个方面、{problems}项问题，制定整改措施{problems}条。",
            "四、下一步工作安排", "（一）巩固整改成果。", "（二）建立长效机制。"]
    return head + body + tail, areas, problems, measures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=2.0, help="document size in MB (default 2)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    lines, areas, problems, measures = synthetic_report(int(args.mb * 1024 * 1024))
    size = sum(len(line.encode()) + 1 for line in lines)
    timings = []
    report = None
    for _ in range(args.runs):
        started = time.perf_counter()
        report = parse_report(lines)
        timings.append(time.perf_counter() - started)
    assert report is not None
    counts = report.counts()
    median = statistics.median(timings)
    print(f"document: {size / 1024 / 1024:.2f} MB, {len(lines)} lines, "
          f"{areas} areas, {problems} problems and {measures} measures written")
    print(f"parsed:   {counts['areas']} areas, {counts['problems']} problems, "
          f"{counts['measures']} measures, {counts['progress_reports']} progress texts, "
          f"{len(report.unplaced)} unplaced, {len(report.differences())} differences")
    print(f"parse_report median over {args.runs} runs: {median:.3f} s "
          f"(min {min(timings):.3f}, max {max(timings):.3f}); goal < {GOAL_SECONDS:.1f} s: "
          f"{'met' if median < GOAL_SECONDS else 'NOT met'}")


if __name__ == "__main__":
    main()
