"""``rectiflow doctor``: every failure it knows is made to happen for real, and its line read.

Real things throughout: an aiosmtpd server (one that accepts, one that refuses the login, and
a closed port for "SMTP down"), the local WeCom server with a wrong secret and an untrusted IP,
the group robot's key checked without posting, a calendar year missing, a stale clock heartbeat,
a database whose migrations are behind, a broken policy file. The judgements themselves are
pure functions and are tested from tables as well.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from dbfixtures import BACKEND, PG_URL, Database, application_role
from fakes.wecom_server import FakeWeCom
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from workflow import db
from workflow.leases import Heartbeat, heartbeat
from workflow.models import OutboxMessage
from workflow.ops.doctor import (
    Check,
    Finding,
    OutboxFacts,
    Status,
    backlog_finding,
    broker_finding,
    calendar_finding,
    clock_finding,
    dead_finding,
    evidence_finding,
    migration_finding,
    run_checks,
    sweep_finding,
)
from workflow.timeutil import system_now
from workflow.workcalendar import OFFICIAL_YEARS, DayOverride, WorkCalendar

CLOCK_HEARTBEAT = "clock:heartbeat"  # HeartbeatName.CLOCK
SWEEP_HEARTBEAT = "task:sweep"  # HeartbeatName.SWEEP
#: The last year the packaged calendar knows: its November is when next year goes missing.
LAST_OFFICIAL = max(OFFICIAL_YEARS)
NEXT = LAST_OFFICIAL + 1
SECRET = "app-secret-DO-NOT-LOG"
ROBOT_KEY = "robot-key-0123-DO-NOT-LOG"


def in_june() -> str:
    return f"{LAST_OFFICIAL}-06-10T10:00:00+08:00"


def in_november() -> str:
    return f"{LAST_OFFICIAL}-11-20T10:00:00+08:00"


def lines(out: str) -> dict[str, str]:
    """Each check's line by its label (the text after the mark, before the first ：)."""
    found = {}
    for line in out.splitlines():
        if line[:2] in ("✓ ", "! ", "✗ ") and "：" in line:
            found[line[2:].split("：", 1)[0]] = line
    return found


def beat(sessions: sessionmaker[Session], at: datetime, name: str = CLOCK_HEARTBEAT) -> None:
    with db.transaction(sessions) as session:
        heartbeat(session, name, at, "rectiflow@test:1")


@pytest.fixture
def healthy(sessions: sessionmaker[Session], database: Database, cli_env: dict[str, str],
            monkeypatch: pytest.MonkeyPatch) -> Iterator[sessionmaker[Session]]:
    """Given a migrated database, a clock that beat a moment ago and a sweep just done; on
    PostgreSQL the commands connect as an application role that does not own the tables."""
    beat(sessions, system_now())
    beat(sessions, system_now(), SWEEP_HEARTBEAT)
    if database.backend != "postgresql":
        yield sessions
        return
    with application_role(database) as url:
        monkeypatch.setenv("RECTIFLOW_DATABASE_URL", url)
        yield sessions


# ------------------------------------------------------------------ the whole run


def test_a_healthy_embedded_install_is_all_ok(rectiflow: Any, healthy: Any) -> None:
    result = rectiflow("doctor", "--now", in_june())
    assert result.code == 0, result.out
    shown = lines(result.out)
    assert list(shown) == ["数据库", "消息队列", "邮件", "企业微信", "企业微信群机器人", "工作日日历",
                           "时钟", "提醒扫描", "发件箱积压", "发送失败的消息", "发送中断",
                           "历史记录防护", "佐证材料存储", "策略文件"]
    assert all(line.startswith("✓") for line in shown.values()), result.out
    assert "未配置" in shown["邮件"] and "未配置" in shown["企业微信"]
    assert "单机模式" in shown["消息队列"]
    assert "表结构为最新版本" in shown["数据库"]
    assert "全部正常" in result.out


