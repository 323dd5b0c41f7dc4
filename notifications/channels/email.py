"""Email through yagmail: one SMTP connection per batch, a timeout, TLS/STARTTLS/none."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from typing import Any

import yagmail

from config.settings import Settings
from notifications.channels.base import Channel, ChannelConfigError, DeliveryError, Rendered
from notifications.mime import PLAIN_ADDRESS, build_email, email_bytes
from workflow.lifecycle import ChannelName


class EmailChannel(Channel):
    """Sends HTML mail with a plain-text alternative over one reused connection."""

    name = ChannelName.EMAIL
    secrets = ("password",)

    def __init__(self, *, host: str, port: int, sender: str, user: str | None = None,
                 password: str | None = None, ssl: bool = False, starttls: bool = False,
                 timeout: float = 10.0) -> None:
        if not host:
            raise ChannelConfigError("邮件", "RECTIFLOW_SMTP_HOST", "不能为空")
        if not 0 < port < 65536:
            raise ChannelConfigError("邮件", "RECTIFLOW_SMTP_PORT", f"{port} 不是有效端口")
        if not sender or "@" not in sender:
            raise ChannelConfigError("邮件", "RECTIFLOW_SMTP_SENDER", "应为发件邮箱地址")
        if ssl and starttls:
            raise ChannelConfigError("邮件", "RECTIFLOW_SMTP_SSL/_STARTTLS", "不能同时开启")
        if user and not password:
            # yagmail would otherwise ask for it on the terminal and hang a worker
            raise ChannelConfigError("邮件", "RECTIFLOW_SMTP_PASSWORD", "设置了用户名但没有密码")
        self.host, self.port, self.sender, self.user = host, port, sender, user
        self.password, self.ssl, self.starttls, self.timeout = password, ssl, starttls, timeout
        self._client: yagmail.SMTP | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailChannel:
        return cls(host=settings.smtp_host or "", port=settings.smtp_port,
                   sender=settings.smtp_sender or settings.smtp_user or "",
                   user=settings.smtp_user, password=settings.smtp_password,
                   ssl=settings.smtp_ssl, starttls=settings.smtp_starttls)

    def open(self) -> None:
        if self._client is not None:
            return
        client = yagmail.SMTP(user=self.user or self.sender, password=self.password or "",
                              host=self.host, port=self.port, smtp_ssl=self.ssl,
                              smtp_starttls=self.starttls, smtp_skip_login=not self.user,
                              soft_email_validation=False, timeout=self.timeout)
        try:
            client.login()
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(self.name, f"SMTP 登录失败（{exc.smtp_code}），请检查用户名和密码",
                                retryable=True, code=exc.smtp_code) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(self.name, f"无法连接 SMTP 服务器 {self.host}:{self.port}：{exc}",
                                retryable=True) from exc
        self._client = client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def send(self, message: Rendered) -> dict[str, Any]:
        return self.send_after(message, lambda: None)

    def send_after(self, message: Rendered, settled: Callable[[], None]) -> dict[str, Any]:
        """Sends ``message``; ``settled`` is called after MAIL and RCPT, before DATA."""
        self.open()
        assert self._client is not None
        written = email_bytes(message, self.sender)
        try:
            if written is None:  # inline images: the email package builds it
                settled()
                mime = build_email(message, self.sender)
                mid = str(mime["Message-ID"])
                refused = self._client.smtp.send_message(mime)
            else:
                mid, data = written
                refused = send_bytes(self._client.smtp, self.sender, message.recipient, data,
                                     settled)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {code for code, _ in exc.recipients.values()}
            permanent = all(500 <= c < 600 for c in codes)
            raise DeliveryError(self.name, f"收件人 {message.recipient} 被拒收：{exc.recipients}",
                                retryable=not permanent, code=min(codes)) from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise DeliveryError(self.name, f"SMTP 服务器拒绝：{exc.smtp_error!r}",
                                retryable=not 500 <= exc.smtp_code < 600,
                                code=exc.smtp_code) from exc
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
            self.close()  # reconnect for the next message
            raise DeliveryError(self.name, f"与 SMTP 服务器的连接中断：{exc}",
                                retryable=True) from exc
        if refused:
            raise DeliveryError(self.name, f"部分收件人被拒收：{refused}", retryable=False)
        return {"message_id": mid}


def send_bytes(smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes,
               settled: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """``smtp.sendmail(sender, [recipient], data)`` (same commands, replies and errors) without
    parsing both addresses again for every message, which smtplib does, when they are plain;
    ``settled`` is called between RCPT and DATA (nothing is delivered before DATA ends)."""
    if not (PLAIN_ADDRESS.fullmatch(sender) and PLAIN_ADDRESS.fullmatch(recipient)):
        settled()
        return smtp.sendmail(sender, [recipient], data)
    smtp.ehlo_or_helo_if_needed()
    size = f" SIZE={len(data)}" if smtp.does_esmtp and smtp.has_extn("size") else ""
    smtp.putcmd("mail", f"FROM:<{sender}>{size}")
    code, reply = smtp.getreply()
    if code != 250:
        _after_refusal(smtp, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    smtp.putcmd("rcpt", f"TO:<{recipient}>")
    code, reply = smtp.getreply()
    if code not in (250, 251):
        _after_refusal(smtp, code)
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    settled()
    code, reply = smtp.data(data)
    if code != 250:
        _after_refusal(smtp, code)
        raise smtplib.SMTPDataError(code, reply)
    return {}


def _after_refusal(smtp: smtplib.SMTP, code: int) -> None:
    """As sendmail does: 421 closes the connection, anything else resets the transaction."""
    if code == 421:
        smtp.close()
        return
    try:
        smtp.rset()
    except smtplib.SMTPServerDisconnected:
        pass
