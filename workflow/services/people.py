"""People and units: adding, finding, delegation."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterable, Sequence
from datetime import date

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from workflow.errors import (
    AlreadyExists,
    ImportRejected,
    InputError,
    NotFound,
    RectiflowError,
    RoleRequired,
    RowError,
)
from workflow.lifecycle import Preference, Role, parse_role
from workflow.models import Person, Unit

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def parse_roles(raw: Iterable[str]) -> list[str]:
    roles: list[str] = []
    for item in raw:
        for part in re.split(r"[,，、/\s]+", item.strip()):
            if not part:
                continue
            role = parse_role(part)
            if role is None:
                known = "、".join(f"{r.value}（{r.label}）" for r in Role)
                raise InputError(f"未知角色「{part}」；可用角色：{known}", field="role")
            if role.value not in roles:
                roles.append(role.value)
    if not roles:
        raise InputError("至少需要一个角色", field="role")
    return roles


def check_email(email: str) -> str:
    email = email.strip()
    if not EMAIL_RE.match(email):
        raise InputError(f"邮箱格式不正确：「{email}」", field="email")
    return email.lower()


def get_or_create_unit(session: Session, name: str, parent: Unit | None = None) -> Unit:
    name = name.strip()
    if not name:
        raise InputError("部门名称不能为空", field="unit")
    unit = session.scalar(select(Unit).where(Unit.name == name))
    if unit is None:
        unit = Unit(name=name, parent=parent)
        session.add(unit)
        session.flush()
    return unit


def unit_ancestors(session: Session, unit_id: int | None) -> set[int]:
    """The unit and every unit above it. Units already in the session are not read again (a
    list of measures asks this for each of them)."""
    seen: set[int] = set()
    current = unit_id
    while current is not None and current not in seen:
        seen.add(current)
        unit = session.get(Unit, current)
        current = unit.parent_id if unit is not None else None
    return seen


def add_person(session: Session, *, name: str, email: str, roles: Iterable[str],
               wecom_id: str | None = None, mobile: str | None = None,
               unit: str | None = None, password_hash: str | None = None) -> Person:
    """Add a person; the email must be new."""
    name = name.strip()
    if not name:
        raise InputError("姓名不能为空", field="name")
    email = check_email(email)
    if session.scalar(select(Person.id).where(func.lower(Person.email) == email)) is not None:
        raise AlreadyExists(f"邮箱 {email} 已被使用", field="email")
    person = Person(
        name=name, email=email, roles=parse_roles(roles), wecom_id=(wecom_id or None),
        mobile=(mobile or None), password_hash=password_hash,
        unit=get_or_create_unit(session, unit) if unit else None,
    )
    session.add(person)
    session.flush()
    return person


def update_person(session: Session, person: Person, *, channel: str | None = None,
                  wecom_id: str | None = None, mobile: str | None = None,
                  unit: str | None = None, active: bool | None = None,
                  password_hash: str | None = None, name: str | None = None,
                  roles: Iterable[str] | None = None) -> Person:
    """Change how a person is reached, where they work, whether they may act at all, their
    name, roles, or password (an argon2 hash: the caller hashes, so a refused password changes
    nothing)."""
    if name is not None:
        if not name.strip():
            raise InputError("姓名不能为空", field="name")
        person.name = name.strip()
    if roles is not None:
        person.roles = parse_roles(roles)
    if channel is not None:
        if channel not in set(Preference):
            known = "、".join(f"{p.value}（{p.label}）" for p in Preference)
            raise InputError(f"未知的接收方式「{channel}」；可用：{known}", field="channel")
        person.channel_preference = channel
    if wecom_id is not None:
        person.wecom_id = wecom_id.strip() or None
    if mobile is not None:
        person.mobile = mobile.strip() or None
    if unit is not None:
        person.unit = get_or_create_unit(session, unit) if unit.strip() else None
    if active is not None:
        if not active and person.active:
            end_sessions(person)
        person.active = active
    if password_hash is not None:
        # API tokens carry a fingerprint of the hash: the old password's tokens stop working.
        person.password_hash = password_hash
        end_sessions(person)
    session.flush()
    return person


def end_sessions(person: Person) -> None:
    """End every session and API token of ``person`` at once (logout, a new password,
    deactivation): they carry the session version they were made with."""
    person.session_version = (person.session_version or 0) + 1


_BY_EMAIL = select(Person).where(func.lower(Person.email) == bindparam("email"))
_BY_NAME = select(Person).where(Person.name == bindparam("name"))


def find_person(session: Session, key: str) -> Person:
    """A person by email (any case) or by unique name."""
    key = key.strip()
    if "@" in key:
        person = session.scalar(_BY_EMAIL, {"email": key.lower()})
        if person is None:
            raise NotFound("人员", key)
        return person
    matches = session.scalars(_BY_NAME, {"name": key}).all()
    if not matches:
        raise NotFound("人员", key)
    if len(matches) > 1:
        emails = "、".join(p.email for p in matches)
        raise InputError(f"有 {len(matches)} 人名为「{key}」（{emails}），请用邮箱指明",
                         field="person")
    return matches[0]


def set_delegate(session: Session, person: Person, delegate: Person | None,
                 until: date | None) -> None:
    """Name ``delegate`` to act for ``person`` until ``until`` (inclusive); None clears it."""
    if delegate is None:
        person.delegate_id = None
        person.delegate_until = None
        return
    if delegate.id == person.id:
        raise InputError("不能把自己设为代理人", field="delegate")
    if until is None:
        raise InputError("设置代理须给出截止日期", field="until")
    person.delegate_id = delegate.id
    person.delegate_until = until


def principals_for(session: Session, actor: Person, on: date) -> list[Person]:
    """The people ``actor`` may act as on date ``on``: themselves, then whoever delegated to them."""
    delegators = session.scalars(
        select(Person).where(Person.delegate_id == actor.id, Person.delegate_until >= on)
        .order_by(Person.id)
    ).all()
    return [actor, *delegators]


def check_unit_allowed(session: Session, unit: str | None, hidden_units: Collection[int]) -> None:
    """A person may be put only in a unit the manager reaches: not one inside another
    inspected unit (``hidden_units``, from ``visibility.foreign_units``)."""
    name = (unit or "").strip()
    if not name or not hidden_units:
        return
    unit_id = session.scalar(select(Unit.id).where(Unit.name == name))
    if unit_id is not None and unit_id in hidden_units:
        raise InputError(f"部门「{name}」不在你的管理范围内", field="unit")


def check_may_manage(actor: Person, target: Person | None, roles: Iterable[str] = ()) -> None:
    """A reviewer (整改办) manages people, but only an admin may grant the admin role or change,
    reset or deactivate an admin: otherwise a reviewer could make themselves one."""
    if actor.has_role(Role.ADMIN):
        return
    if not actor.has_role(Role.REVIEWER):
        raise RoleRequired(actor.name, "管理人员", ["整改办", "管理员"])
    if Role.ADMIN.value in set(roles) or (target is not None and target.has_role(Role.ADMIN)):
        raise RoleRequired(actor.name, "添加或修改管理员账号", ["管理员"])
    if Role.SUPERVISOR.value in set(roles) or (target is not None
                                               and target.has_role(Role.SUPERVISOR)):
        raise RoleRequired(actor.name, "添加或修改巡察办人员", ["管理员"])


#: The people file's columns (header in Chinese) → ``add_person``'s arguments.
PEOPLE_COLUMNS = {"姓名": "name", "邮箱": "email", "企业微信": "wecom_id", "手机": "mobile",
                  "部门": "unit", "角色": "roles"}
REQUIRED_PEOPLE_COLUMNS = ("姓名", "邮箱", "角色")
#: The field an error names → the column a person sees in the file.
FIELD_COLUMNS = {"name": "姓名", "email": "邮箱", "role": "角色", "unit": "部门"}


def read_people_csv(data: bytes, source: str) -> list[tuple[int, dict[str, str]]]:
    """The rows of a people file (UTF-8 or GB18030 CSV) as (row number, values by argument)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise InputError(f"无法读取 {source}（须为 UTF-8 或 GBK 编码的 CSV）", field="file")
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_PEOPLE_COLUMNS if c not in header]
    if missing:
        raise InputError(f"{source} 的表头缺少列：{'、'.join(missing)}", field="header")
    rows = []
    for number, row in enumerate(reader, start=2):
        values = {PEOPLE_COLUMNS[k.strip()]: (v or "").strip() for k, v in row.items()
                  if k is not None and k.strip() in PEOPLE_COLUMNS}
        if any(values.values()):
            rows.append((number, values))
    return rows


