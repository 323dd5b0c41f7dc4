"""What every channel is: a small class with a name, its limits, and one ``send()``.

``send()`` either returns what it learned (recorded on the outbox row) or raises a
``DeliveryError`` that says whether trying again can help, so the deliverer can retry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from workflow.errors import RectiflowError
from workflow.lifecycle import ChannelName


class DeliveryError(Exception):
    """Raised when a channel could not deliver one message."""

    def __init__(self, channel: str, reason: str, *, retryable: bool,
                 code: int | str | None = None, retry_after: float | None = None) -> None:
        self.channel = channel
        self.reason = reason
        self.retryable = retryable
        self.code = code
        self.retry_after = retry_after
        kind = "可重试" if retryable else "永久性"
        detail = f"（错误码 {code}）" if code is not None else ""
        super().__init__(f"{channel} 发送失败{detail}，{kind}错误：{reason}")


class ChannelConfigError(RectiflowError):
    """Raised at start when a channel's settings cannot work; names the setting."""

    exit_code = 2

    def __init__(self, channel: str, setting: str, reason: str) -> None:
        self.channel = channel
        self.setting = setting
        super().__init__(f"{channel} 配置有误：{setting} {reason}")


@dataclass(frozen=True)
class Rendered:
    """One outbox message rendered for sending."""

    message_id: int
    key: str
    channel: str
    recipient: str               # email, or the robot's name
    recipient_name: str
    wecom_id: str | None
    subject: str
    text: str
    html: str
    markdown: str
    url: str
    created_at: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class Channel(ABC):
    """A way to reach people. Subclasses set ``name`` and implement ``send``."""

    name: ClassVar[str]
    #: (count, seconds) limits per recipient that the deliverer paces under.
    limits: ClassVar[tuple[tuple[int, int], ...]] = ()
    #: attribute names holding secrets: masked in repr() and never logged.
    secrets: ClassVar[tuple[str, ...]] = ()

    def open(self) -> None:  # noqa: B027 - a hook; most channels need no preparation
        """Prepare for a batch (connect, log in); called before the first send."""

    def close(self) -> None:  # noqa: B027 - a hook; most channels hold nothing open
        """Release what ``open`` took."""

    @abstractmethod
    def send(self, message: Rendered) -> dict[str, Any]:
        """Deliver one message; return facts worth keeping, or raise DeliveryError."""

    def send_after(self, message: Rendered, settled: Callable[[], None]) -> dict[str, Any]:
        """``send``, calling ``settled`` before anything can reach the person: the deliverer
        waits there for the previous message's mark. A channel whose sending has steps that
        deliver nothing yet (SMTP's MAIL and RCPT) takes them before calling it."""
        settled()
        return self.send(message)

    def __repr__(self) -> str:
        shown = []
        for key, value in sorted(vars(self).items()):
            if key.startswith("_"):
                continue
            shown.append(f"{key}={'***' if key in self.secrets and value else value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


class MemoryChannel(Channel):
    """A real in-memory channel for unit tests: keeps what it was given; can be told to fail."""

    name = "memory"

    def __init__(self, name: str = ChannelName.FILE, fail_with: DeliveryError | None = None) -> None:
        self.channel_name = name
        self.sent: list[Rendered] = []
        self.fail_with = fail_with

    def send(self, message: Rendered) -> dict[str, Any]:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(message)
        return {}
