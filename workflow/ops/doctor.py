"""``rectiflow doctor``: checks of a deployment, each ending in one plain-Chinese line.

Every check gives a :class:`Finding` (ok / warn / fail and one line a sysadmin can act on).
The judgements (is the schema at head, is the clock's heartbeat recent, does the calendar cover
next year) are pure functions of facts passed in; reading those facts (a database query, a
probe file, a network call) is kept apart and as small as the check allows. The runner gives
each check a time limit and turns anything a check raises into a failed finding, so one broken
part never hides the others.

Whether the database and the broker answer is asked in ``workflow/ops/probes.py``. The channel
probes (SMTP, WeCom) live in ``notifications/probes.py``, since the domain does not talk to mail
or WeCom servers: the entry point hands them to :func:`run_checks` as :class:`Check` callables.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workflow.errors import RectiflowError
from workflow.leases import Heartbeat
from workflow.lifecycle import OutboxStatus
from workflow.models import OutboxMessage
from workflow.ops.dbroles import HistoryGuard
from workflow.policy import digest_schedule, load_policy_file
from workflow.timeutil import as_utc, local_text
from workflow.workcalendar import (
    OFFICIAL_YEARS,
    DayOverride,
    WorkCalendar,
    YearSource,
    overrides_from_toml,
)


class Status(StrEnum):
    """How a check came out; ``warn`` does not make doctor fail."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


MARKS = {Status.OK: "✓", Status.WARN: "!", Status.FAIL: "✗"}


@dataclass(frozen=True)
class Finding:
    """What one check found: a status and one line of plain Chinese."""

    status: Status
    message: str

    @classmethod
    def ok(cls, message: str) -> Finding:
        return cls(Status.OK, message)

    @classmethod
    def warn(cls, message: str) -> Finding:
        return cls(Status.WARN, message)

    @classmethod
    def fail(cls, message: str) -> Finding:
        return cls(Status.FAIL, message)


@dataclass(frozen=True)
class CheckResult:
    """A finding with the check's stable name (for --json) and its Chinese label."""

    name: str
    label: str
    status: Status
    message: str

    def line(self) -> str:
        return f"{MARKS[self.status]} {self.label}：{self.message}"

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "label": self.label, "status": self.status.value,
                "message": self.message}


@dataclass(frozen=True)
class Check:
    """A named check to run; ``run`` does its I/O and returns a Finding."""

    name: str
    label: str
    run: Callable[[], Finding]


def run_checks(checks: Sequence[Check], timeout: float) -> list[CheckResult]:
    """Run ``checks`` side by side, each in a daemon thread given ``timeout`` seconds; results in
    the order given. A check that raises, or is still running at its limit, is a failure (a
    hung thread is left behind: it is a daemon and dies with the process)."""
    outcomes: dict[int, Finding] = {}

    def target(index: int, check: Check) -> None:
        try:
            outcomes[index] = check.run()
        except Exception as exc:  # noqa: BLE001 - any error is reported, never raised
            outcomes[index] = Finding.fail(f"检查时出错：{type(exc).__name__}: {_one_line(exc)}")

    threads = []
    for index, check in enumerate(checks):
        thread = threading.Thread(target=target, args=(index, check), daemon=True,
                                  name=f"doctor-{check.name}")
        thread.start()
        threads.append(thread)
    deadline = time.monotonic() + timeout
    results = []
    for index, (check, thread) in enumerate(zip(checks, threads, strict=True)):
        thread.join(max(0.0, deadline - time.monotonic()))
        finding = outcomes.get(index) or Finding.fail(f"超过 {timeout:g} 秒仍未完成，已放弃此项检查")
        results.append(CheckResult(check.name, check.label, finding.status, finding.message))
    return results


def _one_line(value: object, limit: int = 200) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def overall(results: Sequence[CheckResult]) -> Status:
    """The worst status among ``results``."""
    statuses = {r.status for r in results}
    for status in (Status.FAIL, Status.WARN):
        if status in statuses:
            return status
    return Status.OK


