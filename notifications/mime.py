"""Building the MIME message for email and for the file channel's .eml files.

Built with the ``email.mime`` classes (the compat32 policy): the same structure as an
``EmailMessage`` (HTML with a real text alternative, inline images as multipart/related, UTF-8
headers), at a quarter of the cost of the header registry's parsing and folding, which was the
largest single cost of delivering a message (bench/deliver.py).

``email_bytes`` writes the same message (no inline images) straight to the bytes SMTP sends:
the ``email`` package's generator still cost half of a delivered message's CPU time (folding
each header, compiling a regular expression for each random boundary), where a mail of two
base64 parts and half a dozen headers is a few string joins. ``build_email`` remains the
reference (the tests parse both and compare) and builds every message with images.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from email import encoders
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr
from functools import lru_cache

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


#: UTF-8 bytes of text in one encoded word: 39 bytes make 52 base64 characters, and with
#: ``=?utf-8?b?...?=`` and a header's name a line stays under the 78 characters of RFC 5322
_WORD_BYTES = 39


def encoded_words(text: str) -> str:
    """``text`` as RFC 2047 encoded words (UTF-8, base64), folded, never splitting a character;
    a line break in it reads as a space, as with ``email.header.Header``."""
    text = " ".join(text.splitlines())
    whole = text.encode("utf-8")
    if len(whole) <= _WORD_BYTES:  # most names, and short subjects: one word
        return f"=?utf-8?b?{base64.b64encode(whole).decode('ascii')}?="
    words: list[str] = []
    chunk = bytearray()
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > _WORD_BYTES:
            words.append(base64.b64encode(chunk).decode("ascii"))
            chunk = bytearray()
        chunk += data
    if chunk or not words:
        words.append(base64.b64encode(chunk).decode("ascii"))
    return "\r\n ".join(f"=?utf-8?b?{word}?=" for word in words)


def _plain_header(text: str) -> bool:
    """Written as it is: printable ASCII, no line breaks, short enough for one line."""
    return text.isascii() and text.isprintable() and len(text) <= 64


@lru_cache(maxsize=1024)  # the sender's, and the people who get many messages
def _address(name: str, address: str) -> str:
    if not name or _plain_header(name):
        return formataddr((name, address))
    return f"{encoded_words(name)} <{address}>"


def _base64_body(text: str) -> str:
    return base64.encodebytes(text.encode("utf-8")).decode("ascii").replace("\n", "\r\n")


#: an address written as it is (ASCII, nothing to quote, no line break): others go through
#: ``build_email`` and smtplib's parsing
PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")

_PART = ('--{boundary}\r\nContent-Type: text/{kind}; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
         "Content-Transfer-Encoding: base64\r\n\r\n")


def email_bytes(rendered: Rendered, sender: str) -> tuple[str, bytes] | None:
    """The message ``build_email`` builds, as the bytes SMTP sends (CRLF line ends), and its
    Message-ID; None for one with inline images or an address that is not plain
    (``build_email`` builds those)."""
    if rendered.extra.get("inline_images") or not (
            PLAIN_ADDRESS.fullmatch(sender) and PLAIN_ADDRESS.fullmatch(rendered.recipient)):
        return None
    mid = message_id(rendered, sender.rpartition("@")[2] or "rectiflow.local")
    boundary = f"=_rectiflow_{secrets.token_hex(8)}"  # "=_" never occurs in base64
    subject, key = rendered.subject, rendered.key
    headers = [
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        "MIME-Version: 1.0",
        f"From: {_address(SENDER_NAME, sender)}",
        f"To: {_address(rendered.recipient_name, rendered.recipient)}",
        f"Subject: {subject if _plain_header(subject) else encoded_words(subject)}",
        f"Message-ID: {mid}",
    ]
    if rendered.created_at is not None:
        headers.append(f"Date: {format_datetime(rendered.created_at)}")
    headers.append(f"X-Rectiflow-Key: {key if _plain_header(key) else encoded_words(key)}")
    text = "".join([
        "\r\n".join(headers), "\r\n\r\n",
        _PART.format(boundary=boundary, kind="plain"), _base64_body(rendered.text),
        _PART.format(boundary=boundary, kind="html"), _base64_body(rendered.html),
        f"--{boundary}--\r\n"])
    return mid, text.encode("ascii")
