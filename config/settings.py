"""Settings read from the environment (``RECTIFLOW_*``), validated once at start."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

from workflow.lifecycle import ChannelName

DEFAULT_WECOM_API_BASE = "https://qyapi.weixin.qq.com"


class SettingsError(ValueError):
    """Raised when an environment variable holds a value rectiflow cannot use."""

    def __init__(self, name: str, value: str, reason: str) -> None:
        self.name = name
        self.value = value
        self.reason = reason
        super().__init__(f"环境变量 {name}={value!r} 无效：{reason}")


def _secret_repr(value: str | None) -> str:
    return "None" if value is None else "'***'"


def mask_url_password(url: str) -> str:
    """``scheme://user:***@host/...``: a connection URL fit for logs and reprs."""
    scheme, found, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if not found or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}{slash}{path}"


#: Fields holding connection URLs, which may carry a password.
_URL_FIELDS = frozenset({"database_url", "broker_url"})


@dataclass(frozen=True)
class Settings:
    """Everything the program reads from its environment; secrets never appear in repr()."""

    database_url: str = "sqlite:///rectiflow.db"
    broker_url: str | None = None
    evidence_dir: Path = Path("evidence")
    outbox_dir: Path = Path("outbox")
    evidence_max_bytes: int = 20 * 1024 * 1024
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_ssl: bool = False
    smtp_starttls: bool = False
    smtp_sender: str | None = None
    wecom_api_base: str = DEFAULT_WECOM_API_BASE
    wecom_corp_id: str | None = None
    wecom_secret: str | None = field(default=None, repr=False)
    wecom_agent_id: int | None = None
    wecom_webhook_key: str | None = field(default=None, repr=False)
    base_url: str = "http://127.0.0.1:8000"
    config_file: Path | None = None
    now: datetime | None = None
    #: Signs session cookies, API tokens and CSRF tokens; unset: a random key kept in the database.
    secret_key: str | None = field(default=None, repr=False)
    #: How long a one-time approval link in a message stays usable, in hours; unset: the
    #: policy's ``[approval_link] valid_workdays`` working days (the default).
    approval_link_hours: int | None = None
    broker_prefix: str | None = None
    clock_tick: int = 30
    sweep_tick: int = 60
    delivery_lease: int = 300
    delivery_batch: int = 200
    #: How long a temporary failure keeps being retried (hourly) before the message is dead.
    delivery_retry_hours: int = 24
    #: ``text`` (human-readable lines) or ``json`` (one JSON object per line).
    log_format: str = "text"
    #: DEBUG, INFO, WARNING, ERROR; unset: INFO for serve/worker/clock, WARNING for commands.
    log_level: str | None = None
    #: The worker's and the clock's Prometheus port (``/metrics``); unset: not exposed.
    metrics_port: int | None = None
    #: Signs audit checkpoints (HMAC-SHA256); kept outside the database, by the operators.
    audit_key: str | None = field(default=None, repr=False)
    #: Where the clock writes a signed checkpoint every ``audit_checkpoint_minutes``; unset: none.
    audit_checkpoint_dir: Path | None = None
    audit_checkpoint_minutes: int = 60
    #: Reverse proxies whose ``X-Forwarded-For`` is believed (addresses or networks); unset:
    #: none, the peer's address is the client's.
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    #: When set, the web app's ``/metrics`` asks for ``Authorization: Bearer <token>``.
    metrics_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if not f.repr:
                value_text = _secret_repr(value)
            elif f.name in _URL_FIELDS and value is not None:
                value_text = repr(mask_url_password(value))
            else:
                value_text = repr(value)
            shown.append(f"{f.name}={value_text}")
        return f"Settings({', '.join(shown)})"

    @property
    def smtp_configured(self) -> bool:
        return bool(self.smtp_host)

    @property
    def wecom_configured(self) -> bool:
        return bool(self.wecom_corp_id and self.wecom_secret and self.wecom_agent_id)

    @property
    def person_channels(self) -> frozenset[ChannelName]:
        """The channels a person can be reached by: ``email`` with a mail server, ``wecom``
        with a whole WeCom application; neither means the file channel stands in."""
        return frozenset(name for name, on in ((ChannelName.EMAIL, self.smtp_configured),
                                               (ChannelName.WECOM, self.wecom_configured)) if on)

    @property
    def delivery_channels(self) -> tuple[ChannelName, ...]:
        """Every channel a deliverer sends by: the person channels, the group robot with its
        webhook key, and the file channel always."""
        robot = (ChannelName.WECOM_ROBOT,) if self.wecom_webhook_key else ()
        return (*sorted(self.person_channels), *robot, ChannelName.FILE)


def parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(name, value, "应为 1/0 或 true/false")


def parse_now(name: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise SettingsError(name, value, "应为带时区的 ISO 8601 时间，如 2026-12-01T09:00:00+08:00") from exc
    if moment.tzinfo is None:
        raise SettingsError(name, value, "缺少时区偏移，如 +08:00")
    return moment


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise SettingsError(name, value, "应为整数") from exc


#: Tick lengths a wall-clock cron trigger can express: divisors of a minute or of an hour.
TICKS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, 120, 180, 240, 300, 360, 600, 720, 900, 1200,
         1800)


