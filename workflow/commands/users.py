"""``rectiflow user ...``: people, roles and delegation."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from workflow.commands.common import App, emit_json, json_option, parse_date, pass_app
from workflow.errors import InputError
from workflow.lifecycle import ROLE_LABELS, Preference, Role
from workflow.models import Person
from workflow.passwords import hash_password
from workflow.services.people import (
    add_person,
    find_person,
    import_people,
    read_people_csv,
    set_delegate,
    update_person,
)


def person_dict(person: Person) -> dict[str, object]:
    return {
        "id": person.id, "name": person.name, "email": person.email,
        "wecom_id": person.wecom_id, "mobile": person.mobile, "roles": person.roles,
        "unit": person.unit.name if person.unit else None,
        "delegate": person.delegate.email if person.delegate else None,
        "delegate_until": person.delegate_until.isoformat() if person.delegate_until else None,
        "active": person.active,
    }


@click.group("user")
def user_group() -> None:
    """人员：添加、导入、列出、设置代理。"""


def _password_from_stdin() -> str:
    """The first line of standard input as an argon2 hash; a short or empty one is refused
    (exit 2) before anything is written."""
    return hash_password(sys.stdin.readline().rstrip("\r\n"))


@user_group.command("add")
@click.option("--name", required=True, help="姓名")
@click.option("--email", required=True, help="邮箱（登录名）")
@click.option("--wecom-id", help="企业微信账号（userid）")
@click.option("--mobile", help="手机号")
@click.option("--unit", help="所在部门（不存在则新建）")
@click.option("--role", "roles", multiple=True, required=True,
              help="角色，可重复：" + "、".join(f"{r.value}（{r.label}）" for r in Role))
@click.option("--password-stdin", is_flag=True, help="从标准输入读取登录密码")
@json_option
@pass_app
def user_add(app: App, name: str, email: str, wecom_id: str | None, mobile: str | None,
             unit: str | None, roles: tuple[str, ...], password_stdin: bool,
             as_json: bool) -> None:
    """添加一名人员。"""
    password_hash = _password_from_stdin() if password_stdin else None
    with app.transaction() as session:
        person = add_person(session, name=name, email=email, roles=roles, wecom_id=wecom_id,
                            mobile=mobile, unit=unit, password_hash=password_hash)
        shown = person_dict(person)
    if as_json:
        emit_json(shown)
    else:
        click.echo(f"已添加 {shown['name']} <{shown['email']}>，编号 {shown['id']}")


@user_group.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@json_option
@pass_app
def user_import(app: App, file: Path, as_json: bool) -> None:
    """从 CSV（UTF-8 或 GBK）导入人员（列：姓名、邮箱、企业微信、手机、部门、角色）；全部成功或全部不导入。"""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InputError(f"无法读取 {file}：{exc.strerror}", field="file") from exc
    rows = read_people_csv(data, file.name)
    with app.transaction() as session:
        added = len(import_people(session, rows, file.name))
    if as_json:
        emit_json({"people": added})
    else:
        click.echo(f"已导入 {added} 名人员。")


@user_group.command("set")
@click.argument("person")
@click.option("--channel", type=click.Choice(sorted(p.value for p in Preference)),
              help="接收方式：" + "、".join(f"{p.value}（{p.label}）" for p in Preference))
@click.option("--wecom-id", help="企业微信账号（userid）；空字符串表示清除")
@click.option("--mobile", help="手机号；空字符串表示清除")
@click.option("--unit", help="所在部门（不存在则新建）；空字符串表示清除")
@click.option("--active/--inactive", default=None, help="启用或停用（停用后不能办理、不再收到消息）")
@click.option("--password-stdin", is_flag=True,
              help="从标准输入读取新的登录密码（至少 8 个字符）；原密码签发的接口令牌随之失效")
@json_option
@pass_app
def user_set(app: App, person: str, channel: str | None, wecom_id: str | None,
             mobile: str | None, unit: str | None, active: bool | None, password_stdin: bool,
             as_json: bool) -> None:
    """修改人员的接收方式、企业微信账号、手机号、部门、启用状态或登录密码。"""
    if all(v is None for v in (channel, wecom_id, mobile, unit, active)) and not password_stdin:
        raise InputError("没有要修改的内容：请给出 --channel、--wecom-id、--mobile、--unit、"
                         "--active/--inactive 或 --password-stdin", field="person")
    password_hash = _password_from_stdin() if password_stdin else None
    with app.transaction() as session:
        found = update_person(session, find_person(session, person), channel=channel,
                              wecom_id=wecom_id, mobile=mobile, unit=unit, active=active,
                              password_hash=password_hash)
        shown = person_dict(found) | {"channel": found.channel_preference}
    if as_json:
        emit_json(shown)
    else:
        click.echo(f"已更新 {shown['name']} <{shown['email']}>"
                   + ("，已设置新的登录密码" if password_stdin else ""))


@user_group.command("list")
@json_option
@pass_app
def user_list(app: App, as_json: bool) -> None:
    """列出所有人员。"""
    with app.transaction() as session:
        people = session.scalars(select(Person).options(joinedload(Person.unit),
                                                        joinedload(Person.delegate))
                                 .order_by(Person.id)).all()
        shown = [person_dict(p) for p in people]
    if as_json:
        emit_json(shown)
        return
    for p in shown:
        roles = "、".join(ROLE_LABELS.get(str(r), str(r)) for r in p["roles"])  # type: ignore[attr-defined]
        click.echo(f"{p['id']:>4}  {p['name']}  <{p['email']}>  {p['unit'] or ''}  {roles}")


@user_group.command("delegate")
@click.argument("email")
@click.option("--to", "delegate", help="代理人（邮箱或姓名）")
@click.option("--until", help="代理截止日期 YYYY-MM-DD（含当天）")
@click.option("--clear", is_flag=True, help="取消代理")
@pass_app
def user_delegate(app: App, email: str, delegate: str | None, until: str | None,
                  clear: bool) -> None:
    """出差/休假时指定代理人：期间对其的提醒和审批由代理人处理。"""
    if not clear and not delegate:
        raise InputError("请用 --to 指定代理人，或用 --clear 取消代理", field="to")
    with app.transaction() as session:
        person = find_person(session, email)
        target = None if clear else find_person(session, delegate or "")
        until_date = parse_date(until, "until")
        if until_date is not None and until_date < app.today():
            raise InputError(f"代理截止日期 {until_date} 已过", field="until")
        set_delegate(session, person, target, until_date)
        message = (f"已取消 {person.name} 的代理" if target is None
                   else f"{person.name} 的工作由 {target.name} 代理至 {until_date}")
    click.echo(message)


def register(cli: click.Group) -> None:
    cli.add_command(user_group)
