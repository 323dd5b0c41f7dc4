"""``rectiflow backup DIR`` and ``rectiflow restore DIR``: the whole installation, online."""

from __future__ import annotations

from pathlib import Path

import click

from workflow.commands.common import App, emit_json, json_option, pass_app
from workflow.ops.backup import create_backup, restore_backup
from workflow.progress import terminal_reporter


def _size(size: int) -> str:
    for unit, scale in (("GB", 1024 ** 3), ("MB", 1024 ** 2), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} 字节"


@click.command("backup")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@json_option
@pass_app
def backup_cmd(app: App, directory: Path, as_json: bool) -> None:
    """在线备份数据库和全部佐证材料到一个新的（或空的）目录，并写入带校验和的清单
    manifest.json。SQLite 用其在线备份接口；PostgreSQL 用 pg_dump（需在 PATH 中）。

    数据库登记的佐证材料文件有缺失时，仍写完备份，但列出缺失的文件并以退出码 1 结束。"""
    with terminal_reporter(as_json) as reporter:
        summary = create_backup(app.settings.database_url, app.runtime.engine, app.settings.evidence_dir,
                                directory, now=app.now(), reporter=reporter)
    if as_json:
        emit_json(summary.as_json())
    else:
        click.echo(f"已备份到 {directory}：数据库（{summary.backend}，结构版本 {summary.revision}）"
                   f"{_size(summary.database_bytes)}，佐证材料 {summary.evidence_files} 个、"
                   f"{_size(summary.evidence_bytes)}。")
    if summary.missing_evidence:
        # The backup is written and usable, but not complete: a cron job must hear of it.
        _report_missing(summary.missing_evidence, app.settings.evidence_dir, directory)
        raise SystemExit(1)


#: Missing files named on stderr; the manifest lists them all.
SHOWN_MISSING = 20


def _report_missing(missing: list[str], evidence_dir: Path, directory: Path) -> None:
    click.echo(f"错误：备份不完整。数据库登记的 {len(missing)} 个佐证材料文件在佐证目录 "
               f"{evidence_dir} 中不存在，未能备份（数据库和其余文件已备份；缺失的文件已记入 "
               f"{directory / 'manifest.json'} 的 missing_evidence）。请从旧备份或原始来源找回"
               "这些文件放回佐证目录，再重新备份：", err=True)
    for path in missing[:SHOWN_MISSING]:
        click.echo(f"  {path}", err=True)
    if len(missing) > SHOWN_MISSING:
        click.echo(f"  ……另有 {len(missing) - SHOWN_MISSING} 个，见 manifest.json", err=True)


@click.command("restore")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--force", is_flag=True, help="目标数据库已有数据时，仍用备份覆盖它")
@json_option
@pass_app
def restore_cmd(app: App, directory: Path, force: bool, as_json: bool) -> None:
    """从 rectiflow backup 的目录恢复数据库和佐证材料。先校验清单中每个文件的校验和，任何不符都
    不做改动；目标数据库已有数据时需加 --force。恢复前请停止 rectiflow 的其他进程。"""
    with terminal_reporter(as_json) as reporter:
        summary = restore_backup(directory, app.settings.database_url, app.runtime.engine,
                                 app.settings.evidence_dir, force=force, reporter=reporter)
    if as_json:
        emit_json(summary.as_json())
        return
    click.echo(f"已从 {directory} 恢复：数据库（{summary.backend}，结构版本 {summary.revision}），"
               f"佐证材料 {summary.evidence_files} 个。")
    if summary.needs_upgrade:
        click.echo(f"备份的结构版本 {summary.revision} 旧于本程序的 {summary.head}，"
                   "请运行 rectiflow db upgrade。")


def register(cli: click.Group) -> None:
    cli.add_command(backup_cmd)
    cli.add_command(restore_cmd)
