"""Probes of the real channels for ``rectiflow doctor``: SMTP, the WeCom app, the group robot.

Each probe does one small, harmless thing against the real service with a short timeout and
answers a :class:`~workflow.ops.doctor.Finding` in plain Chinese:

- SMTP: connect, STARTTLS when configured, log in, the way the email channel (yagmail) does;
  optionally send one test mail through the email channel itself.
- WeCom app: ``gettoken`` with the configured corp id and secret (the token is not cached:
  doctor checks the secret as it is now, not a token fetched yesterday).
- Group robot: ``webhook/upload_media`` of a tiny file with the key. WeCom checks the key
  (93000 when it is invalid or the robot was removed) and keeps the file for three days for
  this robot only; nothing is posted to the group, so checking does not spam it.

Secrets never appear in a finding: URLs are redacted, the secret and key are never quoted.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
import uuid
from typing import Any

import httpx

from config.settings import Settings
from notifications.channels.base import ChannelConfigError, DeliveryError, Rendered
from notifications.channels.email import EmailChannel
from notifications.channels.wecom.api import RATE_LIMITED, WeComApi, errcode, redact
from notifications.channels.wecom.app import WeComAppChannel
from notifications.channels.wecom.robot import WeComRobotChannel
from workflow.lifecycle import ChannelName
from workflow.ops.doctor import Finding

#: Seconds a probe may wait for a server; doctor's runner allows a little more per check.
PROBE_TIMEOUT = 5.0

# ------------------------------------------------------------------ SMTP


def smtp_finding(settings: Settings, *, send_test_to: str | None = None,
                 timeout: float = PROBE_TIMEOUT) -> Finding:
    """Connect and log in to the configured SMTP server; with ``send_test_to``, also send a test
    mail there through the email channel."""
    if not settings.smtp_configured:
        if send_test_to:
            return Finding.fail("未配置 SMTP（RECTIFLOW_SMTP_HOST 未设置），无法发送测试邮件")
        return Finding.ok("未配置（RECTIFLOW_SMTP_HOST 未设置），不发邮件")
    try:
        channel = EmailChannel.from_settings(settings)
    except ChannelConfigError as exc:
        return Finding.fail(str(exc))
    channel.timeout = timeout
    where = f"{channel.host}:{channel.port}"
    security = "SSL" if channel.ssl else ("STARTTLS" if channel.starttls else "不加密")
    failure = _smtp_login(channel, timeout)
    if failure is not None:
        return Finding.fail(f"SMTP 服务器 {where}（{security}）{failure}")
    login = f"以 {channel.user} 登录成功" if channel.user else "连接成功（未设置用户名，不登录）"
    if not send_test_to:
        return Finding.ok(f"SMTP 服务器 {where}（{security}）{login}，发件人 {channel.sender}")
    try:
        channel.send(_test_mail(send_test_to))
    except DeliveryError as exc:
        return Finding.fail(f"SMTP 服务器 {where} {login}，但测试邮件发送失败：{exc.reason}")
    finally:
        channel.close()
    return Finding.ok(f"SMTP 服务器 {where}（{security}）{login}，测试邮件已发往 {send_test_to}，"
                      "请到该邮箱查收（也请看看垃圾邮件箱）")


def _smtp_login(channel: EmailChannel, timeout: float) -> str | None:
    """Connect, STARTTLS, log in as yagmail does; None when it worked, else what went wrong."""
    stage = "connect"
    client: smtplib.SMTP | None = None
    try:
        if channel.ssl:
            client = smtplib.SMTP_SSL(channel.host, channel.port, timeout=timeout)
        else:
            client = smtplib.SMTP(channel.host, channel.port, timeout=timeout)
        client.ehlo()
        if channel.starttls:
            stage = "starttls"
            client.starttls()
            client.ehlo()
        if channel.user:
            stage = "login"
            client.login(channel.user, channel.password or "")
        return None
    except (OSError, smtplib.SMTPException) as exc:
        return _smtp_trouble(exc, stage, timeout)
    finally:
        if client is not None:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()


#: What went wrong at which step, by exception type (first match wins; order matters, since
#: ConnectionRefusedError and TimeoutError are OSErrors, and the SMTP errors subclass each other).
_SMTP_TROUBLE: tuple[tuple[type[BaseException], str | None, str], ...] = (
    (smtplib.SMTPAuthenticationError, None,
     "拒绝登录（{code}）：用户名或密码错误；很多邮箱（如 QQ、163、企业邮箱）要求使用客户端专用密码"
     "（授权码）而非网页登录密码，请核对 RECTIFLOW_SMTP_USER 和 RECTIFLOW_SMTP_PASSWORD"),
    (smtplib.SMTPNotSupportedError, "starttls",
     "不支持 STARTTLS：请关闭 RECTIFLOW_SMTP_STARTTLS，或改用 SSL 端口（通常 465）"),
    (smtplib.SMTPNotSupportedError, None,
     "不支持登录（未提供 AUTH）：很多服务器只在加密后允许登录，请开启 RECTIFLOW_SMTP_STARTTLS"
     "（通常端口 587）或 RECTIFLOW_SMTP_SSL（通常端口 465）"),
    (ssl.SSLError, None,
     "TLS 握手失败（{detail}）：请核对端口与 RECTIFLOW_SMTP_SSL / RECTIFLOW_SMTP_STARTTLS 是否匹配"
     "（465 用 SSL，587 用 STARTTLS）"),
    (socket.gaierror, None, "无法解析主机名：请核对 RECTIFLOW_SMTP_HOST 和本机的 DNS"),
    (ConnectionRefusedError, None,
     "拒绝连接：服务未运行或端口不对，请核对 RECTIFLOW_SMTP_HOST 和 RECTIFLOW_SMTP_PORT"),
    (TimeoutError, None,
     "{timeout} 秒内无响应：可能被防火墙拦截（很多云服务器封锁 25 端口），请核对地址和端口，"
     "或改用 465/587 端口"),
    (smtplib.SMTPServerDisconnected, "connect",
     "连接后被服务器断开（{detail}）：该端口可能要求 SSL，请核对 RECTIFLOW_SMTP_SSL"),
    (smtplib.SMTPServerDisconnected, None, "连接被服务器断开（{detail}）"),
    (smtplib.SMTPResponseException, None, "拒绝了请求（{code} {detail}）"),
)


def _smtp_trouble(exc: BaseException, stage: str, timeout: float) -> str:
    """One line saying what ``exc``, raised at ``stage``, means for the sysadmin."""
    if isinstance(exc, smtplib.SMTPServerDisconnected) and "timed out" in str(exc):
        # smtplib reports a greeting or reply that never came as a disconnection
        return (f"连接后 {timeout:g} 秒内没有收到服务器应答：该端口可能要求 SSL（465 端口请开启 "
                "RECTIFLOW_SMTP_SSL），或服务器过忙")
    code = getattr(exc, "smtp_code", "")
    detail = _short(getattr(exc, "smtp_error", None) or getattr(exc, "reason", None) or exc)
    for kind, at_stage, text in _SMTP_TROUBLE:
        if isinstance(exc, kind) and at_stage in (None, stage):
            return text.format(code=code, detail=detail, timeout=f"{timeout:g}")
    return f"无法连接（{detail}）"


def _test_mail(address: str) -> Rendered:
    text = ("这是 rectiflow doctor 发送的测试邮件。收到本邮件，说明整改督办系统可以通过当前的 SMTP "
            "设置发出邮件。无需回复。")
    return Rendered(message_id=0, key=f"doctor-test|{uuid.uuid4().hex}", channel=ChannelName.EMAIL,
                    recipient=address, recipient_name=address.partition("@")[0],
                    wecom_id=None, subject="【整改督办】邮件发送测试", text=text,
                    html=f"<p>{text}</p>", markdown=text, url="")


def _short(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = " ".join(str(value).split())
    return text[:150]


# ------------------------------------------------------------------ WeCom app

#: What a gettoken error means and what to do about it.
TOKEN_ERRORS = {
    40001: "Secret 错误：请在管理后台「应用管理」中打开该应用，核对其 Secret 后更新 "
           "RECTIFLOW_WECOM_SECRET（重置 Secret 后旧值立即失效）",
    40013: "企业ID错误：请在管理后台「我的企业 → 企业信息」核对企业ID，更新 RECTIFLOW_WECOM_CORP_ID",
    60020: "本服务器的出口 IP 不在该应用的企业可信IP中：请在管理后台「应用管理 → 该应用 → "
           "企业可信IP」中添加本服务器访问外网所用的公网 IP",
    RATE_LIMITED: "调用过于频繁，请约 1 分钟后再试",
}

_FROM_IP = re.compile(r"from ip:\s*([0-9A-Fa-f.:]+)")


def wecom_token_finding(code: int, errmsg: str, agent_id: int | None) -> Finding:
    """Interpret gettoken's answer (pure)."""
    if code == 0:
        return Finding.ok(f"已获取 access_token（应用 AgentId {agent_id}）")
    reason = TOKEN_ERRORS.get(code, f"企业微信返回错误：{_short(redact(errmsg))}")
    seen = _FROM_IP.search(errmsg or "")
    if code == 60020 and seen:
        reason += f"（企业微信看到的来源 IP 是 {seen.group(1)}）"
    finding = Finding.warn if code == RATE_LIMITED else Finding.fail
    return finding(f"获取 access_token 失败（{code}）：{reason}")


