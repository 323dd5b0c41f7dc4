"""Building the configured channels and the deliverer from settings (entry points call this)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from notifications.channels.base import Channel
from notifications.channels.email import EmailChannel
from notifications.channels.file import FileChannel
from notifications.deliverer import Deliverer
from notifications.render import LinkMaker


def build_channels(settings: Settings) -> dict[str, Channel]:
    """The channels settings configure; bad settings are refused here, at start."""
    channels: dict[str, Channel] = {}
    if settings.smtp_configured:
        channels["email"] = EmailChannel.from_settings(settings)
    if settings.wecom_configured or settings.wecom_webhook_key:
        from notifications.channels import wecom  # type: ignore[attr-defined]

        channels.update(wecom.channels_from_settings(settings))
    channels["file"] = FileChannel(settings.outbox_dir,
                                   sender=settings.smtp_sender or "rectiflow@localhost")
    return channels


def build_deliverer(settings: Settings, sessions: sessionmaker[Session],
                    send_window: Callable[[datetime], datetime] | None = None,
                    link_maker: LinkMaker | None = None) -> Deliverer:
    return Deliverer(sessions, build_channels(settings), base_url=settings.base_url,
                     send_window=send_window, link_maker=link_maker)
