"""WeCom (企业微信): application messages to members, and group-robot webhooks.

Application messages need an access token from ``gettoken``. The token lives in the
``runtime_state`` table, so every worker on every machine shares one token per app instead of
each calling ``gettoken`` (itself rate-limited). A token WeCom calls invalid or expired
(40014, 42001, 42009) is fetched again and the message retried once.

Which message type: a ``textcard`` (title, a short description, one link, a "详情" button)
when the message's text fits on a card (description up to 512 bytes), because cards show in
every client, the WeChat plugin (微工作台) included; a ``markdown`` message (up to 2,048 bytes,
one link per item) when it has more items than a card can hold. Markdown is not shown in the
WeChat plugin, which is why it is the fallback and not the rule.

WeCom silently drops more than 30 messages a minute (1,000 an hour) per member and app, and a
robot accepts 20 a minute; ``limits`` makes the deliverer pace under both.
"""

from __future__ import annotations

import html
import logging
import os
import re
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from config.settings import DEFAULT_WECOM_API_BASE, Settings
from notifications.channels.base import Channel, ChannelConfigError, DeliveryError, Rendered
from workflow import db, metrics
from workflow.models import RuntimeState
from workflow.timeutil import system_now

log = logging.getLogger("rectiflow.wecom")

#: Answers that mean "this token is no good": fetch a new one and try once more.
TOKEN_ERRORS = frozenset({40014, 42001, 42009})
RATE_LIMITED = 45009
#: Errors no retry can fix: bad secret/corp id/agent id, untrusted IP, no such member(s),
#: invalid robot webhook, message rejected as malformed or too long.
PERMANENT_ERRORS = frozenset({40001, 40013, 40056, 60020, 81013, 93000, 40003, 40008, 40058})
RATE_LIMIT_WAIT = 60.0

CARD_TITLE_CHARS = 128
CARD_DESCRIPTION_BYTES = 512
CARD_URL_BYTES = 2048
CARD_BUTTON = "详情"
APP_MARKDOWN_BYTES = 2048
ROBOT_MARKDOWN_BYTES = 4096
#: Tokens are treated as expired this long before WeCom says, so none is used at its last second.
TOKEN_MARGIN = timedelta(minutes=5)

_SECRET_QUERY = re.compile(r"((?:corpsecret|access_token|key)=)[^&\s\"'>]+", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with secret query values (corpsecret, access_token, key) replaced by ***."""
    return _SECRET_QUERY.sub(r"\1***", text)


class _RedactQuerySecrets(logging.Filter):
    """httpx logs each request's full URL at INFO; the URL carries the secret or the token."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


_redactor = _RedactQuerySecrets()
for _name in ("httpx", "httpcore"):
    if _redactor not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(_redactor)


def fit_utf8(text: str, limit: int, tail: str = "") -> str:
    """``text`` within ``limit`` UTF-8 bytes: cut whole lines (never a character or a link in
    half) and end with ``tail`` when anything was cut."""
    if len(text.encode()) <= limit:
        return text
    budget = limit - len(tail.encode())
    cut = text.encode()[:max(budget, 0)].decode("utf-8", errors="ignore")
    if "\n" in cut:
        cut = cut[:cut.rindex("\n")]
    return cut.rstrip() + tail


def items_tail(count: int | None) -> str:
    return f"\n……（共{count}项，详见系统）" if count else "\n……（内容较多，详见系统）"


def _check_base(channel: str, base: str) -> str:
    """HTTPS only; plain HTTP just for a local test server."""
    parts = urlsplit(base)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if not parts.hostname or parts.scheme not in ("https", "http") or (
            parts.scheme == "http" and not local):
        raise ChannelConfigError(channel, "RECTIFLOW_WECOM_API_BASE",
                                 f"应为 https:// 地址（仅本机测试可用 http://），当前为 {base!r}")
    return base.rstrip("/")


def _http_client(base: str, timeout: float, transport: httpx.BaseTransport | None) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
                        transport=transport, trust_env=urlsplit(base).scheme == "https",
                        headers={"User-Agent": "rectiflow"})


