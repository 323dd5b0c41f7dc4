"""Logging for every process: one format (text for people, JSON lines for machines), the
request id of the web request being served, and secrets masked in every line.

``configure_logging(settings)`` is called by the CLI entry point (and so by ``serve``,
``worker`` and ``clock``). ``RECTIFLOW_LOG_FORMAT=json`` prints one JSON object per line with
``ts``, ``level``, ``logger``, ``message`` and any fields passed as ``extra=`` (``message_id``,
``channel``, ``measure_id`` ...) plus ``request_id`` inside a web request and ``task_id`` inside
a Celery task. ``RECTIFLOW_LOG_LEVEL`` sets the level (default INFO for the long-running
processes, WARNING for one-shot commands).

Secrets never reach the output: the configured ones (SMTP password, WeCom secret, robot key,
SECRET_KEY, the metrics token, passwords in the database and broker URLs), secret query values
in URLs (``access_token=``, ``corpsecret=``, ``key=``) and approval-link tokens are replaced by
``***`` in the message, the extra fields and any traceback, whichever logger wrote the record
(httpx logs every request URL at INFO). A safety net: code should not log secrets at all.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

from config.settings import Settings

#: The id of the web request (or Celery task) this code runs for; None outside one.
request_id: ContextVar[str | None] = ContextVar("rectiflow_request_id", default=None)
task_id: ContextVar[str | None] = ContextVar("rectiflow_task_id", default=None)

MASK = "***"
#: Secret values shorter than this are not masked: they would mask ordinary words.
MIN_SECRET_LENGTH = 4
_SECRET_QUERY = re.compile(r"((?:corpsecret|access_token|secret|password|key|token)=)[^&\s\"'>]+",
                           re.IGNORECASE)
#: An approval link's token acts as the person it was made for (``/approve/{token}``).
_APPROVAL_LINK = re.compile(r"(/approve/)[^/?#\s\"'<>]+")
#: The attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def url_password(url: str | None) -> str | None:
    """The password in ``scheme://user:password@host/...``, if any."""
    if not url or "://" not in url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def configured_secrets(settings: Settings) -> list[str]:
    """The secret values ``settings`` hold, each also percent-decoded, longest first."""
    found: set[str] = set()
    for value in (settings.smtp_password, settings.wecom_secret, settings.wecom_webhook_key,
                  settings.secret_key, settings.metrics_token, settings.audit_key,
                  url_password(settings.database_url), url_password(settings.broker_url)):
        if value and len(value) >= MIN_SECRET_LENGTH:
            found.update({value, unquote(value)})
    return sorted(found, key=len, reverse=True)


class Redactor:
    """Replaces known secret values and secret query values with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = [s for s in secrets if len(s) >= MIN_SECRET_LENGTH]
        pattern = "|".join(re.escape(s) for s in sorted(self.secrets, key=len, reverse=True))
        self._values = re.compile(pattern) if pattern else None

    def __call__(self, text: str) -> str:
        if self._values is not None:
            text = self._values.sub(MASK, text)
        text = _APPROVAL_LINK.sub(r"\1" + MASK, text)
        return _SECRET_QUERY.sub(r"\1" + MASK, text)


class RedactingFilter(logging.Filter):
    """On a handler: masks secrets in the message, the extra fields and the traceback of every
    record it handles, whichever logger wrote it."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redact = redactor
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name in _STANDARD or value is None or isinstance(value, (int, float, bool)):
                continue
            setattr(record, name, self.redact(value if isinstance(value, str) else str(value)))
        return True


class ContextFilter(logging.Filter):
    """Puts the current request id and task id on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        if getattr(record, "task_id", None) is None:
            record.task_id = task_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO 8601), level, logger, message, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and value is not None:
                document[name] = value if isinstance(value, (int, float, bool, str)) else str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            document["exception"] = record.exc_text
        if record.stack_info:
            document["stack"] = record.stack_info
        return json.dumps(document, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The human-readable line, with the request id (when there is one) after the logger."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [f"{name}={value}" for name in ("request_id", "task_id", "message_id")
               if (value := getattr(record, name, None)) is not None]
        if not ids:
            return line
        head, _, rest = line.partition(": ")
        return f"{head} [{' '.join(ids)}]: {rest}"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._fixed = stream

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return self._fixed or sys.stderr

    @stream.setter
    def stream(self, value: TextIO | None) -> None:
        pass


def _level(settings: Settings, default: str) -> int:
    name = (settings.log_level or default).upper()
    return logging.getLevelNamesMapping().get(name, logging.INFO)


def configure_logging(settings: Settings, *, default_level: str = "WARNING",
                      stream: TextIO | None = None) -> logging.Handler:
    """Install rectiflow's one handler on the root logger (replacing one installed before):
    the format and level from settings, secrets masked, request ids added."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "rectiflow", False):
            root.removeHandler(handler)
    handler = _StderrHandler(stream)
    handler.rectiflow = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter(Redactor(configured_secrets(settings))))
    root.addHandler(handler)
    root.setLevel(_level(settings, default_level))
    # SQLAlchemy logs every statement with its parameters (tokens, password hashes) once its
    # logger is at INFO, which a root at DEBUG would make it: never.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    # One line per job run or per pooled connection is noise unless asked for.
    noisy = logging.WARNING if root.level > logging.DEBUG else logging.NOTSET
    for name in ("apscheduler", "httpcore", "multipart"):
        logging.getLogger(name).setLevel(noisy)
    return handler
