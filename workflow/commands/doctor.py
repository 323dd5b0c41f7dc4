"""``rectiflow doctor``: check a deployment in one run, one line per check, exit 1 on a failure.

The checks are in ``workflow/ops/doctor.py``, the database and broker probes in
``workflow/ops/probes.py`` and the channel probes in ``notifications/probes.py``; this module
only gathers their inputs from the settings and the database, hands the channel probes in, and
prints the findings.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import click
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from config.settings import mask_url_password
from notifications import probes as channel_probes
from workflow import db
from workflow.calendar_store import load_calendar
from workflow.commands.common import App, emit_json, json_option, now_option, pass_app
from workflow.leases import HeartbeatName, read_heartbeat
from workflow.lifecycle import CHANNEL_LABELS
from workflow.ops import dbroles, doctor, probes
from workflow.ops.doctor import Check, Finding, Status
from workflow.timeutil import local_date, system_now

#: Seconds each check may take; network probes give up a little earlier on their own.
CHECK_TIMEOUT = 8.0
#: Seconds the broker has to answer a connection and a PING.
BROKER_TIMEOUT = 3.0


def _engine(app: App) -> Engine:
    """The database with a connect timeout, so an unreachable PostgreSQL does not hang doctor."""
    url = app.settings.database_url
    if make_url(url).get_backend_name() == "postgresql":
        return db.make_engine(url, connect_args={"connect_timeout": 5})
    return app.runtime.engine


def _database_check(app: App, engine: Engine) -> Finding:
    url = app.settings.database_url
    missing = probes.sqlite_file_missing(url)
    if missing is not None:
        return Finding.fail(f"数据库文件 {missing.resolve()} 不存在：请确认 RECTIFLOW_DATABASE_URL，"
                            "或运行 rectiflow db upgrade 新建")
    try:
        facts = probes.read_schema(engine)
    except Exception as exc:  # noqa: BLE001 - any driver error means "not reachable"
        reason = getattr(exc, "orig", None) or exc
        return Finding.fail(f"无法连接 {mask_url_password(url)}（{' '.join(str(reason).split())[:200]}）："
                            "请确认数据库服务在运行，RECTIFLOW_DATABASE_URL 中的地址、端口、用户名和密码正确")
    return doctor.migration_finding(facts.current, facts.head, facts.known, facts.backend)


def _with_session(app: App, read: Callable[[Session], Finding]) -> Callable[[], Finding]:
    """A check that reads the database in a transaction of its own (checks run side by side)."""

    def run() -> Finding:
        with app.transaction() as session:
            return read(session)
    return run


def _database_checks(app: App) -> list[Check]:
    settings = app.settings
    now = app.now()

    def calendar(session: Session) -> Finding:
        overrides = doctor.calendar_overrides(settings.config_file)
        return doctor.calendar_finding(load_calendar(session, overrides), local_date(now))

    def clock(session: Session) -> Finding:
        # The clock writes heartbeats with the real time, whatever --now says.
        return doctor.clock_finding(read_heartbeat(session, HeartbeatName.CLOCK), system_now(),
                                    settings.clock_tick, broker=bool(settings.broker_url))

    def last_sweep(session: Session) -> Finding:
        # Written with the real time by the sweep task (worker) or the embedded clock.
        return doctor.sweep_finding(read_heartbeat(session, HeartbeatName.SWEEP), system_now(),
                                    settings.sweep_tick, broker=bool(settings.broker_url))

    def backlog(session: Session) -> Finding:
        return doctor.backlog_finding(doctor.read_outbox(session, now), now, settings.clock_tick)

    def dead(session: Session) -> Finding:
        return doctor.dead_finding(doctor.read_outbox(session, now))

    def outage(session: Session) -> Finding:
        return doctor.outage_finding(doctor.read_channel_failures(session), now, CHANNEL_LABELS,
                                     settings.delivery_retry_hours)

    def history_guard(session: Session) -> Finding:
        return doctor.history_guard_finding(dbroles.read_history_guard(session))

    return [Check("calendar", "工作日日历", _with_session(app, calendar)),
            Check("history_guard", "历史记录防护", _with_session(app, history_guard)),
            Check("clock", "时钟", _with_session(app, clock)),
            Check("sweep", "提醒扫描", _with_session(app, last_sweep)),
            Check("outbox_backlog", "发件箱积压", _with_session(app, backlog)),
            Check("outbox_dead", "发送失败的消息", _with_session(app, dead)),
            Check("delivery_outage", "发送中断", _with_session(app, outage))]


def _channel_checks(app: App, send_test: str | None) -> list[Check]:
    """The channel probes live on the notification side; the domain's runner only calls them."""
    settings = app.settings
    return [Check("smtp", "邮件",
                  lambda: channel_probes.smtp_finding(settings, send_test_to=send_test)),
            Check("wecom", "企业微信", lambda: channel_probes.wecom_finding(settings)),
            Check("wecom_robot", "企业微信群机器人", lambda: channel_probes.robot_finding(settings))]


