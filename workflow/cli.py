"""The ``rectiflow`` command line: a thin entry point over the services.

Exit codes: 0 done; 2 bad input or not allowed in this state; 3 not permitted; 4 conflict.
Each command that writes runs in one transaction: on any error nothing is written.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any, TypeVar

import click
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings, SettingsError, load_settings, parse_now
from workflow import db, events
from workflow.errors import InputError, RectiflowError
from workflow.evidence import EvidenceStore
from workflow.lifecycle import KIND_LABELS, STATE_LABELS, TRANSITIONS, Kind, State
from workflow.policy import PolicySet, load_policy_file
from workflow.timeutil import local_date, local_text, system_now

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    """What every command needs: settings, the database, and the pinned or real time."""

    settings: Settings
    now_override: datetime | None = None
    _announced: bool = field(default=False, repr=False)

    @cached_property
    def engine(self) -> Engine:
        return db.make_engine(self.settings.database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return db.session_factory(self.engine)

    @contextmanager
    def transaction(self, *, write_lock: bool = False) -> Iterator[Session]:
        with db.transaction(self.sessions, write_lock=write_lock) as session:
            yield session

    def now(self) -> datetime:
        pinned = self.now_override or self.settings.now
        if pinned is None:
            return system_now()
        if not self._announced:
            self._announced = True
            source = "--now" if self.now_override else "RECTIFLOW_NOW"
            click.echo(f"注意：当前时间已由 {source} 固定为 {local_text(pinned)}（北京时间）",
                       err=True)
        return pinned

    def today(self) -> date:
        return local_date(self.now())

    @cached_property
    def policies(self) -> PolicySet:
        return load_policy_file(self.settings.config_file)

    @property
    def configured_channels(self) -> frozenset[str]:
        channels = set()
        if self.settings.smtp_configured:
            channels.add("email")
        if self.settings.wecom_configured:
            channels.add("wecom")
        return frozenset(channels)

    def wire_notifications(self) -> None:
        """Events become outbox rows in the same transaction (the entry point wires this)."""
        from notifications.events import make_outbox_writer

        events.subscribe("outbox", make_outbox_writer(self.policies, self.configured_channels))

    @cached_property
    def evidence(self) -> EvidenceStore:
        return EvidenceStore(self.settings.evidence_dir, self.settings.evidence_max_bytes)


def emit_json(document: Any) -> None:
    click.echo(json.dumps(document, ensure_ascii=False, indent=2, default=str))


def parse_date(value: str | None, field_name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"日期「{value}」无效，应为 YYYY-MM-DD 且真实存在", field=field_name) from None


def _set_now(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is None:
        return
    try:
        moment = parse_now("--now", value)
    except SettingsError as exc:
        raise click.BadParameter(str(exc)) from None
    app = ctx.find_object(App)
    if app is not None:
        app.now_override = moment
    else:
        ctx.meta["rectiflow.now"] = moment


def now_option(func: F) -> F:
    """``--now ISO8601`` pins the clock for this command."""
    return click.option("--now", callback=_set_now, expose_value=False, is_eager=True,
                        help="固定当前时间（ISO 8601，带时区），用于演示和测试")(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="输出一个 JSON 文档")(func)


pass_app = click.make_pass_decorator(App)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@now_option
@click.pass_context
def cli(ctx: click.Context) -> None:
    """rectiflow：整改台账、督办提醒与销号。"""
    app = App(settings=load_settings(), now_override=ctx.meta.get("rectiflow.now"))
    from workflow.logs import configure_logging

    configure_logging(app.settings)  # serve, worker and clock raise the level to INFO
    if ctx.invoked_subcommand != "doctor":  # doctor reports a bad policy file as one check
        app.policies  # noqa: B018 - a bad policy file is refused at start, with its place named
        app.wire_notifications()
    ctx.obj = app


@cli.group("db")
def db_group() -> None:
    """数据库：建立或升级表结构。"""


@db_group.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """建立或升级数据库到最新结构。"""
    db.upgrade(app.engine)
    click.echo(f"数据库已是最新结构（版本 {db.current_revision(app.engine)}）。")


def _register_subcommands() -> None:
    from workflow.commands import (
        archive,
        audit,
        backup,
        calendar,
        campaigns,
        delivery,
        doctor,
        imports,
        measures,
        processes,
        reminders,
        reporting,
        users,
    )

    for module in (users, campaigns, imports, measures, audit, reminders, delivery, calendar,
                   processes, reporting, backup, doctor, archive):
        module.register(cli)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: maps the error tree to exit codes and clear messages."""
    try:
        code = cli.main(args=argv, prog_name="rectiflow", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.Abort:
        click.echo("已取消。", err=True)
        sys.exit(1)
    except SettingsError as exc:
        click.echo(f"错误：{exc}", err=True)
        sys.exit(2)
    except RectiflowError as exc:
        click.echo(f"错误：{exc}", err=True)
        sys.exit(exc.exit_code)
    except OperationalError as exc:
        click.echo(f"错误：数据库不可用或结构未建立（请先运行 rectiflow db upgrade）：{exc.orig}",
                   err=True)
        sys.exit(1)


# Helpers shared by command modules ---------------------------------------------------------


def describe_transitions() -> str:
    lines = []
    for action, t in TRANSITIONS.items():
        sources = "、".join(STATE_LABELS[s] for s in State if s in t.sources)
        lines.append(f"  {action.value:<9} {t.label}：{t.help}（适用：{sources}）")
    return "\n".join(lines)


def state_choice() -> click.Choice:
    return click.Choice([s.value for s in State])


def kind_label(kind: str) -> str:
    return KIND_LABELS[Kind(kind)]


_register_subcommands()
