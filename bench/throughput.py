"""Every figure of the throughput issue, on both backends, this checkout against another.

Run from the repository root::

    python3 bench/throughput.py --against ../base          # every figure, 3 rounds in turn
    python3 bench/throughput.py --against ../base --only delivery,transitions --rounds 5
    python3 bench/throughput.py --quick                     # this checkout only, small sizes

The rows of the table (issue "Throughput on PostgreSQL"):

- delivery: email messages a second through the checkout's own deliverer
  (``Runtime(...).deliverer().run``), and beside it the SMTP ceiling of the same run: the same
  number of ready-made messages pushed over one smtplib connection to the same aiosmtpd
  server (a subprocess), without database or rendering. Measured by this script's own code,
  with the checkout's code imported (``--child delivery``), so both checkouts are timed alike;
- burst: 100,000 measures due at once (``bench/sweep.py --only burst``);
- transitions: actions with their history a second, one thread (``bench/transitions.py``);
- digest: statistics and rendering of the weekly digest of 100,000 measures
  (``bench/digest.py``);
- import: 50,000 ledger rows from csv and xlsx (``bench/import.py``).

All but delivery run the checkout's own benchmark script in a process of its own and read the
figure it printed. With ``--against`` the two checkouts run in turn, figure by figure
(other, this, other, this, ...), so that a machine whose load drifts affects both alike; the
one-minute load average is printed beside every figure, and the table at the end has the
medians, the ratio this / other (median of the rounds' ratios) and the load range.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

BACKENDS = ("PostgreSQL", "SQLite")


@dataclass(frozen=True)
class Figure:
    """One row of the table: how to get it from a checkout, its unit, which way is better."""

    name: str
    label: str
    unit: str
    higher_is_better: bool
    goal: str


FIGURES = {
    "delivery": Figure("delivery", "email delivery", "msg/s", True,
                       "≥ 200 msg/s and ≥ 40% of the SMTP ceiling"),
    "ceiling": Figure("ceiling", "  SMTP ceiling (same run)", "msg/s", True, "—"),
    "share": Figure("share", "  delivery / ceiling", "", True, "≥ 0.40"),
    "burst": Figure("burst", "100k measures due at once", "s", False, "≤ 10 s"),
    "transitions": Figure("transitions", "transitions with audit, 1 thread", "/s", True,
                          "≥ 500/s"),
    "digest": Figure("digest", "digest of 100k measures", "s", False, "≤ 2 s"),
    "import_csv": Figure("import_csv", "import 50k ledger rows, csv", "s", False, "≤ 20 s"),
    "import_xlsx": Figure("import_xlsx", "import 50k ledger rows, xlsx", "s", False, "≤ 20 s"),
}

#: sizes that a busy machine may want smaller (--messages, --transition-measures)
SIZES = {"messages": 1000, "actions_n": 500}

#: which parts run which figures
PARTS = ("delivery", "burst", "transitions", "digest", "import")


# ---------------------------------------------------------------------------------- running


def _run(checkout: Path, command: list[str], timeout: float = 3600) -> str:
    """Run ``command`` in ``checkout`` with its own code first on the path; its stdout."""
    environment = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(command, cwd=checkout, env=environment, capture_output=True,
                          text=True, check=False, timeout=timeout)
    if done.returncode not in (0, 1):  # transitions.py answers 1 when a goal is missed
        raise RuntimeError(f"{' '.join(command)} in {checkout} failed:\n{done.stdout[-3000:]}\n"
                           f"{done.stderr[-3000:]}")
    return done.stdout


def delivery(checkout: Path, quick: bool) -> dict[str, dict[str, float]]:
    messages = 300 if quick else SIZES["messages"]
    out = _run(checkout, [sys.executable, str(HERE / "throughput.py"), "--child", "delivery",
                          "--code", str(checkout), "--messages", str(messages)])
    figures: dict[str, dict[str, float]] = {"delivery": {}, "ceiling": {}, "share": {}}
    for line in out.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            figures["delivery"][row["backend"]] = row["rate"]
            figures["ceiling"][row["backend"]] = row["ceiling"]
            figures["share"][row["backend"]] = row["rate"] / row["ceiling"]
    if not figures["delivery"]:
        raise RuntimeError(f"the delivery benchmark of {checkout} printed no figure:\n{out}")
    return figures


_BURST_ROW = re.compile(r"^\s*burst ([\d,]+) due, (PostgreSQL|SQLite): sweep\(\) \+ commit: "
                        r"([\d.]+) s", re.M)


def burst(checkout: Path, quick: bool) -> dict[str, dict[str, float]]:
    out = _run(checkout, [sys.executable, "bench/sweep.py", "--only", "burst",
                          *(["--quick"] if quick else [])])
    return {"burst": {label: float(value) for _, label, value in _BURST_ROW.findall(out)}}


_TRANSITIONS_ROW = re.compile(r"^(SQLite|PostgreSQL)\s+1 线程 中位数\s+([\d,]+) 次/秒", re.M)


def transitions(checkout: Path, quick: bool) -> dict[str, dict[str, float]]:
    out = _run(checkout, [sys.executable, "bench/transitions.py", "--workers", "1",
                          "--n", "200" if quick else str(SIZES["actions_n"]),
                          "--rounds", "3"])
    return {"transitions": {label: float(value.replace(",", ""))
                            for label, value in _TRANSITIONS_ROW.findall(out)}}


_NAMES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}


def digest(checkout: Path, quick: bool) -> dict[str, dict[str, float]]:
    out = _run(checkout, [sys.executable, "bench/digest.py", *(["--quick"] if quick else [])])
    figures: dict[str, float] = {}
    for line in out.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            figures[_NAMES[row["backend"]]] = float(row["total_s"])
    return {"digest": figures}


_IMPORT_ROW = re.compile(r"^\s+(sqlite|postgresql)\s+(csv|xlsx)\s+([\d.]+) s wall", re.M)


def ledger_import(checkout: Path, quick: bool) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {"import_csv": {}, "import_xlsx": {}}
    for fmt in ("csv", "xlsx"):
        out = _run(checkout, [sys.executable, "bench/import.py", "--format", fmt, "--runs", "1",
                              "--rows", "5000" if quick else "50000"])
        for backend, found, seconds in _IMPORT_ROW.findall(out):
            figures[f"import_{found}"][_NAMES[backend]] = float(seconds)
    return figures


RUNNERS: dict[str, Callable[[Path, bool], dict[str, dict[str, float]]]] = {
    "delivery": delivery, "burst": burst, "transitions": transitions, "digest": digest,
    "import": ledger_import}


# ---------------------------------------------------------------------------------- the table


@dataclass
class Sample:
    value: float
    load: float


@dataclass
class Results:
    """side → figure → backend → samples (one per round)."""

    by_side: dict[str, dict[str, dict[str, list[Sample]]]] = field(default_factory=dict)

    def add(self, side: str, figures: dict[str, dict[str, float]], load: float) -> None:
        for name, values in figures.items():
            for backend, value in values.items():
                (self.by_side.setdefault(side, {}).setdefault(name, {})
                 .setdefault(backend, []).append(Sample(value, load)))

    def samples(self, side: str, name: str, backend: str) -> list[Sample]:
        return self.by_side.get(side, {}).get(name, {}).get(backend, [])


def _shown(value: float, unit: str) -> str:
    if unit == "":
        return f"{value:.2f}"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:,.0f} {unit}"


def _loads(samples: list[Sample]) -> str:
    loads = [s.load for s in samples]
    return f"{min(loads):.1f}–{max(loads):.1f}" if len(loads) > 1 else f"{loads[0]:.1f}"


def print_table(results: Results, sides: list[str]) -> None:
    compare = len(sides) == 2
    print("\n| figure | goal | backend | " + (" other (median) | load | this (median) | load "
                                               "| this / other |" if compare
                                               else "this (median) | load |"))
    print("|---|---|---|" + ("---|" * (5 if compare else 2)))
    for name, figure in FIGURES.items():
        for backend in BACKENDS:
            cells = []
            per_side = {side: results.samples(side, name, backend) for side in sides}
            if not all(per_side.values()):
                continue
            for side in sides:
                samples = per_side[side]
                cells += [_shown(statistics.median(s.value for s in samples), figure.unit),
                          _loads(samples)]
            if compare:
                ratios = [t.value / o.value for o, t in
                          zip(per_side["other"], per_side["this"], strict=False)]
                cells.append(f"{statistics.median(ratios):.2f}×")
            print(f"| {figure.label} | {figure.goal} | {backend} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, metavar="CHECKOUT",
                        help="another checkout (say, main): its figures and this one's in turn")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"comma-separated parts (default all: {','.join(PARTS)})")
    parser.add_argument("--quick", action="store_true", help="small sizes, a sanity check")
    parser.add_argument("--messages", type=int, default=1000,
                        help="email messages per delivery run (default 1,000)")
    parser.add_argument("--transition-measures", type=int, default=500,
                        help="measures for bench/transitions.py (--n, default 500; 4 actions "
                             "each a round, 3 rounds)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--code", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "delivery":
        return delivery_child(args.code, args.messages)
    SIZES.update(messages=args.messages, actions_n=args.transition_measures)
    parts = [p for p in args.only.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; known: {', '.join(PARTS)}")
    sides = [("other", args.against.resolve()), ("this", ROOT)] if args.against else [
        ("this", ROOT)]
    print(f"throughput: {', '.join(f'{side} = {path}' for side, path in sides)}; "
          f"{args.rounds} rounds{' (quick sizes)' if args.quick else ''}; "
          f"{os.cpu_count()} CPUs", flush=True)
    results = Results()
    started = time.perf_counter()
    for part in parts:
        for round_number in range(1, args.rounds + 1):
            for side, checkout in sides:
                figures = RUNNERS[part](checkout, args.quick)
                load = os.getloadavg()[0]
                results.add(side, figures, load)
                shown = "; ".join(
                    f"{name} " + ", ".join(f"{b} {_shown(v, FIGURES[name].unit)}"
                                           for b, v in values.items())
                    for name, values in figures.items())
                print(f"  {part}, round {round_number}, {side}: {shown} "
                      f"(load average {load:.1f})", flush=True)
    print_table(results, [side for side, _ in sides])
    print(f"\n(total {time.perf_counter() - started:.0f} s; load average is the one-minute "
          f"figure read as each run ended, min–max over the rounds)")
    return 0


# ---------------------------------------------------------------------------------- delivery


def delivery_child(code: Path, messages: int) -> int:
    """In a process of its own, with ``code``'s workflow and notifications imported first:
    the SMTP ceiling and the deliverer's rate, one after the other, on each backend."""
    sys.path.insert(0, str(code))
    import notifications.deliverer  # noqa: F401 - the checkout's, before bench/deliver.py's
    import workflow  # noqa: F401

    if not Path(workflow.__file__).resolve().is_relative_to(code.resolve()):
        raise SystemExit(f"imported {workflow.__file__}, not the code of {code}")
    import email.policy
    import logging
    import shutil
    import smtplib
    import tempfile
    from email.message import EmailMessage

    sys.path.insert(1, str(HERE))
    import deliver as bench  # bench/deliver.py of this checkout: server, ledger, queue

    from config.settings import load_settings
    from workflow.runtime import Runtime

    logging.disable(logging.WARNING)
    temp = Path(tempfile.mkdtemp(prefix="rectiflow-bench-throughput-"))

    def ready_made(n: int) -> list[EmailMessage]:
        """Messages like the deliverer's (a Chinese subject, text and HTML, ~2.5 KB)."""
        made = []
        for i in range(n):
            mail = EmailMessage()
            mail["From"] = f"整改督办 <{bench.SENDER}>"
            mail["To"] = f"责任人{i} <owner{i}@example.edu.cn>"
            mail["Subject"] = "【整改督办】您有1项整改措施需要关注：临近时限1项"
            mail["Message-ID"] = f"<ceiling.{i}@example.edu.cn>"
            mail.set_content("责任人您好：\n" + "整改措施1：修订管理办法（时限 2026-12-10，整改中）\n" * 8,
                             cte="base64")
            mail.add_alternative("<p>责任人您好：</p><ul>" + "<li>整改措施1：修订管理办法"
                                 "（时限 2026-12-10，整改中）</li>\n" * 8 + "</ul>", subtype="html",
                                 cte="base64")
            made.append(mail)
        return made

    def ceiling(server: bench.SmtpServer, n: int) -> float:
        smtp = email.policy.SMTP  # CRLF line ends, as smtplib's send_message writes them
        payloads = [(m["To"].addresses[0].addr_spec, m.as_bytes(policy=smtp))
                    for m in ready_made(n)]
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
            for to, payload in payloads:
                client.sendmail(bench.SENDER, [to], payload)
        return n / (time.perf_counter() - started)

    try:
        with bench.SmtpServer("subprocess", temp) as server:
            backends = [bench.sqlite_backend(temp)]
            if bench.pg_reachable():
                backends.append(bench.pg_backend())
            for context in backends:
                with context as backend:
                    bench.queue_email(backend.sessions, messages)
                    settings = load_settings({**server.env(),
                                              "RECTIFLOW_OUTBOX_DIR": str(temp / "outbox")})
                    deliverer = Runtime(settings, engine=backend.engine).deliverer()
                    rates, ceilings = [], []
                    for _ in range(2):
                        ceilings.append(ceiling(server, messages))
                        bench.requeue(backend.sessions)
                        before = server.counts()[1]
                        started = time.perf_counter()
                        report = deliverer.run(lambda: bench.BASE)
                        elapsed = time.perf_counter() - started
                        if report.sent != messages or server.counts()[1] - before != messages:
                            raise SystemExit(f"expected {messages} sent, got {report}")
                        rates.append(messages / elapsed)
                    print(json.dumps({"backend": backend.name,
                                      "rate": statistics.median(rates),
                                      "ceiling": statistics.median(ceilings)}), flush=True)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
