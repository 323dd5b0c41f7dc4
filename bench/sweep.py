"""Benchmark of the reminder sweep, and of the one-job-per-reminder approach it replaces.

Run from the repository root::

    python3 bench/sweep.py            # full sizes (1,000,000 idle, 100,000 burst)
    python3 bench/sweep.py --quick    # small sizes, a fast sanity check
    python3 bench/sweep.py --only burst --against ../older-checkout --rounds 3 --no-documents
                                      # this checkout's burst against another's, in turn;
                                      # --no-documents: without the 督办 documents (for a
                                      # checkout from before them: the same work on both sides)

PostgreSQL is reached through ``RECTIFLOW_BENCH_PG_URL`` (default: the local ``test`` database
with trust auth). Every run works in a fresh schema migrated with ``db.upgrade`` (SQLite: a
temporary file) and drops it at the end, whatever happens.

Figures (medians over several runs; ratios come from the same run):

1. idle sweep: nothing due, over N and over N/100 measures (PostgreSQL). The claim query is the
   exact statement the sweep sends (captured from a real ``sweep()`` call) run under
   ``EXPLAIN (ANALYZE, BUFFERS)``; its "Execution Time" is reported, and so is the wall time of
   a whole ``sweep()`` call.
2. burst: 100,000 measures due at once, spread over every stage, on PostgreSQL and SQLite;
   messages and items written, and a second sweep (and a replay) that writes nothing.
3. APScheduler 3 with one date job per reminder stage in its SQLAlchemyJobStore (PostgreSQL),
   against rectiflow's ``next_reminder_at`` column: planning the reminders of 100,000 measures,
   and finding the due ones (APScheduler's ``get_due_jobs`` against the sweep's first claim,
   ``SweepStore.read_due``, which also returns what planning needs).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import pickle
import random
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchdb import PG_URL, fresh_engine  # noqa: E402
from sqlalchemy import Engine, bindparam, event, func, insert, select, text, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from workflow import db  # noqa: E402
from workflow.models import (  # noqa: E402
    Area,
    Campaign,
    Measure,
    OutboxItem,
    OutboxMessage,
    Person,
    Problem,
    ReminderSchedule,
)
from workflow.policy import PolicySet, load_policy_file, parse_policy  # noqa: E402
from workflow.reminders import WorkdayIndex  # noqa: E402
from workflow.services.sweep import (  # noqa: E402
    BATCH,
    ReminderContext,
    reminder_context,
    store_for,
    sweep,
)
from workflow.timeutil import SHANGHAI, local_date  # noqa: E402

#: where the measures' reminder times live (migration 0020)
SCHEDULE: Any = ReminderSchedule.__table__

#: A Monday, 10:00 in Asia/Shanghai: a working day, inside the send window.
NOW = datetime(2026, 6, 15, 2, 0, tzinfo=UTC)
CHANNELS = frozenset({"email"})
OWNERS, LEADERS, REVIEWERS = 2000, 100, 3
CAMPAIGNS = 4
PROBLEMS_PER_CAMPAIGN = 250
#: One campaign overrides the policy, as a campaign may (design: overridable per campaign).
CAMPAIGN_POLICY = {"reminders": {"before": [5, 2, 0]}}


@dataclass(frozen=True)
class Sizes:
    idle: int
    burst: int
    plan: int
    aps_add: int          # measures whose jobs are added one by one through APScheduler
    idle_runs: int
    burst_runs: int
    plan_runs: int
    due_runs: int


FULL = Sizes(idle=1_000_000, burst=100_000, plan=100_000, aps_add=2_500,
             idle_runs=25, burst_runs=3, plan_runs=3, due_runs=7)
QUICK = Sizes(idle=100_000, burst=10_000, plan=10_000, aps_add=500,
              idle_runs=10, burst_runs=2, plan_runs=2, due_runs=5)


@dataclass
class Report:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, figure: str, value: str, goal: str = "", verdict: str = "") -> None:
        self.rows.append((figure, value, goal, verdict))
        print(f"  {figure}: {value}" + (f"   (goal {goal}: {verdict})" if goal else ""), flush=True)

    def print_table(self) -> None:
        widths = [max(len(r[i]) for r in [*self.rows, HEADER]) for i in range(4)]
        line = "+".join("-" * (w + 2) for w in widths)
        print("\n" + line)
        for row in [HEADER, *self.rows]:
            print("|".join(f" {cell:<{w}} " for cell, w in zip(row, widths, strict=True)))
            if row is HEADER:
                print(line)
        print(line)
        for note in self.notes:
            print(f"* {note}")


HEADER = ("figure", "value", "goal", "met?")


def verdict(ok: bool) -> str:
    return "yes" if ok else "NO"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def median_of(runs: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(runs))


# ---------------------------------------------------------------------------------- databases


@contextmanager
def pg_schema() -> Iterator[Engine]:
    """A fresh, migrated PostgreSQL schema; dropped on exit."""
    with fresh_engine("postgresql") as engine:
        yield engine


@contextmanager
def sqlite_file() -> Iterator[Engine]:
    """A fresh, migrated SQLite file in a temporary folder; removed on exit."""
    with fresh_engine("sqlite") as engine:
        yield engine


def vacuum_analyze(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def fix_sequences(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        for table in ("person", "campaign", "area", "problem", "measure"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                              f"(SELECT max(id) FROM {table}))"))


# ---------------------------------------------------------------------------------- fixtures


def seed_org(engine: Engine, rng: random.Random) -> None:
    """People (owners, leaders, a first_responsible per campaign, reviewers), campaigns, areas
    and problems. Ids are fixed so that measures can be generated without looking them up."""
    people: list[dict[str, Any]] = []
    first_id = OWNERS + LEADERS + 1
    for pid in range(1, first_id + CAMPAIGNS + REVIEWERS):
        roles = (["owner"] if pid <= OWNERS else ["leader"] if pid < first_id
                 else ["first_responsible"] if pid < first_id + CAMPAIGNS else ["reviewer"])
        people.append({
            "id": pid, "name": f"人员{pid}", "email": f"p{pid}@bench.example",
            "wecom_id": None, "mobile": None, "roles": roles, "unit_id": None,
            "delegate_id": None, "delegate_until": None,
            "channel_preference": "auto", "password_hash": None, "active": True})
    campaigns = [{"id": c, "title": f"第{c}轮巡察", "feedback_date": date(2026, 3, 1),
                  "first_responsible_id": first_id + c - 1, "created_at": NOW - timedelta(days=90),
                  "policy": CAMPAIGN_POLICY if c == CAMPAIGNS else None}
                 for c in range(1, CAMPAIGNS + 1)]
    areas = [{"id": c, "campaign_id": c, "position": 0, "title": "学习传达有差距"}
             for c in range(1, CAMPAIGNS + 1)]
    problems = [{"id": (c - 1) * PROBLEMS_PER_CAMPAIGN + p, "area_id": c, "parent_id": None,
                 "position": p, "text": f"问题{p}"}
                for c in range(1, CAMPAIGNS + 1) for p in range(1, PROBLEMS_PER_CAMPAIGN + 1)]
    with engine.begin() as conn:
        conn.execute(insert(Person.__table__), people)
        away = [{"pid": pid, "delegate": pid % OWNERS + 1} for pid in range(1, OWNERS + 1)
                if rng.random() < 0.02]  # some owners are away (出差/休假) and name a delegate
        table = Person.__table__
        conn.execute(update(table).where(table.c.id == bindparam("pid")).values(
            delegate_id=bindparam("delegate"), delegate_until=local_date(NOW) + timedelta(days=5)),
            away)
        conn.execute(insert(Campaign.__table__), campaigns)
        conn.execute(insert(Area.__table__), areas)
        conn.execute(insert(Problem.__table__), problems)
    fix_sequences(engine)


def shanghai_at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI).astimezone(UTC)


def _workday_offset(days: WorkdayIndex, today: date, k: int) -> date:
    if k > 0:
        return days.nth_after(today, k)
    if k < 0:
        return days.nth_before(today, -k)
    return today


def _measure(mid: int, rng: random.Random) -> dict[str, Any]:
    campaign = rng.randint(1, CAMPAIGNS)
    return {
        "id": mid, "campaign_id": campaign,
        "problem_id": (campaign - 1) * PROBLEMS_PER_CAMPAIGN + rng.randint(1, PROBLEMS_PER_CAMPAIGN),
        "position": mid, "seq": str(mid), "title": f"整改措施 {mid}", "kind": "deadline",
        "state": "assigned", "deadline": None, "original_deadline": None,
        "owner_id": rng.randint(1, OWNERS), "leader_id": OWNERS + rng.randint(1, LEADERS),
        "unit_id": None, "version": 1, "next_reminder_at": None,
        "created_at": NOW - timedelta(days=60), "state_changed_at": NOW - timedelta(days=60),
        "last_progress_at": None}


#: Working days from today to the deadline of open measures in the burst: every before:N stage,
#: the deadline day, the escalation ladder and its repeats.
BURST_OFFSETS = (8, 7, 5, 3, 2, 1, 0, -1, -2, -3, -5, -8, -13, -20)


def burst_rows(n: int, days: WorkdayIndex, rng: random.Random) -> list[dict[str, Any]]:
    """``n`` measures all due now, spread over states, kinds and stages."""
    today = local_date(NOW)
    rows = []
    for mid in range(1, n + 1):
        row = _measure(mid, rng)
        row["next_reminder_at"] = NOW - timedelta(hours=1)
        r = rng.random()
        if r < 0.62:  # open: before:N, the deadline day, overdue escalations, stagnation
            row["state"] = "assigned" if r < 0.32 else "in_progress"
            k = rng.random()
            row["kind"] = "deadline" if k < 0.8 else "immediate" if k < 0.9 else "long_term"
            if not (row["kind"] == "immediate" and k < 0.85):
                row["deadline"] = _workday_offset(days, today, rng.choice(BURST_OFFSETS))
            if row["state"] == "in_progress" and rng.random() < 0.5:
                row["last_progress_at"] = shanghai_at(days.nth_before(today, rng.randint(1, 15)))
        elif r < 0.78:  # submitted, waiting for the reviewers
            row["state"] = "submitted"
            row["state_changed_at"] = shanghai_at(days.nth_before(today, rng.randint(2, 12)))
        elif r < 0.95:  # verified, waiting for the leader's sign-off
            row["state"] = "verified"
            row["kind"] = "deadline" if rng.random() < 0.8 else "long_term"
            row["state_changed_at"] = shanghai_at(days.nth_before(today, rng.randint(3, 15)))
        else:  # closed long-term measures keep their monthly check-in
            row["state"], row["kind"] = "closed", "long_term"
            row["state_changed_at"] = NOW - timedelta(days=rng.randint(35, 200))
        row["original_deadline"] = row["deadline"]
        rows.append(row)
    return rows


def plan_rows(n: int, days: WorkdayIndex, rng: random.Random) -> list[dict[str, Any]]:
    """``n`` freshly imported deadline measures, deadlines 8–68 working days away, so each has
    its four before:N reminders ahead; ``next_reminder_at`` = now, as the ledger import writes."""
    today = local_date(NOW)
    rows = []
    for mid in range(1, n + 1):
        row = _measure(mid, rng)
        row["campaign_id"] = 1  # the default policy: before = 7, 3, 1, 0
        row["problem_id"] = rng.randint(1, PROBLEMS_PER_CAMPAIGN)
        row["deadline"] = row["original_deadline"] = days.nth_after(today, rng.randint(8, 68))
        row["created_at"] = row["state_changed_at"] = NOW
        row["next_reminder_at"] = NOW
        rows.append(row)
    return rows


def insert_measures(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """The measures of ``rows``, their ``next_reminder_at`` into the schedule."""
    times = [{"measure_id": row["id"], "next_reminder_at": row["next_reminder_at"]}
             for row in rows if row["next_reminder_at"] is not None]
    rows = [{k: v for k, v in row.items() if k != "next_reminder_at"} for row in rows]
    with engine.begin() as conn:
        for start in range(0, len(rows), 20_000):
            conn.execute(insert(Measure.__table__), rows[start:start + 20_000])
        for start in range(0, len(times), 20_000):
            conn.execute(insert(SCHEDULE), times[start:start + 20_000])
    fix_sequences(engine)
    vacuum_analyze(engine)


IDLE_INSERT = """
INSERT INTO measure (id, campaign_id, problem_id, position, seq, title, kind, state, deadline,
                     original_deadline, owner_id, leader_id, unit_id, version,
                     created_at, state_changed_at, last_progress_at)
