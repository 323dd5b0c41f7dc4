"""Building the MIME message for email and for the file channel's .eml files.

Built with the ``email.mime`` classes (the compat32 policy): the same structure as an
``EmailMessage`` (HTML with a real text alternative, inline images as multipart/related, UTF-8
headers), at a quarter of the cost of the header registry's parsing and folding, which was the
largest single cost of delivering a message (bench/deliver.py).
"""

from __future__ import annotations

import hashlib
from email import encoders
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr

from notifications.channels.base import Rendered

SENDER_NAME = "整改督办"


def message_id(rendered: Rendered, domain: str) -> str:
    """A Message-ID of its own for every outbox row (yagmail's default repeats for repeats)."""
    digest = hashlib.sha256(rendered.key.encode()).hexdigest()[:16]
    return f"<rectiflow.{rendered.message_id}.{digest}@{domain}>"


def build_email(rendered: Rendered, sender: str) -> Message:
    """HTML with a real plain-text alternative, Chinese subject and sender name."""
    msg = MIMEMultipart("alternative")
    msg["From"] = formataddr((SENDER_NAME, sender), charset="utf-8")
    msg["To"] = formataddr((rendered.recipient_name, rendered.recipient), charset="utf-8")
    msg["Subject"] = Header(rendered.subject, "utf-8")  # type: ignore[assignment]
    domain = sender.rpartition("@")[2] or "rectiflow.local"
    msg["Message-ID"] = message_id(rendered, domain)
    if rendered.created_at is not None:
        msg["Date"] = format_datetime(rendered.created_at)
    key = rendered.key  # ids and rule names; a policy's own stage names may be Chinese
    msg["X-Rectiflow-Key"] = key if key.isascii() else Header(key, "utf-8")  # type: ignore[assignment]
    msg.attach(MIMEText(rendered.text, "plain", "utf-8"))
    html: Message = MIMEText(rendered.html, "html", "utf-8")
    images = rendered.extra.get("inline_images") or ()
    if images:
        # the HTML part becomes multipart/related, its images referenced as cid:NAME
        related = MIMEMultipart("related")
        related.attach(html)
        for cid, data, content_type in images:
            maintype, _, subtype = content_type.partition("/")
            image = MIMEBase(maintype, subtype)
            image.set_payload(data)
            encoders.encode_base64(image)
            image["Content-ID"] = f"<{cid}>"
            image.add_header("Content-Disposition", "inline", filename=f"{cid}.{subtype}")
            related.attach(image)
        html = related
    msg.attach(html)
    return msg
