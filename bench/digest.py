"""Benchmark of the weekly digest: statistics and rendering over one campaign of 100,000
measures (goal: at most 2 s on PostgreSQL), and one digest per reader for 1,000 readers.

Run from the repository root::

    python3 bench/digest.py            # 100,000 measures, 1,000 readers
    python3 bench/digest.py --quick    # 5,000 measures, a fast sanity check

PostgreSQL is reached through ``RECTIFLOW_BENCH_PG_URL`` (default: the local ``test`` database
with trust auth); the run works in a fresh migrated schema and drops it at the end. SQLite runs
in a temporary file.

Figures (median of ``--repeat`` runs):

- ``campaign``: the whole campaign's digest as ``rectiflow digest`` and the 整改办's page make
  it (``digest_of_campaign``: counted in SQL, the lists cut to the first 30);
- ``render``: HTML, text and WeCom markdown of that digest, and the chart PNG;
- ``total``: the two above, the figure the 2 s goal is about;
- ``snapshots``: reading the campaign now and rewinding it a week through the history, as every
  reader's digest is built; ``statistics``: the whole-campaign digest built from them;
  ``snapshots_total``: the two and ``render``, the way ``total`` was made before (the ratio to
  it is printed);
- ``readers``: one digest for each of 1,000 readers (scopes, figures, HTML + text + markdown;
  charts for campaign-wide and leader scopes), and ``send_digests`` writing them to the outbox;
- ``deliver``: the deliverer sending the first ``--deliver`` (100) of those outbox rows by mail
  into a folder, each rendered at send time as of the week's moment (messages a second, and
  the time all 1,000 would take at that rate).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchdb import fresh_engine  # noqa: E402
from sqlalchemy import Engine, insert, text  # noqa: E402

from notifications.channels.file import FileChannel  # noqa: E402
from notifications.deliverer import Deliverer  # noqa: E402
from notifications.digest import LIST_LIMIT, render_digest  # noqa: E402
from workflow import db  # noqa: E402
from workflow.history import GENESIS  # noqa: E402
from workflow.lifecycle import Kind, State  # noqa: E402
from workflow.models import (  # noqa: E402
    Area,
    Campaign,
    HistoryEntry,
    Measure,
    Person,
    Problem,
    ProgressReport,
    Unit,
)
from workflow.reminders import WorkdayIndex  # noqa: E402
from workflow.services.campaign_digest import digest_of_campaign  # noqa: E402
from workflow.services.digest import (  # noqa: E402
    Scope,
    build_digest,
    load_inputs,
    readers_for,
    reviewer_ids,
    send_digests,
)
from workflow.timeutil import SHANGHAI  # noqa: E402
from workflow.workcalendar import WorkCalendar  # noqa: E402

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=SHANGHAI)  # a Monday, 09:00
CREATED = NOW - timedelta(days=60)
BASE_URL = "https://zg.example.edu.cn"
LEADERS, REVIEWERS = 40, 2
AREAS, PROBLEMS = 13, 600
UNITS = 60


@contextmanager
def database(backend: str) -> Iterator[Engine]:
    with fresh_engine(backend, "rf_bench_digest") as engine:
        yield engine


def _chunks(rows: list[dict[str, Any]], size: int = 5000) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def populate(engine: Engine, measures: int, readers: int) -> int:
    """One campaign: ``measures`` measures over 13 方面 and 600 问题, owners enough for about
    ``readers`` readers, history for every state, a tenth of it in the last week."""
    rng = random.Random(7)
    owners = max(readers - LEADERS - REVIEWERS - 1, 1)
    sessions = db.session_factory(engine)
    with db.transaction(sessions) as session:
        people = [{"name": f"人员{i}", "email": f"p{i}@example.edu.cn", "roles": [role],
                   "channel_preference": "auto", "active": True}
                  for i, role in enumerate(["leader"] + ["reviewer"] * REVIEWERS
                                           + ["leader"] * LEADERS + ["owner"] * owners)]
        session.execute(insert(Person), people)
        ids = list(session.scalars(text("SELECT id FROM person ORDER BY id")))
        secretary, leaders = ids[0], ids[1 + REVIEWERS:1 + REVIEWERS + LEADERS]
        owner_ids = ids[1 + REVIEWERS + LEADERS:]
        session.execute(insert(Unit), [{"name": f"部门{i}"} for i in range(UNITS)])
        units = list(session.scalars(text("SELECT id FROM unit ORDER BY id")))
        campaign = Campaign(title="第五轮巡察反馈问题整改", created_at=CREATED,
                            first_responsible_id=secretary)
        session.add(campaign)
        session.flush()
        session.execute(insert(Area), [{"campaign_id": campaign.id, "position": i,
                                        "title": f"反馈问题方面{i + 1}"} for i in range(AREAS)])
        areas = list(session.scalars(text("SELECT id FROM area ORDER BY id")))
        session.execute(insert(Problem), [{"area_id": areas[i % AREAS], "position": i,
                                           "text": f"问题表现{i + 1}"} for i in range(PROBLEMS)])
        problems = list(session.scalars(text("SELECT id FROM problem ORDER BY id")))
        states = [State.ASSIGNED, State.IN_PROGRESS, State.SUBMITTED, State.VERIFIED, State.CLOSED]
        rows: list[dict[str, Any]] = []
        plans: list[tuple[State, datetime]] = []
        for i in range(measures):
            state = rng.choices(states, weights=[15, 35, 10, 10, 30])[0]
            kind = rng.choices([Kind.IMMEDIATE, Kind.DEADLINE, Kind.LONG_TERM], [2, 7, 1])[0]
            deadline = (None if kind is Kind.LONG_TERM and rng.random() < 0.7
                        else date(2026, 11, 1) + timedelta(days=rng.randrange(75)))
            changed = NOW - timedelta(days=rng.randrange(1, 50), hours=rng.randrange(8))
            plans.append((state, changed))
            rows.append({
                "campaign_id": campaign.id, "problem_id": problems[i % PROBLEMS],
                "position": i + 1, "seq": str(i + 1), "title": f"整改措施{i + 1}：规范管理流程",
                "kind": kind.value, "state": state.value, "deadline": deadline,
                "original_deadline": deadline, "owner_id": rng.choice(owner_ids),
                "leader_id": rng.choice(leaders), "unit_id": rng.choice(units), "version": 2,
                "created_at": CREATED, "state_changed_at": changed,
                "last_progress_at": changed if rng.random() < 0.5 else None})
        for chunk in _chunks(rows):
            session.execute(insert(Measure), chunk)
        measure_ids = list(session.scalars(text("SELECT id FROM measure ORDER BY id")))
        history: list[dict[str, Any]] = []
        progress: list[dict[str, Any]] = []
        for mid, (state, changed), row in zip(measure_ids, plans, rows, strict=True):
            history.append(_history(mid, 1, "create", None, State.ASSIGNED, CREATED))
            if state is not State.ASSIGNED:
                history.append(_history(mid, 2, "start", State.ASSIGNED, state, changed))
            if row["last_progress_at"] is not None:
                progress.append({"measure_id": mid, "author_id": row["owner_id"],
                                 "text": "按计划推进", "at": changed})
        for chunk in _chunks(history):
            session.execute(insert(HistoryEntry), chunk)
        for chunk in _chunks(progress):
            session.execute(insert(ProgressReport), chunk)
        return campaign.id


def _history(mid: int, seq: int, action: str, from_state: State | None, to_state: State,
             at: datetime) -> dict[str, Any]:
    # The benchmark reads history; it does not verify the hash chain, so hashes are dummies.
    return {"measure_id": mid, "seq": seq, "action": action,
            "from_state": from_state.value if from_state else None, "to_state": to_state.value,
            "data": {}, "at": at, "prev_hash": GENESIS, "hash": GENESIS}


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def delivered(sessions: Any, days: WorkdayIndex, campaign_id: int, n: int) -> dict[str, Any]:
    """The week's digests written to the outbox, then the first ``n`` of them delivered by
    mail into a folder in one batch: each is rendered at send time as of the week's moment."""
    with db.transaction(sessions) as session:
        written = len(send_digests(session, now=NOW, days=days, send_at=NOW,
                                   configured=frozenset({"email"}),
                                   campaign_id=campaign_id).messages)
    with tempfile.TemporaryDirectory(prefix="rf_bench_digest_") as folder:
        deliverer = Deliverer(sessions, {"email": FileChannel(Path(folder))},
                              base_url=BASE_URL, batch=n, lease=timedelta(hours=1))
        started = time.perf_counter()
        report = deliverer.run_once(NOW + timedelta(minutes=1))
        elapsed = time.perf_counter() - started
    if not report.sent:
        raise RuntimeError(f"no digest was delivered: {report.as_json()}")
    rate = report.sent / elapsed
    return {"deliver_sent": report.sent, "deliver_s": elapsed, "deliver_msg_s": rate,
            "deliver_all_s": written / rate}


