"""``rectiflow measure ...``: list, show, act on measures, and report progress."""

from __future__ import annotations

from typing import Any

import click

from workflow.commands.common import (
    App,
    describe_transitions,
    emit_json,
    json_option,
    kind_label,
    now_option,
    parse_date,
    pass_app,
    state_choice,
)
from workflow.ledger import MeasureFilter, list_measures, measure_detail, measure_dict
from workflow.lifecycle import (
    RECHECK_RESULTS,
    STATE_LABELS,
    TRANSITIONS,
    Action,
    State,
    history_actor,
    history_label,
    parse_action,
)
from workflow.services.measures import (
    ActionRequest,
    perform,
    report_progress,
    store_evidence,
)
from workflow.services.people import find_person
from workflow.timeutil import SHANGHAI, as_utc


@click.group("measure")
def measure_group() -> None:
    """整改措施：查看、办理、报送进展。"""


def _short(text: str, width: int = 36) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        click.echo("没有符合条件的措施。")
        return
    click.echo(f"{'编号':>5}  {'序号':<6} {'状态':<5} {'类型':<5} {'完成时限':<11} "
               f"{'责任人':<22} 措施")
    for m in rows:
        deadline = m["deadline"] or "—"
        if m["deadline_provisional"]:
            deadline += "?"
        if m["overdue"]:
            deadline += "!"
        click.echo(f"{m['id']:>5}  {(m['seq'] or ''):<6} {STATE_LABELS[State(m['state'])]:<5} "
                   f"{kind_label(m['kind']):<5} {deadline:<11} {(m['owner'] or ''):<22} "
                   f"{_short(m['title'])}")
    overdue = sum(1 for m in rows if m["overdue"])
    click.echo(f"共 {len(rows)} 项" + (f"，其中逾期 {overdue} 项（时限后标 !）" if overdue else ""))
    if any(m["deadline_provisional"] for m in rows):
        click.echo("时限后标 ? 的是临时期限：按周一至周五推算，该年放假安排录入后可能变化。")


@measure_group.command("list")
@click.option("--campaign", "campaign_id", type=int, help="整改任务编号")
@click.option("--state", type=state_choice(), help="按状态筛选")
@click.option("--overdue", is_flag=True, help="只看逾期的")
@click.option("--owner", help="按责任人（邮箱或姓名）筛选")
@click.option("--leader", help="按责任领导（邮箱或姓名）筛选")
@json_option
@now_option
@pass_app
def measure_list(app: App, campaign_id: int | None, state: str | None, overdue: bool,
                 owner: str | None, leader: str | None, as_json: bool) -> None:
    """列出整改措施。"""
    today = app.today()
    with app.transaction() as session:
        flt = MeasureFilter(
            campaign_id=campaign_id, state=State(state) if state else None, overdue=overdue,
            owner_id=find_person(session, owner).id if owner else None,
            leader_id=find_person(session, leader).id if leader else None)
        rows = [measure_dict(m, today) for m in list_measures(session, flt, today)]
    emit_json(rows) if as_json else print_table(rows)


@measure_group.command("show")
@click.argument("measure_id", type=int)
@json_option
@now_option
@pass_app
def measure_show(app: App, measure_id: int, as_json: bool) -> None:
    """查看一项措施的详情、进展和完整历史。"""
    with app.transaction() as session:
        shown = measure_detail(session, measure_id, app.today())
    if as_json:
        emit_json(shown)
        return
    click.echo(f"措施 {shown['id']}（序号 {shown['seq'] or '—'}）：{shown['title']}")
    click.echo(f"  方面：{shown['area']}")
    click.echo(f"  问题：{shown['problem']}")
    click.echo(f"  状态：{STATE_LABELS[State(shown['state'])]}    类型：{kind_label(shown['kind'])}"
               f"    完成时限：{shown['deadline'] or '—'}"
               + _rule_text(shown["deadline_rule"], shown["deadline_provisional"])
               + ("（已逾期）" if shown["overdue"] else ""))
    request = shown["extension_request"]
    if request:
        click.echo(f"  延期申请（待审批）：{request['by'] or '—'} 申请延至 {request['deadline']}，"
                   f"理由：{request['reason']}")
    if shown["urges"]:
        click.echo(f"  已催办 {shown['urges']} 次")
    if shown["assisting_units"]:
        click.echo(f"  协办部门：{'、'.join(shown['assisting_units'])}")
    if shown.get("acceptors"):
        marks = "、".join(a["acceptor"] + ("（已验收）" if a["accepted"] else "（待验收）")
                         for a in shown["acceptors"])
        click.echo(f"  三方验收：{marks}")
    for r in shown["rechecks"]:
        click.echo(f"  回头看 {_local(r['at'])}：{RECHECK_RESULTS.get(r['result'], r['result'])}"
                   + (f"，{r['comment']}" if r["comment"] else ""))
    click.echo(f"  责任领导：{shown['leader'] or '—'}    责任部门：{shown['unit'] or '—'}"
               f"    责任人：{shown['owner'] or '—'}    版本：{shown['version']}")
    if shown["progress"]:
        click.echo("进展：")
        for p in shown["progress"]:
            files = "，".join(e["filename"] for e in p["evidence"])
            click.echo(f"  {_local(p['at'])} {p['author']}：{p['text']}"
                       + (f"（佐证：{files}）" if files else ""))
    click.echo("历史：")
    for h in shown["history"]:
        label = history_label(h["action"])
        move = (f"{STATE_LABELS[State(h['from'])]} → " if h["from"] else "") + \
            STATE_LABELS[State(h["to"])]
        who = h["actor"] or history_actor(h["action"])
        if h["on_behalf_of"]:
            who += f"（代 {h['on_behalf_of']}）"
        moved = (f"（时限 {h['data']['deadline_from']} → {h['data']['deadline_to']}）"
                 if h["data"].get("deadline_to") else "")
        click.echo(f"  {_local(h['at'])}  {label}  {move}  {who}"
                   + (f"：{h['comment']}" if h["comment"] else "") + moved)


