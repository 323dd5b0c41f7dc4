"""Logs and metrics for the Celery worker: rectiflow's log format instead of Celery's, the task
id on every line a task writes, and one ``/metrics`` port for the worker and all its children.

A prefork worker runs tasks in forked children, each with its own memory: their counters are
kept in files under ``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary directory unless the
environment names one) and the parent's HTTP server reports their sum.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from celery import signals

from config.settings import Settings
from workflow import logs, metrics

log = logging.getLogger("rectiflow.worker")


def install_worker_hooks(settings: Settings, *, loglevel: str, pool: str) -> None:
    """Connect the Celery signals; call in the worker's parent before it starts."""

    def setup_logging(**_kwargs: Any) -> None:
        # Connected, this signal stops Celery from configuring (hijacking) the root logger.
        logs.configure_logging(settings, default_level=loglevel)

    def task_started(task_id: str | None = None, **_kwargs: Any) -> None:
        logs.task_id.set(task_id)

    def task_finished(**_kwargs: Any) -> None:
        logs.task_id.set(None)

    def child_stopped(pid: int | None = None, **_kwargs: Any) -> None:
        metrics.child_exited(pid or os.getpid())

    signals.setup_logging.connect(setup_logging, weak=False)
    signals.task_prerun.connect(task_started, weak=False)
    signals.task_postrun.connect(task_finished, weak=False)
    signals.worker_process_shutdown.connect(child_stopped, weak=False)
    if settings.metrics_port is None:
        return
    if pool == "prefork":
        metrics.use_multiprocess(_multiprocess_dir())
    # After use_multiprocess (which rebuilds the metrics), before forking: children inherit them.
    metrics.start_series(settings)
    port = settings.metrics_port

    def serve(**_kwargs: Any) -> None:
        metrics.serve_metrics(port)
        log.info("worker metrics on port %s (/metrics)", port)

    signals.worker_ready.connect(serve, weak=False)


def _multiprocess_dir() -> Path:
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        return Path(given)
    made = Path(tempfile.mkdtemp(prefix="rectiflow-metrics-"))
    parent = os.getpid()
    # Only the parent removes it: a child exiting must not pull the files from under the rest.
    def remove() -> None:
        if os.getpid() == parent:
            shutil.rmtree(made, ignore_errors=True)

    atexit.register(remove)
    return made
