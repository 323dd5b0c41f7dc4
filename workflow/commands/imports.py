"""``rectiflow import ...``: bring existing ledgers and documents in."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from workflow.calendar_store import load_calendar
from workflow.commands.archive import import_archive_cmd
from workflow.commands.common import App, emit_json, json_option, parse_date, pass_app
from workflow.importers.ledger import import_ledger, people_names, preview_lines
from workflow.importers.report import import_report, summary_lines, tree_lines
from workflow.models import Campaign
from workflow.progress import terminal_reporter
from workflow.services.people import find_person
from workflow.workcalendar import overrides_from_toml

INSPECTED_HELP = ("被巡察单位（单位名称，新单位自动建立）：整改任务属于该单位，台账中的责任部门归入其下；"
                  "该单位的整改办、领导和只读人员只能看到本单位的整改任务")


@click.group("import")
def import_group() -> None:
    """导入台账或整改报告。"""


@import_group.command("ledger")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--campaign", "campaign_title", help="整改任务名称（默认取文件名）；已存在则追加")
@click.option("--first-responsible", help="第一责任人（邮箱或姓名），新建整改任务时设置")
@click.option("--feedback-date", help="反馈日期 YYYY-MM-DD；完成时限可写作「反馈后N个工作日」")
@click.option("--inspected-unit", help=INSPECTED_HELP)
@click.option("--dry-run", is_flag=True, help="只检查，不写入")
@json_option
@pass_app
def import_ledger_cmd(app: App, file: Path, campaign_title: str | None,
                      first_responsible: str | None, feedback_date: str | None,
                      inspected_unit: str | None, dry_run: bool, as_json: bool) -> None:
    """导入整改台账（.xlsx 第一个工作表，或 UTF-8/GBK 编码的 .csv）；有任何错误行则整份不导入。

    表头可在前 10 行内（上方可有标题行），可分两行；合并单元格按块填入每一行，「一、……方面」这样的
    分节行作为其下各行的方面，填表人/审核人/合计等表尾行跳过。--dry-run 显示导入预览。"""
    feedback = parse_date(feedback_date, "feedback_date")
    with terminal_reporter(as_json) as reporter, app.transaction() as session:
        calendar = load_calendar(session, overrides_from_toml(app.runtime.policies.calendar))
        summary = import_ledger(session, file, campaign_title=campaign_title, now=app.now(),
                                dry_run=dry_run, feedback_date=feedback, calendar=calendar,
                                reporter=reporter, inspected_unit=inspected_unit)
        if first_responsible and summary.campaign_id is not None and not dry_run:
            campaign = session.get(Campaign, summary.campaign_id)
            assert campaign is not None
            campaign.first_responsible = find_person(session, first_responsible)
        title = session.scalar(select(Campaign.title).where(Campaign.id == summary.campaign_id))
        preview = preview_lines(summary, people_names(session, summary)) if dry_run else []
    if as_json:
        emit_json(summary.as_json())
        return
    if dry_run:
        click.echo(f"导入预览（{file.name}，未写入）：")
        for line in preview:
            click.echo(f"  {line}")
    verb = "检查通过，可导入" if dry_run else "已导入"
    click.echo(f"{verb}：{summary.areas} 个方面、{summary.problems} 个问题、"
               f"{summary.measures} 项整改措施" + (f"（整改任务「{title}」，编号 {summary.campaign_id}）"
                                             if title else ""))
    if not dry_run:
        if summary.encoding:
            click.echo(f"文件编码：{summary.encoding}")
        for line in summary.layout.lines():
            click.echo(line)
    if summary.provisional:
        click.echo(f"其中 {summary.provisional} 项的完成时限按「反馈后N个工作日」推算时跨入了尚未录入"
                   "放假安排的年份，暂按周一至周五计算，为临时期限（measure list 中标 ?）；"
                   "用 rectiflow calendar add 录入该年节假日后将自动重新计算。")


@import_group.command("report")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--campaign", "campaign_title", required=True,
              help="整改任务名称；不存在则新建，已存在则追加")
@click.option("--inspected-unit", help=INSPECTED_HELP)
@click.option("--dry-run", is_flag=True, help="只解析并显示识别结果，不写入")
@json_option
@pass_app
def import_report_cmd(app: App, file: Path, campaign_title: str, inspected_unit: str | None,
                      dry_run: bool, as_json: bool) -> None:
    """导入反馈意见或整改情况报告（.txt 或 .docx）：按「一、（一）1.（1）①」编号识别方面、问题和
    整改措施，按「整改结果」定状态，「整改情况」记为整改进展；并与文中自述的数字核对。"""
    with app.transaction() as session:
        summary = import_report(session, file, campaign_title=campaign_title, now=app.now(),
                                dry_run=dry_run, inspected_unit=inspected_unit)
    if as_json:
        emit_json(summary.as_json())
        return
    if dry_run:
        click.echo(f"识别结果（{file.name}，未写入）：")
        for line in tree_lines(summary.report):
            click.echo(f"  {line}")
        click.echo("")
    else:
        counts = summary.counts
        click.echo(f"已导入：{counts['areas']} 个方面、{counts['problems']} 个问题、"
                   f"{counts['measures']} 项整改措施（整改任务「{campaign_title.strip()}」，"
                   f"编号 {summary.campaign_id}）")
    for line in summary_lines(summary):
        click.echo(line)


def register(cli: click.Group) -> None:
    import_group.add_command(import_archive_cmd)
    cli.add_command(import_group)