def _tick(name: str, value: str) -> int:
    seconds = _int(name, value)
    if seconds not in TICKS:
        raise SettingsError(name, value, "应为能整除一分钟或一小时的秒数，如 10、30、60、300")
    return seconds


def _positive(name: str, value: str) -> int:
    number = _int(name, value)
    if number <= 0:
        raise SettingsError(name, value, "应为正整数")
    return number


def _hours(name: str, value: str) -> int:
    hours = _int(name, value)
    if not 1 <= hours <= 24 * 30:
        raise SettingsError(name, value, "应为 1 到 720 之间的小时数")
    return hours


def _log_format(name: str, value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in ("text", "json"):
        raise SettingsError(name, value, "应为 text 或 json")
    return lowered


def _log_level(name: str, value: str) -> str:
    upper = value.strip().upper()
    if upper not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SettingsError(name, value, "应为 DEBUG、INFO、WARNING、ERROR 或 CRITICAL")
    return upper


def _port(name: str, value: str) -> int:
    number = _int(name, value)
    if not 1 <= number <= 65535:
        raise SettingsError(name, value, "应为 1 到 65535 之间的端口号")
    return number


#: Checkpoint intervals a cron trigger can express: divisors of an hour or of a day.
CHECKPOINT_MINUTES = (5, 10, 15, 20, 30, 60, 120, 180, 240, 360, 480, 720, 1440)


def _checkpoint_minutes(name: str, value: str) -> int:
    minutes = _int(name, value)
    if minutes not in CHECKPOINT_MINUTES:
        raise SettingsError(name, value, "应为能整除一小时或一天的分钟数，如 15、60、240、1440")
    return minutes


def _networks(name: str, value: str) -> tuple[IPv4Network | IPv6Network, ...]:
    networks = []
    for part in value.split(","):
        if not part.strip():
            continue
        try:
            networks.append(ip_network(part.strip(), strict=False))
        except ValueError as exc:
            raise SettingsError(name, value, f"「{part.strip()}」不是 IP 地址或网段，"
                                "应如 127.0.0.1,10.0.0.0/8") from exc
    return tuple(networks)


def _text_value(_name: str, value: str) -> str:
    return value


def _path(_name: str, value: str) -> Path:
    return Path(value)


#: RECTIFLOW_<suffix> → (Settings attribute, parser(name, value)).
FIELDS: dict[str, tuple[str, Callable[[str, str], object]]] = {
    **{suffix: (attr, _text_value) for suffix, attr in {
        "DATABASE_URL": "database_url", "BROKER_URL": "broker_url", "SMTP_HOST": "smtp_host",
        "SMTP_USER": "smtp_user", "SMTP_PASSWORD": "smtp_password",
        "SMTP_SENDER": "smtp_sender", "WECOM_API_BASE": "wecom_api_base",
        "WECOM_CORP_ID": "wecom_corp_id", "WECOM_SECRET": "wecom_secret",
        "WECOM_WEBHOOK_KEY": "wecom_webhook_key", "BASE_URL": "base_url",
        "BROKER_PREFIX": "broker_prefix", "SECRET_KEY": "secret_key",
        "METRICS_TOKEN": "metrics_token", "AUDIT_KEY": "audit_key"}.items()},
    "TRUSTED_PROXIES": ("trusted_proxies", _networks),
    "AUDIT_CHECKPOINT_DIR": ("audit_checkpoint_dir", _path),
    "AUDIT_CHECKPOINT_MINUTES": ("audit_checkpoint_minutes", _checkpoint_minutes),
    "EVIDENCE_DIR": ("evidence_dir", _path),
    "OUTBOX_DIR": ("outbox_dir", _path),
    "CONFIG": ("config_file", _path),
    "SMTP_SSL": ("smtp_ssl", parse_bool),
    "SMTP_STARTTLS": ("smtp_starttls", parse_bool),
    "SMTP_PORT": ("smtp_port", _int),
    "WECOM_AGENT_ID": ("wecom_agent_id", _int),
    "EVIDENCE_MAX_BYTES": ("evidence_max_bytes", _int),
    "CLOCK_TICK": ("clock_tick", _tick),
    "SWEEP_TICK": ("sweep_tick", _tick),
    "DELIVERY_LEASE": ("delivery_lease", _positive),
    "DELIVERY_BATCH": ("delivery_batch", _positive),
    "DELIVERY_RETRY_HOURS": ("delivery_retry_hours", _hours),
    "APPROVAL_LINK_HOURS": ("approval_link_hours", _hours),
    "NOW": ("now", parse_now),
    "LOG_FORMAT": ("log_format", _log_format),
    "LOG_LEVEL": ("log_level", _log_level),
    "METRICS_PORT": ("metrics_port", _port),
}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from ``environ`` (default ``os.environ``); raise SettingsError on bad values."""
    env = os.environ if environ is None else environ
    kwargs: dict[str, object] = {}
    for suffix, (attr, parse) in FIELDS.items():
        name = f"RECTIFLOW_{suffix}"
        value = env.get(name)
        if value not in (None, ""):
            kwargs[attr] = parse(name, str(value))
    if "base_url" in kwargs:
        kwargs["base_url"] = str(kwargs["base_url"]).rstrip("/")
    return Settings(**kwargs)  # type: ignore[arg-type]
