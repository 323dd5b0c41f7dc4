"""``rectiflow calendar ...``: enter holidays and working weekends the packaged calendar does not
know yet, and check how days and years are covered."""

from __future__ import annotations

from datetime import date
from typing import Any

import click
from sqlalchemy.orm import Session

from workflow.calendar_store import add_days, list_days, load_calendar, remove_day, with_days
from workflow.commands.common import App, emit_json, json_option, now_option, pass_app
from workflow.errors import InputError
from workflow.services.deadlines import Recomputed, recompute_deadlines
from workflow.workcalendar import (
    OFFICIAL_YEARS,
    YEAR_SOURCE_LABELS,
    DayOverride,
    WorkCalendar,
    YearSource,
    overrides_from_toml,
    parse_day,
    parse_days,
)

ACTION_LABELS = {"added": "新增", "updated": "更新", "unchanged": "未变"}


def config_overrides(app: App) -> dict[date, DayOverride]:
    """The ``[calendar]`` table of the policy file (RECTIFLOW_CONFIG, else the packaged one)."""
    return overrides_from_toml(app.runtime.policies.calendar)


def _calendar(app: App, session: Session) -> WorkCalendar:
    return load_calendar(session, config_overrides(app))


def _span_text(days: list[date]) -> str:
    if len(days) == 1:
        return days[0].isoformat()
    contiguous = (days[-1] - days[0]).days == len(days) - 1
    joiner = " 至 " if contiguous else " … "
    return f"{days[0].isoformat()}{joiner}{days[-1].isoformat()}，共 {len(days)} 天"


@click.group("calendar")
def calendar_group() -> None:
    """工作日日历：录入节假日与调休上班日，查询某天是否上班、各年份覆盖情况。"""


def _echo_recomputed(recomputed: Recomputed) -> None:
    for line in recomputed.summary_lines():
        click.echo(line)


@calendar_group.command("add")
@click.argument("dates", nargs=-1, required=True)
@click.option("--holiday", is_flag=True, help="录入为放假日")
@click.option("--workday", is_flag=True, help="录入为上班日（如调休上班的周末）")
@click.option("--note", default="", help="说明，如「春节」")
@click.option("--dry-run", is_flag=True, help="只试算：显示将录入什么、哪些完成时限会变，不写入")
@json_option
@now_option
@pass_app
def calendar_add(app: App, dates: tuple[str, ...], holiday: bool, workday: bool, note: str,
                 dry_run: bool, as_json: bool) -> None:
    """录入放假日或上班日；DATE 为 YYYY-MM-DD，或范围 2027-02-10..2027-02-16。

    录入优先于内置日历（chinese_calendar）。同一天再次录入会覆盖原录入。
    录入后，未完成措施中按「反馈后N个工作日」给出的完成时限按新日历重新计算，变动记入办理记录。
    """
    if holiday == workday:
        raise InputError("请用 --holiday（放假）或 --workday（上班）二选一指明录入类型",
                         field="holiday")
    days = sorted({d for text in dates for d in parse_days(text)})
    configured = config_overrides(app)
    now = app.now()
    with app.transaction(write_lock=not dry_run) as session:
        changes = add_days(session, days, workday, note, now=now, dry_run=dry_run)
        calendar = load_calendar(session, configured)
        if dry_run:
            calendar = with_days(calendar, days, workday, note)
        recomputed = recompute_deadlines(session, calendar, actor=None, now=now, dry_run=dry_run)
    years = sorted({d.year for d in days})
    if as_json:
        emit_json({"is_workday": workday, "note": note.strip(), "dry_run": dry_run,
                   "days": [{"date": c.day.isoformat(), "action": c.action} for c in changes],
                   "years": calendar.coverage(years), "deadlines": recomputed.as_json()})
        return
    kind = "上班日" if workday else "放假日"
    counts = "、".join(f"{label} {sum(c.action == action for c in changes)}"
                      for action, label in ACTION_LABELS.items())
    click.echo(f"{'试算（未写入）：将录入' if dry_run else '已录入'}{kind}：{_span_text(days)}"
               f"（{counts}）")
    for year in years:
        if year in OFFICIAL_YEARS:
            click.echo(f"注意：{year} 年已有内置官方日历，所录入的日期将优先于官方安排。")
        else:
            click.echo(f"{year} 年{'将' if dry_run else '现'}按管理员录入计算（不再标为临时）；"
                       "请确认该年全部放假日和调休上班日均已录入。")
    _echo_recomputed(recomputed)


