"""The reminder and escalation policy: parsed from TOML, validated with clear errors, merged per
campaign and per measure kind. Parsing is pure; ``load_policy_file`` only reads the file."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from workflow.errors import RectiflowError
from workflow.lifecycle import (
    DOCUMENT_KINDS,
    REMINDER_RECIPIENTS,
    Action,
    DocumentKind,
    Kind,
    Relation,
    parse_document_kind,
)

COLOURS = {"yellow": "黄牌", "red": "红牌"}
#: 三色预警 before the deadline: the colours a warning tier may have.
WARNING_COLOURS = {"yellow": "黄色预警", "red": "红色预警"}


class PolicyError(RectiflowError):
    """Raised when the policy file has a value rectiflow cannot use; names the place."""

    exit_code = 2

    def __init__(self, where: str, reason: str, source: str = "策略文件") -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{source} 中 {where} 无效：{reason}")


@dataclass(frozen=True)
class Escalation:
    overdue: int
    to: tuple[Relation, ...]
    colour: str
    #: the 督办 document this stage issues (``document = "督办通知书"``), if any
    document: DocumentKind | None = None

    @property
    def colour_label(self) -> str:
        return COLOURS[self.colour]


@dataclass(frozen=True)
class Warning:
    """A 三色预警 tier: from ``within`` working days before the deadline, reminders go to the
    owner and ``to``, in ``colour``."""

    within: int
    to: tuple[Relation, ...]
    colour: str


@dataclass(frozen=True)
class Policy:
    """The effective policy for one measure (after campaign and kind overrides)."""

    window_start: time = time(8, 30)
    window_end: time = time(18, 0)
    window_working_days_only: bool = True
    before: tuple[int, ...] = (7, 3, 1, 0)
    escalation: tuple[Escalation, ...] = (
        Escalation(1, (Relation.OWNER, Relation.LEADER), "yellow", DocumentKind.NOTICE),
        Escalation(3, (Relation.OWNER, Relation.LEADER, Relation.FIRST_RESPONSIBLE), "red",
                   DocumentKind.REMINDER),
    )
    repeat_every: int = 5
    review_sla: int = 2
    closure_sla: int = 3
    stagnation: int = 10
    checkin_months: int = 1
    immediate_default_deadline: int = 5
    daily_nudge: bool = True
    #: ``[documents] enabled``: whether the stages' 督办 documents are issued at all
    documents_enabled: bool = True
    #: ``[documents] reply_days``: working days the unit has for its written reply (回执)
    reply_days: int = 3

    def document_at(self, overdue: int) -> DocumentKind | None:
        """The document the escalation stage at ``overdue`` working days issues; None if that
        is no stage of the ladder (a repeat), it names none, or documents are switched off."""
        if not self.documents_enabled:
            return None
        return next((s.document for s in self.escalation if s.overdue == overdue), None)
    #: 三色预警 tiers before the deadline (none by default: reminders go to the owner alone)
    warnings: tuple[Warning, ...] = ()
    #: how many working days a one-time approval link stays valid
    link_valid_workdays: int = 3
    #: 催办: a second urge of one measure within this many hours is refused
    urge_cooldown_hours: int = 4
    #: 回头看: a closed measure comes up for a re-check this many months after it was closed
    #: (0: never); per kind through ``[kind.<kind>.followup]``
    followup_months: int = 6


@dataclass(frozen=True, eq=False)  # hashed by identity, for the lru_cache below
class PolicySet:
    """The raw policy document, able to give the effective Policy for a kind and campaign."""

    raw: Mapping[str, Any]
    calendar: Mapping[str, Any] = field(default_factory=dict)

    def effective(self, kind: Kind | str, campaign_override: Mapping[str, Any] | None = None
                  ) -> Policy:
        override_key = _freeze(campaign_override) if campaign_override else None
        return _effective(self, str(kind), override_key)


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple) and all(isinstance(i, tuple) and len(i) == 2
                                        and isinstance(i[0], str) for i in value):
        return {k: _thaw(v) for k, v in value}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@lru_cache(maxsize=256)
def _effective(policy_set: PolicySet, kind: str, override: Any) -> Policy:
    merged = _merge(dict(policy_set.raw), dict(policy_set.raw.get("kind", {}).get(kind, {})))
    if override is not None:
        campaign = _thaw(override)
        merged = _merge(merged, campaign)
        merged = _merge(merged, dict(campaign.get("kind", {}).get(kind, {})))
    return build_policy(merged)


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in override.items():
        if key == "kind":
            continue
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = _merge(dict(result[key]), value)
        else:
            result[key] = copy.deepcopy(value)
    return result


# ------------------------------------------------------------------ validation


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PolicyError(where, f"应为 {low} 到 {high} 之间的整数，而不是 {value!r}")
    return value


def _time(value: Any, where: str) -> time:
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise PolicyError(where, f"应为 HH:MM 格式的时间，而不是 {value!r}") from None


def _table(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, Mapping):
        raise PolicyError(key, "应为一个表（[section]）")
    return value


def _recipients(value: Any, where: str) -> tuple[Relation, ...]:
    if not isinstance(value, list) or not value:
        raise PolicyError(where, "应为非空列表，如 [\"owner\", \"leader\"]")
    for role in value:
        if role not in REMINDER_RECIPIENTS:
            known = "、".join(r.value for r in REMINDER_RECIPIENTS)
            raise PolicyError(where, f"未知对象 {role!r}；可用：{known}")
    return tuple(dict.fromkeys(Relation(role) for role in value))


def _document(value: Any, where: str) -> DocumentKind | None:
    """A stage's document: a kind's code name or Chinese label; "" or false for none."""
    if value is None or value is False or value == "":
        return None
    kind = parse_document_kind(value) if isinstance(value, str) else None
    if kind is None:
        known = "、".join(f"{k.value}（{f.label}）" for k, f in DOCUMENT_KINDS.items())
        raise PolicyError(where, f"未知督办文书 {value!r}；可用：{known}，或 \"\" 表示不发文书")
    return kind


def _escalation(doc: Mapping[str, Any]) -> tuple[Escalation, ...]:
    steps = doc.get("escalation", [])
    if not isinstance(steps, list) or not steps:
        raise PolicyError("escalation", "至少需要一级 [[escalation]]")
    result = []
    for i, step in enumerate(steps):
        where = f"escalation[{i}]"
        if not isinstance(step, Mapping):
            raise PolicyError(where, "应为一个表")
        colour = step.get("colour", step.get("color", "yellow"))
        if colour not in COLOURS:
            raise PolicyError(f"{where}.colour", f"应为 yellow 或 red，而不是 {colour!r}")
        result.append(Escalation(_int(step.get("overdue"), f"{where}.overdue", 1, 250),
                                 _recipients(step.get("to"), f"{where}.to"), colour,
                                 _document(step.get("document"), f"{where}.document")))
    overdue = [s.overdue for s in result]
    if overdue != sorted(set(overdue)):
        raise PolicyError("escalation", f"各级的 overdue 应严格递增，而不是 {overdue}")
    return tuple(result)


def _warnings(doc: Mapping[str, Any]) -> tuple[Warning, ...]:
    tiers = doc.get("warning", [])
    if not isinstance(tiers, list):
        raise PolicyError("warning", "应为 [[warning]] 表的列表")
    result = []
    for i, tier in enumerate(tiers):
        where = f"warning[{i}]"
        if not isinstance(tier, Mapping):
            raise PolicyError(where, "应为一个表")
        unknown = sorted(set(tier) - {"within", "to", "colour", "color"})
        if unknown:
            raise PolicyError(f"{where}.{unknown[0]}", "未知配置项；可用：within、to、colour")
        colour = tier.get("colour", tier.get("color", "yellow"))
        if colour not in WARNING_COLOURS:
            raise PolicyError(f"{where}.colour", f"应为 yellow 或 red，而不是 {colour!r}")
        result.append(Warning(_int(tier.get("within"), f"{where}.within", 0, 60),
                              _recipients(tier.get("to"), f"{where}.to"), colour))
    within = [w.within for w in result]
    if len(set(within)) != len(within):
        raise PolicyError("warning", f"各级的 within 不能重复：{within}")
    return tuple(sorted(result, key=lambda w: -w.within))


def build_policy(doc: Mapping[str, Any]) -> Policy:
    """Validate a merged policy document and build the Policy; raise PolicyError on the first
    bad value, naming its place."""
    window = _table(doc, "send_window")
    start = _time(window.get("start", "08:30"), "send_window.start")
    end = _time(window.get("end", "18:00"), "send_window.end")
    if end <= start:
        raise PolicyError("send_window", f"结束时间 {end:%H:%M} 应晚于开始时间 {start:%H:%M}")
    reminders = _table(doc, "reminders")
    before_raw = reminders.get("before", [7, 3, 1, 0])
    if not isinstance(before_raw, list):
        raise PolicyError("reminders.before", "应为整数列表，如 [7, 3, 1, 0]")
    before = tuple(sorted({_int(v, f"reminders.before[{i}]", 0, 60)
                           for i, v in enumerate(before_raw)}, reverse=True))
    repeat = _table(doc, "escalation_repeat")
    sla = _table(doc, "sla")
    long_term = _table(doc, "long_term")
    immediate = _table(doc, "immediate")
    links = _table(doc, "approval_link")
    urge = _table(doc, "urge")
    unknown_urge = sorted(set(urge) - {"cooldown_hours"})
    if unknown_urge:
        raise PolicyError(f"urge.{unknown_urge[0]}", "未知配置项；可用：cooldown_hours")
    followup = _table(doc, "followup")
    unknown_followup = sorted(set(followup) - {"months"})
    if unknown_followup:
        raise PolicyError(f"followup.{unknown_followup[0]}", "未知配置项；可用：months")
    daily_nudge = immediate.get("daily_nudge", True)
    working_only = window.get("working_days_only", True)
    documents = _table(doc, "documents")
    unknown = sorted(set(documents) - {"enabled", "reply_days"})
    if unknown:
        raise PolicyError(f"documents.{unknown[0]}", "未知配置项；可用：enabled、reply_days")
    documents_enabled = documents.get("enabled", True)
    for where, flag in (("immediate.daily_nudge", daily_nudge),
                        ("send_window.working_days_only", working_only),
                        ("documents.enabled", documents_enabled)):
        if not isinstance(flag, bool):
            raise PolicyError(where, f"应为 true 或 false，而不是 {flag!r}")
    return Policy(
        window_start=start,
        window_end=end,
        window_working_days_only=working_only,
        before=before,
        escalation=_escalation(doc) if "escalation" in doc else Policy.escalation,
        repeat_every=_int(repeat.get("every", 5), "escalation_repeat.every", 1, 60),
        review_sla=_int(sla.get("review", 2), "sla.review", 1, 60),
        closure_sla=_int(sla.get("closure", 3), "sla.closure", 1, 60),
        stagnation=_int(sla.get("stagnation", 10), "sla.stagnation", 1, 250),
        checkin_months=_int(long_term.get("checkin_months", 1), "long_term.checkin_months", 1, 12),
        immediate_default_deadline=_int(immediate.get("default_deadline", 5),
                                        "immediate.default_deadline", 0, 60),
        daily_nudge=daily_nudge,
        documents_enabled=documents_enabled,
        reply_days=_int(documents.get("reply_days", 3), "documents.reply_days", 1, 60),
        warnings=_warnings(doc),
        link_valid_workdays=_int(links.get("valid_workdays", 3), "approval_link.valid_workdays",
                                 1, 30),
        urge_cooldown_hours=_int(urge.get("cooldown_hours", 4), "urge.cooldown_hours", 0, 720),
        followup_months=_int(followup.get("months", 6), "followup.months", 0, 60),
    )


KNOWN_TABLES = {"send_window", "reminders", "escalation", "escalation_repeat", "sla", "long_term",
                "immediate", "kind", "calendar", "digest", "documents", "warning",
                "approval_link", "urge", "followup"}
#: Tables that hold for the whole installation and cannot be overridden per campaign.
GLOBAL_TABLES = {"calendar", "digest"}
#: Actions whose one-time link asks its person to be signed in, unless the policy says otherwise.
SIGN_IN_BY_DEFAULT = (Action.CLOSE,)


def approval_sign_in(policies: PolicySet) -> frozenset[Action]:
    """The actions whose approval link acts only for its signed-in person (or their delegate):
    ``[approval_link] require_sign_in`` (default: 销号), so a forwarded message does not hand
    the sign-off over to whoever holds it. It holds for the whole installation (read from the
    top of the policy file; ``valid_workdays`` beside it may differ per kind)."""
    return _approval_sign_in(policies.raw)


def _approval_sign_in(doc: Mapping[str, Any]) -> frozenset[Action]:
    table = _table(doc, "approval_link")
    unknown = sorted(set(table) - {"require_sign_in", "valid_workdays"})
    if unknown:
        raise PolicyError(f"approval_link.{unknown[0]}",
                          "未知配置项；可用：require_sign_in、valid_workdays")
    value = table.get("require_sign_in", [a.value for a in SIGN_IN_BY_DEFAULT])
    if not isinstance(value, list):
        raise PolicyError("approval_link.require_sign_in", "应为动作列表，如 [\"close\"]；[] 表示不要求登录")
    actions = set()
    for name in value:
        try:
            actions.add(Action(name))
        except ValueError:
            known = "、".join(a.value for a in Action)
            raise PolicyError("approval_link.require_sign_in",
                              f"未知动作 {name!r}；可用：{known}") from None
    return frozenset(actions)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class DigestSchedule:
    """When the weekly digest goes out: ``weekday`` (0 = Monday) at ``at``, Asia/Shanghai."""

    weekday: int = 0
    at: time = time(9, 0)

    @property
    def weekday_name(self) -> str:
        return WEEKDAYS[self.weekday]

    @property
    def cron(self) -> dict[str, Any]:
        """Keyword arguments for APScheduler's ``CronTrigger`` (with timezone Asia/Shanghai)."""
        return {"day_of_week": self.weekday_name, "hour": self.at.hour, "minute": self.at.minute}


