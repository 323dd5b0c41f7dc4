"""``rectiflow sweep`` and ``rectiflow outbox ...``: plan reminders, look at what will be sent."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import click
from sqlalchemy import select

from workflow.commands.common import App, emit_json, json_option, now_option, pass_app
from workflow.lifecycle import CHANNEL_LABELS, OUTBOX_STATUS_LABELS, OutboxStatus
from workflow.models import Measure
from workflow.outbox import list_messages, message_dict
from workflow.progress import terminal_reporter
from workflow.reminders import URGENCY_LABELS
from workflow.services.reminding import sweep_round
from workflow.timeutil import local_text


def _print_preview(messages: list[dict[str, Any]], titles: dict[int, str]) -> None:
    if not messages:
        click.echo("没有需要发送的提醒。")
        return
    for m in messages:
        click.echo(f"→ {m['recipient']}（{CHANNEL_LABELS.get(m['channel'], m['channel'])}）"
                   f"  {m['subject']}")
        grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for item in m["items"]:
            grouped[item["urgency"]].append(item)
        for urgency in sorted(grouped):
            click.echo(f"    {URGENCY_LABELS[urgency]}：")
            for item in grouped[urgency]:
                title = titles.get(item["measure_id"], "")
                click.echo(f"      措施 {item['measure_id']} {title[:30]}  [{item['rule']}] "
                           f"{item['reason']}")


@click.command("sweep")
@click.option("--dry-run", is_flag=True, help="只预览谁会收到什么、为什么，不写入任何内容")
@json_option
@now_option
@pass_app
def sweep_cmd(app: App, dry_run: bool, as_json: bool) -> None:
    """扫描到期事项，生成提醒和督办消息（写入发件箱）。"""
    now = app.now()
    runtime = app.runtime
    with terminal_reporter(as_json) as reporter, app.transaction(write_lock=True) as session:
        result = sweep_round(session, runtime.reminder_context(session), now=now,
                             group_robot=runtime.group_robot, reporter=reporter)
        shown = [{**message_dict(m), "items": m.payload["items"]} for m in result.messages]
        ids = {i["measure_id"] for m in shown for i in m["items"]}
        titles = dict(session.execute(select(Measure.id, Measure.title)
                                      .where(Measure.id.in_(ids))).all()) if ids else {}
        summary = {**result.as_json(), "documents": result.sweep.documents}
        if dry_run:
            session.rollback()
    if as_json:
        emit_json({**summary, "dry_run": dry_run, **({"preview": shown} if dry_run else {})})
        return
    if dry_run:
        click.echo(f"预览（未写入）：{summary['measures']} 项措施到期检查，将生成 "
                   f"{summary['messages']} 条消息、{summary['documents']} 份督办文书。")
        _print_preview(shown, titles)
    else:
        click.echo(f"已检查 {summary['measures']} 项措施，生成 {summary['messages']} 条消息、"
                   f"{summary['documents']} 份督办文书（rectiflow notice list）。")


@click.group("outbox")
def outbox_group() -> None:
    """发件箱：查看待发、已发和失败的消息。"""


@outbox_group.command("list")
@click.option("--status", type=click.Choice([s.value for s in OutboxStatus]),
              help="按状态筛选")
@json_option
@pass_app
def outbox_list(app: App, status: str | None, as_json: bool) -> None:
    """列出发件箱中的消息。"""
    with app.transaction() as session:
        shown = [message_dict(m) for m in list_messages(session, status)]
    if as_json:
        emit_json(shown)
        return
    if not shown:
        click.echo("发件箱为空。")
        return
    for m in shown:
        click.echo(f"{m['id']:>5}  {OUTBOX_STATUS_LABELS.get(m['status'], m['status'])}  "
                   f"{CHANNEL_LABELS.get(m['channel'], m['channel'])}  {m['recipient']}  "
                   f"{local_text(datetime.fromisoformat(m['not_before']))}  {m['subject']}")


def register(cli: click.Group) -> None:
    cli.add_command(sweep_cmd)
    cli.add_command(outbox_group)
