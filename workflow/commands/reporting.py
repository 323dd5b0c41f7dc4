"""``rectiflow digest`` and ``rectiflow report``: the weekly digest and the official report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from notifications.digest import LIST_LIMIT, render_digest
from workflow.commands.common import (
    App,
    emit_json,
    json_option,
    now_option,
    parse_date,
    pass_app,
)
from workflow.errors import NotFound
from workflow.lifecycle import Kind
from workflow.models import Campaign
from workflow.reports import ReportOptions, load_report, write_report
from workflow.services.campaign_digest import digest_of_campaign
from workflow.services.digest import send_digests
from workflow.workcalendar import overrides_from_toml


def digest_settings(app: App, session: Any) -> tuple[Any, int, dict[str, bool]]:
    """The working-day index, the stagnation threshold and the config calendar overrides."""
    ctx = app.runtime.reminder_context(session)
    stagnation = app.runtime.policies.effective(Kind.DEADLINE).stagnation
    calendar = {d.isoformat(): o.is_workday
                for d, o in overrides_from_toml(app.runtime.policies.calendar).items()}
    return ctx, stagnation, calendar


@click.command("digest")
@click.option("--campaign", "campaign_id", type=int, help="整改任务编号（默认：全部整改任务）")
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False),
              help="把整体周报写成 HTML 文件（图表内嵌）")
@click.option("--send", is_flag=True, help="为每位读者写入发件箱（每人每周一次）")
@json_option
@now_option
@pass_app
def digest_cmd(app: App, campaign_id: int | None, out: Path | None, send: bool,
               as_json: bool) -> None:
    """整改进展周报：统计、逾期和即将到期事项、本周变化；--send 按读者写入发件箱。"""
    now = app.now()
    with app.transaction(write_lock=send) as session:
        if campaign_id is not None and session.get(Campaign, campaign_id) is None:
            raise NotFound("整改任务", campaign_id)
        ctx, stagnation, calendar = digest_settings(app, session)
        # --json lists every overdue, due and stagnating measure; the text and the page the first
        digest = digest_of_campaign(session, campaign_id, now, ctx.days, stagnation=stagnation,
                                    limit=None if as_json else LIST_LIMIT)
        run = None
        if send:
            run = send_digests(session, now=now, days=ctx.days,
                               send_at=ctx.planner.next_send_time(now, ctx.base),
                               configured=app.runtime.person_channels, campaign_id=campaign_id,
                               stagnation=stagnation, calendar=calendar)
    if out is not None:
        shown = render_digest(digest, app.settings.base_url, name="各位领导、同事", inline=False)
        out.write_text(shown.html, encoding="utf-8")
    if as_json:
        document = digest.as_json()
        if run is not None:
            document["sent"] = run.as_json()
        emit_json(document)
        return
    counts = digest.stats.counts
    click.echo(digest.headline)
    click.echo(f"完成率 {counts.completion_rate * 100:.1f}%；逾期 {counts.overdue} 项；"
               f"7个工作日内到期 {counts.due_soon} 项；本周变化 {len(digest.changes)} 项。")
    if out is not None:
        click.echo(f"已写入 {out}")
    if run is not None:
        click.echo(f"周报：{run.readers} 位读者，{run.empty} 位无内容不发送，"
                   f"写入发件箱 {len(run.messages)} 条（已发过 {run.skipped_existing} 条）。")


@click.command("report")
@click.argument("campaign_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["md", "docx", "xlsx"]), required=True,
              help="md / docx：整改情况报告；xlsx：整改台账（可再导入）")
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="输出文件")
@click.option("--to", "to", help="主送机关（默认：整改任务设置的主送机关）")
@click.option("--from", "sender", help="落款单位（默认：整改任务设置的落款单位）")
@click.option("--date", "on", help="成文日期 YYYY-MM-DD（默认：今天）")
@now_option
@pass_app
def report_cmd(app: App, campaign_id: int, fmt: str, out: Path, to: str | None,
               sender: str | None, on: str | None) -> None:
    """导出整改情况报告（Word 公文格式 / Markdown）或整改台账（Excel）。"""
    now = app.now()
    options = ReportOptions(to=(to or "").strip() or None, sender=(sender or "").strip() or None,
                            on=parse_date(on, "date"))
    with app.transaction() as session:
        ctx, _, _ = digest_settings(app, session)
        data = load_report(session, campaign_id, now, ctx.days)
    write_report(data, fmt, out, options)
    if fmt != "xlsx":
        if not (options.to or data.facts.report_to):
            click.echo("注意：未指定主送机关（--to 或 campaign set --report-to），报告中不写主送机关。",
                       err=True)
        if not (options.sender or data.facts.report_from):
            click.echo("注意：未指定落款单位（--from 或 campaign set --report-from），报告只写成文日期。",
                       err=True)
    what = "整改台账" if fmt == "xlsx" else "整改情况报告"
    click.echo(f"已导出「{data.title}」{what}（{data.stats.counts.total} 项整改措施）到 {out}")


def register(cli: click.Group) -> None:
    cli.add_command(digest_cmd)
    cli.add_command(report_cmd)
