"""The admin page's bulk retry: every dead message, or those of one channel, back in the queue;
only for admins, only with the form's CSRF token, an unknown channel refused."""

from __future__ import annotations

from sqlalchemy import select

from workflow import db
from workflow.models import OutboxMessage


def dead_messages(sessions, now) -> None:
    with db.transaction(sessions) as session:
        for n, channel in enumerate(["email", "email", "email", "wecom"]):
            session.add(OutboxMessage(
                channel=channel, recipient=f"p{n}@example.edu.cn", subject="整改提醒",
                payload={}, key=f"dead-{n}", status="dead", attempts=12,
                not_before=now, created_at=now, last_error="无法连接 SMTP 服务器"))


def statuses(sessions) -> list[tuple[str, str, int]]:
    with db.transaction(sessions) as session:
        return [(m.channel, m.status, m.attempts) for m in
                session.scalars(select(OutboxMessage).where(OutboxMessage.key.like("dead-%"))
                                .order_by(OutboxMessage.id))]


def test_admin_retries_all_dead_mail_in_one_go(browser, sessions, now):
    dead_messages(sessions, now)
    admin = browser("admin")
    page = admin.get("/admin/outbox")
    assert "重新排队全部发送失败的消息" in page.text
    response = admin.post("/admin/outbox/retry-dead", {"channel": "email"})
    assert response.status_code == 303
    assert statuses(sessions) == [("email", "pending", 0)] * 3 + [("wecom", "dead", 12)]
    assert "已重新排队邮件渠道发送失败的消息 3 条" in admin.get("/admin/outbox").text
    admin.post("/admin/outbox/retry-dead", {"channel": ""})
    assert {s for _, s, _ in statuses(sessions)} == {"pending"}


def test_bulk_retry_is_refused_to_others_and_without_csrf(browser, sessions, now):
    dead_messages(sessions, now)
    before = statuses(sessions)
    for role in ("leader", "reviewer", "owner", "viewer"):
        assert browser(role).post("/admin/outbox/retry-dead", {}).status_code == 403
    assert browser("admin").post("/admin/outbox/retry-dead", {}, csrf=False).status_code == 403
    response = browser("admin").post("/admin/outbox/retry-dead", {"channel": "sms"})
    assert response.status_code == 422 and "未知的发送渠道「sms」" in response.text
    anonymous = browser().post("/admin/outbox/retry-dead", {}, csrf=False)
    assert anonymous.status_code in (303, 403)
    assert statuses(sessions) == before