SELECT g, 1, 1 + g % :problems, g, g::text, '整改措施 ' || g, 'deadline',
       CASE WHEN g % 10 = 0 THEN 'closed' ELSE 'in_progress' END,
       CAST(:today AS date) + (40 + g % 60), CAST(:today AS date) + (40 + g % 60),
       1 + g % :owners, :owners + 1 + g % :leaders, NULL, 1,
       CAST(:now AS timestamptz) - interval '30 days', CAST(:now AS timestamptz) - interval '2 days',
       NULL
FROM generate_series(CAST(:lo AS integer), CAST(:hi AS integer)) AS g
"""


IDLE_SCHEDULE = """
INSERT INTO reminder_schedule (measure_id, next_reminder_at)
SELECT g, CAST(:now AS timestamptz) + interval '1 day' + random() * interval '29 days'
FROM generate_series(CAST(:lo AS integer), CAST(:hi AS integer)) AS g WHERE g % 10 <> 0
"""


def load_idle(engine: Engine, lo: int, hi: int) -> None:
    """Measures ``lo``..``hi`` via INSERT ... SELECT generate_series: next reminder 1–30 days
    ahead (random order), every tenth closed with no next reminder."""
    with engine.begin() as conn:
        for start in range(lo, hi + 1, 250_000):
            conn.execute(text(IDLE_INSERT), {
                "problems": PROBLEMS_PER_CAMPAIGN, "today": local_date(NOW), "now": NOW,
                "owners": OWNERS, "leaders": LEADERS, "lo": start,
                "hi": min(start + 250_000 - 1, hi)})
            conn.execute(text(IDLE_SCHEDULE), {"now": NOW, "lo": start,
                                               "hi": min(start + 250_000 - 1, hi)})
    fix_sequences(engine)
    vacuum_analyze(engine)


# ---------------------------------------------------------------------------------- helpers


#: ``--no-documents``: the default policy with its 督办 documents switched off, so a burst does the
#: work a checkout from before the documents did (``--against`` compares like with like)
DOCUMENTS = {"on": True}


def bench_policies() -> PolicySet:
    policies = load_policy_file(None)
    if DOCUMENTS["on"]:
        return policies
    return parse_policy({**policies.raw, "documents": {
        **policies.raw.get("documents", {}), "enabled": False}})


def make_context(engine: Engine) -> ReminderContext:
    with db.transaction(db.session_factory(engine)) as session:
        return reminder_context(session, bench_policies(), CHANNELS)


@contextmanager
def capture_claim(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Record the claim queries the sweep sends, as the driver receives them."""
    seen: list[tuple[str, Any]] = []

    def recording(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                  executemany: bool) -> None:
        if "next_reminder_at <=" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", recording)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", recording)