# ------------------------------------------------------------------ database and migrations


def migration_finding(current: str | None, head: str | None, known: Collection[str],
                      backend: str) -> Finding:
    """Is the schema at the code's head revision? ``known`` are the revisions the code ships."""
    upgrade = "请先备份数据库，再运行 rectiflow db upgrade"
    if current is None:
        return Finding.fail(f"可以连接（{backend}），但尚未建立表结构：请运行 rectiflow db upgrade")
    if current == head:
        return Finding.ok(f"可以连接（{backend}），表结构为最新版本 {head}")
    if current not in known:
        return Finding.fail(f"数据库结构版本 {current} 是本程序不认识的（程序最新为 {head}）："
                            "可能由更新版本的 rectiflow 升级过，请使用相同或更新版本的程序")
    return Finding.fail(f"表结构不是最新（当前 {current}，最新 {head}）：{upgrade}")


# ------------------------------------------------------------------ calendar

#: The holidays the State Council's yearly notice (国务院办公厅关于某年部分节假日安排的通知) sets.
NOTICE_HOLIDAYS = "元旦、春节、清明节、劳动节、端午节、中秋节、国庆节"


def calendar_finding(calendar: WorkCalendar, today: date) -> Finding:
    """Does the calendar cover this year and next? From November on, a missing next year is a
    warning that says what to enter and how; a missing current year is a failure."""
    this_year, next_year = today.year, today.year + 1
    sources = {year: calendar.year_source(year) for year in (this_year, next_year)}
    counts = {row["year"]: row for row in calendar.coverage((this_year, next_year))}
    official = (f"内置官方日历覆盖 {min(OFFICIAL_YEARS)}–{max(OFFICIAL_YEARS)} 年"
                if OFFICIAL_YEARS else "没有内置官方日历")

    def described(year: int) -> str:
        if sources[year] is YearSource.OFFICIAL:
            return f"{year} 年按官方日历"
        row = counts[year]
        return f"{year} 年按管理员录入（放假 {row['holidays']} 天、上班 {row['workdays']} 天）"

    if sources[this_year] is YearSource.FALLBACK:
        return Finding.fail(
            f"今年（{this_year} 年）没有放假安排（{official}），工作日暂按周一至周五推算，"
            f"期限和提醒可能落在节假日：{how_to_enter(this_year)}")
    if sources[next_year] is not YearSource.FALLBACK:
        return Finding.ok(f"{described(this_year)}，{described(next_year)}")
    if today.month < 11:
        return Finding.ok(f"{described(this_year)}；{next_year} 年的放假安排尚未录入，"
                          "国务院通常在每年 10 月至 12 月公布次年安排，届时再录入即可")
    return Finding.warn(
        f"{next_year} 年尚无放假安排（{official}），跨入 {next_year} 年的期限现按周一至周五临时推算："
        f"{how_to_enter(next_year)}")


def how_to_enter(year: int) -> str:
    """What to enter for ``year`` and the exact command (the dates come from the notice)."""
    return (f"国务院办公厅通常在 10 月至 12 月发布《关于 {year} 年部分节假日安排的通知》，"
            f"发布后请录入其中{NOTICE_HOLIDAYS}的放假日和调休上班日，每段一条命令，如 "
            f"rectiflow calendar add {year}-MM-DD..{year}-MM-DD --holiday --note 春节 ；"
            f"rectiflow calendar add {year}-MM-DD --workday --note 春节调休上班 "
            f"（录完可用 rectiflow calendar coverage 核对；chinese-calendar 包发布含 {year} 年的"
            "新版后也可升级该包）")


# ------------------------------------------------------------------ clock


def stale_after(tick: int) -> timedelta:
    """A heartbeat older than this is stale: five ticks (the clock renews every tick), at least
    two minutes, so one slow embedded sweep does not raise an alarm."""
    return max(timedelta(seconds=5 * tick), timedelta(minutes=2))


