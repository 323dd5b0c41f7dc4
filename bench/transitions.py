"""How many lifecycle actions per second ``perform`` sustains, one transaction per action.

Creates a fresh database (a SQLite file in a temporary folder; a fresh PostgreSQL schema, dropped
afterwards), imports N measures, then times rounds of actions through the service: each action
is its own transaction and writes its hash-chained history row. The first round walks every
measure start → submit → verify → close; later rounds reopen → submit → verify → close. The
figure is the median of the rounds.

PostgreSQL runs twice, always in this one process: with one thread (every action waits for
the previous one's round trips) and with two threads, each working through its own measures,
as a web server or worker serves concurrent requests (SQLite, with its single writer, runs with
one thread). On a 2-core machine the second thread
runs Python while the first waits for the database. The goal is judged on the best of the two;
both figures are printed.

    python3 bench/transitions.py [--n N] [--rounds R] [--backend sqlite|postgresql|both]
        [--workers K[,K...]] [--profile FILE]

PostgreSQL is reached at RECTIFLOW_BENCH_PG_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import cProfile
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchdb import fresh_engine  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from workflow import db  # noqa: E402
from workflow.importers.ledger import LedgerRow, write_rows  # noqa: E402
from workflow.lifecycle import Action, Kind  # noqa: E402
from workflow.models import Campaign, Measure  # noqa: E402
from workflow.services.audit import verify_history  # noqa: E402
from workflow.services.measures import ActionRequest, perform  # noqa: E402
from workflow.services.people import add_person  # noqa: E402
from workflow.timeutil import SHANGHAI  # noqa: E402

GOALS = {"sqlite": 1000.0, "postgresql": 500.0}
NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
NOW = datetime(2026, 12, 7, 9, 30, tzinfo=SHANGHAI)

FIRST_ROUND = [(Action.START, "owner"), (Action.SUBMIT, "owner"), (Action.VERIFY, "reviewer"),
               (Action.CLOSE, "leader")]
LATER_ROUNDS = [(Action.REOPEN, "leader"), *FIRST_ROUND[1:]]


@dataclass(frozen=True)
class Result:
    backend: str
    workers: int
    rates: list[float]
    cpu_ms: list[float]  # this process's CPU time per action: less sensitive to a busy machine

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    @property
    def goal(self) -> float:
        return GOALS[self.backend]

    @property
    def met(self) -> bool:
        return self.median >= self.goal


def import_measures(sessions: sessionmaker[Session], n: int) -> tuple[list[int], dict[str, str]]:
    """People, a campaign and ``n`` measures, the way the ledger importer writes them."""
    with db.transaction(sessions) as session:
        people = {
            key: add_person(session, name=name, email=f"{key}@example.edu.cn", roles=[role],
                            unit=unit)
            for key, name, role, unit in [
                ("secretary", "书记", "leader", "党委办公室"),
                ("leader", "分管领导", "leader", "后勤处"),
                ("reviewer", "整改办", "reviewer", "整改办"),
                ("owner", "责任人", "owner", "饮食服务中心"),
            ]
        }
        campaign = Campaign(title="基准测试巡察整改", created_at=NOW,
                            first_responsible_id=people["secretary"].id)
        session.add(campaign)
        session.flush()
        rows = [LedgerRow(row=i + 2, seq=str(i + 1), area=f"方面{i % 5 + 1}",
                          problem=f"问题{i % 40 + 1}", title=f"整改措施{i + 1}",
                          leader_id=people["leader"].id, unit="饮食服务中心",
                          owner_id=people["owner"].id, deadline=date(2026, 12, 31),
                          kind=Kind.DEADLINE) for i in range(n)]
        write_rows(session, campaign, rows, NOW)
        ids = list(session.scalars(select(Measure.id).order_by(Measure.id)))
        return ids, {key: person.email for key, person in people.items()}


def _perform_all(sessions: sessionmaker[Session], measure_ids: list[int], emails: dict[str, str],
                 steps: list[tuple[Action, str]], now: datetime) -> None:
    for action, who in steps:
        for measure_id in measure_ids:
            with db.transaction(sessions) as session:
                perform(session, ActionRequest(measure_id, action, emails[who],
                                               comment="基准测试：已整改"), now=now)


def one_round(sessions: sessionmaker[Session], measure_ids: list[int], emails: dict[str, str],
              steps: list[tuple[Action, str]], now: datetime, workers: int) -> tuple[float, float]:
    """Perform ``steps`` on every measure, one transaction per action, by ``workers`` threads
    each working through its own share of the measures.

    Returns actions per second (wall clock) and this process's CPU milliseconds per action."""
    shares = [measure_ids[i::workers] for i in range(workers)]
    started, cpu_started = time.perf_counter(), time.process_time()
    if workers == 1:
        _perform_all(sessions, measure_ids, emails, steps, now)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for done in [pool.submit(_perform_all, sessions, share, emails, steps, now)
                         for share in shares]:
                done.result()
    actions = len(steps) * len(measure_ids)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return actions / elapsed, cpu * 1000 / actions


