"""``rectiflow serve``, ``rectiflow clock``, ``rectiflow worker``: the long-running processes.

- ``serve`` without ``RECTIFLOW_BROKER_URL`` (the embedded default) serves the web app and runs
  the clock in-process, sweeping and delivering itself; with a broker it only serves the web app.
- ``clock`` only enqueues Celery tasks, while it holds the clock lease.
- ``worker`` runs a Celery worker that does the sweeps and deliveries.

Each command imports the Celery app, the clock or the web app itself, when it runs: every other
command of the CLI starts without loading them.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import click

from config.settings import Settings
from workflow import db
from workflow.commands.common import App, pass_app
from workflow.errors import InputError
from workflow.logs import configure_logging
from workflow.metrics import serve_metrics
from workflow.web.demo import DEMO_PASSWORD, load_demo

log = logging.getLogger("rectiflow.processes")


def _setup_logging(settings: Settings) -> None:
    """rectiflow's log format (RECTIFLOW_LOG_FORMAT) at INFO unless RECTIFLOW_LOG_LEVEL says."""
    configure_logging(settings, default_level="INFO")


def _require_broker(settings: Settings, command: str) -> str:
    if not settings.broker_url:
        raise InputError(
            f"rectiflow {command} 需要消息队列，但未设置环境变量 RECTIFLOW_BROKER_URL"
            "（例如 redis://127.0.0.1:6379/0 或 amqp://guest:guest@127.0.0.1:5672//）。"
            "单机部署无需消息队列：直接运行 rectiflow serve，提醒和发送在同一进程内完成。",
            field="RECTIFLOW_BROKER_URL")
    return settings.broker_url


@contextmanager
def _stop_on_signals() -> Iterator[list[int]]:
    """SIGTERM and SIGINT raise SystemExit in the main thread (once), for a clean shutdown."""
    received: list[int] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        first = not received
        received.append(signum)
        if first:
            raise SystemExit(0)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="监听地址")
@click.option("--port", default=8000, show_default=True, type=int, help="监听端口")
@click.option("--demo", is_flag=True, help="载入演示数据（各状态的整改措施），并打印各角色的登录账号")
@pass_app
def serve_cmd(app: App, host: str, port: int, demo: bool) -> None:
    """运行网页服务；未设置 RECTIFLOW_BROKER_URL 时，同时在本进程内定时扫描提醒并发送消息。"""
    import uvicorn
    from apscheduler.schedulers.background import BackgroundScheduler

    from tasks.clock import Clock, embedded_jobs, scheduler_options
    from workflow.web.app import create_app

    _setup_logging(app.settings)
    settings = app.settings
    if demo:
        _load_demo(app)
    clock: Clock | None = None
    scheduler: BackgroundScheduler | None = None
    if settings.broker_url:
        click.echo("已设置 RECTIFLOW_BROKER_URL：本进程只提供网页服务，"
                   "定时任务由 rectiflow clock 和 rectiflow worker 负责。", err=True)
    else:
        clock = Clock(settings, app.runtime.sessions, embedded_jobs(app.runtime))
        scheduler = BackgroundScheduler(**scheduler_options())  # type: ignore[arg-type]
        clock.schedule(scheduler)
        click.echo(f"嵌入模式：本进程每 {settings.sweep_tick} 秒扫描提醒、每 {settings.clock_tick} "
                   "秒发送到期消息。", err=True)
    # uvicorn logs through rectiflow's handler (log_config=None); the app writes the access log
    # itself, with the request id and without the token of an approval link.
    server = uvicorn.Server(uvicorn.Config(create_app(app.runtime), host=host, port=port,
                                           log_config=None, access_log=False,
                                           # X-Forwarded-For is read by the app, only from
                                           # RECTIFLOW_TRUSTED_PROXIES (see web/auth.py)
                                           proxy_headers=False))
    # uvicorn handles SIGTERM/SIGINT itself and raises them again once it has stopped; these
    # handlers receive that second delivery, so the clock below is still shut down cleanly.
    stopped: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _f: stopped.append(signum))
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if scheduler is not None:
            scheduler.start()
        server.run()
    finally:
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=True)
        if clock is not None:
            clock.release()
        for sig, old in previous.items():
            signal.signal(sig, old)
    click.echo("rectiflow serve 已停止。", err=True)


def _load_demo(app: App) -> None:
    db.upgrade(app.runtime.engine)
    with app.transaction() as session:
        logins = load_demo(session, app.now())
    click.echo(f"演示数据已载入。各角色登录账号（密码均为 {DEMO_PASSWORD}）：")
    for login in logins:
        click.echo(f"  {login.role:<12} {login.name:<6} {login.email}")


@click.command("clock")
@pass_app
def clock_cmd(app: App) -> None:
    """生产时钟：按北京时间的节拍把扫描和发送任务放入消息队列（本身不做这些工作）。

    同时运行两个时钟是安全的：只有持有租约的一个在调度，另一个待命，前者停止后自动接替。
    """
    from apscheduler.schedulers.blocking import BlockingScheduler

    from tasks.celery_app import configure
    from tasks.clock import Clock, enqueueing_jobs, scheduler_options

    _require_broker(app.settings, "clock")
    _setup_logging(app.settings)
    configure(app.settings)
    settings = app.settings
    if settings.metrics_port is not None:
        serve_metrics(settings.metrics_port)
        log.info("时钟的监控指标：端口 %s（/metrics）", settings.metrics_port)
    clock = Clock(settings, app.runtime.sessions, enqueueing_jobs(app.runtime))
    scheduler = BlockingScheduler(**scheduler_options())  # type: ignore[arg-type]
    clock.schedule(scheduler)
    log.info("时钟 %s 启动：扫描每 %s 秒，发送每 %s 秒（北京时间）", clock.holder,
             settings.sweep_tick, settings.clock_tick)
    with _stop_on_signals():
        try:
            scheduler.start()
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            if scheduler.running:
                scheduler.shutdown(wait=True)
            clock.release()
    log.info("时钟 %s 已停止", clock.holder)


@click.command("worker")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=None,
              help="并发进程（或线程）数，默认等于 CPU 核数")
@click.option("--pool", type=click.Choice(["prefork", "threads", "solo"]), default="prefork",
              show_default=True, help="Celery 执行池")
@click.option("--loglevel", default="INFO", show_default=True, help="日志级别")
@click.option("--name", "-n", "hostname", default=None, help="工作进程名（默认 rectiflow@主机名）")
@pass_app
def worker_cmd(app: App, concurrency: int | None, pool: str, loglevel: str,
               hostname: str | None) -> None:
    """生产工作进程：执行时钟放入消息队列的扫描和发送任务（Celery worker）。"""
    from tasks.celery_app import configure, queue_name
    from tasks.observability import install_worker_hooks

    _require_broker(app.settings, "worker")
    celery = configure(app.settings)
    install_worker_hooks(app.settings, loglevel=loglevel, pool=pool)
    argv = ["worker", "--queues", queue_name(app.settings), "--loglevel", loglevel,
            "--pool", pool, "--without-gossip", "--without-mingle",
            "--hostname", hostname or "rectiflow@%h"]
    if concurrency is not None:
        argv += ["--concurrency", str(concurrency)]
    celery.worker_main(argv)


def register(cli: click.Group) -> None:
    cli.add_command(serve_cmd)
    cli.add_command(clock_cmd)
    cli.add_command(worker_cmd)
