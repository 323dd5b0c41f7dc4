"""The ``rectiflow`` command line: a thin entry point over the services.

Exit codes: 0 done; 2 bad input or not allowed in this state; 3 not permitted; 4 conflict.
Each command that writes runs in one transaction: on any error nothing is written. The commands
live in ``workflow.commands``; what they share (``App``, the options) in its ``common`` module.
"""

from __future__ import annotations

import sys

import click
from sqlalchemy.exc import OperationalError

from config.settings import SettingsError, load_settings
from workflow import db
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
    notices,
    processes,
    reminders,
    reporting,
    users,
)
from workflow.commands.common import App, now_option, pass_app
from workflow.errors import RectiflowError
from workflow.logs import configure_logging
from workflow.ops.dbroles import grant_application_role


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@now_option
@click.pass_context
def cli(ctx: click.Context) -> None:
    """rectiflow：整改台账、督办提醒与销号。"""
    app = App(settings=load_settings(), now_override=ctx.meta.get("rectiflow.now"))
    configure_logging(app.settings)  # serve, worker and clock raise the level to INFO
    if ctx.invoked_subcommand != "doctor":  # doctor reports a bad policy file as one check
        app.runtime.policies  # noqa: B018 - a bad policy file is refused at start, with its place
    ctx.obj = app
    ctx.call_on_close(lambda: app.runtime.close() if "runtime" in app.__dict__ else None)


@cli.group("db")
def db_group() -> None:
    """数据库：建立或升级表结构。"""


@db_group.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """建立或升级数据库到最新结构。"""
    db.upgrade(app.runtime.engine)
    click.echo(f"数据库已是最新结构（版本 {db.current_revision(app.runtime.engine)}）。")


@db_group.command("grant")
@click.argument("role")
@pass_app
def db_grant(app: App, role: str) -> None:
    """（PostgreSQL）让不拥有表的 ROLE 运行应用：可读写数据行，历史只能追加，不能清空、删除或改表。

    由拥有表的迁移角色在 rectiflow db upgrade 之后运行；之后把 RECTIFLOW_DATABASE_URL 换成 ROLE。
    """
    with app.runtime.engine.begin() as connection:
        statements = grant_application_role(connection, role)
    click.echo(f"已授权角色 {role}（{len(statements)} 条语句）：可读写数据行，历史表只能读取和追加。")


# ``outbox`` (reminders) comes before ``delivery``, which adds ``outbox retry`` to it.
for _module in (users, campaigns, imports, measures, audit, reminders, delivery, calendar,
                processes, reporting, notices, backup, doctor, archive):
    _module.register(cli)


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
