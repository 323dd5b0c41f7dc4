"""``rectiflow deliver`` and ``rectiflow outbox retry``: send what is due, revive dead messages."""

from __future__ import annotations

import click

from notifications.deliverer import retry_dead, retry_message
from workflow.commands.common import App, emit_json, json_option, now_option, pass_app
from workflow.errors import InputError


@click.command("deliver")
@json_option
@now_option
@pass_app
def deliver_cmd(app: App, as_json: bool) -> None:
    """发送发件箱中已到时间的消息（失败的按退避策略重试）。"""
    report = app.runtime.deliverer().run(app.now)
    if as_json:
        emit_json(report.as_json())
    else:
        click.echo(f"已发送 {report.sent} 条，失败待重试 {report.failed} 条，"
                   f"放弃 {report.dead} 条，限流顺延 {report.deferred} 条。")


def register(cli: click.Group) -> None:
    cli.add_command(deliver_cmd)
    outbox = cli.commands.get("outbox")
    assert isinstance(outbox, click.Group)

    @outbox.command("retry")
    @click.argument("message_id", type=int, required=False)
    @click.option("--all-dead", is_flag=True, help="重新排队所有发送失败（dead）的消息")
    @click.option("--channel", help="与 --all-dead 同用：只重试这个渠道（email、wecom、"
                                    "wecom_robot、file）")
    @json_option
    @now_option
    @pass_app
    def outbox_retry(app: App, message_id: int | None, all_dead: bool, channel: str | None,
                     as_json: bool) -> None:
        """把失败（dead）的消息重新放回待发送队列：给出消息 ID，或用 --all-dead 一次全部重试。"""
        if (message_id is None) == (not all_dead):
            raise InputError("请给出一个消息 ID，或使用 --all-dead（二者选一）", field="message_id")
        if channel is not None and not all_dead:
            raise InputError("--channel 只能与 --all-dead 同用", field="channel")
        with app.transaction() as session:
            if message_id is not None:
                retry_message(session, message_id, app.now())
                count = 1
            else:
                count = retry_dead(session, app.now(), channel)
        if as_json:
            emit_json({"retried": count})
        elif message_id is not None:
            click.echo(f"消息 {message_id} 已重新排队，将在下次发送时重试。")
        else:
            which = f"渠道 {channel} 的" if channel else ""
            click.echo(f"已重新排队{which}发送失败的消息 {count} 条，将在下次发送时重试。")