def claim_statement(engine: Engine, ctx: ReminderContext, now: datetime) -> tuple[str, Any]:
    """The exact claim statement and parameters of a real ``sweep()`` call (rolled back)."""
    with capture_claim(engine) as seen:
        with db.session_factory(engine)() as session:
            session.begin()
            sweep(session, ctx, now=now)
            session.rollback()
    if not seen:
        raise RuntimeError("the sweep sent no claim query")
    return seen[0]


def explain_claim(engine: Engine, statement: str, parameters: Any) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of the claim, in a transaction rolled back."""
    with engine.connect() as conn:
        plan = conn.exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters).scalar_one()
        conn.rollback()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    return plan[0]


def plan_nodes(node: dict[str, Any]) -> list[str]:
    names = [node["Node Type"] + (f" using {node['Index Name']}" if "Index Name" in node else "")]
    for child in node.get("Plans", []):
        names.extend(plan_nodes(child))
    return names


def timed_sweep(engine: Engine, ctx: ReminderContext, now: datetime, *, commit: bool
                ) -> tuple[float, Any]:
    """Seconds for one ``sweep()`` (plus its commit when ``commit``), and its result."""
    factory = db.session_factory(engine)
    with factory() as session:
        session.begin()
        session.connection(execution_options={"sqlite_immediate": True})
        start = time.perf_counter()
        result = sweep(session, ctx, now=now)
        if commit:
            session.commit()
        elapsed = time.perf_counter() - start
        if not commit:
            session.rollback()
    return elapsed, result


def count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


# ---------------------------------------------------------------------------------- 1. idle


def idle_figures(engine: Engine, ctx: ReminderContext, runs: int) -> tuple[float, float, list[str]]:
    statement, parameters = claim_statement(engine, ctx, NOW)
    for _ in range(3):  # warm the cache, as a sweep every few minutes keeps it warm
        explain_claim(engine, statement, parameters)
        timed_sweep(engine, ctx, NOW, commit=False)
    plans = [explain_claim(engine, statement, parameters) for _ in range(runs)]
    execution = statistics.median(p["Execution Time"] for p in plans) / 1000
    wall = median_of(runs, lambda: timed_sweep(engine, ctx, NOW, commit=False)[0])
    last = plans[-1]["Plan"]
    info = [" -> ".join(plan_nodes(last)),
            f"shared hit={last.get('Shared Hit Blocks', 0)} read={last.get('Shared Read Blocks', 0)}"]
    return execution, wall, info


def bench_idle(sizes: Sizes, report: Report) -> None:
    small = sizes.idle // 100
    print(f"\n1. Idle sweep on PostgreSQL: {small:,} then {sizes.idle:,} measures, nothing due",
          flush=True)
    with pg_schema() as engine:
        seed_org(engine, random.Random(1))
        ctx = make_context(engine)
        load_idle(engine, 1, small)
        small_exec, small_wall, small_info = idle_figures(engine, ctx, sizes.idle_runs)
        started = time.perf_counter()
        load_idle(engine, small + 1, sizes.idle)
        print(f"  (loaded {sizes.idle - small:,} more measures and VACUUM ANALYZE in "
              f"{time.perf_counter() - started:.1f} s)", flush=True)
        big_exec, big_wall, big_info = idle_figures(engine, ctx, sizes.idle_runs)
    report.add(f"idle claim query, EXPLAIN Execution Time, {small:,} measures", ms(small_exec))
    report.add(f"idle claim query, EXPLAIN Execution Time, {sizes.idle:,} measures", ms(big_exec),
               "< 5 ms", verdict(big_exec < 0.005))
    ratio = big_exec / small_exec
    report.add(f"idle claim query, ratio {sizes.idle:,} / {small:,}", f"{ratio:.2f}x", "< 2x",
               verdict(ratio < 2))
    report.add(f"idle sweep() wall time, {small:,} measures", ms(small_wall))
    report.add(f"idle sweep() wall time, {sizes.idle:,} measures", ms(big_wall), "< 5 ms",
               verdict(big_wall < 0.005))
    wall_ratio = big_wall / small_wall
    report.add(f"idle sweep() wall time, ratio {sizes.idle:,} / {small:,}", f"{wall_ratio:.2f}x",
               "< 2x", verdict(wall_ratio < 2))
    report.notes.append(f"claim plan at {sizes.idle:,}: {big_info[0]} ({big_info[1]}); "
                        f"at {small:,}: {small_info[1]}")


# ---------------------------------------------------------------------------------- 2. burst


def reset_burst(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(OutboxItem.__table__.delete())
        conn.execute(OutboxMessage.__table__.delete())
        conn.execute(update(SCHEDULE).values(next_reminder_at=NOW - timedelta(hours=1)))
    vacuum_analyze(engine)


def burst_on(engine: Engine, label: str, sizes: Sizes, report: Report) -> float:
    """The burst on one backend; returns the median seconds of ``sweep()`` + commit."""
    rng = random.Random(2)
    seed_org(engine, rng)
    ctx = make_context(engine)
    insert_measures(engine, burst_rows(sizes.burst, ctx.days, rng))
    times = []
    first, _ = timed_sweep(engine, ctx, NOW, commit=True)
    times.append(first)
    messages, items = count(engine, OutboxMessage), count(engine, OutboxItem)
    _, second = timed_sweep(engine, ctx, NOW, commit=True)
    with engine.begin() as conn:  # a replay: every measure due again, every key written before
        conn.execute(update(SCHEDULE).values(next_reminder_at=NOW - timedelta(hours=1)))
    replay_time, replay = timed_sweep(engine, ctx, NOW, commit=True)
    replay_items = count(engine, OutboxItem) - items
    for _ in range(sizes.burst_runs - 1):
        reset_burst(engine)
        times.append(timed_sweep(engine, ctx, NOW, commit=True)[0])
    took = statistics.median(times)
    goal = 10 if label == "PostgreSQL" else 20
    report.add(f"burst {sizes.burst:,} due, {label}: sweep() + commit", f"{took:.2f} s",
               f"<= {goal} s", verdict(took <= goal))
    report.add(f"burst {sizes.burst:,} due, {label}: written",
               f"{messages:,} messages, {items:,} items")
    report.add(f"burst {label}: second sweep", f"{second.measures:,} measures, "
               f"{len(second.messages)} messages", "0 messages", verdict(not second.messages))
    report.add(f"burst {label}: replay, all {sizes.burst:,} due again",
               f"{len(replay.messages)} messages, {replay_items} items in {replay_time:.2f} s",
               "0 messages", verdict(not replay.messages and replay_items == 0))
    return took


def bench_burst(sizes: Sizes, report: Report) -> None:
    print(f"\n2. Burst: {sizes.burst:,} measures due at once, {OWNERS:,} owners, {LEADERS} leaders",
          flush=True)
    with pg_schema() as engine:
        postgresql = burst_on(engine, "PostgreSQL", sizes, report)
    with sqlite_file() as engine:
        sqlite = burst_on(engine, "SQLite", sizes, report)
    report.add(f"burst {sizes.burst:,} due, side by side: PostgreSQL | SQLite",
               f"{postgresql:.2f} s | {sqlite:.2f} s")
    report.notes.append(f"burst: median of {sizes.burst_runs} runs (first run checked, later runs "
                        "after deleting the outbox and making every measure due again); replay = "
                        "a sweep after the same reminders were written, as two clocks would do")


# ---------------------------------------------------------------------------------- 3. APScheduler


def stage_times(ctx: ReminderContext, rows: list[dict[str, Any]]
                ) -> list[tuple[int, str, datetime]]:
    """The before:N reminders of each measure as (measure, stage, when): the jobs a user of
    APScheduler would add. Computed with rectiflow's own calendar, outside any timing."""
    policy = ctx.base
    jobs = []
    for row in rows:
        for n in policy.before:
            day = (ctx.days.on_or_before(row["deadline"]) if n == 0
                   else ctx.days.nth_before(row["deadline"], n))
            jobs.append((row["id"], f"before:{n}", ctx.planner.window_open(day, policy)))
    return jobs