def wecom_finding(settings: Settings, *, timeout: float = PROBE_TIMEOUT,
                  transport: httpx.BaseTransport | None = None) -> Finding:
    """Fetch an access token with the configured corp id and secret."""
    if not (settings.wecom_corp_id or settings.wecom_secret or settings.wecom_agent_id):
        return Finding.ok("未配置（RECTIFLOW_WECOM_CORP_ID 等未设置），不发企业微信应用消息")
    try:
        channel = WeComAppChannel.from_settings(settings, tokens=None)  # type: ignore[arg-type]
    except ChannelConfigError as exc:
        return Finding.fail(str(exc))
    with WeComApi(channel.name, channel.api_base, timeout=timeout, transport=transport) as api:
        try:
            answer = api.gettoken(channel.corp_id, channel.secret)
        except DeliveryError as exc:
            return Finding.fail(f"无法访问企业微信接口 {channel.api_base}：{exc.reason}；"
                                "请确认本服务器可以访问外网（或代理设置）")
    code = errcode(answer)
    if code == 0 and not answer.get("access_token"):
        return Finding.fail("企业微信的应答里没有 access_token")
    return wecom_token_finding(code, str(answer.get("errmsg", "")), channel.agent_id)


# ------------------------------------------------------------------ group robot

ROBOT_ERRORS = {
    93000: "webhook 无效或机器人已被移出群聊：请在群设置「消息推送（群机器人）」中查看该机器人的 "
           "webhook 地址，把其中 key= 后面的部分填入 RECTIFLOW_WECOM_WEBHOOK_KEY",
}


