"""企业微信应用消息: a message from the organisation's WeCom app to one member.

Which message type: a ``textcard`` (title, a short description, one link, a "详情" button)
when the message's text fits on a card (description up to 512 bytes), because cards show in
every client, the WeChat plugin (微工作台) included; a ``markdown`` message (up to 2,048 bytes,
one link per item) when it has more items than a card can hold. Markdown is not shown in the
WeChat plugin, which is why it is the fallback and not the rule.

WeCom silently drops more than 30 messages a minute (1,000 an hour) per member and app;
``limits`` makes the deliverer pace under both.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from config.settings import DEFAULT_WECOM_API_BASE, Settings
from notifications.channels.base import Channel, ChannelConfigError, DeliveryError, Rendered
from notifications.channels.wecom.api import (
    AppApi,
    TokenStore,
    WeComApi,
    checked_api_base,
    fit_utf8,
    message_tail,
)
from workflow.lifecycle import ChannelName
from workflow.timeutil import system_now

log = logging.getLogger("rectiflow.wecom")

CARD_TITLE_CHARS = 128
CARD_DESCRIPTION_BYTES = 512
CARD_URL_BYTES = 2048
CARD_BUTTON = "详情"
APP_MARKDOWN_BYTES = 2048


class WeComAppChannel(Channel):
    """企业微信应用消息: a textcard (or markdown when long) to the member's WeCom id."""

    name = ChannelName.WECOM
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
        self.api_base = checked_api_base(label, api_base)
        self.corp_id, self.secret, self.agent_id = corp_id, secret, agent_id
        self.timeout = timeout
        self.duplicate_check_interval = duplicate_check_interval
        self._app = AppApi(WeComApi(self.name, self.api_base, timeout=timeout, transport=transport),
                           corp_id=corp_id, secret=secret, agent_id=agent_id, tokens=tokens,
                           clock=clock)

    @classmethod
    def from_settings(cls, settings: Settings, tokens: TokenStore, **kwargs: Any) -> WeComAppChannel:
        return cls(corp_id=settings.wecom_corp_id, secret=settings.wecom_secret,
                   agent_id=settings.wecom_agent_id, api_base=settings.wecom_api_base,
                   tokens=tokens, **kwargs)

    @property
    def token_fetches(self) -> int:
        """gettoken calls this channel made (for operators and tests)."""
        return self._app.token_fetches

    def open(self) -> None:
        self._app.api.open()

    def close(self) -> None:
        self._app.api.close()

    def user_of_code(self, code: str) -> dict[str, Any]:
        """WeCom's answer naming whom a web sign-in ``code`` belongs to (``userid`` or
        ``openid``, or an ``errcode``); transport trouble raises a retryable DeliveryError."""
        return self._app.getuserinfo(code)

    def send(self, message: Rendered) -> dict[str, Any]:
        touser = (message.wecom_id or "").strip()
        if not touser:
            raise DeliveryError(self.name, f"{message.recipient_name}（{message.recipient}）"
                                "没有登记企业微信账号，无法发送企业微信消息",
                                retryable=False, code="no_wecom_id")
        body = self.body_for(message, touser)
        answer = self._app.send_message(body)
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
                                                    message_tail(message))}
        return body

    def _card_url(self, message: Rendered) -> str:
        for url in (message.url, message.extra.get("home")):
            if url and len(str(url).encode()) <= CARD_URL_BYTES:
                return str(url)
        raise DeliveryError(self.name, f"消息链接超过 {CARD_URL_BYTES} 字节，请检查 RECTIFLOW_BASE_URL",
                            retryable=False, code="url_too_long")


def card_description(message: Rendered) -> str:
    """The card's text: each measure's title, deadline and reasons (``extra["card"]``, made by
    the renderer), escaped; for a message rendered without it, the plain text without
    greeting, subject, links and footer."""
    card = message.extra.get("card")
    if card:
        return html.escape(str(card), quote=False)
    lines = []
    for line in message.text.splitlines():
        stripped = line.strip()
        if (not stripped or "http://" in stripped or "https://" in stripped
                or stripped.startswith("——") or stripped == message.subject.strip()
                or stripped.endswith("您好：")):
            continue
        lines.append(html.escape(stripped, quote=False))
    return "\n".join(lines)
