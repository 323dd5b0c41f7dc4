"""What every request handler needs, built once per app: settings, the database, the clock,
evidence storage, tokens, the login limiter and the templates."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from workflow import db
from workflow.evidence import EvidenceStore
from workflow.lifecycle import (
    KIND_LABELS,
    ROLE_LABELS,
    STATE_LABELS,
    TRANSITIONS,
    history_label,
)
from workflow.models import Person
from workflow.policy import PolicySet
from workflow.reminders import deadline_text
from workflow.runtime import Runtime
from workflow.services.dashboard import FiguresCache
from workflow.services.visibility import Scope, scope_of
from workflow.timeutil import local_date, local_text
from workflow.web.security import ApiTokens, LoginLimiter


def make_templates() -> Jinja2Templates:
    env = Environment(loader=PackageLoader("workflow.web", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(STATE_LABELS=STATE_LABELS, KIND_LABELS=KIND_LABELS,
                       TRANSITIONS=TRANSITIONS, ROLES=ROLE_LABELS, history_label=history_label)
    env.globals["ledger_url"] = ledger_url
    env.filters["unbroken"] = unbroken
    env.filters["local"] = local_text
    env.filters["size"] = _size
    return Jinja2Templates(env=env)


#: Dates (``2026-12-01``, ``2026-12-01（周二）``, ``2026-12-01 周二``) and counts (``4 个工作日``)
#: in a sentence.
_UNBREAKABLE = re.compile(r"\d{4}-\d{2}-\d{2}(?:（周.）| 周.)?|\d+ ?个工作日|\d+ ?项")


def unbroken(text: object) -> Markup:
    """``text`` escaped, its dates and counts each in a span that never breaks across lines
    (``white-space: nowrap``), so a narrow screen wraps between them, never inside."""
    escaped = str(escape(str(text)))
    return Markup(_UNBREAKABLE.sub(lambda m: f'<span class="nw">{m.group(0)}</span>', escaped))


def ledger_url(filters: Mapping[str, str]) -> str:
    """The ledger (``/ledger``) filtered as ``filters`` say."""
    return "/ledger?" + urlencode(dict(filters)) if filters else "/ledger"


def _size(value: int) -> str:
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if value >= scale:
            return f"{value / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{value} B"


@dataclass
class Web:
    """The runtime, and what only the web app needs besides: tokens, the login limiter and the
    templates."""

    runtime: Runtime
    tokens: ApiTokens
    limiter: LoginLimiter
    templates: Jinja2Templates
    #: the statistics most recently worked out, while the ledger has not changed (this app's)
    figures: FiguresCache = field(default_factory=lambda: FiguresCache())

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.runtime.sessions

    @property
    def evidence(self) -> EvidenceStore:
        return self.runtime.evidence

    @property
    def policies(self) -> PolicySet:
        return self.runtime.policies

    def now(self) -> datetime:
        return self.runtime.now()

    def today(self) -> date:
        return local_date(self.now())

    @property
    def secure_cookies(self) -> bool:
        return self.settings.base_url.startswith("https://")

    @contextmanager
    def transaction(self, *, write_lock: bool = False) -> Iterator[Session]:
        """One request's unit of work: committed when the block ends without error."""
        with db.transaction(self.sessions, write_lock=write_lock) as session:
            yield session

    def due_text(self, session: Session) -> Callable[[date], str]:
        """How far a deadline is from today, in working days with the date beside (the way
        messages say it), for the pages' badges."""
        days = self.runtime.reminder_context(session).days
        today = self.today()
        return lambda deadline: deadline_text(deadline, today, days)

    def scope(self, session: Session, person: Person) -> Scope:
        return scope_of(session, person, self.today())

    def render(self, request: Request, name: str, context: dict[str, Any],
               status_code: int = 200) -> Any:
        return self.templates.TemplateResponse(request, name, context, status_code=status_code)


def web_of(request: Request) -> Web:
    web: Web = request.app.state.web
    return web
