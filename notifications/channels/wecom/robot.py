"""企业微信群机器人: markdown posted to one group through the robot's webhook key.

A robot accepts 20 messages a minute; ``limits`` makes the deliverer pace under it.
"""

from __future__ import annotations

from typing import Any

import httpx

from config.settings import DEFAULT_WECOM_API_BASE, Settings
from notifications.channels.base import Channel, ChannelConfigError, Rendered
from notifications.channels.wecom.api import (
    RATE_LIMITED,
    WeComApi,
    checked_api_base,
    delivery_error,
    errcode,
    fit_utf8,
    message_tail,
)
from workflow.lifecycle import ChannelName

ROBOT_MARKDOWN_BYTES = 4096

#: Why the robot's post was refused, by error code, for the admins.
ROBOT_REFUSALS = {
    93000: "群机器人的 webhook 无效或机器人已被移出群聊，请检查 RECTIFLOW_WECOM_WEBHOOK_KEY",
    RATE_LIMITED: "群机器人每分钟最多发送 20 条消息，约 1 分钟后重试",
    40058: "消息内容不符合要求（可能超长）",
}


class WeComRobotChannel(Channel):
    """企业微信群机器人: markdown to one group through its webhook key."""

    name = ChannelName.WECOM_ROBOT
    limits = ((20, 60),)
    secrets = ("key",)

    def __init__(self, *, key: str | None, api_base: str = DEFAULT_WECOM_API_BASE,
                 timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        label = "企业微信群机器人"
        if not key or not key.strip() or any(c in key for c in "&?/ "):
            raise ChannelConfigError(label, "RECTIFLOW_WECOM_WEBHOOK_KEY",
                                     "应为群机器人 webhook 地址中 key= 后面的部分")
        self.api_base = checked_api_base(label, api_base)
        self.key = key.strip()
        self.timeout = timeout
        self._api = WeComApi(self.name, self.api_base, timeout=timeout, transport=transport)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> WeComRobotChannel:
        return cls(key=settings.wecom_webhook_key, api_base=settings.wecom_api_base, **kwargs)

    def open(self) -> None:
        self._api.open()

    def close(self) -> None:
        self._api.close()

    def send(self, message: Rendered) -> dict[str, Any]:
        content = fit_utf8(message.markdown, ROBOT_MARKDOWN_BYTES, message_tail(message))
        answer = self._api.call("POST", "/cgi-bin/webhook/send", {"key": self.key},
                                {"msgtype": "markdown", "markdown": {"content": content}})
        code = errcode(answer)
        if code == 0:
            return {"robot": message.recipient, "bytes": len(content.encode())}
        raise delivery_error(self.name, code, answer, "群机器人发送",
                             ROBOT_REFUSALS.get(code, "企业微信返回错误"))
