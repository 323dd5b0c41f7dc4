"""``rectiflow export CAMPAIGN --out FILE.zip`` and ``rectiflow import archive FILE.zip``: move a
campaign, with its history, outbox and evidence files, between installations (SQLite and
PostgreSQL alike)."""

from __future__ import annotations

from pathlib import Path

import click

from workflow.commands.common import App, emit_json, json_option, pass_app
from workflow.ops.archive import export_campaign, import_archive
from workflow.progress import terminal_reporter


@click.command("export")
@click.argument("campaign")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="归档文件（.zip）")
@click.option("--without-passwords", is_flag=True,
              help="不导出登录密码的哈希（默认导出，以便迁移后人员可直接登录）")
@json_option
@pass_app
def export_cmd(app: App, campaign: str, out: Path, without_passwords: bool, as_json: bool) -> None:
    """把一个整改任务（编号或名称）导出为自描述的 zip 归档：每张表一个 JSON 文件（含操作历史和
    发件箱）、相关人员和部门、节假日设置，以及全部佐证材料，附带校验和清单。"""
    with terminal_reporter(as_json) as reporter, app.transaction() as session:
        summary = export_campaign(session, campaign, out, evidence_root=app.settings.evidence_dir,
                                  now=app.now(), with_passwords=not without_passwords,
                                  reporter=reporter)
    if as_json:
        emit_json(summary.as_json())
        return
    rows = summary.rows
    click.echo(f"已导出整改任务「{summary.title}」到 {out}：{rows['areas']} 个方面、"
               f"{rows['problems']} 个问题、{rows['measures']} 项措施、{rows['history']} 条历史、"
               f"{rows['progress_reports']} 条进展、{rows['outbox_messages']} 条消息、"
               f"{rows['people']} 名人员、佐证材料 {summary.evidence_files} 个。")
    if summary.password_hashes:
        click.echo("注意：归档中包含人员登录密码的哈希（argon2），请妥善保管；"
                   "不需要时可用 --without-passwords 导出。", err=True)


@click.command("archive")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="只校验并试导入，不写入")
@json_option
@pass_app
def import_archive_cmd(app: App, file: Path, dry_run: bool, as_json: bool) -> None:
    """导入 rectiflow export 生成的归档（可来自另一种数据库）。先校验清单与校验和，全部成功才写入；
    人员按邮箱、部门按名称对应，已存在同名整改任务时拒绝。"""
    created: list[Path] = []
    try:
        with terminal_reporter(as_json) as reporter, app.transaction() as session:
            summary = import_archive(session, file, evidence_root=app.settings.evidence_dir,
                                     dry_run=dry_run, created=created, reporter=reporter)
            if dry_run:
                session.rollback()
    except BaseException:
        # The rows were rolled back: the evidence files written for them go too.
        for path in created:
            path.unlink(missing_ok=True)
        raise
    if as_json:
        emit_json(summary.as_json())
        return
    verb = "检查通过，可导入" if dry_run else "已导入"
    rows = summary.rows
    where = "" if dry_run else f"，编号 {summary.campaign_id}"
    click.echo(f"{verb}整改任务「{summary.title}」{where}：{rows['areas']} 个方面、"
               f"{rows['problems']} 个问题、{rows['measures']} 项措施、{rows['history']} 条历史、"
               f"{rows['progress_reports']} 条进展、{rows['outbox_messages']} 条消息；人员新建 "
               f"{summary.people_created} 名、按邮箱对应 {summary.people_matched} 名；部门新建 "
               f"{summary.units_created} 个、按名称对应 {summary.units_matched} 个；"
               f"佐证材料写入 {summary.evidence_files_written} 个。")
    if summary.calendar_conflicts:
        click.echo(f"注意：{len(summary.calendar_conflicts)} 个节假日设置与本系统不同，保留本系统的："
                   f"{'、'.join(summary.calendar_conflicts[:10])}", err=True)


def register(cli: click.Group) -> None:
    cli.add_command(export_cmd)