def _digest_schedule(doc: Mapping[str, Any]) -> DigestSchedule:
    table = _table(doc, "digest")
    unknown = sorted(set(table) - {"weekday", "time"})
    if unknown:
        raise PolicyError(f"digest.{unknown[0]}", "未知配置项；可用：weekday、time")
    weekday = str(table.get("weekday", "mon")).lower()
    if weekday not in WEEKDAYS:
        raise PolicyError("digest.weekday", f"应为 {'、'.join(WEEKDAYS)} 之一，而不是 {weekday!r}")
    return DigestSchedule(WEEKDAYS.index(weekday), _time(table.get("time", "09:00"), "digest.time"))


def digest_schedule(policies: PolicySet) -> DigestSchedule:
    """The weekly digest's schedule from the policy file's ``[digest]`` table (default Monday
    09:00); the clock reads it to plan ``send_digests``."""
    return _digest_schedule(policies.raw)


def parse_policy(doc: Mapping[str, Any]) -> PolicySet:
    """Validate a whole policy document, every kind override included."""
    unknown = sorted(set(doc) - KNOWN_TABLES)
    if unknown:
        raise PolicyError(unknown[0], f"未知配置项；可用：{'、'.join(sorted(KNOWN_TABLES))}")
    kinds = _table(doc, "kind")
    for name in kinds:
        if name not in {k.value for k in Kind}:
            raise PolicyError(f"kind.{name}", "未知措施类型；可用：immediate、deadline、long_term")
    policy_set = PolicySet(raw=dict(doc), calendar=dict(_table(doc, "calendar")))
    _digest_schedule(doc)
    _approval_sign_in(doc)
    for kind in Kind:
        try:
            policy_set.effective(kind)
        except PolicyError as exc:
            where = exc.where if kind.value not in kinds else f"kind.{kind.value} → {exc.where}"
            raise PolicyError(where, exc.reason) from None
    return policy_set


def load_policy_file(path: Path | None) -> PolicySet:
    """Read and validate the policy file (default: the packaged config/policy.toml)."""
    target: Path | Traversable = path or resources.files("config") / "policy.toml"
    try:
        doc = tomllib.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(str(target), "文件不存在", source="RECTIFLOW_CONFIG") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(str(target), f"TOML 语法错误：{exc}", source="策略文件") from None
    try:
        return parse_policy(doc)
    except PolicyError as exc:
        raise PolicyError(exc.where, exc.reason, source=f"策略文件 {target.name}") from None