def aps_add_jobs(scheduler: Any, jobs: list[tuple[int, str, datetime]]) -> float:
    start = time.perf_counter()
    for mid, stage, when in jobs:
        scheduler.add_job("builtins:print", "date", run_date=when, args=[mid, stage],
                          id=f"{mid}:{stage}")
    return time.perf_counter() - start


def aps_bulk_fill(engine: Engine, store: Any, template: Any,
                  jobs: list[tuple[int, str, datetime]]) -> None:
    """Fill the job store to full size with the same rows ``add_job`` writes (not timed)."""
    from apscheduler.triggers.date import DateTrigger

    state = template.__getstate__()
    table = store.jobs_t
    with engine.begin() as conn:
        for start in range(0, len(jobs), 20_000):
            chunk = []
            for mid, stage, when in jobs[start:start + 20_000]:
                job_state = copy.copy(state)
                job_state.update(id=f"{mid}:{stage}", args=(mid, stage), next_run_time=when,
                                 trigger=DateTrigger(when, timezone=UTC))
                chunk.append({"id": job_state["id"], "next_run_time": when.timestamp(),
                              "job_state": pickle.dumps(job_state, store.pickle_protocol)})
            conn.execute(table.insert(), chunk)


def rectiflow_plan(engine: Engine, ctx: ReminderContext, runs: int) -> tuple[float, int]:
    """Planning as rectiflow does it after an import: a sweep over measures whose
    ``next_reminder_at`` is now computes each next reminder and writes it back."""
    times = []
    planned = 0
    for _ in range(runs):
        with engine.begin() as conn:
            conn.execute(update(SCHEDULE).values(next_reminder_at=NOW))
        vacuum_analyze(engine)
        took, result = timed_sweep(engine, ctx, NOW, commit=True)
        if result.messages:
            raise RuntimeError("planning wrote messages: the fixture is wrong")
        planned = result.measures
        times.append(took)
    return statistics.median(times), planned