def _broker_check(url: str | None) -> Finding:
    """The broker answers a PING (Redis) or a connection (AMQP), as ``/readyz`` checks it."""
    if not url:
        return doctor.broker_finding(None, None)
    location = mask_url_password(url)
    try:
        probes.check_broker(url, timeout=BROKER_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - any client error means "not reachable"
        password = urlsplit(url).password
        detail = f"{type(exc).__name__}: {exc}"
        return doctor.broker_finding(location, detail.replace(str(password), "***")
                                     if password else detail)
    return doctor.broker_finding(location, None)


def _local_checks(app: App) -> list[Check]:
    settings = app.settings
    return [Check("broker", "消息队列", lambda: _broker_check(settings.broker_url)),
            Check("evidence", "佐证材料存储",
                  lambda: doctor.evidence_finding(settings.evidence_dir,
                                                  settings.evidence_max_bytes)),
            Check("policy", "策略文件", lambda: doctor.policy_finding(settings.config_file))]


def _skipped(checks: list[Check], reason: str) -> list[Check]:
    finding = Finding.warn(f"未检查：{reason}")
    return [Check(c.name, c.label, lambda: finding) for c in checks]


ORDER = ("database", "broker", "smtp", "wecom", "wecom_robot", "calendar", "clock", "sweep",
         "outbox_backlog", "outbox_dead", "delivery_outage", "history_guard", "evidence", "policy")


def run_doctor(app: App, send_test: str | None = None,
               timeout: float = CHECK_TIMEOUT) -> list[doctor.CheckResult]:
    """All checks: the database first (the checks that read it need it), then the rest side
    by side."""
    engine = _engine(app)
    try:
        [database] = doctor.run_checks(
            [Check("database", "数据库", lambda: _database_check(app, engine))], timeout)
    finally:
        if engine is not app.runtime.engine:
            engine.dispose()
    reads_database = _database_checks(app)
    if database.status is not Status.OK:
        reads_database = _skipped(reads_database, "数据库不可用或表结构不是最新")
    rest = doctor.run_checks(_channel_checks(app, send_test) + reads_database + _local_checks(app),
                             timeout)
    results = [database, *rest]
    return sorted(results, key=lambda r: ORDER.index(r.name) if r.name in ORDER else len(ORDER))


@click.command("doctor")
@click.option("--send-test", metavar="ADDRESS", help="同时向这个邮箱发送一封测试邮件")
@json_option
@now_option
@pass_app
def doctor_cmd(app: App, send_test: str | None, as_json: bool) -> None:
    """检查部署：数据库、消息队列、邮件、企业微信、日历、时钟、最近的提醒扫描、发件箱、佐证材料目录和策略文件。

    每项一行：✓ 正常，! 需要留意，✗ 有问题。有 ✗ 时退出码为 1。
    """
    started = system_now()
    # Sending a test mail logs in a second time, through the email channel.
    results = run_doctor(app, send_test, CHECK_TIMEOUT * 2 if send_test else CHECK_TIMEOUT)
    if as_json:
        emit_json([r.as_json() for r in results])
    else:
        for result in results:
            click.echo(result.line())
        worst = doctor.overall(results)
        seconds = (system_now() - started).total_seconds()
        summary = {Status.OK: "全部正常", Status.WARN: "没有错误，但有需要留意的项目",
                   Status.FAIL: "有需要处理的问题（✗）"}[worst]
        click.echo(f"检查完成（{seconds:.1f} 秒）：{summary}。")
    if doctor.overall(results) is Status.FAIL:
        raise SystemExit(1)


def register(cli: click.Group) -> None:
    cli.add_command(doctor_cmd)
