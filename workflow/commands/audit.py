"""``rectiflow audit verify``: detect tampering with the history."""

from __future__ import annotations

from pathlib import Path

import click

from workflow.commands.common import App, emit_json, json_option, pass_app
from workflow.errors import AuditFailure
from workflow.ops.checkpoint import load_checkpoint, require_key, verify_against, write_checkpoint
from workflow.services.audit import verify_history


@click.group("audit")
def audit_group() -> None:
    """审计：校验操作历史是否被篡改。"""


@audit_group.command("checkpoint")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="写到这个文件（请放在数据库服务器以外）")
@json_option
@pass_app
def audit_checkpoint(app: App, out: Path, as_json: bool) -> None:
    """把每项措施历史链的末端（条数和最后一条的哈希）用 RECTIFLOW_AUDIT_KEY 签名后写入文件。"""
    key = require_key(app.settings.audit_key)
    with app.transaction() as session:
        document = write_checkpoint(session, out, key, app.now())
    if as_json:
        emit_json({"file": str(out), **document["totals"]})
        return
    totals = document["totals"]
    click.echo(f"已写入检查点 {out}：{totals['measures']} 项措施、{totals['entries']} 条历史记录。")


@audit_group.command("verify")
@click.option("--measure", "measure_id", type=int, help="只校验这一项措施")
@click.option("--checkpoint", "checkpoint", type=click.Path(dir_okay=False, path_type=Path),
              help="同时与这个检查点比对：当时已有的历史记录缺失或改变即失败")
@json_option
@pass_app
def audit_verify(app: App, measure_id: int | None, checkpoint: Path | None,
                 as_json: bool) -> None:
    """重新计算每项措施的历史哈希链；发现篡改、缺失时以退出码 1 结束。"""
    document = load_checkpoint(checkpoint) if checkpoint is not None else None
    key = require_key(app.settings.audit_key) if document is not None else ""
    with app.transaction() as session:
        report = verify_history(session, measure_id)
        if document is not None:
            report.problems.extend(verify_against(session, document, key))
    if as_json:
        emit_json(report.as_json())
        if not report.ok:
            raise SystemExit(1)
        return
    if not report.ok:
        raise AuditFailure(report.problems)
    click.echo(f"校验通过：{report.measures} 项措施、{report.entries} 条历史记录，哈希链完整。")


def register(cli: click.Group) -> None:
    cli.add_command(audit_group)
