"""Prometheus metrics: what each process counts, and the ledger's measures by campaign.

Counters and histograms live in ``prometheus_client``'s default registry of the process that
records them (``serve`` in the embedded default; ``worker`` processes in production, the
``clock`` for its own ticks). Every recording goes through a function here, so callers never
hold a metric object: ``use_multiprocess()`` can rebuild them all for a prefork worker.

The measure gauges (open, overdue, awaiting sign-off, by campaign) are not kept in memory:
``MeasureCollector`` computes them at scrape time with one aggregate query, so every process and
every replica reports the database's truth.

Recording is cheap (a dict lookup and a locked add per message or per sweep); nothing here
touches the database except the collector, at scrape time.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from workflow.lifecycle import OPEN_STATES, ChannelName, MessageKind, State
from workflow.models import Campaign, Measure, Unit
from workflow.timeutil import local_date

#: Seconds from a message's due time to its sending: from "at once" to "half a day late".
DELAY_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, float("inf"))
#: Seconds one sweep takes: an idle sweep is milliseconds, a big ledger's first one minutes.
SWEEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
                 float("inf"))

log = logging.getLogger("rectiflow.metrics")

_metrics: dict[str, Any] = {}


def _build(registry: CollectorRegistry = REGISTRY) -> None:
    """Create (or re-create) every metric this program records."""
    for metric in _metrics.values():
        try:
            registry.unregister(metric)
        except KeyError:
            pass
    _metrics.clear()
    _metrics.update({
        "sweeps": Counter("rectiflow_sweeps", "Reminder sweeps run, by outcome (ok, error)",
                          ["outcome"], registry=registry),
        "sweep_seconds": Histogram("rectiflow_sweep_duration_seconds",
                                   "How long one reminder sweep took", buckets=SWEEP_BUCKETS,
                                   registry=registry),
        "sweep_measures": Counter("rectiflow_sweep_measures",
                                  "Measures a sweep claimed and planned", registry=registry),
        "created": Counter("rectiflow_messages_created",
                           "Outbox messages written, by channel and kind (reminder, event, "
                           "digest)", ["channel", "kind"], registry=registry),
        "sent": Counter("rectiflow_messages_sent", "Outbox messages sent, by channel",
                        ["channel"], registry=registry),
        "failed": Counter("rectiflow_messages_failed",
                          "Sends that failed and will be retried, by channel", ["channel"],
                          registry=registry),
        "dead": Counter("rectiflow_messages_dead",
                        "Outbox messages given up on (dead), by channel", ["channel"],
                        registry=registry),
        "deferred": Counter("rectiflow_messages_deferred",
                            "Sends put off to stay under a channel's rate limit, by channel",
                            ["channel"], registry=registry),
        "delay": Histogram("rectiflow_message_delay_seconds",
                           "Seconds from a message's due time (not_before) to its sending",
                           ["channel"], buckets=DELAY_BUCKETS, registry=registry),
        "wecom_errors": Counter("rectiflow_wecom_api_errors",
                                "WeCom API answers with a non-zero errcode, by channel and errcode",
                                ["channel", "errcode"], registry=registry),
        "clock_ticks": Counter("rectiflow_clock_jobs",
                               "Clock jobs run while holding the lease, by job and outcome",
                               ["job", "outcome"], registry=registry),
        "clock_leader": Gauge("rectiflow_clock_leader",
                              "1 while this clock holds the clock lease, else 0",
                              registry=registry, multiprocess_mode="max"),
    })


_build()


# ------------------------------------------------------------------ series that exist from the start

#: The kinds of outbox message ``rectiflow_messages_created`` counts.
MESSAGE_KINDS = tuple(MessageKind)
#: WeCom errcodes the documented alerts watch (docs/operations.md): wrong secret, wrong corp id,
#: a disabled or unauthorised application, an untrusted IP, a robot key gone, rate limits.
ALERTED_WECOM_ERRCODES = ("40001", "40013", "40056", "45009", "60020", "93000")
WECOM_CHANNELS = (ChannelName.WECOM, ChannelName.WECOM_ROBOT)


def start_series(settings: Settings) -> None:
    """Create the labelled counters of the configured channels at zero, as a process starts.

    A labelled series is otherwise born at its first increment, and Prometheus' ``increase()``
    cannot see a jump from "absent" to 1: the first dead message or WeCom error after a restart
    would raise no alert.
    """
    channels = settings.delivery_channels
    for channel in channels:
        for name in ("sent", "failed", "dead", "deferred"):
            _metrics[name].labels(channel)
        for kind in MESSAGE_KINDS:
            _metrics["created"].labels(channel, kind)
        if channel in WECOM_CHANNELS:
            for errcode in ALERTED_WECOM_ERRCODES:
                _metrics["wecom_errors"].labels(channel, errcode)


def start_clock_series(jobs: Iterable[str]) -> None:
    """The clock's job counters at zero for every job and outcome, as the clock starts."""
    for job in jobs:
        for outcome in ("ok", "error"):
            _metrics["clock_ticks"].labels(job, outcome)


