"""Celery tasks: thin wrappers over ``tasks.work``. They take no objects (ids at most), re-read
the database, commit, and exit quietly when there is nothing to do.
"""

from __future__ import annotations

import logging

from tasks.celery_app import TASK_TIME_BUDGET, app
from tasks.work import process_work, wrote_messages

log = logging.getLogger("rectiflow.tasks")


@app.task(name="rectiflow.sweep")
def sweep_task() -> dict[str, int]:
    """Plan due reminders into the outbox; if it wrote messages, wake a deliverer at once."""
    summary = process_work().sweep()
    if wrote_messages(summary):
        # The sweep's transaction has committed: the deliverer will see the rows.
        deliver_task.delay()
    return summary


@app.task(name="rectiflow.deliver")
def deliver_task() -> dict[str, int]:
    """Send what is due in the outbox until nothing is left (or the time budget is used)."""
    return process_work().deliver(budget=TASK_TIME_BUDGET).as_json()


@app.task(name="rectiflow.digest")
def digest_task() -> dict[str, int]:
    """Write this week's digests (one per reader, once a week), then wake a deliverer."""
    summary = process_work().digest()
    if wrote_messages(summary):
        deliver_task.delay()
    return summary
