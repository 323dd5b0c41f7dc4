"""``rectiflow campaign ...``: rounds of inspection feedback."""

from __future__ import annotations

import copy
from pathlib import Path

import click
from sqlalchemy import select

from workflow.commands.common import App, emit_json, json_option, parse_date, pass_app
from workflow.errors import InputError, NotFound
from workflow.ledger import campaign_dict
from workflow.models import Campaign
from workflow.services.campaigns import (
    acceptor_labels,
    create_campaign,
    set_acceptors,
    set_inspected_unit,
    split_names,
)
from workflow.services.people import find_person


@click.group("campaign")
def campaign_group() -> None:
    """整改任务（一轮巡察/审计/专项治理）。"""


@campaign_group.command("add")
@click.argument("title")
@click.option("--first-responsible", help="第一责任人（邮箱或姓名）")
@click.option("--feedback-date", help="反馈日期 YYYY-MM-DD")
@click.option("--inspected-unit", help="被巡察单位（单位名称）；不填则属于整个系统")
@json_option
@pass_app
def campaign_add(app: App, title: str, first_responsible: str | None, feedback_date: str | None,
                 inspected_unit: str | None, as_json: bool) -> None:
    """新建整改任务。"""
    with app.transaction() as session:
        campaign = create_campaign(session, title=title, now=app.now(),
                                   first_responsible=first_responsible,
                                   feedback_date=parse_date(feedback_date, "feedback_date"),
                                   inspected_unit=inspected_unit)
        shown = campaign_dict(session, campaign)
        title = campaign.title
    emit_json(shown) if as_json else click.echo(f"已新建整改任务「{title}」，编号 {shown['id']}")


def _text(value: str | None, path: Path | None, name: str) -> str | None:
    """A report text from the option or a UTF-8 file; "" clears it (the report then states the
    ledger's facts)."""
    if value is not None and path is not None:
        raise InputError(f"--{name}-text 和 --{name}-file 只能给一个", field=name)
    if path is not None:
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"无法读取文件「{path}」（应为 UTF-8 文本）：{exc}", field=name) from None
    return value


@campaign_group.command("set")
@click.argument("campaign_id", type=int)
@click.option("--first-responsible", help="第一责任人（邮箱或姓名）")
@click.option("--feedback-date", help="反馈日期 YYYY-MM-DD")
@click.option("--report-to", help="整改情况报告的主送机关（\"\" 清除）")
@click.option("--report-from", help="整改情况报告的落款单位（\"\" 清除）")
@click.option("--organisation-text", help="报告“一、组织整改落实情况”的正文（\"\" 恢复按台账生成）")
@click.option("--organisation-file", type=click.Path(path_type=Path, dir_okay=False),
              help="同上，从 UTF-8 文本文件读取（每行一段）")
@click.option("--next-steps-text", help="报告“三、下一步工作打算”的正文（\"\" 恢复按台账生成）")
@click.option("--next-steps-file", type=click.Path(path_type=Path, dir_okay=False),
              help="同上，从 UTF-8 文本文件读取（每行一段）")
@click.option("--supervising-office", help="督办文书的发文单位（整改办）")
@click.option("--inspected-unit", help="被巡察单位（只能设置一次）")
@click.option("--notices", type=click.Choice(["on", "off"]),
              help="本整改任务逾期时是否生成督办文书（覆盖策略文件的 [documents] enabled）")
@click.option("--acceptors", help="三方验收的验收人，逗号或顿号分隔：人员（邮箱或姓名）或角色"
              "（reviewer/整改办、leader/责任领导、first_responsible/第一责任人）；\"\" 取消")
@pass_app
def campaign_set(app: App, campaign_id: int, first_responsible: str | None,
                 feedback_date: str | None, report_to: str | None, report_from: str | None,
                 organisation_text: str | None, organisation_file: Path | None,
                 next_steps_text: str | None, next_steps_file: Path | None,
                 supervising_office: str | None, notices: str | None,
                 inspected_unit: str | None, acceptors: str | None) -> None:
    """修改整改任务：第一责任人、反馈日期、报告的主送机关/落款/可编辑正文、督办文书、被巡察单位、验收人。"""
    organisation = _text(organisation_text, organisation_file, "organisation")
    next_steps = _text(next_steps_text, next_steps_file, "next-steps")
    with app.transaction() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFound("整改任务", campaign_id)
        if first_responsible:
            campaign.first_responsible = find_person(session, first_responsible)
        if feedback_date:
            campaign.feedback_date = parse_date(feedback_date, "feedback_date")
        set_inspected_unit(session, campaign, inspected_unit)
        for column, value, limit in (("report_to", report_to, 200),
                                     ("report_from", report_from, 200),
                                     ("supervising_office", supervising_office, 200),
                                     ("organisation_text", organisation, 20000),
                                     ("next_steps_text", next_steps, 20000)):
            if value is None:
                continue
            value = value.strip()
            if len(value) > limit:
                raise InputError(f"{column} 过长（{len(value)} 字，最多 {limit} 字）", field=column)
            setattr(campaign, column, value or None)
        if notices is not None:
            policy = copy.deepcopy(campaign.policy or {})
            policy.setdefault("documents", {})["enabled"] = notices == "on"
            app.runtime.policies.effective("deadline", policy)  # a bad override is refused here
            campaign.policy = policy
        shown_acceptors: list[str] | None = None
        if acceptors is not None:
            set_acceptors(session, campaign, split_names(acceptors))
            shown_acceptors = acceptor_labels(session, campaign.acceptors)
    click.echo(f"已更新整改任务 {campaign_id}")
    if shown_acceptors is not None:
        click.echo("三方验收：" + ("、".join(shown_acceptors) + "（每位都核验通过后方为核验通过）"
                                 if shown_acceptors else "已取消，恢复单人核验"))


@campaign_group.command("list")
@json_option
@pass_app
def campaign_list(app: App, as_json: bool) -> None:
    """列出整改任务。"""
    with app.transaction() as session:
        shown = [campaign_dict(session, c)
                 for c in session.scalars(select(Campaign).order_by(Campaign.id))]
    if as_json:
        emit_json(shown)
        return
    for c in shown:
        unit = f"  被巡察单位：{c['inspected_unit']}" if c["inspected_unit"] else ""
        click.echo(f"{c['id']:>4}  {c['title']}  {c['areas']}个方面 {c['problems']}个问题 "
                   f"{c['measures']}项措施{unit}")


def register(cli: click.Group) -> None:
    cli.add_command(campaign_group)