# ------------------------------------------------------------------ recording


class _Swept(Protocol):
    measures: int

    @property
    def messages(self) -> Any: ...


P = ParamSpec("P")
R = TypeVar("R", bound=_Swept)


def observe_sweep(func: Callable[P, R]) -> Callable[P, R]:
    """Decorates the sweep service: counts it (ok or error), times it, counts its measures."""

    @wraps(func)
    def timed(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        try:
            result = func(*args, **kwargs)
        except BaseException:
            _metrics["sweeps"].labels("error").inc()
            raise
        _metrics["sweep_seconds"].observe(time.perf_counter() - started)
        _metrics["sweeps"].labels("ok").inc()
        if result.measures:
            _metrics["sweep_measures"].inc(result.measures)
        return result

    return timed


def messages_created(channels: Iterable[str], kind: str) -> None:
    """Count outbox rows just written, one channel name per row."""
    counts: dict[str, int] = {}
    for channel in channels:
        counts[channel] = counts.get(channel, 0) + 1
    for channel, n in counts.items():
        _metrics["created"].labels(channel, kind).inc(n)


def message_sent(channel: str, delay_seconds: float) -> None:
    _metrics["sent"].labels(channel).inc()
    _metrics["delay"].labels(channel).observe(max(delay_seconds, 0.0))


def message_failed(channel: str) -> None:
    _metrics["failed"].labels(channel).inc()


def message_dead(channel: str) -> None:
    _metrics["dead"].labels(channel).inc()


def message_deferred(channel: str) -> None:
    _metrics["deferred"].labels(channel).inc()


def wecom_api_error(channel: str, errcode: int | str) -> None:
    _metrics["wecom_errors"].labels(channel, str(errcode)).inc()


def clock_job(job: str, outcome: str) -> None:
    _metrics["clock_ticks"].labels(job, outcome).inc()


def clock_leader(leading: bool) -> None:
    _metrics["clock_leader"].set(1 if leading else 0)


# ------------------------------------------------------------------ the ledger at scrape time


def measure_counts(session: Session, today: date) -> list[tuple[int, str, str, int, int]]:
    """(campaign id, title, state, measures, overdue) in one aggregate query.

    Overdue is the ledger's rule (``workflow.ledger.is_overdue``): the owner still has work
    (assigned, in_progress) and the deadline, a Beijing date, is before ``today``.
    """
    open_states = [s.value for s in OPEN_STATES]
    overdue = case((Measure.state.in_(open_states) & (Measure.deadline < today), 1), else_=0)
    rows = session.execute(
        select(Campaign.id, Campaign.title, Measure.state, func.count(), func.sum(overdue))
        .join(Campaign, Campaign.id == Measure.campaign_id)
        .group_by(Campaign.id, Campaign.title, Measure.state)
        .order_by(Campaign.id, Measure.state)).all()
    return [(cid, title, str(state), count, int(late or 0))
            for cid, title, state, count, late in rows]


class MeasureCollector(Collector):
    """Gauges of the ledger, by campaign, computed from the database at each scrape.

    - ``rectiflow_measures{campaign_id, campaign, state}``: measures in each state;
    - ``rectiflow_measures_open``: assigned or in_progress (the owner still has work);
    - ``rectiflow_measures_overdue``: open and past the deadline (as ``measure list --overdue``);
    - ``rectiflow_measures_awaiting_signoff``: verified, waiting for the leader's 销号.
    """

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime]) -> None:
        self.sessions = sessions
        self.clock = clock

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(self._families())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = self._families()
        up, by_state, open_, overdue, awaiting, inspected = families
        try:
            with self.sessions() as session:
                rows = measure_counts(session, local_date(self.clock()))
                units = session.execute(
                    select(Campaign.id, Unit.name).join(Unit, Unit.id == Campaign.inspected_unit_id)
                    .order_by(Campaign.id)).all()
        except SQLAlchemyError as exc:
            log.warning("metrics: the ledger could not be read: %s", exc)
            up.add_metric([], 0)
            return iter([up])
        up.add_metric([], 1)
        for cid, unit in units:
            inspected.add_metric([str(cid), unit], 1)
        totals: dict[tuple[str, str], list[int]] = {}
        for cid, title, state, count, late in rows:
            labels = (str(cid), title)
            by_state.add_metric([*labels, state], count)
            total = totals.setdefault(labels, [0, 0, 0])
            if State(state) in OPEN_STATES:
                total[0] += count
            total[1] += late
            if state == State.VERIFIED:
                total[2] += count
        for labels, (n_open, n_overdue, n_awaiting) in totals.items():
            open_.add_metric(list(labels), n_open)
            overdue.add_metric(list(labels), n_overdue)
            awaiting.add_metric(list(labels), n_awaiting)
        return iter(families)

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        labels = ["campaign_id", "campaign"]
        return [
            GaugeMetricFamily("rectiflow_ledger_up",
                              "1 when the measure gauges below could be read from the database"),
            GaugeMetricFamily("rectiflow_measures", "Measures by campaign and state",
                              labels=[*labels, "state"]),
            GaugeMetricFamily("rectiflow_measures_open",
                              "Measures whose owner still has work (assigned, in_progress)",
                              labels=labels),
            GaugeMetricFamily("rectiflow_measures_overdue",
                              "Open measures past their deadline (Beijing date)", labels=labels),
            GaugeMetricFamily("rectiflow_measures_awaiting_signoff",
                              "Verified measures waiting for the leader's sign-off (待销号)",
                              labels=labels),
            # an info series to join on campaign_id: the gauges above by inspected unit
            GaugeMetricFamily("rectiflow_campaign_inspected_unit",
                              "1 for each campaign that names an inspected unit (被巡察单位)",
                              labels=["campaign_id", "inspected_unit"]),
        ]


class _Forward(Collector):
    """Everything another registry holds, as part of this one."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        return iter(self.registry.collect())


def web_registry(sessions: sessionmaker[Session], clock: Callable[[], datetime],
                 process: CollectorRegistry | None = None) -> CollectorRegistry:
    """What ``/metrics`` serves: this process's counters plus the ledger's gauges."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Forward(process or process_registry()))
    registry.register(MeasureCollector(sessions, clock))
    return registry


# ------------------------------------------------------------------ processes


def process_registry() -> CollectorRegistry:
    """This process's counters: the default registry, or in multiprocess mode (a prefork
    worker) the sum over every process that shares the metrics directory."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return registry


def use_multiprocess(directory: Path) -> None:
    """Count in files under ``directory`` shared by forked children (a prefork Celery worker),
    so one HTTP server in the parent reports the sum. Call before forking; clears the
    directory of a previous run's files."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    values.ValueClass = values.MultiProcessValue()
    _build()


def child_exited(pid: int) -> None:
    """A forked child stopped: drop its live gauge files (multiprocess mode only)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def serve_metrics(port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 - scraped by Prometheus
    """Expose this process's counters on ``http://host:port/metrics`` (a daemon thread)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=process_registry())