def timed_claim(engine: Engine, now: datetime) -> tuple[float, int]:
    """Seconds for the sweep's first claim (``read_due``, as ``sweep()`` calls it), and the
    number of due measures it returned; the transaction is begun before timing."""
    with db.session_factory(engine)() as session:
        session.begin()
        store = store_for(session)
        session.connection()
        start = time.perf_counter()
        found = len(store.read_due(now, BATCH, after=None))
        took = time.perf_counter() - start
        session.rollback()
    return took, found


#: The claim's predicate and order with no planning columns: an index-only scan.
_LOOKUP = ("SELECT measure_id FROM reminder_schedule WHERE next_reminder_at IS NOT NULL "
           "AND next_reminder_at <= %(now)s ORDER BY next_reminder_at, measure_id "
           "LIMIT %(batch)s")


def timed_lookup(engine: Engine, now: datetime) -> float:
    """Seconds to find the due measures' ids alone (for reference: the sweep does not run this)."""
    with db.session_factory(engine)() as session:
        session.begin()
        conn = session.connection()
        conn.exec_driver_sql(_LOOKUP, {"now": now, "batch": BATCH}).all()
        start = time.perf_counter()
        conn.exec_driver_sql(_LOOKUP, {"now": now, "batch": BATCH}).all()
        took = time.perf_counter() - start
        session.rollback()
    return took


