"""``rectiflow deliver`` and ``rectiflow outbox retry``: send what is due, revive dead messages."""

from __future__ import annotations

import click

from notifications.deliverer import retry_message
from workflow.commands.common import App, emit_json, json_option, now_option, pass_app


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
    @click.argument("message_id", type=int)
    @pass_app
    def outbox_retry(app: App, message_id: int) -> None:
        """把失败（dead）的消息重新放回待发送队列。"""
        with app.transaction() as session:
            retry_message(session, message_id, app.now())
        click.echo(f"消息 {message_id} 已重新排队，将在下次发送时重试。")