def clock_finding(beat: Heartbeat | None, now: datetime, tick: int, *, broker: bool) -> Finding:
    """Is the clock alive? ``now`` is the real time (heartbeats are written with it)."""
    runs_it = ("生产模式下请确认 rectiflow clock 在运行（并运行 rectiflow worker）" if broker else
               "单机模式下时钟在 rectiflow serve 进程内运行，请确认 serve 在运行")
    if beat is None:
        return Finding.fail(f"从未收到时钟心跳，提醒和消息都不会自动发出：{runs_it}")
    age = beat.age(now)
    holder = beat.value or "未知进程"
    if age < -timedelta(seconds=max(tick, 60)):
        return Finding.warn(f"最近心跳时间 {local_text(beat.at)}（{holder}）比本机时间晚 "
                            f"{duration_text(-age)}：请检查各服务器的时钟同步（NTP）")
    seen = f"最近心跳在 {duration_text(age)}前（{local_text(beat.at)}，{holder}）"
    if age > stale_after(tick):
        return Finding.fail(f"时钟已停止：{seen}，超过 {duration_text(stale_after(tick))}未更新"
                            f"（节拍 {tick} 秒），提醒和消息不会自动发出：{runs_it}")
    return Finding.ok(f"{seen}，节拍 {tick} 秒")


def sweep_finding(beat: Heartbeat | None, now: datetime, tick: int, *, broker: bool) -> Finding:
    """Did a reminder sweep succeed lately? The clock may beat while every sweep fails (a
    worker down, a sweep raising): only a successful sweep records its time. ``now`` is the
    real time."""
    where = ("请确认 rectiflow worker 在运行，并查看其日志中任务 rectiflow.sweep 的错误" if broker else
             "请查看 rectiflow serve 的日志中「时钟任务 sweep 出错」一类的记录")
    if beat is None:
        return Finding.fail(f"从未有提醒扫描成功完成，到期提醒和督办不会生成：{where}")
    age = beat.age(now)
    seen = f"最近一次成功扫描在 {duration_text(max(age, timedelta(0)))}前（{local_text(beat.at)}）"
    if age > stale_after(tick):
        return Finding.fail(f"{seen}，超过 {duration_text(stale_after(tick))}没有成功的扫描"
                            f"（扫描节拍 {tick} 秒），到期提醒和督办不会生成：{where}")
    return Finding.ok(f"{seen}，扫描节拍 {tick} 秒")


# ------------------------------------------------------------------ broker


def broker_finding(location: str | None, error: str | None) -> Finding:
    """The broker's answer: ``location`` is its URL without a password (None when none is
    configured), ``error`` why it could not be reached (None when it answered)."""
    if location is None:
        return Finding.ok("未设置 RECTIFLOW_BROKER_URL：单机模式，不需要消息队列")
    if error is not None:
        return Finding.fail(f"无法连接消息队列 {location}（{_one_line(error)}）：请确认 Redis/RabbitMQ "
                            "在运行、RECTIFLOW_BROKER_URL 中的地址、端口和口令正确；连不上时 "
                            "rectiflow clock 放不进任务，worker 也取不到任务")
    return Finding.ok(f"{location} 可以连接")


def duration_text(span: timedelta) -> str:
    """A rough length of time a person reads at a glance: 45 秒, 12 分钟, 3 小时 5 分钟, 4 天."""
    seconds = int(abs(span.total_seconds()))
    if seconds < 60:
        return f"{seconds} 秒"
    if seconds < 3600:
        return f"{seconds // 60} 分钟"
    if seconds < 86400 * 2:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} 小时 {minutes} 分钟" if minutes else f"{hours} 小时"
    return f"{seconds // 86400} 天"


# ------------------------------------------------------------------ outbox