def bench_apscheduler(sizes: Sizes, report: Report) -> None:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    n = sizes.plan
    print(f"\n3. APScheduler 3 SQLAlchemyJobStore vs next_reminder_at, {n:,} measures, PostgreSQL",
          flush=True)
    with pg_schema() as engine:
        rng = random.Random(3)
        seed_org(engine, rng)
        ctx = make_context(engine)
        rows = plan_rows(n, ctx.days, rng)
        insert_measures(engine, rows)
        jobs = stage_times(ctx, rows)
        per_measure = len(jobs) / n

        ours, planned = rectiflow_plan(engine, ctx, sizes.plan_runs)

        store = SQLAlchemyJobStore(engine=engine)
        scheduler = BackgroundScheduler(jobstores={"default": store}, timezone=UTC)
        scheduler.start(paused=True)
        try:
            subset = int(sizes.aps_add * per_measure)
            added = aps_add_jobs(scheduler, jobs[:subset])
            aps_bulk_fill(engine, store, scheduler.get_job(f"{jobs[0][0]}:{jobs[0][1]}"),
                          jobs[subset:])
            vacuum_analyze(engine)
            aps_plan = added * len(jobs) / subset

            # Finding the due ones: tomorrow's window opening, when the first before:7
            # reminders fall due (the same reminders on both sides).
            due_now = ctx.planner.window_open(ctx.days.nth_after(local_date(NOW), 1), ctx.base)
            store.get_due_jobs(due_now)
            aps_due_times = []
            for _ in range(sizes.due_runs):
                start = time.perf_counter()
                due_jobs = store.get_due_jobs(due_now)
                aps_due_times.append(time.perf_counter() - start)
            aps_due = statistics.median(aps_due_times)
            total_jobs = count(engine, store.jobs_t)
        finally:
            # the reminder times lie in the past of the real clock: empty the store first, or
            # the scheduler's thread would try to run them as it stops
            store.remove_all_jobs()
            scheduler.shutdown(wait=False)

        statement, parameters = claim_statement(engine, ctx, due_now)
        timed_claim(engine, due_now)
        claims = [timed_claim(engine, due_now) for _ in range(sizes.due_runs)]
        our_due = statistics.median(t for t, _ in claims)
        claimed = claims[0][1]
        explain = statistics.median(explain_claim(engine, statement, parameters)["Execution Time"]
                                    for _ in range(sizes.due_runs)) / 1000
        lookup = statistics.median(timed_lookup(engine, due_now) for _ in range(sizes.due_runs))

    report.add(f"plan {n:,}: APScheduler add_job, {per_measure:.0f} jobs/measure "
               f"({len(jobs):,} jobs)", f"{aps_plan:.1f} s (SCALED x{len(jobs) / subset:.0f} "
               f"from {subset:,} jobs in {added:.2f} s)")
    report.add(f"plan {n:,}: rectiflow sweep over {planned:,} measures, bulk update",
               f"{ours:.2f} s")
    ratio = aps_plan / ours
    report.add("plan: APScheduler / rectiflow", f"{ratio:.0f}x", ">= 10x", verdict(ratio >= 10))
    report.add(f"find due: APScheduler get_due_jobs ({len(due_jobs):,} of {total_jobs:,} jobs)",
               ms(aps_due))
    report.add(f"find due: rectiflow claim query ({claimed:,} measures, batch limit {BATCH:,})",
               f"{ms(our_due)} wall, {ms(explain)} EXPLAIN")
    due_ratio = aps_due / our_due
    report.add("find due: APScheduler / rectiflow (wall)", f"{due_ratio:.0f}x", ">= 10x",
               verdict(due_ratio >= 10))
    report.add("  for reference: the claim's index lookup alone (ids, no planning columns)",
               f"{ms(lookup)} wall: {aps_due / lookup:.0f}x")
    both = (aps_plan + aps_due) / (ours + our_due)
    report.add("plan + find due: APScheduler / rectiflow", f"{both:.0f}x", ">= 10x",
               verdict(both >= 10))
    report.notes.append(
        f"APScheduler: job store on PostgreSQL (same server, same schema). {subset:,} jobs were "
        f"added one by one with scheduler.add_job (paused scheduler, date trigger) and the time "
        f"SCALED LINEARLY to {len(jobs):,} jobs; the store was then filled to {total_jobs:,} jobs "
        f"by a bulk insert of the same pickled rows (untimed), so get_due_jobs ran at full size. "
        f"APScheduler's time excludes computing the reminder dates (done beforehand with "
        f"rectiflow's calendar); rectiflow's includes it.")
    report.notes.append(
        "find due: get_due_jobs returns job references (measure, stage); rectiflow's claim "
        "returns what planning needs for each due measure (12 columns, three of them local "
        "dates the server computes), read from rows spread over the table")


