"""One error tree for rectiflow. Messages are built from fields and written for people (Chinese).

Each class carries the exit code the CLI uses and the HTTP status the web app answers with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class RectiflowError(Exception):
    """Raised for anything a person or program did that rectiflow refuses; base of all errors."""

    exit_code = 2
    http_status = 400


class InputError(RectiflowError):
    """Raised when input is missing or malformed (a bad date, a missing reason, an unknown name)."""

    exit_code = 2
    http_status = 422

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class NotFound(InputError):
    """Raised when a named record (measure, person, campaign) does not exist."""

    http_status = 404

    def __init__(self, kind: str, key: object) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"找不到{kind}：{key}")


class AlreadyExists(InputError):
    """Raised when a record to be added is already there (a person's email, a campaign's title)."""

    http_status = 409

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, field=field)


class TransitionNotAllowed(RectiflowError):
    """Raised when an action is not allowed from the measure's current state."""

    exit_code = 2
    http_status = 409

    def __init__(self, measure_id: int, action: str, action_label: str, state_label: str,
                 allowed_from: Sequence[str]) -> None:
        self.measure_id = measure_id
        self.action = action
        self.allowed_from = tuple(allowed_from)
        required = "、".join(f"「{s}」" for s in allowed_from)
        super().__init__(
            f"措施 {measure_id} 当前状态为「{state_label}」，不能执行「{action_label}」；"
            f"该操作只能在{required}状态下进行。"
        )


class ExtensionPending(RectiflowError):
    """Raised when an action needs an extension request (延期申请) waiting and none does, or
    needs none waiting and one does (a second request)."""

    exit_code = 2
    http_status = 409

    def __init__(self, measure_id: int, action_label: str, pending: bool) -> None:
        self.measure_id = measure_id
        self.pending = pending
        why = ("已有一项延期申请待责任领导审批，须先批准或不同意" if pending
               else "没有待审批的延期申请")
        super().__init__(f"措施 {measure_id} {why}，不能执行「{action_label}」。")


class DeadlinePassed(RectiflowError):
    """Raised when an action that must come before the deadline (a 延期申请) comes after it."""

    exit_code = 2
    http_status = 409

    def __init__(self, measure_id: int, action_label: str, deadline: str) -> None:
        self.measure_id = measure_id
        self.deadline = deadline
        super().__init__(f"措施 {measure_id} 的完成时限 {deadline} 已过，不能再{action_label}；"
                         "逾期后只能由责任领导决定是否延期。")


class TooSoon(RectiflowError):
    """Raised when an action repeats inside its cool-down (a second 催办 too soon)."""

    exit_code = 2
    http_status = 429

    def __init__(self, measure_id: int, action_label: str, allowed_at: str) -> None:
        self.measure_id = measure_id
        self.allowed_at = allowed_at
        super().__init__(f"措施 {measure_id} 刚被{action_label}过，{allowed_at} 之后才能再次"
                         f"{action_label}（本次未发送）。")


class AlreadyAccepted(RectiflowError):
    """Raised when an acceptor (三方验收) verifies a submission they, or the party they stand
    for, have accepted already."""

    exit_code = 2
    http_status = 409

    def __init__(self, measure_id: int, acceptor: str, by: str) -> None:
        self.measure_id = measure_id
        self.acceptor = acceptor
        self.by = by
        super().__init__(f"措施 {measure_id} 的本次提交已由{by}作为验收方「{acceptor}」验收通过，"
                         "同一验收方不能重复验收。")


class NotPermitted(RectiflowError):
    """Raised when the person may not perform the action on this measure."""

    exit_code = 3
    http_status = 403

    def __init__(self, person: str, action_label: str, measure_id: int | None,
                 allowed: Sequence[str]) -> None:
        self.person = person
        self.measure_id = measure_id
        self.allowed = tuple(allowed)
        target = f"措施 {measure_id} " if measure_id is not None else ""
        who = "、".join(allowed)
        super().__init__(f"{person} 无权对{target}执行「{action_label}」；只有{who}可以执行。")


class RoleRequired(NotPermitted):
    """Raised when a person's roles do not allow a page or request outside any one measure
    (managing campaigns, people, the calendar, the outbox)."""

    def __init__(self, person: str, what: str, allowed: Sequence[str]) -> None:
        self.person = person
        self.measure_id = None
        self.allowed = tuple(allowed)
        RectiflowError.__init__(self, f"{person} 无权{what}；只有{'、'.join(allowed)}可以。")


class ConflictError(RectiflowError):
    """Raised when someone else changed the measure between reading and writing it."""

    exit_code = 4
    http_status = 409

    def __init__(self, measure_id: int, expected_version: int | None = None) -> None:
        self.measure_id = measure_id
        self.expected_version = expected_version
        super().__init__(f"措施 {measure_id} 已被他人修改，请刷新后重试（本次操作未生效）。")