@dataclass(frozen=True)
class OutboxFacts:
    """Pending messages already due (how many, the oldest due time) and dead ones."""

    due: int
    oldest_due: datetime | None
    stuck_sending: int
    dead: int
    last_dead_id: int | None
    last_dead_error: str | None


def read_outbox(session: Session, now: datetime) -> OutboxFacts:
    """Count due, stuck and dead messages (uses the ``status, not_before`` index)."""
    now = as_utc(now)
    due, oldest = session.execute(
        select(func.count(), func.min(OutboxMessage.not_before))
        .where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.not_before <= now)).one()
    stuck = session.scalar(select(func.count()).where(
        OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.lease_until < now)) or 0
    dead = session.scalar(select(func.count()).where(OutboxMessage.status == OutboxStatus.DEAD)) or 0
    last = session.execute(select(OutboxMessage.id, OutboxMessage.last_error)
                           .where(OutboxMessage.status == OutboxStatus.DEAD)
                           .order_by(OutboxMessage.id.desc()).limit(1)).one_or_none()
    return OutboxFacts(int(due), _aware(oldest), int(stuck), int(dead),
                       last.id if last else None, last.last_error if last else None)


def _aware(value: datetime | str | None) -> datetime | None:
    """MIN() loses the column's type: SQLite answers text, PostgreSQL an aware time."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def backlog_limit(tick: int) -> timedelta:
    """A due message waiting longer than this means delivery is not keeping up."""
    return max(timedelta(seconds=10 * tick), timedelta(minutes=15))


def backlog_finding(facts: OutboxFacts, now: datetime, tick: int) -> Finding:
    """Due messages should leave within a few ticks; stuck ``sending`` rows point at a dead
    worker (they are picked up again when their lease ends)."""
    stuck = (f"；另有 {facts.stuck_sending} 条「发送中」的租约已过期（发送进程可能中途退出，将被重新领取）"
             if facts.stuck_sending else "")
    if not facts.due or facts.oldest_due is None:
        return Finding.ok(f"没有积压的待发消息{stuck}")
    wait = as_utc(now) - facts.oldest_due
    text = f"{facts.due} 条消息已到发送时间未发出，最早一条已等待 {duration_text(wait)}"
    if wait <= backlog_limit(tick):
        return Finding.ok(f"{text}（正常排队）{stuck}")
    return Finding.warn(f"{text}：发送进程可能未运行或发送失败后在重试；请确认时钟和发送进程在运行，"
                        f"并用 rectiflow outbox list --status pending 查看{stuck}")


def dead_finding(facts: OutboxFacts) -> Finding:
    """Dead messages reached nobody; an admin decides whether to send them again."""
    if not facts.dead:
        return Finding.ok("没有发送失败（已放弃）的消息")
    last = (f"最近一条（ID {facts.last_dead_id}）的原因：{_one_line(facts.last_dead_error, 120)}；"
            if facts.last_dead_error else "")
    return Finding.warn(f"{facts.dead} 条消息多次发送失败后已放弃，收件人没有收到：{last}"
                        "用 rectiflow outbox list --status dead 查看，排除原因后用 "
                        "rectiflow outbox retry 消息ID 重新发送")


@dataclass(frozen=True)
class ChannelFailures:
    """A channel's messages in a run of temporary failures, and its last successful send."""

    channel: str
    failing: int
    since: datetime
    last_error: str | None
    last_sent: datetime | None


