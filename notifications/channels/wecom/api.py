"""The WeCom (企业微信) API client both WeCom channels send through.

One :class:`WeComApi` per channel holds the HTTP connection pool and checks every answer:
transport trouble and non-JSON answers are retryable :class:`DeliveryError`\\ s, and WeCom's own
error codes become retryable or permanent ones through :func:`delivery_error`.

Application messages need an access token from ``gettoken``. :class:`AppApi` keeps it in the
``runtime_state`` table (:class:`TokenStore`), so every worker on every machine shares one token
per app instead of each calling ``gettoken`` (itself rate-limited). A token WeCom calls invalid
or expired (40014, 42001, 42009) is fetched again and the message sent once more.

Secrets travel in query strings (``corpsecret``, ``access_token``, ``key``): :func:`redact`
takes them out of every error, and the httpx loggers are filtered the same way.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from notifications.channels.base import ChannelConfigError, DeliveryError
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


def checked_api_base(channel: str, base: str) -> str:
    """``base`` without its trailing slash; HTTPS only, plain HTTP just for a local test server."""
    parts = urlsplit(base)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if not parts.hostname or parts.scheme not in ("https", "http") or (
            parts.scheme == "http" and not local):
        raise ChannelConfigError(channel, "RECTIFLOW_WECOM_API_BASE",
                                 f"应为 https:// 地址（仅本机测试可用 http://），当前为 {base!r}")
    return base.rstrip("/")


def errcode(answer: Mapping[str, Any]) -> int:
    """WeCom's error code in ``answer`` (0 when it worked, -1 when it is not a number)."""
    try:
        return int(answer.get("errcode", 0))
    except (TypeError, ValueError):
        return -1


def delivery_error(channel: str, code: int, answer: Mapping[str, Any], failed: str,
                   reason: str) -> DeliveryError:
    """WeCom's refusal as a typed error: permanent for the codes no retry can fix, a minute's
    wait when rate-limited. ``failed`` says what did not work, ``reason`` why, for the admins."""
    errmsg = redact(str(answer.get("errmsg", "")))[:200]
    return DeliveryError(channel, f"{failed}失败：{reason}（{errmsg}）",
                         retryable=code not in PERMANENT_ERRORS, code=code,
                         retry_after=RATE_LIMIT_WAIT if code == RATE_LIMITED else None)