@calendar_group.command("list")
@click.option("--year", type=click.IntRange(1900, 2200), help="只列出这一年")
@json_option
@pass_app
def calendar_list(app: App, year: int | None, as_json: bool) -> None:
    """列出管理员录入的放假日和上班日（数据库录入和策略文件 [calendar]）。"""
    configured = config_overrides(app)
    with app.transaction() as session:
        stored = {row.day: row for row in list_days(session, year)}
    rows: dict[date, dict[str, Any]] = {}
    for day, override in configured.items():
        if year is None or day.year == year:
            rows[day] = {"date": day.isoformat(), "is_workday": override.is_workday,
                         "note": override.note, "source": "config"}
    for day, row in stored.items():  # a database entry wins over the policy file
        rows[day] = {"date": day.isoformat(), "is_workday": row.is_workday, "note": row.note,
                     "source": "database"}
    shown = [rows[d] for d in sorted(rows)]
    if as_json:
        emit_json(shown)
        return
    if not shown:
        click.echo("没有录入任何日期。" if year is None else f"{year} 年没有录入任何日期。")
        return
    for r in shown:
        kind = "上班" if r["is_workday"] else "放假"
        source = "策略文件" if r["source"] == "config" else "数据库"
        click.echo(f"{r['date']}  {kind}  {r['note'] or '—'}  （{source}）")
    click.echo(f"共 {len(shown)} 天")


@calendar_group.command("remove")
@click.argument("day_text", metavar="DATE")
@pass_app
def calendar_remove(app: App, day_text: str) -> None:
    """删除某天的录入（恢复为内置日历或周一至周五）。"""
    day = parse_day(day_text)
    configured = config_overrides(app)
    with app.transaction(write_lock=True) as session:
        try:
            row = remove_day(session, day)
        except InputError:
            if day in configured:
                raise InputError(f"{day} 的录入来自策略文件的 [calendar] 表，请在文件中删除",
                                 field="date") from None
            raise
        kind = "上班日" if row.is_workday else "放假日"
        calendar = load_calendar(session, configured)
        description = calendar.describe(day)
        recomputed = recompute_deadlines(session, calendar, actor=None, now=app.now())
    click.echo(f"已删除 {day} 的录入（原为{kind}）。现在：{description}")
    _echo_recomputed(recomputed)


@calendar_group.command("recompute")
@click.option("--dry-run", is_flag=True, help="只试算，不写入")
@json_option
@now_option
@pass_app
def calendar_recompute(app: App, dry_run: bool, as_json: bool) -> None:
    """按当前日历（数据库录入和策略文件 [calendar]）重新计算完成时限。

    只涉及未完成（已交办、整改中）且完成时限写作「反馈后N个工作日」、未经延期的措施；
    修改策略文件的 [calendar] 表后请运行一次。calendar add/remove 会自动重新计算。
    """
    with app.transaction(write_lock=not dry_run) as session:
        recomputed = recompute_deadlines(session, _calendar(app, session), actor=None,
                                         now=app.now(), dry_run=dry_run)
    if as_json:
        emit_json(recomputed.as_json())
        return
    lines = recomputed.summary_lines()
    if not recomputed.changes:
        lines.insert(0, "没有需要重新计算的完成时限。")
    for line in lines:
        click.echo(line)


@calendar_group.command("check")
@click.argument("day_text", metavar="DATE")
@json_option
@pass_app
def calendar_check(app: App, day_text: str, as_json: bool) -> None:
    """查询某天是否为工作日、依据是什么、是否为临时推算。"""
    day = parse_day(day_text)
    with app.transaction() as session:
        info = _calendar(app, session).explain(day)
    if as_json:
        emit_json(info.as_json())
        return
    verdict = "工作日" if info.is_workday else "非工作日"
    source = {"admin": "管理员录入", "official": "内置官方日历（chinese_calendar）",
              "fallback": "未覆盖年份，暂按周一至周五（临时）"}[info.source]
    click.echo(info.description)
    click.echo(f"结论：{verdict}；依据：{source}")


@calendar_group.command("coverage")
@json_option
@now_option
@pass_app
def calendar_coverage(app: App, as_json: bool) -> None:
    """各年份工作日的来源：内置官方日历、管理员录入，或未覆盖（按周一至周五临时推算）。

    列出今年、明年和所有有录入的年份；新年到来前请确认明年已不是「未覆盖」。
    """
    this_year = app.today().year
    with app.transaction() as session:
        calendar = _calendar(app, session)
    years = {this_year, this_year + 1} | {d.year for d in calendar.overrides}
    rows = calendar.coverage(years)
    missing = [r["year"] for r in rows
               if r["source"] == YearSource.FALLBACK and r["year"] >= this_year]
    warnings = [f"{y} 年尚无放假安排：暂按周一至周五推算，相关期限为临时期限；"
                f"国务院公布后请用 rectiflow calendar add 录入。" for y in missing]
    official = ({"from": min(OFFICIAL_YEARS), "to": max(OFFICIAL_YEARS)}
                if OFFICIAL_YEARS else None)
    if as_json:
        emit_json({"official": official, "years": rows, "warnings": warnings})
        return
    if official:
        click.echo(f"内置官方日历（chinese_calendar）覆盖 {official['from']}–{official['to']} 年。")
    for r in rows:
        entered = (f"：录入放假 {r['holidays']} 天、上班 {r['workdays']} 天"
                   if r["holidays"] or r["workdays"] else "")
        click.echo(f"{r['year']} 年  {YEAR_SOURCE_LABELS[YearSource(r['source'])]}{entered}")
    for warning in warnings:
        click.echo(f"注意：{warning}")


def register(cli: click.Group) -> None:
    cli.add_command(calendar_group)