# ---------------------------------------------------------------------------------- against


_BURST_ROW = re.compile(r"^\s*burst ([\d,]+) due, (PostgreSQL|SQLite): sweep\(\) \+ commit: "
                        r"([\d.]+) s", re.M)


def run_burst_of(checkout: Path, quick: bool, extra: tuple[str, ...] = ()) -> dict[str, float]:
    """Run ``checkout``'s own burst benchmark in a process of its own (its code, its bench);
    the median seconds of ``sweep()`` + commit it printed, by backend."""
    command = [sys.executable, str(checkout / "bench" / "sweep.py"), "--only", "burst",
               *(["--quick"] if quick else []), *extra]
    environment = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(command, cwd=checkout, env=environment, capture_output=True,
                          text=True, check=False)
    figures = {label: float(value) for _, label, value in _BURST_ROW.findall(done.stdout)}
    if done.returncode or len(figures) != 2:
        raise RuntimeError(f"the burst benchmark of {checkout} failed:\n{done.stdout}\n"
                           f"{done.stderr}")
    return figures


def compare_bursts(other: Path, rounds: int, quick: bool) -> None:
    """This checkout's burst against ``other``'s, run in turn (other, this, other, this, ...)
    so that a machine whose speed drifts affects both alike; medians and the ratio per round.
    With ``--no-documents`` this checkout's burst issues no 督办 documents (like a checkout from
    before them); the load average is printed beside each run."""
    here = ROOT
    extra = () if DOCUMENTS["on"] else ("--no-documents",)
    print(f"burst, this checkout ({here}{' --no-documents' if extra else ''}) against {other}, "
          f"{rounds} rounds in turn", flush=True)
    results: dict[str, dict[str, list[float]]] = {"other": {}, "this": {}}
    for round_number in range(1, rounds + 1):
        for side, checkout in (("other", other), ("this", here)):
            figures = run_burst_of(checkout, quick, extra if side == "this" else ())
            for label, seconds in figures.items():
                results[side].setdefault(label, []).append(seconds)
            shown = ", ".join(f"{label} {seconds:.2f} s" for label, seconds in figures.items())
            print(f"  round {round_number}, {side}: {shown} (load average "
                  f"{os.getloadavg()[0]:.1f})", flush=True)
    print("\nbackend      other (median)   this (median)   this / other (median of rounds)")
    for label in ("PostgreSQL", "SQLite"):
        before, after = results["other"][label], results["this"][label]
        ratios = [a / b for a, b in zip(after, before, strict=True)]
        print(f"{label:<12} {statistics.median(before):>10.2f} s   "
              f"{statistics.median(after):>10.2f} s   {statistics.median(ratios):>8.2f}x"
              f"  (per round: {', '.join(f'{r:.2f}' for r in ratios)})")