def read_channel_failures(session: Session) -> list[ChannelFailures]:
    """Per channel: pending messages that have failed and are waiting to be tried again."""
    waiting = (OutboxStatus.PENDING, OutboxStatus.SENDING)
    found = []
    for channel, failing, since in session.execute(
            select(OutboxMessage.channel, func.count(), func.min(OutboxMessage.failing_since))
            .where(OutboxMessage.status.in_(waiting), OutboxMessage.failing_since.is_not(None))
            .group_by(OutboxMessage.channel).order_by(OutboxMessage.channel)):
        last_error = session.scalar(
            select(OutboxMessage.last_error)
            .where(OutboxMessage.channel == channel, OutboxMessage.status.in_(waiting),
                   OutboxMessage.failing_since.is_not(None))
            .order_by(OutboxMessage.failing_since.desc(), OutboxMessage.id.desc()).limit(1))
        last_sent = session.scalar(select(func.max(OutboxMessage.sent_at))
                                   .where(OutboxMessage.channel == channel,
                                          OutboxMessage.status == OutboxStatus.SENT))
        found.append(ChannelFailures(str(channel), int(failing), _aware(since) or datetime.min,
                                     last_error, _aware(last_sent)))
    return found


#: Failing without a single success for this long is an outage, not a hiccup.
OUTAGE_AFTER = timedelta(minutes=10)

_OUTAGE_HINTS = {
    "email": "请检查邮件服务器是否在运行、RECTIFLOW_SMTP_HOST/_PORT 和账号口令是否正确（可用 "
             "rectiflow doctor --send-test 你的邮箱 试发）",
    "wecom": "请检查企业微信接口能否访问、RECTIFLOW_WECOM_CORP_ID/_SECRET/_AGENT_ID 是否正确、"
             "本机出口 IP 是否在应用的可信 IP 中",
}


def outage_finding(channels: Sequence[ChannelFailures], now: datetime, labels: Mapping[str, str],
                   retry_hours: int) -> Finding:
    """Name a channel that has been failing with nothing getting through: an outage in
    progress. Its messages keep being retried (hourly) for ``retry_hours`` before giving up."""
    now = as_utc(now)
    down = [c for c in channels if now - c.since >= OUTAGE_AFTER
            and (c.last_sent is None or c.last_sent < c.since)]
    if not down:
        if channels:
            return Finding.ok("、".join(f"{labels.get(c.channel, c.channel)} {c.failing} 条失败后待重试"
                                       for c in channels) + "（其他消息照常发出，属个别失败）")
        return Finding.ok("各渠道没有正在重试的失败消息")
    parts = []
    for c in down:
        label = labels.get(c.channel, c.channel)
        error = f"最近的错误：{_one_line(c.last_error, 120)}；" if c.last_error else ""
        parts.append(f"{label}发送中断：自 {local_text(c.since)} 起（已 {duration_text(now - c.since)}）"
                     f"{c.failing} 条消息发送失败、没有一条发出；{error}"
                     f"{_OUTAGE_HINTS.get(c.channel, '请检查该渠道的配置和服务')}")
    return Finding.fail("；".join(parts) + f"。消息会每小时重试，失败满 {retry_hours} 小时才放弃；"
                        "已放弃的消息在恢复后可用 rectiflow outbox retry --all-dead --channel 渠道 "
                        "一次重新排队")


# ------------------------------------------------------------------ evidence storage

#: Below this much free space evidence storage is a warning.
LOW_SPACE = 1024 ** 3


def evidence_finding(root: Path, max_file_bytes: int, low_space: int = LOW_SPACE) -> Finding:
    """Write and delete a probe file where evidence goes, and look at the free space (I/O).

    A folder that does not exist yet is created by the first upload; its nearest existing
    parent is probed instead, and nothing is created."""
    root = Path(root)
    target = root
    while not target.exists():
        if target.parent == target:
            return Finding.fail(f"目录 {root} 及其上级目录都不存在")
        target = target.parent
    if not target.is_dir():
        return Finding.fail(f"{target} 不是目录：请检查 RECTIFLOW_EVIDENCE_DIR")
    where = (str(root.resolve()) if target == root
             else f"{root.resolve()}（尚未创建，首次上传时创建；已检查其上级目录 {target.resolve()}）")
    try:
        fd, probe = tempfile.mkstemp(dir=target, prefix=".rectiflow-doctor-")
        try:
            os.write(fd, b"rectiflow doctor probe\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        return Finding.fail(f"{where} 不可写（{exc.strerror or exc}）：请检查目录权限"
                            "（运行 rectiflow 的用户需要写权限）或 RECTIFLOW_EVIDENCE_DIR")
    free = shutil.disk_usage(target).free
    space = f"剩余空间 {size_text(free)}"
    if free < max(5 * max_file_bytes, 100 * 1024 ** 2):
        return Finding.fail(f"{where} 可写，但{space}，放不下几份佐证材料：请清理磁盘或换到更大的分区")
    if free < low_space:
        return Finding.warn(f"{where} 可写，但{space}（低于 {size_text(low_space)}）：请及时扩容或清理")
    return Finding.ok(f"{where} 可写，{space}")


