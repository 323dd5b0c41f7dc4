"""The Celery app: configured from settings, carrying only wake-ups and ids.

The truth is in the database (outbox rows with leases, ``next_reminder_at``), so a lost task
costs one clock tick at most; nothing here is the only copy of anything.

- ``task_acks_late``: a task is acknowledged after it ran, so one a worker took but never ran
  is delivered again.
- ``task_reject_on_worker_lost`` stays off: with it, a task that kills its worker is redelivered
  forever. A SIGKILLed worker's task is then acknowledged and lost, which costs nothing: the
  next tick enqueues another, and rows the dead worker had claimed come back when their outbox
  lease runs out.
- No ETA or countdown: on Redis a task waiting past ``visibility_timeout`` is redelivered again
  and again. Due times live in the database and the clock polls.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from config.settings import Settings, load_settings

#: How long one deliver task may keep sending before it returns and lets the next tick go on.
TASK_TIME_BUDGET = 300
#: Redis redelivers an unacknowledged task after this long; well above any task's run time.
VISIBILITY_TIMEOUT = 2 * TASK_TIME_BUDGET + 300

app = Celery("rectiflow", include=["tasks.jobs"])


def _redis(settings: Settings) -> bool:
    return bool(settings.broker_url and settings.broker_url.startswith(("redis://", "rediss://")))


def queue_name(settings: Settings) -> str:
    """``rectiflow``; on RabbitMQ prefixed by ``RECTIFLOW_BROKER_PREFIX`` (on Redis the prefix
    goes in front of every key instead)."""
    if settings.broker_prefix and not _redis(settings):
        return f"{settings.broker_prefix}rectiflow"
    return "rectiflow"


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings from rectiflow settings (the broker is ``RECTIFLOW_BROKER_URL``)."""
    transport: dict[str, Any] = {"visibility_timeout": VISIBILITY_TIMEOUT}
    if _redis(settings):
        transport["socket_connect_timeout"] = 5
        if settings.broker_prefix:
            # Several installations (or test runs) may share one Redis.
            transport["global_keyprefix"] = settings.broker_prefix
    queue = queue_name(settings)
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,  # a worker waits for Redis to come back
        "broker_transport_options": transport,
        "task_default_queue": queue,
        "task_default_routing_key": queue,
        "task_acks_late": True,
        "task_reject_on_worker_lost": False,
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        "result_backend": None,
        "timezone": "Asia/Shanghai",
        "enable_utc": True,
        "task_time_limit": TASK_TIME_BUDGET + 120,
        # The clock must not hang on a broker that is down: a few quick tries, then the tick is
        # skipped and logged; the next tick tries again.
        "task_publish_retry": True,
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0.2,
                                      "interval_step": 0.5, "interval_max": 1.0},
        "worker_hijack_root_logger": True,
    }


def configure(settings: Settings) -> Celery:
    """Point the app at ``settings`` (the worker and clock commands call this at start)."""
    app.conf.update(celery_config(settings))
    return app


configure(load_settings())
