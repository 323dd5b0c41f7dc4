"""Benchmark of ``rectiflow import ledger`` on a large ledger (goal: 50,000 rows in ≤ 20 s and
under 500 MB peak memory, on SQLite and PostgreSQL).

Run from the repository root::

    python3 bench/import.py                          # 50,000 rows, every format, both backends
    python3 bench/import.py --rows 5000 --format csv --no-postgres
    python3 bench/import.py --format merged --runs 1 # the office-shaped workbook only
    python3 bench/import.py --profile                # also the top functions of one run

A ledger is generated into a temporary folder: about 200 areas (方面), 5,000 problems and
``--rows`` measures, with 20 people named by email or by name, a dozen units and the usual mix of
date spellings (real date cells in the workbook). Three formats: ``csv`` (UTF-8), ``xlsx`` (one
header row, every cell written) and ``merged``: an xlsx as offices keep it, written with
openpyxl's write-only mode, with two title rows, a two-row header (group cell 责任主体), 方面
merged over each area's rows, 问题/责任领导/责任部门 merged over each problem's rows and a
footer. Each run imports it into a fresh database (SQLite: a new temporary file; PostgreSQL: a new
schema, dropped afterwards) in a fresh Python process running the CLI's own entry point,
``workflow.cli.main`` with ``import ledger FILE --campaign TITLE --json``: the same file reading,
validation, single transaction and event wiring as a person typing the command. Only that command
is timed; the process's peak resident memory (``ru_maxrss``, interpreter and imports included) is
read at its end. The median of ``--runs`` runs is printed per backend and format.

PostgreSQL is reached through ``RECTIFLOW_BENCH_PG_URL`` (default: the local ``test`` database
with trust auth); when it cannot be reached the figure is skipped with a note.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import csv
import io
import json
import os
import pstats
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchdb import PG_URL, pg_schema_url  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from workflow import db  # noqa: E402
from workflow.models import Area, Measure, Problem  # noqa: E402
from workflow.services.people import add_person  # noqa: E402

GOAL_SECONDS = 20.0
GOAL_PEAK_MB = 500.0
CAMPAIGN = "十届校党委第五轮巡察反馈问题整改（压力测试）"
NOW = "2026-12-07T09:30:00+08:00"
HEADER = ["序号", "方面", "问题", "整改措施", "责任领导", "责任部门", "责任人", "完成时限", "整改类型"]

# ------------------------------------------------------------------ realistic text

AREA_TOPICS = [
    "学习传达", "落实全面从严治党责任", "基层党组织建设", "干部队伍建设", "作风建设", "意识形态工作",
    "财务管理", "采购管理", "资产管理", "安全生产", "食品安全", "物业服务", "能耗管理", "工程建设",
    "合同管理", "内部控制", "廉政风险防控", "制度建设", "档案管理", "信息化建设",
]
AREA_FORMS = ["有差距", "不到位", "存在薄弱环节", "有待加强", "落实不够有力", "监管不严",
              "执行不到位", "有短板", "还需深化", "仍有欠缺"]
PROBLEM_SUBJECTS = [
    "组织学习", "传达上级精神", "“三会一课”", "主题党日", "谈心谈话", "民主生活会", "食堂原材料采购",
    "供应商准入", "物业服务合同履约考核", "水电能耗统计", "维修工程验收", "固定资产盘点", "公务用车管理",
    "差旅费报销", "零星采购审批", "危化品管理", "消防设施巡检", "宿舍安全检查", "外包人员管理",
    "工会经费使用", "“三重一大”决策", "廉政谈话", "问题线索处置", "会议纪要归档",
]
PROBLEM_FORMS = ["还不到位", "不及时", "流于形式", "记录不规范", "缺少制度依据", "审批把关不严",
                 "台账不完整", "未形成闭环", "存在随意性", "监督检查不够"]
MEASURE_VERBS = ["制订", "修订", "建立", "完善", "开展", "落实", "规范", "健全", "组织", "严格执行"]
MEASURE_OBJECTS = [
    "《后勤教职工政治理论学习工作规程》", "学习台账", "《原材料采购管理办法》", "供应商资质专项清查",
    "物业服务质量月度考核细则", "能耗月度通报制度", "维修工程验收“双签字”制度", "固定资产年度盘点",
    "公务用车使用登记制度", "差旅费报销审核清单", "零星采购比价记录", "危化品出入库台账",
    "消防设施月度巡检", "宿舍安全隐患排查", "外包人员准入和考核机制", "“三重一大”事项清单",
    "廉政谈话提醒制度", "问题线索台账", "会议纪要归档制度", "“第一议题”学习制度",
]
MEASURE_TAILS = ["，每月组织一次集中学习", "，按季度通报执行情况", "，形成会议纪要并存档",
                 "，结果与合同款支付挂钩", "，实行双人验收", "，清退不合格供应商", "，建立问题整改清单",
                 "，整改情况在党总支会议上通报", "，纳入年度考核", "，每半年开展一次“回头看”", ""]
UNITS = ["后勤党总支办公室", "饮食服务中心", "物业管理科", "能源管理科", "维修工程科", "资产管理科",
         "综合办公室", "财务科", "安全保卫科", "学生公寓管理中心", "幼儿园", "校医院"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = ["伟", "芳", "静", "敏", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
         "秀英", "华", "平", "刚", "桂英"]


@dataclass(frozen=True)
class Staff:
    name: str
    email: str
    roles: tuple[str, ...]
    unit: str


def make_staff() -> list[Staff]:
    """20 people: 4 leaders and 16 owners, with distinct names."""
    people = []
    for i in range(20):
        name = SURNAMES[i] + GIVEN[i]
        role = ("leader",) if i < 4 else ("owner",)
        people.append(Staff(name, f"person{i:02d}@example.edu.cn", role, UNITS[i % len(UNITS)]))
    return people


def ledger_rows(rows: int, staff: list[Staff], seed: int = 20261207) -> Iterator[list[Any]]:
    """``rows`` ledger rows: ~200 areas, ~5,000 problems; people by email or by name."""
    rng = random.Random(seed)
    areas = [f"{AREA_TOPICS[i % len(AREA_TOPICS)]}{AREA_FORMS[i // len(AREA_TOPICS)]}"
             for i in range(200)]
    problems_per_area = 25
    measures_per_problem = max(1, rows // (len(areas) * problems_per_area))
    leaders = [p for p in staff if "leader" in p.roles]
    owners = [p for p in staff if "owner" in p.roles]
    start = date(2026, 12, 31)
    for i in range(rows):
        problem_no = i // measures_per_problem
        area = areas[(problem_no // problems_per_area) % len(areas)]
        subject = PROBLEM_SUBJECTS[problem_no % len(PROBLEM_SUBJECTS)]
        problem = (f"{subject}{PROBLEM_FORMS[(problem_no // 7) % len(PROBLEM_FORMS)]}"
                   f"（问题{problem_no % problems_per_area + 1}）")
        title = (f"{rng.choice(MEASURE_VERBS)}{rng.choice(MEASURE_OBJECTS)}"
                 f"{rng.choice(MEASURE_TAILS)}（第{i + 1}项）")
        leader, owner = rng.choice(leaders), rng.choice(owners)
        roll = rng.random()
        deadline: Any
        if roll < 0.08:
            kind, deadline = "长期坚持", "长期坚持"
        else:
            day = start + timedelta(days=rng.randrange(0, 180))
            kind = "立行立改" if roll < 0.2 else "限期整改"
            deadline = (day if roll < 0.6 else f"{day.year}年{day.month}月{day.day}日"
                        if roll < 0.8 else day.strftime("%Y/%m/%d"))
        yield [str(i + 1), area, problem, title,
               leader.email if i % 2 else leader.name, owner.unit,
               owner.name if i % 3 else owner.email, deadline, kind]


def write_csv(path: Path, rows: Iterator[list[Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for row in rows:
            writer.writerow([v.isoformat() if isinstance(v, date) else v for v in row])


def write_xlsx(path: Path, rows: Iterator[list[Any]]) -> None:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("整改台账")
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)  # dates become real date cells
    workbook.save(path)


def write_merged_xlsx(path: Path, rows: Iterator[list[Any]]) -> None:
    """The ledger as offices keep it: title rows, a two-row header, merged blocks, a footer.

    Rows of one problem share its 责任领导 and 责任部门 (those of its first row), written once and
    merged, as are the problem over its rows and the area over all of its problems' rows.
    """
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("整改台账")
    merged: list[str] = []  # openpyxl's MultiCellRange.add is linear: a plain list
    sheet.append(["后勤处巡察反馈问题整改台账（压力测试）"])
    sheet.append(["填报单位：后勤处    填报日期：2026年12月1日"])
    sheet.append(["序号", "问题类别", "存在问题", "整改任务", "责任主体", None, None, "完成时限",
                  "整改方式"])
    sheet.append([None, None, None, None, "牵头领导", "牵头单位", "具体责任人", None, None])
    for ref in ("A1:I1", "A2:I2", "A3:A4", "B3:B4", "C3:C4", "D3:D4", "E3:G3", "H3:H4", "I3:I4"):
        merged.append(ref)
    number = 4
    area_start = problem_start = 0
    area = problem = leader = unit = None

    def close(column_refs: str, start: int) -> None:
        if start and number > start:
            for column in column_refs:
                merged.append(f"{column}{start}:{column}{number}")

    for row in rows:
        new_area, new_problem = row[1] != area, row[1] != area or row[2] != problem
        if new_problem:
            close("CEF", problem_start)
        if new_area:
            close("B", area_start)
        number += 1
        if new_area:
            area, area_start = row[1], number
        if new_problem:
            problem, problem_start, leader, unit = row[2], number, row[4], row[5]
        sheet.append([row[0], row[1] if new_area else None, row[2] if new_problem else None,
                      row[3], leader if new_problem else None, unit if new_problem else None,
                      row[6], row[7], row[8]])
    close("CEF", problem_start)
    close("B", area_start)
    sheet.append(["填表人：张伟    审核人：王书记"])
    merged.append(f"A{number + 1}:I{number + 1}")
    sheet.merged_cells = merged  # the writer only iterates it
    workbook.save(path)


WRITERS: dict[str, Callable[[Path, Iterator[list[Any]]], None]] = {
    "csv": write_csv, "xlsx": write_xlsx, "merged": write_merged_xlsx}
SUFFIX = {"csv": "csv", "xlsx": "xlsx", "merged": "xlsx"}

# ------------------------------------------------------------------ databases


@contextlib.contextmanager
def fresh_sqlite(folder: Path) -> Iterator[str]:
    path = folder / f"bench-{uuid.uuid4().hex[:8]}.db"
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextlib.contextmanager
def fresh_postgres(_folder: Path) -> Iterator[str]:
    with pg_schema_url() as url:
        yield url


def prepare(url: str, staff: list[Staff]) -> None:
    """Migrate the fresh database and add the people the ledger names."""
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        with db.transaction(db.session_factory(engine)) as session:
            for person in staff:
                add_person(session, name=person.name, email=person.email, roles=person.roles,
                           unit=person.unit)
    finally:
        engine.dispose()


def check(url: str, expected_measures: int) -> tuple[int, int, int]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            counts = tuple(conn.execute(select(func.count(model.id))).scalar_one()
                           for model in (Area, Problem, Measure))
    finally:
        engine.dispose()
    if counts[2] != expected_measures:
        raise SystemExit(f"imported {counts[2]} measures, expected {expected_measures}")
    return counts  # type: ignore[return-value]


# ------------------------------------------------------------------ running the CLI


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu: float
    peak_mb: float
    summary: dict[str, Any]


def child(url: str, path: Path, profile: bool) -> None:
    """In a fresh process: ``rectiflow import ledger PATH --json``; prints one JSON line."""
    from workflow.cli import main

    for key in [k for k in os.environ if k.startswith("RECTIFLOW_")]:
        del os.environ[key]
    os.environ["RECTIFLOW_DATABASE_URL"] = url
    out, err = io.StringIO(), io.StringIO()
    profiler = cProfile.Profile() if profile else None
    code: Any = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        started, cpu_started = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        try:
            main(["--now", NOW, "import", "ledger", str(path), "--campaign", CAMPAIGN, "--json"])
        except SystemExit as exc:
            code = exc.code
        finally:
            if profiler is not None:
                profiler.disable()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    if code not in (0, None):
        raise SystemExit(f"import failed with exit code {code}:\n{err.getvalue()[:2000]}")
    if profiler is not None:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mb": peak_kb / 1024,
                      "summary": json.loads(out.getvalue())}))


def run_cli(url: str, path: Path, profile: bool = False) -> Run:
    """The import in a fresh Python process, so its peak memory is its own."""
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", url,
                           str(path)] + (["--profile"] if profile else []),
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    if profile:
        print(done.stderr)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return Run(result["seconds"], result["cpu"], result["peak_mb"], result["summary"])


def bench(backend: str, fresh: Callable[[Path], contextlib.AbstractContextManager[str]],
          fmt: str, path: Path, folder: Path, args: argparse.Namespace,
          staff: list[Staff]) -> tuple[float, float, float]:
    runs = []
    for number in range(args.runs):
        with fresh(folder) as url:
            prepare(url, staff)
            run = run_cli(url, path, args.profile and number == 0)
            areas, problems, measures = check(url, args.rows)
        runs.append(run)
        summary = run.summary
        print(f"  {backend:<10} {fmt:<6} run {number + 1}: {run.seconds:6.2f} s "
              f"(CPU {run.cpu:5.2f} s), peak {run.peak_mb:5.0f} MB  "
              f"({summary['areas']} 方面, {summary['problems']} 问题, {summary['measures']} 措施; "
              f"in the database: {areas}/{problems}/{measures})", flush=True)
    return (statistics.median(r.seconds for r in runs), statistics.median(r.cpu for r in runs),
            max(r.peak_mb for r in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--format", choices=["csv", "xlsx", "merged", "all"], default="all")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--profile", action="store_true", help="print a profile of the first run")
    parser.add_argument("--child", nargs=2, metavar=("URL", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.profile)
        return

    formats = ["csv", "xlsx", "merged"] if args.format == "all" else [args.format]
    staff = make_staff()
    backends: list[tuple[str, Callable[[Path], contextlib.AbstractContextManager[str]]]] = [
        ("sqlite", fresh_sqlite)]
    if not args.no_postgres:
        try:
            engine = db.make_engine(PG_URL)
            with engine.connect():
                pass
            engine.dispose()
            backends.append(("postgresql", fresh_postgres))
        except Exception as exc:  # noqa: BLE001 - any failure to connect means: skip it
            print(f"PostgreSQL not reachable at {PG_URL} ({type(exc).__name__}); SQLite only.")

    with tempfile.TemporaryDirectory(prefix="rectiflow-bench-import-") as tmp:
        folder = Path(tmp)
        files = {}
        for fmt in formats:
            path = folder / f"台账-{fmt}-{args.rows}.{SUFFIX[fmt]}"
            started = time.perf_counter()
            WRITERS[fmt](path, ledger_rows(args.rows, staff))
            files[fmt] = path
            print(f"generated {path.name}: {path.stat().st_size / 1e6:.1f} MB "
                  f"in {time.perf_counter() - started:.1f} s")
        results: list[tuple[str, str, tuple[float, float, float]]] = []
        for backend, fresh in backends:
            for fmt in formats:
                results.append((backend, fmt, bench(backend, fresh, fmt, files[fmt], folder, args,
                                                    staff)))

    print(f"\nrectiflow import ledger, {args.rows:,} rows, median of {args.runs} runs "
          f"(goal: ≤ {GOAL_SECONDS:g} s and < {GOAL_PEAK_MB:g} MB peak)")
    print(f"  (load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
          f"CPU is the importing process only; peak is its resident memory, the largest run)")
    for backend, fmt, (seconds, cpu, peak) in results:
        met = seconds <= GOAL_SECONDS and peak < GOAL_PEAK_MB
        print(f"  {backend:<10} {fmt:<6} {seconds:6.2f} s wall, {cpu:6.2f} s CPU, "
              f"peak {peak:5.0f} MB  ({args.rows / seconds:,.0f} rows/s)  "
              f"{'meets the goal' if met else 'MISSES the goal'}")


if __name__ == "__main__":
    main()