# ---------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a fast sanity check")
    parser.add_argument("--only", choices=["idle", "burst", "apscheduler"],
                        help="run one part of the benchmark")
    parser.add_argument("--against", type=Path, metavar="CHECKOUT",
                        help="with --only burst: run another checkout's burst and this one's in "
                             "turn, and print both side by side with their ratio")
    parser.add_argument("--rounds", type=int, default=3, help="rounds for --against (default 3)")
    parser.add_argument("--no-documents", action="store_true",
                        help="switch the policy's 督办 documents off (as before they existed)")
    args = parser.parse_args(argv)
    DOCUMENTS["on"] = not args.no_documents
    if args.against is not None:
        if args.only != "burst":
            parser.error("--against compares the burst: give --only burst")
        compare_bursts(args.against.resolve(), args.rounds, args.quick)
        return 0
    sizes = QUICK if args.quick else FULL
    report = Report()
    started = time.perf_counter()
    mode = "quick" if args.quick else "full"
    where = make_url(PG_URL).render_as_string(hide_password=True)
    print(f"rectiflow sweep benchmark ({mode}), now = {NOW:%Y-%m-%d %H:%M} UTC, PostgreSQL at {where}")
    parts = {"idle": bench_idle, "burst": bench_burst, "apscheduler": bench_apscheduler}
    for name, part in parts.items():
        if args.only in (None, name):
            part(sizes, report)
    report.notes.append(f"total benchmark time {time.perf_counter() - started:.0f} s")
    report.print_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
