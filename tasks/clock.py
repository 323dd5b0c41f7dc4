"""The clock: APScheduler 3 cron triggers in Asia/Shanghai, guarded by a lease.

Every tick first takes or renews the ``clock`` lease in ``runtime_state`` (for 2.5 ticks), then
does its job. A second clock cannot get the lease, so it does nothing and stands by; when the
first stops renewing (it died, or released the lease on a clean shutdown) the second takes over
within three ticks. Triggers are cron triggers on the wall clock, so clocks on two machines tick
at the same instants and the lease's expiry falls half a tick away from any of them.

Two modes:
- production (``rectiflow clock``): jobs only enqueue Celery tasks, after the lease is committed;
- embedded (``rectiflow serve`` without a broker): jobs run the sweep and the deliverer directly,
  in the scheduler's one worker thread.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from tasks.jobs import deliver_task, digest_task, sweep_task
from tasks.work import Work, process_name, wrote_messages
from workflow import db, metrics
from workflow.leases import HeartbeatName, acquire_lease, heartbeat, release_lease
from workflow.ops.checkpoint import scheduled_name, write_checkpoint
from workflow.policy import PolicySet, digest_schedule
from workflow.runtime import Runtime
from workflow.timeutil import SHANGHAI, system_now

log = logging.getLogger("rectiflow.clock")

LEASE = "clock"


def tick_trigger(seconds: int) -> CronTrigger:
    """A cron trigger firing every ``seconds`` on the Beijing wall clock (a divisor of a minute,
    or of an hour in whole minutes)."""
    if seconds < 60:
        if 60 % seconds:
            raise ValueError(f"{seconds} s does not divide a minute")
        return CronTrigger(second=f"*/{seconds}", timezone=SHANGHAI)
    minutes, rest = divmod(seconds, 60)
    if rest or 60 % minutes:
        raise ValueError(f"{seconds} s is not a whole divisor of an hour in minutes")
    return CronTrigger(minute=f"*/{minutes}", second=0, timezone=SHANGHAI)


def lease_ttl(tick: int) -> timedelta:
    """Two and a half ticks: one late renewal is tolerated, and expiry never coincides with a
    tick, when the other clock asks."""
    return timedelta(seconds=tick * 2.5)


def tick_stamp(moment: datetime, tick: int) -> str:
    """The scheduled tick a moment belongs to, e.g. ``20261207T093000``; names enqueued tasks."""
    local = moment.astimezone(SHANGHAI)
    epoch = int(local.timestamp()) // tick * tick
    return datetime.fromtimestamp(epoch, SHANGHAI).strftime("%Y%m%dT%H%M%S")


class Clock:
    """Runs named jobs on ticks, only while holding the clock lease."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session],
                 jobs: Mapping[str, tuple[int | CronTrigger, Callable[[datetime], object]]],
                 holder: str | None = None,
                 now_fn: Callable[[], datetime] = system_now) -> None:
        self.settings = settings
        self.now_fn = now_fn
        self.sessions = sessions
        self.jobs = dict(jobs)
        self.holder = holder or f"{process_name()}:{uuid.uuid4().hex[:6]}"
        self.ttl = lease_ttl(settings.clock_tick)
        self.leading: bool | None = None

    def renew(self, now: datetime) -> bool:
        """Take or renew the lease and record a heartbeat; says whether this clock leads."""
        with db.transaction(self.sessions) as session:
            mine = acquire_lease(session, LEASE, self.holder, now, self.ttl)
            if mine:
                heartbeat(session, HeartbeatName.CLOCK, now, self.holder)
        if mine and self.leading is not True:
            log.info("时钟 %s 已取得租约，开始调度", self.holder)
        elif not mine and self.leading is not False:
            log.info("时钟 %s：另一个时钟正持有租约，本实例待命（standing by）", self.holder)
        self.leading = mine
        metrics.clock_leader(mine)
        return mine

    def run_job(self, name: str) -> None:
        """One tick of job ``name``: lease first (committed), then the job."""
        now = self.now_fn()
        try:
            if not self.renew(now):
                return
            self.jobs[name][1](now)
        except Exception:
            metrics.clock_job(name, "error")
            log.exception("时钟任务 %s 出错；下一个节拍会再试", name, extra={"job": name})
        else:
            metrics.clock_job(name, "ok")

    def release(self) -> None:
        """On a clean shutdown: give the lease up so a standby clock takes over at once."""
        try:
            with db.transaction(self.sessions) as session:
                if release_lease(session, LEASE, self.holder, self.now_fn()):
                    log.info("时钟 %s 已释放租约", self.holder)
        except Exception:
            log.exception("释放时钟租约失败；它将在 %s 后自然过期", self.ttl)

    def schedule(self, scheduler: BaseScheduler) -> BaseScheduler:
        """Add one job per name, plus the heartbeat that keeps the lease between jobs."""
        metrics.start_clock_series(self.jobs)
        scheduler.add_job(self._heartbeat, tick_trigger(self.settings.clock_tick),
                          id="heartbeat", name="heartbeat", max_instances=1, coalesce=True,
                          misfire_grace_time=max(1, self.settings.clock_tick // 2))
        for name, (when, _) in self.jobs.items():
            # A tick in seconds, or a cron trigger of its own (the weekly digest)
            trigger = tick_trigger(when) if isinstance(when, int) else when
            grace = max(1, when // 2) if isinstance(when, int) else 3600
            scheduler.add_job(self.run_job, trigger, args=[name], id=name, name=name,
                              max_instances=1, coalesce=True, misfire_grace_time=grace)
        return scheduler

    def _heartbeat(self) -> None:
        try:
            self.renew(self.now_fn())
        except Exception:
            log.exception("时钟续约失败；下一个节拍会再试")


def scheduler_options() -> dict[str, object]:
    # One thread: ticks run in order, and an embedded sweep never overlaps its own deliverer.
    return {"executors": {"default": ThreadPoolExecutor(1)}, "timezone": SHANGHAI}


# ------------------------------------------------------------------ the two modes


Jobs = dict[str, tuple[int | CronTrigger, Callable[[datetime], object]]]


def digest_trigger(policies: PolicySet) -> CronTrigger:
    """The weekly digest's cron trigger from the policy's ``[digest]`` table (Monday 09:00)."""
    return CronTrigger(timezone=SHANGHAI, **digest_schedule(policies).cron)


def checkpoint_trigger(minutes: int) -> CronTrigger:
    """Every ``minutes`` (a divisor of an hour, or of a day in whole hours), Beijing time."""
    if minutes < 60:
        return CronTrigger(minute=f"*/{minutes}", second=0, timezone=SHANGHAI)
    return CronTrigger(hour=f"*/{minutes // 60}", minute=0, second=0, timezone=SHANGHAI)


def checkpoint_job(runtime: Runtime) -> Jobs:
    """The signed audit checkpoint, written by the clock itself (in both modes) into the folder
    the operator chose: the clock's machine is where that folder is. None without a folder."""
    settings = runtime.settings
    folder = settings.audit_checkpoint_dir
    if folder is None:
        return {}
    if not settings.audit_key:
        log.warning("设置了 RECTIFLOW_AUDIT_CHECKPOINT_DIR 但没有 RECTIFLOW_AUDIT_KEY：不写审计检查点")
        return {}
    key = settings.audit_key

    def checkpoint(now: datetime) -> None:
        with db.transaction(runtime.sessions) as session:
            document = write_checkpoint(session, folder / scheduled_name(now), key, now)
        log.info("审计检查点已写入 %s（%s 条历史）", folder / scheduled_name(now),
                 document["totals"]["entries"])

    return {"audit_checkpoint": (checkpoint_trigger(settings.audit_checkpoint_minutes),
                                 checkpoint)}


def enqueueing_jobs(runtime: Runtime) -> Jobs:
    """Production: each tick enqueues one task, named after its tick (so a log shows repeats)."""
    settings = runtime.settings

    def sweep(now: datetime) -> None:
        sweep_task.apply_async(task_id=f"sweep-{tick_stamp(now, settings.sweep_tick)}")

    def deliver(now: datetime) -> None:
        deliver_task.apply_async(task_id=f"deliver-{tick_stamp(now, settings.clock_tick)}")

    def digest(now: datetime) -> None:
        digest_task.apply_async(task_id=f"digest-{now.astimezone(SHANGHAI):%G-W%V}")

    return {"sweep": (settings.sweep_tick, sweep), "deliver": (settings.clock_tick, deliver),
            "digest": (digest_trigger(runtime.policies), digest), **checkpoint_job(runtime)}


def embedded_jobs(runtime: Runtime) -> Jobs:
    """Embedded: each tick does the work itself, in this process, as a Celery worker would."""
    settings = runtime.settings
    work = Work(runtime)

    def sweep(_now: datetime) -> None:
        if wrote_messages(work.sweep()):
            work.deliver(budget=settings.clock_tick)

    def deliver(_now: datetime) -> None:
        work.deliver(budget=settings.clock_tick)

    def digest(_now: datetime) -> None:
        if wrote_messages(work.digest()):
            work.deliver(budget=settings.clock_tick)

    return {"sweep": (settings.sweep_tick, sweep), "deliver": (settings.clock_tick, deliver),
            "digest": (digest_trigger(runtime.policies), digest), **checkpoint_job(runtime)}
