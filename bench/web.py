"""Web benchmark: p50/p95 of the ledger page (台账) over 10,000 measures, and actions per
second through the JSON API, on SQLite and PostgreSQL.

The app runs in-process (FastAPI's TestClient over ASGI, no network), so the figures are the
server's own time plus the ASGI round trip. Each ledger case is requested ``--requests`` times
after two warm-up requests: the unfiltered first page as the reviewer (sees everything), a
state filter, a deep page sorted by deadline, and the first page as an owner whose view is
scoped to one unit. Actions: ``start`` on distinct measures, one request (one transaction) each.

    python3 bench/web.py [--n 10000] [--requests 60] [--actions 300] [--backend sqlite|postgresql|both]

PostgreSQL is reached at RECTIFLOW_BENCH_PG_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import fresh_engine  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import select  # noqa: E402

from config.settings import Settings  # noqa: E402
from workflow import db  # noqa: E402
from workflow.importers.ledger import LedgerRow, write_rows  # noqa: E402
from workflow.lifecycle import Kind  # noqa: E402
from workflow.models import Campaign, Measure  # noqa: E402
from workflow.passwords import hash_password  # noqa: E402
from workflow.runtime import Runtime  # noqa: E402
from workflow.services.people import add_person, get_or_create_unit  # noqa: E402
from workflow.timeutil import SHANGHAI  # noqa: E402
from workflow.web.app import create_app  # noqa: E402
from workflow.web.security import LoginLimiter  # noqa: E402

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=SHANGHAI)
PASSWORD = "bench-password"
GOAL_P95_MS = 200.0
NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
UNITS = ["饮食服务中心", "物业管理科", "公寓管理中心", "能源管理科", "校园绿化科", "维修中心",
         "采购与招标办", "基建处", "资产处", "财务处"]
KINDS = [Kind.DEADLINE, Kind.DEADLINE, Kind.IMMEDIATE, Kind.LONG_TERM]


def seed(sessions: object, n: int) -> list[int]:
    """People of every kind and ``n`` measures over 10 units, deadlines spread ±90 days."""
    with db.transaction(sessions) as session:  # type: ignore[arg-type]
        password_hash = hash_password(PASSWORD)
        hq = get_or_create_unit(session, "后勤处")
        for unit in UNITS:
            get_or_create_unit(session, unit, hq)
        people = {key: add_person(session, name=name, email=f"{key}@example.edu.cn",
                                  roles=[role], unit=unit, password_hash=password_hash)
                  for key, name, role, unit in [
                      ("secretary", "书记", "leader", "党委办公室"),
                      ("leader", "分管领导", "leader", "后勤处"),
                      ("reviewer", "整改办", "reviewer", "整改办"),
                      ("owner", "责任人", "owner", UNITS[0]),
                  ]}
        campaign = Campaign(title="基准测试巡察整改", created_at=NOW,
                            first_responsible_id=people["secretary"].id)
        session.add(campaign)
        session.flush()
        rows = [LedgerRow(row=i + 2, seq=str(i + 1), area=f"（{i % 6 + 1}）方面{i % 6 + 1}",
                          problem=f"问题{i % 300 + 1}", title=f"整改措施{i + 1}：健全制度、压实责任",
                          leader_id=people["leader"].id, unit=UNITS[i % len(UNITS)],
                          owner_id=people["owner"].id,
                          deadline=date(2026, 12, 7) + timedelta(days=(i * 37) % 181 - 90),
                          kind=KINDS[i % len(KINDS)]) for i in range(n)]
        write_rows(session, campaign, rows, NOW)
        return list(session.scalars(select(Measure.id).order_by(Measure.id)))


def login(client: TestClient, email: str) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    response = client.post("/login", data={"email": email, "password": PASSWORD,
                                           "csrf_token": token.group(1)}, follow_redirects=False)
    assert response.status_code == 303, response.text


def timed(client: TestClient, url: str, requests: int) -> list[float]:
    for _ in range(2):
        assert client.get(url).status_code == 200
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(backend: str, n: int, requests: int, actions: int) -> bool:
    print(f"\n== {NAMES[backend]}: 台账 with {n:,} measures ==")
    with fresh_engine(backend) as engine, tempfile.TemporaryDirectory() as folder:
        sessions = db.session_factory(engine)
        start = time.perf_counter()
        ids = seed(sessions, n)
        print(f"seeded in {time.perf_counter() - start:.1f} s")
        settings = Settings(database_url=str(engine.url), secret_key="bench",
                            evidence_dir=Path(folder) / "evidence",
                            outbox_dir=Path(folder) / "outbox")
        app = create_app(Runtime(settings, engine=engine, clock=lambda: NOW),
                         limiter=LoginLimiter(attempts=1000))
        met = True
        with TestClient(app) as reviewer, TestClient(app) as owner:
            login(reviewer, "reviewer@example.edu.cn")
            login(owner, "owner@example.edu.cn")
            cases = [("first page, everything (reviewer)", reviewer, "/ledger"),
                     ("state filter (assigned)", reviewer, "/ledger?state=assigned"),
                     ("page 100 sorted by deadline", reviewer,
                      "/ledger?sort=deadline&dir=desc&page=100"),
                     ("first page, one unit's scope (owner)", owner, "/ledger")]
            print(f"{'case':<40} {'p50 ms':>8} {'p95 ms':>8}")
            for label, client, url in cases:
                times = timed(client, url, requests)
                p95 = pct(times, 0.95)
                met &= p95 <= GOAL_P95_MS
                print(f"{label:<40} {statistics.median(times):>8.1f} {p95:>8.1f}")
            token = reviewer.post("/api/token", json={"email": "owner@example.edu.cn",
                                                      "password": PASSWORD}).json()["token"]
            headers = {"Authorization": f"Bearer {token}"}
            # The owner's unit holds every tenth measure; start ``actions`` of them.
            targets = ids[::len(UNITS)][:actions]
            start = time.perf_counter()
            for measure_id in targets:
                response = owner.post(f"/api/measures/{measure_id}/actions/start",
                                      headers=headers)
                assert response.status_code == 200, response.text
            elapsed = time.perf_counter() - start
            print(f"API actions (start, one transaction each): {len(targets) / elapsed:,.0f}/s "
                  f"({len(targets)} in {elapsed:.2f} s, {elapsed / len(targets) * 1000:.1f} ms each)")
        print(f"goal p95 ≤ {GOAL_P95_MS:.0f} ms: {'met' if met else 'NOT met'}")
        return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--actions", type=int, default=300)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = [run(b, args.n, args.requests, args.actions) for b in backends]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