def import_people(session: Session, rows: Sequence[tuple[int, dict[str, str]]], source: str,
                  *, allow_admin: bool = True,
                  hidden_units: Collection[int] = ()) -> list[Person]:
    """Add every row as a person, or none: ImportRejected names each bad row and column. The
    caller rolls back after a refusal or a dry run. ``allow_admin`` False refuses rows that
    grant the admin role (a reviewer's import)."""
    errors: list[RowError] = []
    added: list[Person] = []
    for number, values in rows:
        try:
            with session.begin_nested():
                roles = parse_roles([values.get("roles", "")])
                if not allow_admin and {Role.ADMIN.value, Role.SUPERVISOR.value} & set(roles):
                    raise InputError("只有管理员可以添加管理员或巡察办人员", field="role")
                check_unit_allowed(session, values.get("unit"), hidden_units)
                added.append(add_person(
                    session, name=values.get("name", ""), email=values.get("email", ""),
                    roles=roles, wecom_id=values.get("wecom_id"), mobile=values.get("mobile"),
                    unit=values.get("unit") or None))
        except RectiflowError as exc:
            field = getattr(exc, "field", None)
            column = FIELD_COLUMNS.get(field or "", field)
            value = values.get({"role": "roles"}.get(field or "", field or ""))
            errors.append(RowError(number, column, str(exc), value or None))
    if errors:
        raise ImportRejected(source, errors)
    if not added:
        raise InputError(f"{source} 中没有任何人员", field="file")
    return added