def _call(channel: str, client: httpx.Client, method: str, path: str,
          params: dict[str, str], body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One API call; transport trouble and non-JSON answers are retryable DeliveryErrors."""
    try:
        response = client.request(method, path, params=params, json=body)
    except httpx.HTTPError as exc:
        raise DeliveryError(channel, redact(f"无法连接企业微信接口 {path}：{type(exc).__name__} {exc}"),
                            retryable=True) from None
    if response.status_code != 200:
        raise DeliveryError(channel, f"企业微信接口 {path} 返回 HTTP {response.status_code}",
                            retryable=True, code=f"http {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        raise DeliveryError(channel, f"企业微信接口 {path} 的应答不是 JSON", retryable=True) from None
    if not isinstance(answer, dict):
        raise DeliveryError(channel, f"企业微信接口 {path} 的应答格式不对", retryable=True)
    if answer.get("errcode") not in (None, 0):
        metrics.wecom_api_error(channel, _errcode(answer))
    return answer


def _errcode(answer: dict[str, Any]) -> int:
    try:
        return int(answer.get("errcode", 0))
    except (TypeError, ValueError):
        return -1


class TokenStore:
    """Access tokens in ``runtime_state``, shared by all workers: (value, expires_at) by name."""

    def __init__(self, sessions: sessionmaker[Session] | Callable[[], sessionmaker[Session]]) -> None:
        self._sessions = sessions

    def _factory(self) -> sessionmaker[Session]:
        if isinstance(self._sessions, sessionmaker):
            return self._sessions
        self._sessions = self._sessions()
        return self._sessions

    def read(self, name: str, now: datetime) -> tuple[str, datetime] | None:
        """The cached token if it is still good at ``now``."""
        with db.transaction(self._factory()) as session:
            row = session.get(RuntimeState, name)
            if row is None or not row.value or row.expires_at is None or row.expires_at <= now:
                return None
            return row.value, row.expires_at

    def write(self, name: str, token: str, expires_at: datetime, now: datetime) -> None:
        values = {"name": name, "value": token, "expires_at": expires_at, "updated_at": now,
                  "holder": f"{socket.gethostname()}:{os.getpid()}"}
        with db.transaction(self._factory()) as session:
            dialect = session.get_bind().dialect.name
            builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = builder(RuntimeState).values(**values)
            session.execute(statement.on_conflict_do_update(
                index_elements=["name"],
                set_={k: statement.excluded[k] for k in values if k != "name"}))


class WeComAppChannel(Channel):
    """企业微信应用消息: a textcard (or markdown when long) to the member's WeCom id."""

    name = "wecom"
    limits = ((30, 60), (1000, 3600))
    secrets = ("secret",)

    def __init__(self, *, corp_id: str | None, secret: str | None, agent_id: int | None,
                 tokens: TokenStore, api_base: str = DEFAULT_WECOM_API_BASE,
                 timeout: float = 10.0, duplicate_check_interval: int = 1800,
                 clock: Callable[[], datetime] = system_now,
                 transport: httpx.BaseTransport | None = None) -> None:
        label = "企业微信"
        if not corp_id:
            raise ChannelConfigError(label, "RECTIFLOW_WECOM_CORP_ID",
                                     "不能为空（企业ID，见管理后台“我的企业”）")
        if not secret:
            raise ChannelConfigError(label, "RECTIFLOW_WECOM_SECRET", "不能为空（应用的 Secret）")
        if not agent_id or agent_id <= 0:
            raise ChannelConfigError(label, "RECTIFLOW_WECOM_AGENT_ID", "应为应用的 AgentId（正整数）")
        if not 0 < duplicate_check_interval <= 4 * 3600:
            raise ChannelConfigError(label, "duplicate_check_interval", "应在 1 到 14400 秒之间")
        self.api_base = _check_base(label, api_base)
        self.corp_id, self.secret, self.agent_id = corp_id, secret, agent_id
        self.timeout = timeout
        self.duplicate_check_interval = duplicate_check_interval
        self.token_name = f"wecom_token:{corp_id}:{agent_id}"
        self._tokens = tokens
        self._clock = clock
        self._transport = transport
        self._client: httpx.Client | None = None
        self._token: tuple[str, datetime] | None = None
        #: gettoken calls made by this instance (for operators and tests)
        self.token_fetches = 0

    @classmethod
    def from_settings(cls, settings: Settings, tokens: TokenStore, **kwargs: Any) -> WeComAppChannel:
        return cls(corp_id=settings.wecom_corp_id, secret=settings.wecom_secret,
                   agent_id=settings.wecom_agent_id, api_base=settings.wecom_api_base,
                   tokens=tokens, **kwargs)

    def open(self) -> None:
        if self._client is None:
            self._client = _http_client(self.api_base, self.timeout, self._transport)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ------------------------------------------------------------------ token

    def _token_for_send(self, stale: str | None = None) -> str:
        """A good token: this instance's copy, else the shared cache, else a new one.

        ``stale`` is a token WeCom just refused; a different one in the cache (another worker
        refreshed it) is used, the same one is fetched anew.
        """
        now = self._clock()
        if stale is None and self._token is not None and self._token[1] > now:
            return self._token[0]
        cached = self._tokens.read(self.token_name, now)
        if cached is not None and cached[0] != stale:
            self._token = cached
            return cached[0]
        return self._fetch_token(now)

    def _fetch_token(self, now: datetime) -> str:
        assert self._client is not None
        self.token_fetches += 1
        answer = _call(self.name, self._client, "GET", "/cgi-bin/gettoken",
                       {"corpid": self.corp_id, "corpsecret": self.secret})
        code = _errcode(answer)
        token = answer.get("access_token")
        if code != 0 or not isinstance(token, str) or not token:
            raise self._error(code or -1, answer, "获取 access_token")
        expires_in = int(answer.get("expires_in") or 7200)
        expires_at = now + max(timedelta(seconds=expires_in) - TOKEN_MARGIN,
                               timedelta(seconds=expires_in / 2))
        self._tokens.write(self.token_name, token, expires_at, now)
        self._token = (token, expires_at)
        log.info("WeCom access token fetched for agent %s, good until %s", self.agent_id,
                 expires_at.isoformat())
        return token

    # ------------------------------------------------------------------ sending

    def send(self, message: Rendered) -> dict[str, Any]:
        touser = (message.wecom_id or "").strip()
        if not touser:
            raise DeliveryError(self.name, f"{message.recipient_name}（{message.recipient}）"
                                "没有登记企业微信账号，无法发送企业微信消息",
                                retryable=False, code="no_wecom_id")
        self.open()
        assert self._client is not None
        body = self.body_for(message, touser)
        token = self._token_for_send()
        answer = self._post(token, body)
        if _errcode(answer) in TOKEN_ERRORS:
            log.info("WeCom refused the access token (%s); fetching a new one", _errcode(answer))
            self._token = None
            answer = self._post(self._token_for_send(stale=token), body)
        code = _errcode(answer)
        if code != 0:
            raise self._error(code, answer, "发送应用消息", touser)
        info: dict[str, Any] = {"wecom_msgtype": body["msgtype"]}
        if answer.get("msgid"):
            info["wecom_msgid"] = answer["msgid"]
        for field in ("invaliduser", "invalidparty", "invalidtag", "unlicenseduser"):
            if answer.get(field):
                info[field] = answer[field]
        if info.get("invaliduser"):
            invalid = set(str(info["invaliduser"]).split("|"))
            if invalid >= set(touser.split("|")):
                raise DeliveryError(self.name, f"企业微信账号 {info['invaliduser']} 无效（成员不存在、"
                                    "已离职或不在应用可见范围内）", retryable=False, code=81013)
            log.warning("WeCom message %s: invalid users %s", message.message_id, info["invaliduser"])
        return info

    def _post(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self._client is not None
        return _call(self.name, self._client, "POST", "/cgi-bin/message/send",
                     {"access_token": token}, body)

    def body_for(self, message: Rendered, touser: str) -> dict[str, Any]:
        """The message/send request: a textcard when it fits, markdown when it has many items."""
        body: dict[str, Any] = {"touser": touser, "agentid": self.agent_id,
                                "enable_duplicate_check": 1,
                                "duplicate_check_interval": self.duplicate_check_interval}
        description = card_description(message)
        if len(description.encode()) <= CARD_DESCRIPTION_BYTES:
            body["msgtype"] = "textcard"
            body["textcard"] = {"title": message.subject[:CARD_TITLE_CHARS],
                                "description": description, "url": self._card_url(message),
                                "btntxt": CARD_BUTTON}
        else:
            body["msgtype"] = "markdown"
            body["markdown"] = {"content": fit_utf8(message.markdown, APP_MARKDOWN_BYTES,
                                                    items_tail(message.extra.get("count")))}
        return body

    def _card_url(self, message: Rendered) -> str:
        for url in (message.url, message.extra.get("home")):
            if url and len(str(url).encode()) <= CARD_URL_BYTES:
                return str(url)
        raise DeliveryError(self.name, f"消息链接超过 {CARD_URL_BYTES} 字节，请检查 RECTIFLOW_BASE_URL",
                            retryable=False, code="url_too_long")

    def _error(self, code: int, answer: dict[str, Any], doing: str, touser: str = "") -> DeliveryError:
        errmsg = redact(str(answer.get("errmsg", "")))[:200]
        reasons = {
            40001: "应用 Secret 无效，请检查 RECTIFLOW_WECOM_SECRET",
            40013: "企业ID无效，请检查 RECTIFLOW_WECOM_CORP_ID",
            40056: "应用 AgentId 无效，请检查 RECTIFLOW_WECOM_AGENT_ID",
            60020: "本服务器的出口 IP 不在企业微信应用的可信 IP 列表中：请管理员在企业微信管理后台"
                   "“应用管理 → 本应用 → 企业可信IP”中添加本服务器的 IP",
            81013: f"企业微信账号 {touser} 无效（成员不存在、已离职或不在应用可见范围内）",
            RATE_LIMITED: "企业微信接口调用过于频繁，约 1 分钟后重试",
        }
        reason = f"{doing}失败：{reasons.get(code, '企业微信返回错误')}（{errmsg}）"
        if code in TOKEN_ERRORS:
            reason = f"{doing}失败：重新获取 access_token 后仍被拒绝（{errmsg}）"
        return DeliveryError(self.name, reason, retryable=code not in PERMANENT_ERRORS, code=code,
                             retry_after=RATE_LIMIT_WAIT if code == RATE_LIMITED else None)


def card_description(message: Rendered) -> str:
    """The card's text: the rendered plain text without greeting, subject, links and footer."""
    lines = []
    for line in message.text.splitlines():
        stripped = line.strip()
        if (not stripped or "http://" in stripped or "https://" in stripped
                or stripped.startswith("——") or stripped == message.subject.strip()
                or stripped.endswith("您好：")):
            continue
        lines.append(html.escape(stripped, quote=False))
    return "\n".join(lines)


class WeComRobotChannel(Channel):
    """企业微信群机器人: markdown to one group through its webhook key."""

    name = "wecom_robot"
    limits = ((20, 60),)
    secrets = ("key",)

    def __init__(self, *, key: str | None, api_base: str = DEFAULT_WECOM_API_BASE,
                 timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        label = "企业微信群机器人"
        if not key or not key.strip() or any(c in key for c in "&?/ "):
            raise ChannelConfigError(label, "RECTIFLOW_WECOM_WEBHOOK_KEY",
                                     "应为群机器人 webhook 地址中 key= 后面的部分")
        self.api_base = _check_base(label, api_base)
        self.key = key.strip()
        self.timeout = timeout
        self._transport = transport
        self._client: httpx.Client | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> WeComRobotChannel:
        return cls(key=settings.wecom_webhook_key, api_base=settings.wecom_api_base, **kwargs)

    def open(self) -> None:
        if self._client is None:
            self._client = _http_client(self.api_base, self.timeout, self._transport)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def send(self, message: Rendered) -> dict[str, Any]:
        self.open()
        assert self._client is not None
        content = fit_utf8(message.markdown, ROBOT_MARKDOWN_BYTES, items_tail(message.extra.get("count")))
        answer = _call(self.name, self._client, "POST", "/cgi-bin/webhook/send", {"key": self.key},
                       {"msgtype": "markdown", "markdown": {"content": content}})
        code = _errcode(answer)
        if code == 0:
            return {"robot": message.recipient, "bytes": len(content.encode())}
        errmsg = redact(str(answer.get("errmsg", "")))[:200]
        reasons = {
            93000: "群机器人的 webhook 无效或机器人已被移出群聊，请检查 RECTIFLOW_WECOM_WEBHOOK_KEY",
            RATE_LIMITED: "群机器人每分钟最多发送 20 条消息，约 1 分钟后重试",
            40058: "消息内容不符合要求（可能超长）",
        }
        reason = reasons.get(code, "企业微信返回错误")
        raise DeliveryError(self.name, f"群机器人发送失败：{reason}（{errmsg}）",
                            retryable=code not in PERMANENT_ERRORS, code=code,
                            retry_after=RATE_LIMIT_WAIT if code == RATE_LIMITED else None)


def channels_from_settings(settings: Settings,
                           sessions: sessionmaker[Session] | None = None) -> dict[str, Channel]:
    """The WeCom channels the settings ask for; half a configuration is refused, naming what is
    missing. The token cache uses ``sessions``, or the settings' database when not given."""
    channels: dict[str, Channel] = {}
    if settings.wecom_corp_id or settings.wecom_secret or settings.wecom_agent_id:
        tokens = TokenStore(sessions if sessions is not None else
                            (lambda: db.session_factory(db.make_engine(settings.database_url))))
        channels["wecom"] = WeComAppChannel.from_settings(settings, tokens)
    if settings.wecom_webhook_key:
        channels["wecom_robot"] = WeComRobotChannel.from_settings(settings)
    return channels
