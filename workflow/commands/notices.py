"""``rectiflow notice ...``: the numbered 督办 documents the sweep issues."""

from __future__ import annotations

from pathlib import Path

import click

from workflow.commands.common import App, emit_json, json_option, now_option, pass_app
from workflow.lifecycle import DOCUMENT_KINDS, DocumentKind
from workflow.services.notices import (
    issue_by_hand,
    list_notices,
    load_notice,
    notice_dict,
    notice_docx,
    record_reply,
)


@click.group("notice")
def notice_group() -> None:
    """督办文书（督办通知书、督办提醒书……）：列出、导出 Word、登记回执。"""


@notice_group.command("list")
@click.option("--campaign", "campaign_id", type=int, help="整改任务编号（默认：全部）")
@click.option("--measure", "measure_id", type=int, help="措施编号")
@json_option
@pass_app
def notice_list(app: App, campaign_id: int | None, measure_id: int | None, as_json: bool) -> None:
    """列出督办文书（按发文先后）。"""
    with app.transaction() as session:
        shown = [notice_dict(n) for n in list_notices(session, campaign_id=campaign_id,
                                                      measure_id=measure_id)]
    if as_json:
        emit_json(shown)
        return
    if not shown:
        click.echo("没有督办文书。")
    for n in shown:
        reply = "已回执" if n["reply"] else f"回执期限 {n['reply_due']}"
        click.echo(f"{n['id']:>4}  {n['kind_label']}{n['number']}  措施 {n['measure_id']}  "
                   f"{n['unit'] or '—'}  {n['stage']}  {reply}")


@notice_group.command("issue")
@click.argument("measure_id", type=int)
@click.option("--kind", required=True,
              type=click.Choice([k.value for k in DocumentKind]),
              help="文书种类：" + "、".join(f"{k.value}（{f.label}）" for k, f in DOCUMENT_KINDS.items()))
@click.option("--as", "actor", required=True, help="签发人（巡察办、本单位整改办或管理员）")
@now_option
@json_option
@pass_app
def notice_issue(app: App, measure_id: int, kind: str, actor: str, as_json: bool) -> None:
    """手工签发一份督办文书（同一措施、同一完成时限、同一种类只签发一次）。"""
    with app.transaction() as session:
        days = app.runtime.reminder_context(session).days
        issued = issue_by_hand(session, measure_id, DocumentKind(kind), actor=actor,
                               now=app.now(), days=days)
        shown = notice_dict(load_notice(session, issued.id))
    if as_json:
        emit_json(shown)
        return
    title = f"{shown['kind_label']}{shown['number']}（编号 {shown['id']}"
    click.echo(f"已签发{title}，措施 {measure_id}）" if issued.new else f"该措施已签发过{title}）")


@notice_group.command("get")
@click.argument("notice_id", type=int)
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="输出的 Word 文件（.docx）")
@pass_app
def notice_get(app: App, notice_id: int, out: Path) -> None:
    """把一份督办文书导出为 Word（公文格式）。"""
    with app.transaction() as session:
        notice = load_notice(session, notice_id)
        content = notice_docx(notice)
        label = DOCUMENT_KINDS[DocumentKind(notice.kind)].label
        number = notice.number
    out.write_bytes(content)
    click.echo(f"已导出{label}{number}到 {out}")


@notice_group.command("reply")
@click.argument("notice_id", type=int)
@click.option("--as", "actor", required=True, help="登记人（邮箱或姓名）")
@click.option("--comment", required=True, help="回执内容（整改进展、逾期原因、完成时间安排）")
@now_option
@pass_app
def notice_reply(app: App, notice_id: int, actor: str, comment: str) -> None:
    """登记对督办文书的书面回执（责任人、责任部门成员、整改办或管理员；只能登记一次）。"""
    with app.transaction() as session:
        notice = record_reply(session, notice_id, actor=actor, text=comment, now=app.now())
        number = notice.number
    click.echo(f"已登记督办文书 {notice_id}（{number}）的回执。")


def register(cli: click.Group) -> None:
    cli.add_command(notice_group)