def size_text(size: int) -> str:
    for unit, scale in (("TB", 1024 ** 4), ("GB", 1024 ** 3), ("MB", 1024 ** 2), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} 字节"


# ------------------------------------------------------------------ policy file


def policy_finding(path: Path | None) -> Finding:
    """Load and validate the policy file: its rules, the digest schedule and its [calendar]
    table (I/O: reads the file)."""
    name = f"RECTIFLOW_CONFIG={path}" if path else "内置默认策略（未设置 RECTIFLOW_CONFIG）"
    try:
        policies = load_policy_file(path)
        schedule = digest_schedule(policies)
        days = overrides_from_toml(policies.calendar)
    except RectiflowError as exc:
        return Finding.fail(f"{exc}；请修改：策略文件有误时，rectiflow 的服务和其他命令都拒绝启动")
    extra = f"，[calendar] 录入 {len(days)} 天" if days else ""
    weekday = "一二三四五六日"[schedule.weekday]
    return Finding.ok(f"{name}有效；周报在每周{weekday} {schedule.at:%H:%M} 生成{extra}")


def calendar_overrides(path: Path | None) -> Mapping[date, DayOverride]:
    """The policy file's [calendar] days, or none when the file itself is bad (its own check
    reports that)."""
    try:
        return overrides_from_toml(load_policy_file(path).calendar)
    except RectiflowError:
        return {}


# ------------------------------------------------------------------ who can wipe the history


def history_guard_finding(guard: HistoryGuard) -> Finding:
    """Warn when the role the application runs as could drop or truncate the history: its
    owner or a superuser can switch the append-only triggers off, and TRUNCATE skips row
    triggers."""
    if guard.backend != "postgresql":
        return Finding.ok("SQLite 单机部署：能写数据库文件的人就能改写历史；请限制文件权限，并定期用 "
                          "rectiflow audit checkpoint 把链头签名保存到数据库以外")
    if not guard.truncate_trigger:
        return Finding.fail("历史表缺少拒绝 TRUNCATE 的触发器（或已被停用）：请运行 rectiflow db upgrade，"
                            "或由迁移角色执行 ALTER TABLE measure_history ENABLE TRIGGER ALL")
    powers = [name for name, has in (("超级用户", guard.superuser), ("表的所有者", guard.owns),
                                     ("有 TRUNCATE 权限", guard.can_truncate)) if has]
    if powers:
        return Finding.warn(
            f"应用以数据库角色 {guard.role} 连接，它是{'、'.join(powers)}，可以停用触发器、清空或删除"
            "历史表：请改由不拥有表的角色运行应用（迁移角色执行 rectiflow db upgrade 和 "
            "rectiflow db grant 应用角色，再把 RECTIFLOW_DATABASE_URL 换成应用角色）")
    change = "；但它对历史表有 UPDATE/DELETE 权限（触发器仍会拒绝），建议用 rectiflow db grant 收回" \
        if guard.can_change else ""
    return Finding.ok(f"应用以数据库角色 {guard.role} 连接，它不拥有历史表，不能清空、删除或停用其触发器"
                      f"{change}")
