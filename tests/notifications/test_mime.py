"""notifications.mime.email_bytes writes the message build_email builds: a mail reader finds the
same headers (Chinese names and subjects decoded), the same two parts and the same texts."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from notifications.channels.base import Rendered
from notifications.mime import build_email, email_bytes, encoded_words

SENDER = "noreply@example.edu.cn"
HEADERS = ("From", "To", "Subject", "Message-ID", "Date", "X-Rectiflow-Key", "MIME-Version")


def rendered(**changes) -> Rendered:
    values = dict(
        message_id=7, key="measure:1|before:3|email", channel="email",
        recipient="owner1@example.edu.cn", recipient_name="责任人1", wecom_id=None,
        subject="【整改督办】您有1项整改措施需要关注：临近时限1项", text="责任人您好：\n整改措施1\n" * 20,
        html="<p>责任人您好：</p><ul><li>整改措施1 &amp; 2</li></ul>", markdown="", url="",
        created_at=datetime(2026, 12, 7, 1, 30, tzinfo=UTC))
    values.update(changes)
    return Rendered(**values)


def as_read(data: bytes) -> tuple[dict[str, str], list[tuple[str, str]]]:
    mail = message_from_bytes(data, policy=policy.default)
    parts = [(part.get_content_type(), part.get_content()) for part in mail.iter_parts()]
    return {name: str(mail[name]) for name in HEADERS}, [("root", mail.get_content_type()),
                                                          *parts]


@pytest.mark.parametrize("changes", [
    {},
    {"subject": "【整改督办】" + "很长的标题需要折行处理，" * 12 + "完"},
    {"subject": "Plain ASCII subject", "recipient_name": "Zhang San"},
    {"subject": "带\r\n换行的标题\nBcc: someone@example.com", "recipient_name": "O'Brien, Pat"},
    {"key": "measure:1|提醒:3|email", "created_at": None},
    {"subject": "😀 emoji 与中文混排" * 5, "text": "", "html": ""},
])
def test_the_written_bytes_read_like_the_built_message(changes):
    message = rendered(**changes)
    mid, data = email_bytes(message, SENDER)
    fast = as_read(data)
    reference = as_read(bytes(build_email(message, SENDER)))
    assert fast == reference
    assert mid == reference[0]["Message-ID"]
    assert all(len(line) <= 78 for line in data.split(b"\r\n"))
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"Bcc" not in data  # a line break in user text never makes a header


@pytest.mark.parametrize("changes", [
    {"extra": {"inline_images": [("chart", b"\x89PNG", "image/png")]}},
    {"recipient": "owner1@example.edu.cn\r\nBcc: someone@example.com"},
    {"recipient": "张三@example.edu.cn"},
])
def test_what_is_not_plain_is_left_to_build_email(changes):
    assert email_bytes(rendered(**changes), SENDER) is None


def test_encoded_words_never_split_a_character():
    words = encoded_words("整" * 100).split("\r\n ")
    assert len(words) > 1
    assert "".join(str(message_from_bytes(f"Subject: {w}\r\n\r\n".encode(),
                                          policy=policy.default)["Subject"])
                   for w in words) == "整" * 100
