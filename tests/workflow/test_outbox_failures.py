"""Why a message died, in plain Chinese, from the channels' own error texts (a table)."""

from __future__ import annotations

import pytest

from workflow.outbox import UNKNOWN_FAILURE, explain_failure

CASES = [
    ("email 发送失败，永久性错误：收件人 a@b.cn 被拒收：{'a@b.cn': (550, b'No such user')}",
     "对方邮箱拒收"),
    ("email 发送失败，永久性错误：SMTP 登录失败（535），请检查用户名和密码", "发件邮箱登录失败"),
    ("email 发送失败，可重试错误：无法连接 SMTP 服务器 mail.example.cn:465：timed out",
     "连不上邮件服务器"),
    ("email 发送失败，可重试错误：ConnectionRefusedError(111, 'Connection refused')",
     "连不上邮件服务器"),
    ("wecom 发送失败，永久性错误：企业微信账号 zhangsan 无效（成员不存在、已离职或不在应用可见范围）",
     "企业微信账号无效"),
    ("wecom 发送失败（错误码 60020），永久性错误：获取令牌失败：IP 不在可信列表（not allow to access "
     "from your ip）", "可信 IP"),
    ("wecom 发送失败（错误码 40001），永久性错误：获取令牌失败：secret 错误（invalid credential）",
     "应用凭据无效"),
    ("file 发送失败，可重试错误：无法写入 outbox/1.eml：No space left on device", "无法写入本地文件"),
    (None, UNKNOWN_FAILURE),
    ("something nobody has seen", UNKNOWN_FAILURE),
]


@pytest.mark.parametrize(("error", "explained"), CASES)
def test_failures_are_explained(error: str | None, explained: str) -> None:
    assert explained in explain_failure(error)