@dataclass(frozen=True)
class RowError:
    """One reason one row of an imported file was refused."""

    row: int
    field: str | None
    reason: str
    #: The cell as the file had it (for the web preview and the API's ``errors``).
    value: str | None = None

    def as_json(self) -> dict[str, object]:
        return {"row": self.row, "field": self.field, "value": self.value,
                "message": self.reason}

    def __str__(self) -> str:
        where = f"第 {self.row} 行" + (f"「{self.field}」" if self.field else "")
        return f"{where}：{self.reason}"


class ImportRejected(InputError):
    """Raised when an imported file has bad rows; nothing of it was written."""

    def __init__(self, source: str, errors: Sequence[RowError]) -> None:
        self.source = source
        self.errors = tuple(errors)
        lines = "\n".join(f"  {e}" for e in self.errors)
        super().__init__(f"{source} 有 {len(self.errors)} 处错误，未导入任何数据：\n{lines}")


class EvidenceRejected(InputError):
    """Raised when an evidence file is too large, of a refused type, or unreadable."""

    def __init__(self, filename: str, reason: str) -> None:
        self.filename = filename
        super().__init__(f"佐证材料「{filename}」被拒绝：{reason}", field="evidence")


class AuditFailure(RectiflowError):
    """Raised when the history chain does not verify: rows were altered, removed or forged."""

    exit_code = 1

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("历史记录校验失败：\n" + "\n".join(f"  {p}" for p in self.problems))


class LinkRefused(RectiflowError):
    """Raised when a one-time approval link cannot be used; the page says why."""

    http_status = 400
    title = "链接无效"


class LinkNotFound(LinkRefused):
    """Raised when no link has this token: it was mistyped, cut short or altered."""

    http_status = 404
    title = "链接无效"

    def __init__(self) -> None:
        super().__init__("这个链接无效：可能复制不完整或被改动过。请从系统登录后办理，"
                         "或请管理员重新发送。")


class LinkUsed(LinkRefused):
    """Raised when the link was already used (links are single-use)."""

    http_status = 410
    title = "链接已使用"

    def __init__(self, measure_id: int, used_at: str) -> None:
        self.measure_id = measure_id
        super().__init__(f"这个链接已于 {used_at} 使用过，每个链接只能使用一次。"
                         f"措施 {measure_id} 的当前状态请登录系统查看。")


class LinkExpired(LinkRefused):
    """Raised when the link's time ran out before it was used."""

    http_status = 410
    title = "链接已过期"

    def __init__(self, measure_id: int, expired_at: str) -> None:
        self.measure_id = measure_id
        super().__init__(f"这个链接已于 {expired_at} 过期。请登录系统办理措施 {measure_id}，"
                         "或等待新的提醒。")


class LinkStale(LinkRefused):
    """Raised when the measure changed after the link was made (another version or state)."""

    http_status = 409
    title = "措施已变化"

    def __init__(self, measure_id: int, state_label: str) -> None:
        self.measure_id = measure_id
        super().__init__(f"发出这个链接后，措施 {measure_id} 已有变动（当前状态：{state_label}），"
                         "链接已失效，本次未做任何操作。请登录系统查看最新情况。")


class LinkForSomeoneElse(LinkRefused):
    """Raised when the policy asks for sign-in and the person signed in is neither the link's
    person nor their delegate today (a forwarded message does not hand over the sign-off)."""

    http_status = 403
    title = "链接不属于当前登录人"

    def __init__(self, owner_name: str, signed_in_name: str) -> None:
        self.owner_name = owner_name
        super().__init__(f"这个链接是发给 {owner_name} 的，只有本人或其代理人登录后才能办理；"
                         f"当前登录的是 {signed_in_name}。请退出后以 {owner_name} 的账号登录，"
                         "本次未做任何操作。")


class BackupRejected(InputError):
    """Raised when a backup folder cannot be written or restored: a bad manifest, a file whose
    checksum does not match, a non-empty target; nothing was changed."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}：{reason}")


class ArchiveRejected(InputError):
    """Raised when an export archive cannot be imported (not a zip, a missing manifest, a bad
    checksum, an unknown format, a campaign already present); nothing was written."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"归档 {source} 无法导入：{reason}（未写入任何数据）")


class ToolFailed(RectiflowError):
    """Raised when an external tool (pg_dump, pg_restore) is missing or reports a failure."""

    exit_code = 1

    def __init__(self, tool: str, reason: str) -> None:
        self.tool = tool
        self.reason = reason
        super().__init__(f"{tool}：{reason}")
