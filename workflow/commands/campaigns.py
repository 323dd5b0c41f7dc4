"""``rectiflow campaign ...``: rounds of inspection feedback."""

from __future__ import annotations

import click
from sqlalchemy import select

from workflow.commands.common import App, emit_json, json_option, parse_date, pass_app
from workflow.errors import NotFound
from workflow.ledger import campaign_dict
from workflow.models import Campaign
from workflow.services.campaigns import create_campaign
from workflow.services.people import find_person


@click.group("campaign")
def campaign_group() -> None:
    """整改任务（一轮巡察/审计/专项治理）。"""


@campaign_group.command("add")
@click.argument("title")
@click.option("--first-responsible", help="第一责任人（邮箱或姓名）")
@click.option("--feedback-date", help="反馈日期 YYYY-MM-DD")
@json_option
@pass_app
def campaign_add(app: App, title: str, first_responsible: str | None, feedback_date: str | None,
                 as_json: bool) -> None:
    """新建整改任务。"""
    with app.transaction() as session:
        campaign = create_campaign(session, title=title, now=app.now(),
                                   first_responsible=first_responsible,
                                   feedback_date=parse_date(feedback_date, "feedback_date"))
        shown = campaign_dict(session, campaign)
        title = campaign.title
    emit_json(shown) if as_json else click.echo(f"已新建整改任务「{title}」，编号 {shown['id']}")


@campaign_group.command("set")
@click.argument("campaign_id", type=int)
@click.option("--first-responsible", help="第一责任人（邮箱或姓名）")
@click.option("--feedback-date", help="反馈日期 YYYY-MM-DD")
@pass_app
def campaign_set(app: App, campaign_id: int, first_responsible: str | None,
                 feedback_date: str | None) -> None:
    """修改整改任务的第一责任人或反馈日期。"""
    with app.transaction() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFound("整改任务", campaign_id)
        if first_responsible:
            campaign.first_responsible = find_person(session, first_responsible)
        if feedback_date:
            campaign.feedback_date = parse_date(feedback_date, "feedback_date")
    click.echo(f"已更新整改任务 {campaign_id}")


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
        click.echo(f"{c['id']:>4}  {c['title']}  {c['areas']}个方面 {c['problems']}个问题 "
                   f"{c['measures']}项措施")


def register(cli: click.Group) -> None:
    cli.add_command(campaign_group)