class WeComApi:
    """WeCom's HTTP API as one channel (named ``channel`` in errors and metrics) calls it."""

    def __init__(self, channel: str, base: str, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.channel = channel
        self.base = base
        self.timeout = timeout
        self._transport = transport
        self._client: httpx.Client | None = None

    def open(self) -> None:
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.base, timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 5.0)),
                transport=self._transport, trust_env=urlsplit(self.base).scheme == "https",
                headers={"User-Agent": "rectiflow"})

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> WeComApi:
        self.open()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"WeComApi(channel={self.channel!r}, base={self.base!r})"

    def request(self, method: str, path: str, params: dict[str, str],
                body: dict[str, Any] | None = None,
                files: dict[str, Any] | None = None) -> httpx.Response:
        """The bare HTTP exchange; httpx's errors are the caller's to handle."""
        self.open()
        assert self._client is not None
        return self._client.request(method, path, params=params, json=body, files=files)

    def call(self, method: str, path: str, params: dict[str, str],
             body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One API call and its JSON answer; transport trouble and answers that are not a JSON
        object are retryable DeliveryErrors, WeCom's error codes are left to the caller."""
        try:
            response = self.request(method, path, params, body)
        except httpx.HTTPError as exc:
            raise DeliveryError(self.channel,
                                redact(f"无法连接企业微信接口 {path}：{type(exc).__name__} {exc}"),
                                retryable=True) from None
        if response.status_code != 200:
            raise DeliveryError(self.channel, f"企业微信接口 {path} 返回 HTTP {response.status_code}",
                                retryable=True, code=f"http {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise DeliveryError(self.channel, f"企业微信接口 {path} 的应答不是 JSON",
                                retryable=True) from None
        if not isinstance(answer, dict):
            raise DeliveryError(self.channel, f"企业微信接口 {path} 的应答格式不对", retryable=True)
        if answer.get("errcode") not in (None, 0):
            metrics.wecom_api_error(self.channel, errcode(answer))
        return answer

    def gettoken(self, corp_id: str, secret: str) -> dict[str, Any]:
        """``gettoken``'s answer as it is, nothing cached (doctor checks the secret with it)."""
        return self.call("GET", "/cgi-bin/gettoken", {"corpid": corp_id, "corpsecret": secret})


class TokenStore:
    """Access tokens in ``runtime_state``, shared by all workers: (value, expires_at) by name."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def read(self, name: str, now: datetime) -> tuple[str, datetime] | None:
        """The cached token if it is still good at ``now``."""
        with db.transaction(self._sessions) as session:
            row = session.get(RuntimeState, name)
            if row is None or not row.value or row.expires_at is None or row.expires_at <= now:
                return None
            return row.value, row.expires_at

    def write(self, name: str, token: str, expires_at: datetime, now: datetime) -> None:
        values = {"name": name, "value": token, "expires_at": expires_at, "updated_at": now,
                  "holder": f"{socket.gethostname()}:{os.getpid()}"}
        with db.transaction(self._sessions) as session:
            dialect = session.get_bind().dialect.name
            builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = builder(RuntimeState).values(**values)
            session.execute(statement.on_conflict_do_update(
                index_elements=["name"],
                set_={k: statement.excluded[k] for k in values if k != "name"}))


#: Why an application's call was refused, by error code, for the admins.
APP_REFUSALS = {
    40001: "应用 Secret 无效，请检查 RECTIFLOW_WECOM_SECRET",
    40013: "企业ID无效，请检查 RECTIFLOW_WECOM_CORP_ID",
    40056: "应用 AgentId 无效，请检查 RECTIFLOW_WECOM_AGENT_ID",
    60020: "本服务器的出口 IP 不在企业微信应用的可信 IP 列表中：请管理员在企业微信管理后台"
           "“应用管理 → 本应用 → 企业可信IP”中添加本服务器的 IP",
    RATE_LIMITED: "企业微信接口调用过于频繁，约 1 分钟后重试",
}


class AppApi:
    """One application's calls (``message/send``) with its access token: this process's copy,
    else the one shared in ``runtime_state``, else a new one from ``gettoken``."""

    def __init__(self, api: WeComApi, *, corp_id: str, secret: str, agent_id: int,
                 tokens: TokenStore, clock: Callable[[], datetime] = system_now) -> None:
        self.api = api
        self.corp_id, self.agent_id = corp_id, agent_id
        self._secret = secret
        self.token_name = f"wecom_token:{corp_id}:{agent_id}"
        self._tokens = tokens
        self._clock = clock
        self._token: tuple[str, datetime] | None = None
        #: gettoken calls made by this instance (for operators and tests)
        self.token_fetches = 0

    def __repr__(self) -> str:
        return f"AppApi(corp_id={self.corp_id!r}, agent_id={self.agent_id!r}, secret='***')"

    def send_message(self, body: dict[str, Any]) -> dict[str, Any]:
        """``message/send`` with a good token; a token WeCom refuses is replaced and the message
        sent once more. Any refusal left is raised as a typed DeliveryError."""
        token = self._token_for_send()
        answer = self._post(token, body)
        if errcode(answer) in TOKEN_ERRORS:
            log.info("WeCom refused the access token (%s); fetching a new one", errcode(answer))
            self._token = None
            answer = self._post(self._token_for_send(stale=token), body)
        code = errcode(answer)
        if code != 0:
            raise self.refusal(code, answer, "发送应用消息", str(body.get("touser", "")))
        return answer

    def getuserinfo(self, code: str) -> dict[str, Any]:
        """``auth/getuserinfo``: whom a web sign-in's ``code`` names (``userid`` for a member of
        the organisation, ``openid`` for anyone else). A token WeCom refuses is replaced and the
        call made once more; WeCom's other error codes (40029: a bad, used or expired code) are
        left in the answer for the caller to explain."""
        token = self._token_for_send()
        answer = self._userinfo(token, code)
        if errcode(answer) in TOKEN_ERRORS:
            log.info("WeCom refused the access token (%s); fetching a new one", errcode(answer))
            self._token = None
            answer = self._userinfo(self._token_for_send(stale=token), code)
        return answer

    def _userinfo(self, token: str, code: str) -> dict[str, Any]:
        return self.api.call("GET", "/cgi-bin/auth/getuserinfo",
                             {"access_token": token, "code": code})

    def _post(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.api.call("POST", "/cgi-bin/message/send", {"access_token": token}, body)

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
        self.token_fetches += 1
        answer = self.api.gettoken(self.corp_id, self._secret)
        code = errcode(answer)
        token = answer.get("access_token")
        if code != 0 or not isinstance(token, str) or not token:
            raise self.refusal(code or -1, answer, "获取 access_token")
        expires_in = int(answer.get("expires_in") or 7200)
        expires_at = now + max(timedelta(seconds=expires_in) - TOKEN_MARGIN,
                               timedelta(seconds=expires_in / 2))
        self._tokens.write(self.token_name, token, expires_at, now)
        self._token = (token, expires_at)
        log.info("WeCom access token fetched for agent %s, good until %s", self.agent_id,
                 expires_at.isoformat())
        return token

    def refusal(self, code: int, answer: Mapping[str, Any], doing: str,
                touser: str = "") -> DeliveryError:
        """WeCom's refusal of ``doing`` as a DeliveryError naming the setting to fix."""
        if code in TOKEN_ERRORS:
            reason = "重新获取 access_token 后仍被拒绝"
        elif code == 81013:
            reason = f"企业微信账号 {touser} 无效（成员不存在、已离职或不在应用可见范围内）"
        else:
            reason = APP_REFUSALS.get(code, "企业微信返回错误")
        return delivery_error(self.api.channel, code, answer, doing, reason)


# ------------------------------------------------------------------ message sizes


def fit_utf8(text: str, limit: int, tail: str = "") -> str:
    """``text`` within ``limit`` UTF-8 bytes: cut whole items (at a blank line) or else whole
    lines (never a character or a link in half) and end with ``tail`` when anything was cut."""
    if len(text.encode()) <= limit:
        return text
    budget = limit - len(tail.encode())
    cut = text.encode()[:max(budget, 0)].decode("utf-8", errors="ignore")
    if "\n\n" in cut:
        cut = cut[:cut.rindex("\n\n")]
    elif "\n" in cut:
        cut = cut[:cut.rindex("\n")]
    return cut.rstrip() + tail


def items_tail(count: int | None, rest: str | None = None) -> str:
    """What ends a message cut short: how many measures it had, and a link to all of them."""
    where = f"[点此查看全部]({rest})" if rest else "详见系统"
    return (f"\n\n……（共{count}项，{where}）" if count
            else f"\n\n……（内容较多，{where}）")


def message_tail(message: Any) -> str:
    """``items_tail`` for a rendered message: its count of measures and its "all" link."""
    return items_tail(message.extra.get("count"), message.extra.get("home"))
