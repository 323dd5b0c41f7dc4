"""What the command modules share: ``App`` (the runtime and the pinned or real time), the
``--now`` and ``--json`` options, and small helpers read from the lifecycle table."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any, TypeVar

import click
from sqlalchemy.orm import Session

from config.settings import Settings, SettingsError, parse_now
from workflow.errors import InputError
from workflow.lifecycle import KIND_LABELS, STATE_LABELS, TRANSITIONS, Kind, State
from workflow.runtime import Runtime
from workflow.timeutil import local_date, local_text, system_now

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    """What every command needs: the runtime built from settings, and the pinned or real time
    (a pinned time is announced once, on stderr)."""

    settings: Settings
    now_override: datetime | None = None
    _announced: bool = field(default=False, repr=False)

    @cached_property
    def runtime(self) -> Runtime:
        return Runtime(self.settings, clock=self.now)

    @contextmanager
    def transaction(self, *, write_lock: bool = False) -> Iterator[Session]:
        with self.runtime.transaction(write_lock=write_lock) as session:
            yield session

    def now(self) -> datetime:
        pinned = self.now_override or self.settings.now
        if pinned is None:
            return system_now()
        if not self._announced:
            self._announced = True
            source = "--now" if self.now_override else "RECTIFLOW_NOW"
            click.echo(f"注意：当前时间已由 {source} 固定为 {local_text(pinned)}（北京时间）",
                       err=True)
        return pinned

    def today(self) -> date:
        return local_date(self.now())


def emit_json(document: Any) -> None:
    click.echo(json.dumps(document, ensure_ascii=False, indent=2, default=str))


def parse_date(value: str | None, field_name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"日期「{value}」无效，应为 YYYY-MM-DD 且真实存在", field=field_name) from None


def _set_now(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is None:
        return
    try:
        moment = parse_now("--now", value)
    except SettingsError as exc:
        raise click.BadParameter(str(exc)) from None
    app = ctx.find_object(App)
    if app is not None:
        app.now_override = moment
    else:
        ctx.meta["rectiflow.now"] = moment


def now_option(func: F) -> F:
    """``--now ISO8601`` pins the clock for this command."""
    return click.option("--now", callback=_set_now, expose_value=False, is_eager=True,
                        help="固定当前时间（ISO 8601，带时区），用于演示和测试")(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="输出一个 JSON 文档")(func)


pass_app = click.make_pass_decorator(App)



def describe_transitions() -> str:
    lines = []
    for action, t in TRANSITIONS.items():
        sources = "、".join(STATE_LABELS[s] for s in State if s in t.sources)
        lines.append(f"  {action.value:<9} {t.label}：{t.help}（适用：{sources}）")
    return "\n".join(lines)


def state_choice() -> click.Choice:
    return click.Choice([s.value for s in State])


def kind_label(kind: str) -> str:
    return KIND_LABELS[Kind(kind)]