def _rule_text(rule: dict[str, Any] | None, provisional: bool) -> str:
    """"（反馈后30个工作日，临时期限）" after a deadline, or what applies of it."""
    parts = [f"{rule['counted_from']} 反馈后{rule['workdays']}个工作日"] if rule else []
    if provisional:
        parts.append("临时期限")
    return f"（{'，'.join(parts)}）" if parts else ""


def _local(iso: str) -> str:
    from datetime import datetime

    return as_utc(datetime.fromisoformat(iso)).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


@measure_group.command("do", epilog="\b\n可用操作：\n" + describe_transitions())
@click.argument("measure_id", type=int)
@click.argument("action")
@click.option("--as", "actor", required=True, help="操作人（邮箱或姓名）")
@click.option("--comment", help="说明或理由（提交、退回、重新打开、延期时必填）")
@click.option("--deadline", help="新的完成时限 YYYY-MM-DD（延期时必填）")
@click.option("--owner", help="新的责任人（改派时必填）")
@click.option("--evidence", multiple=True, type=click.Path(), help="佐证材料文件，可重复（提交时）")
@click.option("--version", "expected_version", type=int, help="期望的版本号；不符则视为冲突")
@click.option("--result", help="回头看结论：ok（巩固良好）或 relapse（出现反弹，须写 --comment）")
@json_option
@now_option
@pass_app
def measure_do(app: App, measure_id: int, action: str, actor: str, comment: str | None,
               deadline: str | None, owner: str | None, evidence: tuple[str, ...],
               expected_version: int | None, result: str | None, as_json: bool) -> None:
    """对措施执行一个操作（开始、提交、退回、核验、销号、重新打开、延期、改派、回头看等）。"""
    request = ActionRequest(
        measure_id=measure_id, action=parse_action(action), actor=actor, comment=comment,
        deadline=parse_date(deadline, "deadline"), owner=owner,
        expected_version=expected_version, result=result.strip() if result else None)
    now = app.now()
    with app.runtime.evidence.removed_on_error() as store, app.transaction() as session:
        if evidence:
            stored = store_evidence(store, evidence)
            request = ActionRequest(**{**request.__dict__, "evidence": tuple(stored)})
        outcome = perform(session, request, now=now, policies=app.runtime.policies)
        shown = measure_dict(outcome.measure, app.today())
    if as_json:
        emit_json(shown)
    else:
        click.echo(f"措施 {measure_id}：{TRANSITIONS[request.action].label}完成，"
                   f"当前状态「{STATE_LABELS[State(shown['state'])]}」，版本 {shown['version']}")


@measure_group.command("urge")
@click.argument("measure_id", type=int)
@click.option("--as", "actor", required=True, help="催办人（邮箱或姓名）：整改办、责任领导或第一责任人")
@click.option("--comment", required=True, help="催办内容（必填），随消息发给责任人")
@json_option
@now_option
@pass_app
def measure_urge(app: App, measure_id: int, actor: str, comment: str, as_json: bool) -> None:
    """催办：立即给责任人发消息（第二次起同时告知责任领导）；冷却时间内不能重复催办。"""
    now = app.now()
    with app.transaction() as session:
        outcome = perform(session, ActionRequest(
            measure_id=measure_id, action=Action.URGE, actor=actor, comment=comment),
            now=now, policies=app.runtime.policies)
        shown = measure_dict(outcome.measure, app.today())
        nth = outcome.entry.data["nth"]
    if as_json:
        emit_json({**shown, "urges": nth})
    else:
        click.echo(f"措施 {measure_id}：已催办（第 {nth} 次），消息已写入待发送队列。")


@measure_group.command("progress")
@click.argument("measure_id", type=int)
@click.option("--as", "actor", required=True, help="报送人（邮箱或姓名）")
@click.option("--text", required=True, help="整改进展")
@click.option("--evidence", multiple=True, type=click.Path(), help="佐证材料文件，可重复")
@now_option
@pass_app
def measure_progress(app: App, measure_id: int, actor: str, text: str,
                     evidence: tuple[str, ...]) -> None:
    """报送整改进展（不改变状态）。"""
    now = app.now()
    with app.runtime.evidence.removed_on_error() as store, app.transaction() as session:
        stored = store_evidence(store, evidence)
        report_progress(session, measure_id=measure_id, actor=find_person(session, actor),
                        text=text, files=stored, now=now)
    click.echo(f"已记录措施 {measure_id} 的进展。")


def register(cli: click.Group) -> None:
    cli.add_command(measure_group)