def test_json_is_one_list_of_checks(rectiflow: Any, healthy: Any) -> None:
    result = rectiflow("doctor", "--json", "--now", in_june())
    assert result.code == 0
    checks = result.json()
    assert [c["name"] for c in checks] == ["database", "broker", "smtp", "wecom", "wecom_robot",
                                           "calendar", "clock", "sweep", "outbox_backlog",
                                           "outbox_dead", "delivery_outage",
                                           "history_guard", "evidence",
                                           "policy"]
    assert {c["status"] for c in checks} == {"ok"}
    assert all(set(c) >= {"name", "status", "message"} for c in checks)


# ------------------------------------------------------------------ SMTP


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


def refuse_everyone(server: Any, session: Any, envelope: Any, mechanism: str,
                    auth_data: Any) -> AuthResult:
    return AuthResult(success=False, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


@pytest.fixture
def refusing_smtp() -> Iterator[int]:
    port = free_port()
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port,
                            authenticator=refuse_everyone, auth_require_tls=False)
    controller.start()
    yield port
    controller.stop()


def use_smtp(monkeypatch: pytest.MonkeyPatch, port: int, **extra: str) -> None:
    monkeypatch.setenv("RECTIFLOW_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("RECTIFLOW_SMTP_PORT", str(port))
    monkeypatch.setenv("RECTIFLOW_SMTP_SENDER", "duban@example.edu.cn")
    for name, value in extra.items():
        monkeypatch.setenv(f"RECTIFLOW_SMTP_{name.upper()}", value)


def test_smtp_down_fails_fast_and_says_so(rectiflow: Any, healthy: Any,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # Given SMTP settings pointing at a port nobody listens on
    use_smtp(monkeypatch, free_port())
    started = time.monotonic()
    result = rectiflow("doctor", "--now", in_june())
    assert time.monotonic() - started < 10
    assert result.code == 1
    line = lines(result.out)["邮件"]
    assert line.startswith("✗ 邮件：SMTP 服务器 127.0.0.1:")
    assert "拒绝连接" in line and "RECTIFLOW_SMTP_PORT" in line
    assert lines(result.out)["数据库"].startswith("✓")  # the rest still ran


def test_smtp_login_refused(rectiflow: Any, healthy: Any, refusing_smtp: int,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    use_smtp(monkeypatch, refusing_smtp, user="duban@example.edu.cn", password="wrong-PASS-9")
    result = rectiflow("doctor", "--now", in_june())
    assert result.code == 1
    line = lines(result.out)["邮件"]
    assert "拒绝登录（535）" in line and "授权码" in line
    assert "wrong-PASS-9" not in result.out + result.err


def test_smtp_ok_and_send_test(rectiflow: Any, healthy: Any, smtp_server: tuple[int, Inbox],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    port, inbox = smtp_server
    use_smtp(monkeypatch, port)
    result = rectiflow("doctor", "--now", in_june())
    assert result.code == 0, result.out
    assert "连接成功" in lines(result.out)["邮件"]
    assert inbox.messages == []  # checking alone sends nothing

    result = rectiflow("doctor", "--send-test", "admin@example.edu.cn", "--now", in_june())
    assert result.code == 0, result.out
    assert "测试邮件已发往 admin@example.edu.cn" in lines(result.out)["邮件"]
    [(recipients, raw)] = inbox.messages
    assert recipients == ["admin@example.edu.cn"]
    assert b"Subject: =?utf-8?" in raw  # a Chinese subject, encoded


def test_a_silent_smtp_server_times_out() -> None:
    # Given a server that accepts the connection and never says a word
    from config.settings import load_settings
    from notifications.probes import smtp_finding

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        settings = load_settings({"RECTIFLOW_SMTP_HOST": "127.0.0.1",
                                  "RECTIFLOW_SMTP_PORT": str(port),
                                  "RECTIFLOW_SMTP_SENDER": "duban@example.edu.cn"})
        started = time.monotonic()
        finding = smtp_finding(settings, timeout=0.5)
    assert time.monotonic() - started < 3
    assert finding.status is Status.FAIL and "0.5 秒内没有收到服务器应答" in finding.message


def test_send_test_without_smtp_fails(rectiflow: Any, healthy: Any) -> None:
    result = rectiflow("doctor", "--send-test", "admin@example.edu.cn", "--now", in_june())
    assert result.code == 1
    assert "无法发送测试邮件" in lines(result.out)["邮件"]


# ------------------------------------------------------------------ WeCom


@pytest.fixture
def wecom_server() -> Iterator[FakeWeCom]:
    with FakeWeCom(secret=SECRET, users={"zhangsan"}, robot_keys={ROBOT_KEY}) as server:
        yield server


def use_wecom(monkeypatch: pytest.MonkeyPatch, server: FakeWeCom, secret: str = SECRET) -> None:
    monkeypatch.setenv("RECTIFLOW_WECOM_API_BASE", server.url)
    monkeypatch.setenv("RECTIFLOW_WECOM_CORP_ID", server.corp_id)
    monkeypatch.setenv("RECTIFLOW_WECOM_SECRET", secret)
    monkeypatch.setenv("RECTIFLOW_WECOM_AGENT_ID", str(server.agent_id))


def test_wecom_token_fetched(rectiflow: Any, healthy: Any, wecom_server: FakeWeCom,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    use_wecom(monkeypatch, wecom_server)
    result = rectiflow("doctor", "--now", in_june())
    assert result.code == 0, result.out
    assert "已获取 access_token" in lines(result.out)["企业微信"]
    assert wecom_server.gettoken_calls == 1
    assert SECRET not in result.out + result.err


def test_wrong_wecom_secret_is_explained(rectiflow: Any, healthy: Any, wecom_server: FakeWeCom,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    use_wecom(monkeypatch, wecom_server, secret="an-old-secret-DO-NOT-LOG")
    result = rectiflow("doctor", "--now", in_june())
    assert result.code == 1
    line = lines(result.out)["企业微信"]
    assert line.startswith("✗ 企业微信：获取 access_token 失败（40001）：Secret 错误")
    assert "应用管理" in line and "RECTIFLOW_WECOM_SECRET" in line
    assert "DO-NOT-LOG" not in result.out + result.err


def test_untrusted_ip_is_explained(rectiflow: Any, healthy: Any, wecom_server: FakeWeCom,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    use_wecom(monkeypatch, wecom_server)
    wecom_server.fail_next("gettoken", 60020)
    result = rectiflow("doctor", "--json", "--now", in_june())
    assert result.code == 1
    [check] = [c for c in result.json() if c["name"] == "wecom"]
    assert check["status"] == "fail"
    assert "（60020）" in check["message"] and "企业可信IP" in check["message"]
    assert "来源 IP 是 127.0.0.1" in check["message"]


def test_half_a_wecom_configuration_fails(rectiflow: Any, healthy: Any,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECTIFLOW_WECOM_CORP_ID", "ww-test-corp")
    result = rectiflow("doctor", "--now", in_june())
    assert result.code == 1
    assert "RECTIFLOW_WECOM_SECRET" in lines(result.out)["企业微信"]


def test_robot_key_checked_without_posting(rectiflow: Any, healthy: Any,
                                           wecom_server: FakeWeCom,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECTIFLOW_WECOM_API_BASE", wecom_server.url)
    monkeypatch.setenv("RECTIFLOW_WECOM_WEBHOOK_KEY", ROBOT_KEY)
    result = rectiflow("doctor", "--now", in_june())
    assert result.code == 0, result.out
    assert "key 有效" in lines(result.out)["企业微信群机器人"]
    assert wecom_server.robot_messages == [] and len(wecom_server.robot_uploads) == 1

    monkeypatch.setenv("RECTIFLOW_WECOM_WEBHOOK_KEY", "a-removed-robot-DO-NOT-LOG")
    result = rectiflow("doctor", "--now", in_june())
    assert result.code == 1
    line = lines(result.out)["企业微信群机器人"]
    assert "（93000）" in line and "RECTIFLOW_WECOM_WEBHOOK_KEY" in line
    assert "DO-NOT-LOG" not in result.out + result.err
    assert wecom_server.robot_messages == []


# ------------------------------------------------------------------ calendar


def test_next_year_missing_in_november_then_entered(rectiflow: Any, healthy: Any) -> None:
    # Given November of the last year the packaged calendar knows, and nothing entered for next
    result = rectiflow("doctor", "--now", in_november())
    assert result.code == 0, result.out  # a warning does not fail doctor
    line = lines(result.out)["工作日日历"]
    assert line.startswith(f"! 工作日日历：{NEXT} 年尚无放假安排")
    for holiday in ("元旦", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节", "调休上班日"):
        assert holiday in line
    assert "国务院" in line and "10 月至 12 月" in line
    assert f"rectiflow calendar add {NEXT}-MM-DD..{NEXT}-MM-DD --holiday --note 春节" in line
    assert f"rectiflow calendar add {NEXT}-MM-DD --workday" in line

    # When the admin enters next year's days as the hint says
    assert rectiflow("calendar", "add", f"{NEXT}-01-01", "--holiday", "--note", "元旦").code == 0
    assert rectiflow("calendar", "add", f"{NEXT}-02-06", "--workday", "--note", "春节调休上班").code == 0

    # Then the calendar is fine
    result = rectiflow("doctor", "--now", in_november())
    line = lines(result.out)["工作日日历"]
    assert line.startswith("✓") and f"{NEXT} 年按管理员录入（放假 1 天、上班 1 天）" in line


def test_calendar_judgement_table() -> None:
    empty = WorkCalendar()
    entered = WorkCalendar({date(NEXT, 1, 1): DayOverride(False, "元旦")})
    cases = [
        (empty, date(LAST_OFFICIAL, 10, 31), Status.OK, "尚未录入"),
        (empty, date(LAST_OFFICIAL, 11, 1), Status.WARN, f"{NEXT} 年尚无放假安排"),
        (empty, date(LAST_OFFICIAL, 12, 31), Status.WARN, f"{NEXT} 年尚无放假安排"),
        (entered, date(LAST_OFFICIAL, 12, 1), Status.OK, f"{NEXT} 年按管理员录入"),
        (empty, date(NEXT, 3, 1), Status.FAIL, f"今年（{NEXT} 年）没有放假安排"),
        (entered, date(NEXT, 3, 1), Status.OK, f"{NEXT} 年按管理员录入"),
    ]
    for calendar, today, status, phrase in cases:
        finding = calendar_finding(calendar, today)
        assert (finding.status, phrase in finding.message) == (status, True), (today, finding)


# ------------------------------------------------------------------ clock


def test_stale_clock_fails(rectiflow: Any, sessions: sessionmaker[Session]) -> None:
    # Given a clock whose last heartbeat is an hour old
    beat(sessions, system_now() - timedelta(hours=1))
    result = rectiflow("doctor", "--now", in_june())
    assert result.code == 1
    line = lines(result.out)["时钟"]
    assert line.startswith("✗ 时钟：时钟已停止：最近心跳在 1 小时前")
    assert "rectiflow serve" in line  # embedded: the clock runs inside serve


def test_no_heartbeat_ever(rectiflow: Any, database: Database,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECTIFLOW_BROKER_URL", "redis://127.0.0.1:6379/0")
    result = rectiflow("doctor", "--now", in_june())
    assert result.code == 1
    line = lines(result.out)["时钟"]
    assert "从未收到时钟心跳" in line and "rectiflow clock" in line


def test_clock_judgement_table() -> None:
    now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

    def at(seconds_ago: float) -> Heartbeat:
        return Heartbeat(CLOCK_HEARTBEAT, now - timedelta(seconds=seconds_ago), "host:1")

    cases = [(None, Status.FAIL, "从未收到"), (at(20), Status.OK, "最近心跳在 20 秒前"),
             (at(140), Status.OK, "2 分钟前"), (at(151), Status.FAIL, "时钟已停止"),
             (at(-600), Status.WARN, "NTP")]
    for beat_, status, phrase in cases:
        finding = clock_finding(beat_, now, 30, broker=False)
        assert finding.status is status and phrase in finding.message, finding


# ------------------------------------------------------------------ the last sweep


def test_a_stale_last_sweep_fails_while_the_clock_beats(rectiflow: Any,
                                                        healthy: sessionmaker[Session]) -> None:
    # Given a clock that beats, but whose sweeps have not succeeded for an hour
    beat(healthy, system_now() - timedelta(hours=1), SWEEP_HEARTBEAT)
    result = rectiflow("doctor", "--now", in_june())
    # Then doctor fails on the sweep line alone
    assert result.code == 1
    shown = lines(result.out)
    assert shown["时钟"].startswith("✓")
    assert shown["提醒扫描"].startswith("✗ 提醒扫描：最近一次成功扫描在 1 小时前")
    assert "扫描节拍 60 秒" in shown["提醒扫描"] and "rectiflow serve" in shown["提醒扫描"]


def test_no_sweep_ever(rectiflow: Any, sessions: sessionmaker[Session],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    beat(sessions, system_now())
    monkeypatch.setenv("RECTIFLOW_BROKER_URL", "redis://127.0.0.1:6379/0")
    result = rectiflow("doctor", "--now", in_june())
    assert result.code == 1
    line = lines(result.out)["提醒扫描"]
    assert "从未有提醒扫描成功完成" in line and "rectiflow worker" in line


def test_a_sweep_by_the_clock_is_what_doctor_reads(rectiflow: Any, database: Database,
                                                   tmp_path: Path) -> None:
    from config.settings import Settings
    from tasks.work import Work
    from workflow.runtime import Runtime

    # When the clock's (or a worker's) sweep succeeds
    beat(database.sessions, system_now())
    Work(Runtime(Settings(database_url=database.url, outbox_dir=tmp_path / "outbox",
                          evidence_dir=tmp_path / "evidence"))).sweep()
    # Then doctor sees it
    line = lines(rectiflow("doctor", "--now", in_june()).out)["提醒扫描"]
    assert line.startswith("✓ 提醒扫描：最近一次成功扫描在"), line


def test_sweep_judgement_table() -> None:
    now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

    def at(seconds_ago: float) -> Heartbeat:
        return Heartbeat(SWEEP_HEARTBEAT, now - timedelta(seconds=seconds_ago), "host:1")

    cases = [(None, 60, Status.FAIL, "从未有提醒扫描成功完成"), (at(30), 60, Status.OK, "30 秒前"),
             (at(290), 60, Status.OK, "4 分钟前"), (at(301), 60, Status.FAIL, "超过 5 分钟"),
             (at(119), 10, Status.OK, "1 分钟前"), (at(121), 10, Status.FAIL, "没有成功的扫描"),
             (at(-30), 60, Status.OK, "0 秒前")]
    for beat_, tick, status, phrase in cases:
        finding = sweep_finding(beat_, now, tick, broker=True)
        assert finding.status is status and phrase in finding.message, finding


# ------------------------------------------------------------------ the broker


def test_a_broker_that_answers(rectiflow: Any, healthy: Any,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    import redis

    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    monkeypatch.setenv("RECTIFLOW_BROKER_URL", url)
    result = rectiflow("doctor", "--now", in_june())
    assert result.code == 0, result.out
    assert lines(result.out)["消息队列"] == f"✓ 消息队列：{url} 可以连接"


@pytest.mark.parametrize("scheme", ["redis://:s3cret-DO-NOT-LOG@127.0.0.1:{port}/0",
                                    "amqp://guest:s3cret-DO-NOT-LOG@127.0.0.1:{port}//"])
def test_a_broker_that_is_down_is_named(rectiflow: Any, healthy: Any,
                                        monkeypatch: pytest.MonkeyPatch, scheme: str) -> None:
    # Given a broker URL whose port nobody listens on
    port = free_port()
    monkeypatch.setenv("RECTIFLOW_BROKER_URL", scheme.format(port=port))
    started = time.monotonic()
    result = rectiflow("doctor", "--now", in_june())
    # Then doctor fails within its time limit, naming the broker, without its password
    assert result.code == 1
    assert time.monotonic() - started < 8
    line = lines(result.out)["消息队列"]
    assert line.startswith("✗ 消息队列：无法连接消息队列 ") and f"127.0.0.1:{port}" in line, line
    assert "s3cret" not in result.out + result.err


def test_broker_judgement_table() -> None:
    assert broker_finding(None, None).status is Status.OK
    down = broker_finding("redis://:***@h:6379/0", "ConnectionError: refused")
    assert down.status is Status.FAIL and "redis://:***@h:6379/0" in down.message
    assert "ConnectionError: refused" in down.message
    assert broker_finding("redis://h:6379/0", None) == Finding.ok("redis://h:6379/0 可以连接")


# ------------------------------------------------------------------ outbox


def message(status: str, not_before: datetime, error: str | None = None) -> OutboxMessage:
    return OutboxMessage(channel="file", recipient="owner@example.edu.cn", subject="提醒",
                         key=f"doctor-test|{uuid.uuid4().hex}", status=status, attempts=5,
                         not_before=not_before, created_at=not_before, last_error=error)


def test_backlog_and_dead_messages(rectiflow: Any, healthy: sessionmaker[Session]) -> None:
    now = datetime.fromisoformat(in_june())
    with db.transaction(healthy) as session:
        session.add_all([message("pending", now - timedelta(hours=3)),
                         message("pending", now - timedelta(minutes=1)),
                         message("pending", now + timedelta(hours=1)),  # not due yet
                         message("dead", now - timedelta(days=1),
                                 "email 发送失败（错误码 550），永久性错误：收件人被拒收")])
    result = rectiflow("doctor", "--now", in_june())
    assert result.code == 0, result.out  # warnings
    backlog = lines(result.out)["发件箱积压"]
    assert backlog.startswith("! 发件箱积压：2 条消息已到发送时间未发出，最早一条已等待 3 小时：")
    dead = lines(result.out)["发送失败的消息"]
    assert dead.startswith("! 发送失败的消息：1 条消息多次发送失败后已放弃")
    assert "收件人被拒收" in dead
    assert "rectiflow outbox list --status dead" in dead and "rectiflow outbox retry" in dead


def test_outbox_judgement_table() -> None:
    now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    quiet = OutboxFacts(0, None, 0, 0, None, None)
    queued = OutboxFacts(3, now - timedelta(minutes=2), 0, 0, None, None)
    stuck = OutboxFacts(0, None, 2, 0, None, None)
    assert backlog_finding(quiet, now, 30).status is Status.OK
    assert backlog_finding(queued, now, 30).status is Status.OK
    assert "租约已过期" in backlog_finding(stuck, now, 30).message
    assert dead_finding(quiet).status is Status.OK


# ------------------------------------------------------------------ database


@pytest.fixture
def scratch_url(tmp_path: Path) -> Iterator[str]:
    """An empty database of the backend under test, apart from the shared test schema."""
    if BACKEND == "sqlite":
        path = tmp_path / "scratch.db"
        engine = db.make_engine(f"sqlite:///{path}")
        with engine.connect():
            pass
        engine.dispose()
        yield f"sqlite:///{path}"
        return
    schema = f"rf_doctor_{uuid.uuid4().hex[:8]}"
    admin = db.make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def test_empty_database(rectiflow: Any, scratch_url: str,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECTIFLOW_DATABASE_URL", scratch_url)
    result = rectiflow("doctor", "--now", in_june())
    assert result.code == 1
    assert "尚未建立表结构：请运行 rectiflow db upgrade" in lines(result.out)["数据库"]
    assert "未检查" in lines(result.out)["时钟"]


def test_migrations_behind_head(rectiflow: Any, scratch_url: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a database migrated only up to 0005
    engine = db.make_engine(scratch_url)
    db.upgrade(engine, "0005")
    engine.dispose()
    monkeypatch.setenv("RECTIFLOW_DATABASE_URL", scratch_url)
    result = rectiflow("doctor", "--json", "--now", in_june())
    assert result.code == 1
    checks = {c["name"]: c for c in result.json()}
    assert checks["database"]["status"] == "fail"
    assert f"当前 0005，最新 {db.head_revision()}" in checks["database"]["message"]
    assert "rectiflow db upgrade" in checks["database"]["message"]
    assert checks["clock"]["status"] == "warn" and "未检查" in checks["clock"]["message"]

    # When upgraded, the database line is fine
    assert rectiflow("db", "upgrade").code == 0
    assert lines(rectiflow("doctor", "--now", in_june()).out)["数据库"].startswith("✓")


def test_missing_sqlite_file_is_not_created(rectiflow: Any, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "nowhere.db"
    monkeypatch.setenv("RECTIFLOW_DATABASE_URL", f"sqlite:///{path}")
    result = rectiflow("doctor", "--now", in_june())
    assert result.code == 1
    assert "不存在" in lines(result.out)["数据库"]
    assert not path.exists()


def test_migration_judgement_table() -> None:
    known = {"0001", "0002", "0003"}
    assert migration_finding("0003", "0003", known, "SQLite").status is Status.OK
    assert "尚未建立表结构" in migration_finding(None, "0003", known, "SQLite").message
    assert "当前 0002，最新 0003" in migration_finding("0002", "0003", known, "SQLite").message
    assert "不认识" in migration_finding("0009", "0003", known, "SQLite").message


# ------------------------------------------------------------------ policy and evidence


def test_bad_policy_file_is_one_failed_line(rectiflow: Any, healthy: Any, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[reminders]\nbefore = [7, 3, \"soon\"]\n", encoding="utf-8")
    monkeypatch.setenv("RECTIFLOW_CONFIG", str(policy))
    # Other commands refuse to start with it...
    assert rectiflow("outbox", "list").code == 2
    # ...doctor runs every check and names the place
    result = rectiflow("doctor", "--now", in_june())
    assert result.code == 1
    line = lines(result.out)["策略文件"]
    assert line.startswith("✗ 策略文件：策略文件 policy.toml 中 reminders.before[2] 无效")
    assert lines(result.out)["数据库"].startswith("✓")


def test_evidence_storage(tmp_path: Path) -> None:
    store = tmp_path / "evidence"
    store.mkdir()
    ok = evidence_finding(store, 20 * 1024 ** 2, low_space=1)
    assert ok.status is Status.OK and "可写" in ok.message
    assert list(store.iterdir()) == []  # the probe file is gone
    low = evidence_finding(store, 20 * 1024 ** 2, low_space=2 ** 62)
    assert low.status is Status.WARN and "剩余空间" in low.message
    not_yet = evidence_finding(store / "2026" / "files", 20 * 1024 ** 2, low_space=1)
    assert not_yet.status is Status.OK and "尚未创建" in not_yet.message
    assert not (store / "2026").exists()
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert evidence_finding(a_file, 1, low_space=1).status is Status.FAIL


# ------------------------------------------------------------------ the runner


def test_a_check_that_raises_or_hangs_is_a_failure_not_a_crash() -> None:
    release = threading.Event()

    def boom() -> Finding:
        raise RuntimeError("disk on fire")

    def hang() -> Finding:
        release.wait(30)
        return Finding.ok("late")

    started = time.monotonic()
    results = run_checks([Check("boom", "爆炸", boom), Check("hang", "卡住", hang),
                          Check("fine", "正常", lambda: Finding.ok("好"))], timeout=0.5)
    release.set()
    assert time.monotonic() - started < 5
    assert [(r.name, r.status) for r in results] == [
        ("boom", Status.FAIL), ("hang", Status.FAIL), ("fine", Status.OK)]
    assert "RuntimeError: disk on fire" in results[0].message
    assert "超过 0.5 秒" in results[1].message
    assert results[2].line() == "✓ 正常：好"