def robot_finding_for(code: int, errmsg: str) -> Finding:
    """Interpret upload_media's answer to the robot key (pure)."""
    if code == 0:
        return Finding.ok("webhook key 有效（以上传临时文件的方式检查，群里不会收到消息）")
    if code == RATE_LIMITED:
        return Finding.warn(f"企业微信限流（{code}），未能确认 key：约 1 分钟后再试")
    reason = ROBOT_ERRORS.get(code, f"企业微信返回错误：{_short(redact(errmsg))}")
    return Finding.fail(f"webhook key 检查失败（{code}）：{reason}")


def robot_finding(settings: Settings, *, timeout: float = PROBE_TIMEOUT,
                  transport: httpx.BaseTransport | None = None) -> Finding:
    """Check the group robot's key without posting to the group."""
    if not settings.wecom_webhook_key:
        return Finding.ok("未配置（RECTIFLOW_WECOM_WEBHOOK_KEY 未设置），不发群通报")
    try:
        channel = WeComRobotChannel.from_settings(settings)
    except ChannelConfigError as exc:
        return Finding.fail(str(exc))
    probe = b"rectiflow doctor: webhook key check\n"
    with WeComApi(channel.name, channel.api_base, timeout=timeout, transport=transport) as api:
        try:
            response = api.request("POST", "/cgi-bin/webhook/upload_media",
                                   {"key": channel.key, "type": "file"},
                                   files={"media": ("rectiflow-doctor.txt", probe, "text/plain")})
        except httpx.HTTPError as exc:
            return Finding.fail(redact(f"无法访问企业微信接口 {channel.api_base}：{type(exc).__name__}；"
                                       "请确认本服务器可以访问外网（或代理设置）"))
    if response.status_code != 200:
        return Finding.fail(f"企业微信接口返回 HTTP {response.status_code}")
    try:
        answer: Any = response.json()
    except ValueError:
        return Finding.fail("企业微信接口的应答不是 JSON")
    if not isinstance(answer, dict):
        return Finding.fail("企业微信接口的应答格式不对")
    return robot_finding_for(errcode(answer), str(answer.get("errmsg", "")))
