"""Running the application as a PostgreSQL role that does not own the tables.

A migration role owns the schema and runs ``rectiflow db upgrade``; the application connects
as another role that may read and write rows but may not drop, truncate or alter anything, and
on the history only SELECT and INSERT. Only an owner (or a superuser) can switch the
append-only triggers off, so the application's role cannot wipe the history even when its
password leaks. :func:`grant_statements` is what ``rectiflow db grant ROLE`` runs as the
migration role; :func:`read_history_guard` is what ``rectiflow doctor`` reads to warn when the
role it runs as could drop or truncate the history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from workflow.errors import InputError

#: The append-only tables: the application may add rows and read them, nothing else.
APPEND_ONLY = ("measure_history", "history_origin")
ROLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _quoted(name: str, what: str) -> str:
    if not ROLE_NAME.match(name):
        raise InputError(f"{what}「{name}」不是合法的 PostgreSQL 标识符（字母、数字、下划线，"
                         "以字母或下划线开头）", field="role")
    return f'"{name}"'


def grant_statements(schema: str, role: str, tables: list[str]) -> list[str]:
    """GRANTs that let ``role`` run the application on ``schema`` without owning anything."""
    quoted_role, quoted_schema = _quoted(role, "角色名"), _quoted(schema, "模式名")
    statements = [f"GRANT USAGE ON SCHEMA {quoted_schema} TO {quoted_role}",
                  f"REVOKE CREATE ON SCHEMA {quoted_schema} FROM {quoted_role}"]
    for table in tables:
        qualified = f"{quoted_schema}.{_quoted(table, '表名')}"
        statements.append(f"REVOKE ALL ON {qualified} FROM {quoted_role}")
        rights = "SELECT, INSERT" if table in APPEND_ONLY else "SELECT, INSERT, UPDATE, DELETE"
        statements.append(f"GRANT {rights} ON {qualified} TO {quoted_role}")
    statements += [
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {quoted_schema} TO {quoted_role}",
        # Tables a later migration adds: rows only, never TRUNCATE, REFERENCES or TRIGGER.
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {quoted_schema} GRANT SELECT, INSERT, UPDATE, "
        f"DELETE ON TABLES TO {quoted_role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {quoted_schema} GRANT USAGE, SELECT ON SEQUENCES "
        f"TO {quoted_role}",
    ]
    return statements


def grant_application_role(connection: Connection, role: str) -> list[str]:
    """Run :func:`grant_statements` for the current schema; return what was run."""
    if connection.dialect.name != "postgresql":
        raise InputError("只有 PostgreSQL 有数据库角色；SQLite 单机部署请用文件权限和 "
                         "rectiflow audit checkpoint 保护历史", field="database")
    exists = connection.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    if not exists:
        raise InputError(f"数据库角色「{role}」不存在：请先由管理员创建，如 "
                         f"CREATE ROLE {role} LOGIN PASSWORD '…'", field="role")
    schema = connection.scalar(text("SELECT current_schema()"))
    tables = list(connection.scalars(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")))
    statements = grant_statements(schema, role, tables)
    for statement in statements:
        connection.execute(text(statement))
    return statements


@dataclass(frozen=True)
class HistoryGuard:
    """What the connected role may do to the history table."""

    backend: str
    role: str | None = None
    owns: bool = False
    superuser: bool = False
    can_truncate: bool = False
    can_change: bool = False
    truncate_trigger: bool = False


def read_history_guard(session: Session) -> HistoryGuard:
    """Ask the database what the current role may do to ``measure_history``."""
    dialect = session.get_bind().dialect.name
    if dialect != "postgresql":
        return HistoryGuard(backend=dialect)
    row = session.execute(text(
        "SELECT current_user AS role, "
        "       pg_has_role(current_user, t.tableowner, 'USAGE') AS owns, "
        "       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser, "
        "       has_table_privilege(current_user, c.oid, 'TRUNCATE') AS can_truncate, "
        "       has_table_privilege(current_user, c.oid, 'UPDATE') "
        "         OR has_table_privilege(current_user, c.oid, 'DELETE') AS can_change, "
        "       EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid "
        "               AND g.tgname = 'measure_history_no_truncate' AND g.tgenabled <> 'D') "
        "         AS truncate_trigger "
        "FROM pg_tables t JOIN pg_class c ON c.relname = t.tablename "
        "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = t.schemaname "
        "WHERE t.schemaname = current_schema() AND t.tablename = 'measure_history'")).one()
    return HistoryGuard(backend=dialect, role=row.role, owns=bool(row.owns),
                        superuser=bool(row.superuser), can_truncate=bool(row.can_truncate),
                        can_change=bool(row.can_change),
                        truncate_trigger=bool(row.truncate_trigger))
