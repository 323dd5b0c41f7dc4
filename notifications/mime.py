"""Building the MIME message for email and for the file channel's .eml files."""

from __future__ import annotations

import hashlib
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from notifications.channels.base import Rendered

SENDER_NAME = "整改督办"


def message_id(rendered: Rendered, domain: str) -> str:
    """A Message-ID of its own for every outbox row (yagmail's default repeats for repeats)."""
    digest = hashlib.sha256(rendered.key.encode()).hexdigest()[:16]
    return f"<rectiflow.{rendered.message_id}.{digest}@{domain}>"


def build_email(rendered: Rendered, sender: str) -> EmailMessage:
    """HTML with a real plain-text alternative, Chinese subject and sender name."""
    msg = EmailMessage()
    msg["From"] = formataddr((SENDER_NAME, sender))
    msg["To"] = str(Address(display_name=rendered.recipient_name, addr_spec=rendered.recipient))
    msg["Subject"] = rendered.subject
    domain = sender.rpartition("@")[2] or "rectiflow.local"
    msg["Message-ID"] = message_id(rendered, domain)
    if rendered.created_at is not None:
        msg["Date"] = format_datetime(rendered.created_at)
    msg["X-Rectiflow-Key"] = rendered.key
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    images = rendered.extra.get("inline_images") or ()
    if images:
        # the HTML part becomes multipart/related, its images referenced as cid:NAME
        html_part = next(part for part in msg.iter_parts()
                         if part.get_content_type() == "text/html")
        assert isinstance(html_part, EmailMessage)
        for cid, data, content_type in images:
            maintype, _, subtype = content_type.partition("/")
            html_part.add_related(data, maintype=maintype, subtype=subtype, cid=f"<{cid}>",
                                  filename=f"{cid}.{subtype}", disposition="inline")
    return msg