def bench(backend: str, measures: int, readers: int, repeat: int,
          deliver: int = 0) -> dict[str, Any]:
    days = WorkdayIndex(WorkCalendar().is_workday)
    days.count_between(date(2026, 1, 1), date(2027, 1, 1))  # warm the calendar
    figures: dict[str, Any] = {"backend": backend, "measures": measures}
    with database(backend) as engine:
        started = time.perf_counter()
        campaign_id = populate(engine, measures, readers)
        with engine.begin() as conn:
            # what autovacuum does soon after a bulk load; without it the planner guesses
            conn.execute(text("ANALYZE"))
        figures["populate_s"] = round(time.perf_counter() - started, 1)
        sessions = db.session_factory(engine)
        render_digest  # noqa: B018 - imported before timing (matplotlib's import is one-off)
        from notifications.chart import find_cjk_font

        find_cjk_font()

        def snapshots() -> Any:
            with sessions() as session:
                return load_inputs(session, campaign_id, NOW)

        def whole(inputs: Any) -> Any:
            return build_digest(inputs.now, inputs.week_ago, Scope(whole=True), days)

        def counted() -> Any:
            with sessions() as session:
                return digest_of_campaign(session, campaign_id, NOW, days, limit=LIST_LIMIT)

        figures["campaign_s"], digest = timed(counted, repeat)
        figures["render_s"], _ = timed(lambda: render_digest(digest, BASE_URL, name="全体"), repeat)
        figures["total_s"] = round(figures["campaign_s"] + figures["render_s"], 3)
        figures["snapshots_s"], inputs = timed(snapshots, repeat)
        figures["statistics_s"], _ = timed(lambda: whole(inputs), repeat)
        figures["snapshots_total_s"] = round(figures["snapshots_s"] + figures["statistics_s"]
                                             + figures["render_s"], 3)
        figures["overdue"] = digest.stats.counts.overdue
        figures["changes"] = len(digest.changes)

        with sessions() as session:
            reader_list = readers_for(inputs.now, reviewer_ids(session))
        figures["readers"] = len(reader_list)

        def per_reader() -> int:
            built: dict[Scope, Any] = {}
            sent = 0
            for reader in reader_list:
                one = built.get(reader.scope) or build_digest(inputs.now, inputs.week_ago,
                                                              reader.scope, days)
                built[reader.scope] = one
                if one.empty:
                    continue
                render_digest(one, BASE_URL, name="读者",
                              chart=reader.scope.whole or reader.scope.leader_id is not None)
                sent += 1
            return sent

        figures["readers_render_s"], figures["readers_with_digest"] = timed(per_reader, 1)

        def write_outbox() -> int:
            with db.transaction(sessions) as session:
                run = send_digests(session, now=NOW, days=days, send_at=NOW,
                                   configured=frozenset({"email"}), campaign_id=campaign_id)
                session.rollback()
                return len(run.messages)

        figures["send_digests_s"], figures["outbox_messages"] = timed(write_outbox, 1)
        if deliver:
            figures.update(delivered(sessions, days, campaign_id, deliver))
    for key, value in list(figures.items()):
        if isinstance(value, float):
            figures[key] = round(value, 3)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 measures, 200 readers")
    parser.add_argument("--backend", choices=["postgresql", "sqlite", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--deliver", type=int, default=100,
                        help="digest messages to deliver (0: none)")
    args = parser.parse_args(argv)
    measures, readers = (5000, 200) if args.quick else (100_000, 1000)
    backends = ["postgresql", "sqlite"] if args.backend == "both" else [args.backend]
    for backend in backends:
        figures = bench(backend, measures, readers, args.repeat,
                        min(args.deliver, readers))
        print(json.dumps(figures, ensure_ascii=False))
        if backend == "postgresql" and not args.quick:
            verdict = "met" if figures["total_s"] <= 2.0 else "NOT met"
            print(f"goal ≤ 2 s for statistics and rendering on PostgreSQL: {verdict} "
                  f"({figures['total_s']} s)")
        print(f"{backend}: the whole campaign's digest counted in {figures['total_s']} s, "
              f"built from the snapshots in {figures['snapshots_total_s']} s "
              f"({figures['snapshots_total_s'] / figures['total_s']:.1f}×)")
        if "deliver_msg_s" in figures:
            print(f"{backend}: {figures['deliver_sent']} digests delivered at "
                  f"{figures['deliver_msg_s']} a second; all {figures['outbox_messages']} "
                  f"would take {figures['deliver_all_s']} s")


if __name__ == "__main__":
    main()
