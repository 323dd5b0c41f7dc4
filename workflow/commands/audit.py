"""``rectiflow audit verify``: detect tampering with the history."""

from __future__ import annotations

import click

from workflow.commands.common import App, emit_json, json_option, pass_app
from workflow.errors import AuditFailure
from workflow.services.audit import verify_history


@click.group("audit")
def audit_group() -> None:
    """审计：校验操作历史是否被篡改。"""


@audit_group.command("verify")
@click.option("--measure", "measure_id", type=int, help="只校验这一项措施")
@json_option
@pass_app
def audit_verify(app: App, measure_id: int | None, as_json: bool) -> None:
    """重新计算每项措施的历史哈希链；发现篡改、缺失时以退出码 1 结束。"""
    with app.transaction() as session:
        report = verify_history(session, measure_id)
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