def run(backend: str, n: int, rounds: int, workers: int,
        profile: cProfile.Profile | None) -> Result:
    """Import ``n`` measures into a fresh database and time ``rounds`` rounds of actions."""
    with fresh_engine(backend) as engine:
        sessions = db.session_factory(engine)
        measure_ids, emails = import_measures(sessions, n)
        rates: list[float] = []
        cpu_ms: list[float] = []
        for number in range(rounds):
            steps = FIRST_ROUND if number == 0 else LATER_ROUNDS
            if profile is not None:
                profile.enable()
            rate, cpu = one_round(sessions, measure_ids, emails, steps,
                                  NOW + timedelta(hours=number), workers)
            if profile is not None:
                profile.disable()
            rates.append(rate)
            cpu_ms.append(cpu)
            print(f"  {NAMES[backend]}（{workers} 线程）第 {number + 1} 轮：{rate:,.0f} 次/秒"
                  f"（本进程 CPU {cpu:.2f} 毫秒/次）", flush=True)
        with db.transaction(sessions) as session:
            report = verify_history(session)
        if not report.ok:
            raise SystemExit(f"{NAMES[backend]}：历史校验失败：{report.problems[:3]}")
        expected_entries = n * (1 + 4 * rounds)
        if report.entries != expected_entries:
            raise SystemExit(f"{NAMES[backend]}：历史应有 {expected_entries} 条，实有 {report.entries} 条")
        return Result(backend, workers, rates, cpu_ms)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="状态机操作吞吐量基准（每个操作一个事务）")
    parser.add_argument("--n", type=int, default=500, help="导入的措施数（默认 500）")
    parser.add_argument("--rounds", type=int, default=5, help="计时轮数，取中位数（默认 5）")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--workers", default="1,2",
                        help="本进程内的线程数，各自办理一部分措施；逗号分隔依次测量（默认 1,2）")
    parser.add_argument("--profile", metavar="FILE", help="把 cProfile 结果写入 FILE（pstats 格式）")
    args = parser.parse_args(argv)
    try:
        workers = [int(w) for w in args.workers.split(",")]
    except ValueError:
        parser.error(f"--workers 应为逗号分隔的整数，而不是 {args.workers!r}")
    if args.n < 1 or args.rounds < 1 or not all(1 <= w <= 15 for w in workers):
        parser.error("--n 和 --rounds 须为正整数，--workers 须在 1 到 15 之间")

    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    profile = cProfile.Profile() if args.profile else None
    results = []
    for backend in backends:
        # SQLite has one writer: a second thread's transaction only meets "database is locked"
        for count in (workers if backend == "postgresql" else [1]):
            print(f"{NAMES[backend]}：导入 {args.n} 项措施，计时 {args.rounds} 轮，"
                  f"每轮 {4 * args.n} 个操作（每个操作一个事务并写一条历史），{count} 个线程",
                  flush=True)
            results.append(run(backend, args.n, args.rounds, count, profile))
    if profile is not None:
        profile.dump_stats(args.profile)

    print()
    for result in results:
        print(f"{NAMES[result.backend]:<10} {result.workers} 线程 中位数 {result.median:8,.0f} 次/秒"
              f"（目标 ≥{result.goal:,.0f}/秒）；"
              f"本进程 CPU 中位数 {statistics.median(result.cpu_ms):.2f} 毫秒/次")
    met = {backend: any(r.met for r in results if r.backend == backend) for backend in backends}
    for backend in backends:
        print(f"{NAMES[backend]}：{'达标' if met[backend] else '未达标'}（一个进程内）")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
